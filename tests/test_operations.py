"""Nightly operation: definitions load, incremental runs, readers never blocked, failed runs publish nothing."""

import hashlib
import subprocess
import sys
import textwrap
import time

import dagster as dg
import duckdb
import pytest

from pipelines.contract import CLAIMS
from pipelines.definitions import MAIN_JOB, build_definitions, defs
from pipelines.resources import PipelineSettings
from tests.builders import BEH_60, DIAG_60, P1, P2, claim, contract, credit, materialize, write_csv, write_landing

FIRST = [claim("a1", "a", "2025-01-10", DIAG_60), claim("a2", "a", "2025-02-10", BEH_60, "100.00")]
SECOND = [claim("a3", "a", "2025-03-10", BEH_60, "100.00"), claim("b1", "b", "2025-03-11", BEH_60, "50.00")]


def test_definitions_load_with_job_schedule_and_sensor():
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def(MAIN_JOB)
    assert defs.resolve_schedule_def("nightly").cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("new_landing_files")


def published_count(data_dir, sql):
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_a_second_run_loads_only_the_new_extract_and_updates_the_marts(tmp_path):
    landing = write_landing(tmp_path / "landing", FIRST, [contract(P1, omzetmaximum="1000")])
    materialize(landing, tmp_path / "data")
    assert published_count(tmp_path / "data", "SELECT realised_amount FROM marts.turnover_cap") == 200
    write_csv(landing / "claims_2.csv", SECOND, CLAIMS.columns)
    materialize(landing, tmp_path / "data")
    data = tmp_path / "data"
    assert published_count(data, "SELECT count(*) FROM raw.claims") == 4          # not 6: claims_1 not reloaded
    assert published_count(data, "SELECT count(*) FROM raw.load_manifest WHERE file_name = 'claims_1.csv'") == 1
    assert published_count(data, "SELECT realised_amount FROM marts.turnover_cap") == 350
    assert published_count(data, "SELECT count(*) FROM quality.run_history") == 2
    assert published_count(data, "SELECT how || ': ' || loads_added FROM quality.model_builds "
                                 "WHERE model = 'staging.claims_typed'") == "added new loads: 1"


def same_rows(data_dir, other_dir, sql):
    """Rows of ``sql`` (with {} for the database) in one published warehouse and not the other, both ways."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{data_dir / 'warehouse.duckdb'}' AS one (READ_ONLY)")
    con.execute(f"ATTACH '{other_dir / 'warehouse.duckdb'}' AS other (READ_ONLY)")
    try:
        return [con.execute(f"{sql.format(a)} EXCEPT ALL {sql.format(b)}").fetchall()
                for a, b in (("one", "other"), ("other", "one"))] == [[], []]
    finally:
        con.close()


def test_tables_brought_up_to_date_by_a_later_run_equal_tables_built_from_all_files_at_once(tmp_path, monkeypatch):
    moved = claim("x1", "a", "2025-02-15", BEH_60, trajectory=None)
    orphan_debit = claim("d9", "b", "2025-02-20", BEH_60, "50.00")
    untouched = claim("f1", "f", "2025-01-20", BEH_60)                 # no new line of client f
    first = [
        claim("a1", "a", "2025-01-10", DIAG_60, zvt=3),
        claim("a2", "a", "2025-02-10", BEH_60),                         # ZVT carried from a1
        moved,
        dict(credit("c9", orphan_debit, "20.00"), client_id="y"),        # names d9 (next file), another client
        untouched,
        claim("e1", "e", "2025-03-05", BEH_60),                         # after the first run's as-of date
    ]
    second = [
        claim("a3", "a", "2025-03-10", BEH_60),                         # same trajectory: ZVT carried from a1
        credit("cr2", first[1]),                                        # credits 100 of a2, delivered earlier
        orphan_debit,                                                   # c9 now nets against it
        dict(credit("cf", untouched, "40.00"), client_id="z"),          # credits f1, another client
        dict(moved, client_id="c"),                                     # x1 again, now for another client
        dict(first[1], claim_id="a2", declared_amount="120.00"),        # a2 again, another amount
        claim("b1", "b", "2025-04-11", BEH_60),                         # moves the as-of date on
    ]
    late = [claim("b2", "b", "2025-04-20", BEH_60), credit("ca3", second[0], "10.00"),  # April, and a3 (March)
            claim("z2", "z", "2025-04-21", BEH_60),  # client z again: its credit cf still nets against f1
            dict(second[6], zorglabel="S01"),        # b1 again, another zorglabel: a new conflict
            second[0]]                               # a3 again, the same: no conflict
    # P2 has a contract and no lines: its provider-year rows come from the contracts alone, never recomputed
    landing = write_landing(tmp_path / "landing", first, [contract(P1, omzetmaximum="1000"), contract(P2)])
    nightly, at_once = tmp_path / "nightly", tmp_path / "at_once"
    # which models took their changes as core.claim_lines kept them earlier in the run, instead of working them out
    import pipelines.incremental as incremental

    kept_for, work_out = [], incremental._kept_changes_for

    def spy(con, model, previous, build):
        kept = work_out(con, model, previous, build)
        kept_for.append((model.table, kept is not None))
        return kept

    monkeypatch.setattr(incremental, "_kept_changes_for", spy)
    materialize(landing, nightly, as_of="2025-02-28", trend_months=4)
    assert kept_for == []  # the first run builds everything
    write_csv(landing / "claims_2.csv", second, CLAIMS.columns)
    materialize(landing, nightly, trend_months=4)
    assert sorted(table for table, kept in kept_for if kept) == [
        "core.provider_clients", "core.provider_years", "core.trajectories", "core.trajectory_years",
        "marts.group_treatment_share", "marts.s01_usage", "marts.zvt_setting_mismatch"]
    assert {"core.claim_lines", "staging.claim_lines"} <= {t for t, _ in kept_for}
    assert published_count(nightly, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'kept_changes%'") == 0
    builds = "SELECT string_agg(model || ': ' || how, ', ' ORDER BY model) FROM quality.model_builds"
    assert published_count(nightly, builds) == ("core.claim_lines: added new loads, core.provider_clients: added new "
                                                "loads, core.provider_years: added new loads, "
                                                "core.trajectories: added new loads, core.trajectory_years: added "
                                                "new loads, marts.benchmark_trends: kept 2 month ends but for "
                                                "1 changed provider, marts.group_treatment_share: added new loads, "
                                                "marts.profile_comparison: kept 3 benchmarks but for 1 changed "
                                                "provider, marts.s01_usage: added new loads, "
                                                "marts.zvt_setting_mismatch: added new loads, "
                                                "quality.claim_line_checks: added new loads, "
                                                "staging.claim_conflicts: added new loads, "
                                                "staging.claim_lines: added new loads, staging.claims_typed: added "
                                                "new loads")
    write_csv(landing / "claims_3.csv", late, CLAIMS.columns)
    materialize(landing, nightly, trend_months=4)
    materialize(landing, at_once, trend_months=4)

    assert published_count(nightly, builds) == ("core.claim_lines: added new loads, core.provider_clients: added new "
                                                "loads, core.provider_years: added new loads, "
                                                "core.trajectories: added new loads, core.trajectory_years: added "
                                                "new loads, marts.benchmark_trends: "
                                                "kept 2 month ends; 1 more but for 1 changed provider, "
                                                "marts.group_treatment_share: added new loads, "
                                                "marts.profile_comparison: kept 3 benchmarks but for 1 changed "
                                                "provider, marts.s01_usage: added new loads, "
                                                "marts.zvt_setting_mismatch: added new loads, "
                                                "quality.claim_line_checks: added new loads, "
                                                "staging.claim_conflicts: added new loads, "
                                                "staging.claim_lines: added new loads, staging.claims_typed: added "
                                                "new loads")
    assert same_rows(nightly, at_once, "SELECT * FROM {}.marts.benchmark_trends")
    # load ids differ (the files were loaded in another order); file and row identify a line
    assert same_rows(nightly, at_once, "SELECT * EXCLUDE (load_id) FROM {}.staging.claims_typed")
    assert same_rows(nightly, at_once, "SELECT * EXCLUDE (load_id) FROM {}.staging.claim_lines")
    assert same_rows(nightly, at_once, "SELECT * FROM {}.core.claim_lines")
    for table in ("core.trajectories", "core.trajectory_years", "core.provider_clients", "core.provider_years",
                  "marts.benchmark_results", "marts.group_treatment_share", "marts.s01_usage",
                  "marts.zvt_setting_mismatch", "marts.profile_comparison", "quality.claim_line_checks",
                  "staging.claim_conflicts"):
        assert same_rows(nightly, at_once, f"SELECT * FROM {{}}.{table}")
    assert published_count(nightly, "SELECT count(*) FROM core.claim_lines") == 10  # a1-a3, x1, d9, e1, f1, b1, b2, z2
    assert published_count(nightly, "SELECT string_agg(claim_id || ' ' || client_key_is_c, ',') FROM (SELECT "
                                    "claim_id, client_key <> (SELECT client_key FROM core.claim_lines WHERE "
                                    "claim_id = 'a1') AS client_key_is_c FROM core.claim_lines WHERE claim_id = 'x1')"
                           ) == "x1 true"
    assert published_count(nightly, "SELECT net_amount FROM core.claim_lines WHERE claim_id = 'a2'") == 20
    assert published_count(nightly, "SELECT net_amount FROM core.claim_lines WHERE claim_id = 'd9'") == 30
    assert published_count(nightly, "SELECT net_amount FROM core.claim_lines WHERE claim_id = 'f1'") == 60
    assert published_count(nightly, "SELECT line_zvt FROM core.claim_lines WHERE claim_id = 'a3'") == 3
    conflicts = "SELECT string_agg(claim_id || ' ' || deliveries || ' ' || versions, ', ' ORDER BY claim_id) " \
                "FROM staging.claim_conflicts"
    assert published_count(nightly, conflicts) == "a2 2 2, b1 2 2, x1 2 2"


def test_a_nightly_run_recomputes_the_trend_of_per_provider_benchmarks_only_for_the_providers_it_changes(
        tmp_path, monkeypatch):
    # A new client of P2 in January, in stratum 2: P2's rows change at every month end, and so does P1's cost per
    # client (the peer price of stratum 2 changes), but none of P1's benchmarks computed per provider. The cost per
    # client is computed from P2's new provider rows and P1's rows kept at each month end.
    from tests.benchmarks import test_cost_per_client as cost

    late = claim("f1", "f", "2025-01-15", BEH_60, "1000.00", zvt=2, provider=P2, trajectory="F")
    landing = write_landing(tmp_path / "landing", cost.CLAIMS, cost.CONTRACTS)
    runs = {name: tmp_path / name for name in ("nightly", "at_once", "wrongly_declared")}
    for data_dir in (runs["nightly"], runs["wrongly_declared"]):
        materialize(landing, data_dir, as_of="2025-03-31", trend_months=3)
    trend = "SELECT * FROM {}.marts.benchmark_trends"
    p1_cost = ("SELECT list(value ORDER BY period_end) FROM marts.benchmark_trends "
               f"WHERE benchmark = 'cost_per_client' AND provider_agb = '{P1}'")
    p1_cost_before = published_count(runs["nightly"], p1_cost)
    write_csv(landing / "claims_2.csv", [late], CLAIMS.columns)
    import pipelines.benchmarks.trends as trends

    copies, copy_lines = [], trends.copy_year_lines

    def spy(*args, providers=None, **kwargs):
        copies.append(providers)
        return copy_lines(*args, providers=providers, **kwargs)

    monkeypatch.setattr(trends, "copy_year_lines", spy)
    materialize(landing, runs["nightly"], as_of="2025-03-31", trend_months=3)
    monkeypatch.undo()
    materialize(landing, runs["at_once"], as_of="2025-03-31", trend_months=3)

    how = "SELECT how FROM quality.model_builds WHERE model = 'marts.benchmark_trends'"
    assert published_count(runs["nightly"], how) == "kept 2 month ends but for 1 changed provider"
    # the cost per client too was computed from P2's lines alone, with the provider rows kept at each month end
    assert copies == [[P2]]
    assert published_count(runs["nightly"], "SELECT string_agg(DISTINCT CAST(period_end AS VARCHAR), ', ' ORDER BY "
                           "CAST(period_end AS VARCHAR)) FROM quality.trend_inputs_provider_strata") == \
        "2025-01-31, 2025-02-28"
    assert published_count(runs["nightly"], "SELECT string_agg(table_name, ', ' ORDER BY table_name) "
                           "FROM duckdb_tables() WHERE schema_name = 'quality' AND table_name LIKE 'trend_inputs_%'"
                           ) == ("trend_inputs_benchmark_norms, trend_inputs_provider_strata, "
                                 "trend_inputs_provider_years, trend_inputs_provider_years_in_scope")
    assert same_rows(runs["nightly"], runs["at_once"], trend)
    assert same_rows(runs["nightly"], runs["at_once"], "SELECT * FROM {}.quality.trend_inputs_provider_strata")
    # the marts that declare their rows per provider computed P2's rows again and kept P1's
    for mart in ("group_treatment_share", "s01_usage", "zvt_setting_mismatch"):
        p2_rows = published_count(runs["at_once"], f"SELECT count(*) FROM marts.{mart} WHERE provider_agb = '{P2}'")
        assert published_count(runs["at_once"], f"SELECT count(*) FROM marts.{mart}") > p2_rows > 0
        assert published_count(runs["nightly"], "SELECT how || ': ' || rows_added FROM quality.model_builds "
                                                f"WHERE model = 'marts.{mart}'") == f"added new loads: {p2_rows}"
        assert same_rows(runs["nightly"], runs["at_once"], f"SELECT * FROM {{}}.marts.{mart}")
    # so did the profile comparison, under the other profiles (the run's own is copied from its results)
    how = "SELECT how || ': ' || rows_added FROM quality.model_builds WHERE model = 'marts.profile_comparison'"
    computed = published_count(runs["at_once"], f"SELECT count(*) FROM marts.profile_comparison WHERE "
                               f"provider_agb = '{P2}' OR policy = 'default' OR benchmark NOT IN "
                               "('group_treatment_share', 's01_usage', 'zvt_setting_mismatch')")
    assert same_rows(runs["nightly"], runs["at_once"], "SELECT * FROM {}.marts.profile_comparison")
    assert published_count(runs["nightly"], how) == f"kept 3 benchmarks but for 1 changed provider: {computed}"
    assert published_count(runs["at_once"], p1_cost) != p1_cost_before  # moved with P2's new client

    # Declared per provider, the cost per client would keep P1's stale rows: the comparison above would fail.
    import dataclasses

    import pipelines.benchmarks.assets as benchmark_assets
    declared = tuple(dataclasses.replace(b, per_provider=True) if b.name == "cost_per_client" else b
                     for b in benchmark_assets.benchmarks())
    monkeypatch.setattr(benchmark_assets, "benchmarks", lambda: declared)
    materialize(landing, runs["wrongly_declared"], as_of="2025-03-31", trend_months=3)
    assert not same_rows(runs["wrongly_declared"], runs["at_once"], trend)


def test_a_failed_run_leaves_the_published_warehouse_as_it_was(tmp_path):
    landing = write_landing(tmp_path / "landing", FIRST, [contract(P1)])
    data = tmp_path / "data"
    materialize(landing, data)
    before = hashlib.sha256((data / "warehouse.duckdb").read_bytes()).hexdigest()
    write_csv(landing / "claims_2.csv", SECOND, CLAIMS.columns)
    with pytest.raises(Exception, match="no-such-policy"):
        materialize(landing, data, policy="no-such-policy")   # fails half-way: raw already has claims_2
    assert hashlib.sha256((data / "warehouse.duckdb").read_bytes()).hexdigest() == before
    assert published_count(data, "SELECT count(*) FROM raw.claims") == 2
    materialize(landing, data)                                 # the next good run picks up where it stopped
    assert published_count(data, "SELECT count(*) FROM raw.claims") == 4


READER = textwrap.dedent("""
    import sys, time, duckdb
    path, seconds = sys.argv[1], float(sys.argv[2])
    con = duckdb.connect(path, read_only=True)
    seen, deadline = set(), time.time() + seconds
    while time.time() < deadline:
        seen.add(con.execute("SELECT count(*) FROM raw.claims").fetchone()[0])
        time.sleep(0.02)
    print(sorted(seen))
""")


def test_a_reader_keeps_querying_the_published_warehouse_throughout_a_run(tmp_path):
    landing = write_landing(tmp_path / "landing", FIRST, [contract(P1)])
    data = tmp_path / "data"
    materialize(landing, data)
    write_csv(landing / "claims_2.csv", SECOND, CLAIMS.columns)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(data / "warehouse.duckdb"), "6"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    materialize(landing, data)
    out, err = reader.communicate(timeout=180)
    # the reader was never blocked and kept a consistent view: the state it opened
    assert reader.returncode == 0, err
    assert eval(out) == [2]
    # the next connection sees the new state
    assert published_count(data, "SELECT count(*) FROM raw.claims") == 4


def test_sensor_requests_a_run_for_a_new_file_and_skips_loaded_ones(tmp_path):
    landing = write_landing(tmp_path / "landing", FIRST, [contract(P1)])
    data = tmp_path / "data"
    settings = PipelineSettings(landing_dir=str(landing), data_dir=str(data))
    sensor = build_definitions(settings).resolve_sensor_def("new_landing_files")

    def tick(cursor=None):
        with dg.build_sensor_context(cursor=cursor, resources={"settings": settings}) as context:
            return sensor.evaluate_tick(context)

    first = tick()
    assert [r.run_key for r in first.run_requests]  # nothing published yet: both files are new
    materialize(landing, data)
    after = tick(first.cursor)
    assert after.run_requests == [] and after.skip_message
    write_csv(landing / "claims_2.csv", SECOND, CLAIMS.columns)
    again = tick(after.cursor)
    assert len(again.run_requests) == 1 and "claims_2.csv" in again.run_requests[0].tags["praktijkvariatie/new_files"]


def test_nightly_schedule_requests_the_main_job():
    schedule = defs.resolve_schedule_def("nightly")
    with dg.build_schedule_context() as context:
        result = schedule.evaluate_tick(context)
    assert len(result.run_requests) == 1


def test_a_working_copy_in_an_older_storage_format_is_upgraded_once_with_its_contents(tmp_path):
    from pipelines.warehouse import STORAGE_VERSION, Warehouse

    warehouse = Warehouse(tmp_path)
    warehouse.build_path.parent.mkdir(parents=True)
    old = duckdb.connect(str(warehouse.build_path))  # DuckDB's default format (v1.0.0)
    old.execute("CREATE SCHEMA marts")
    old.execute("CREATE TABLE marts.results AS SELECT 'P1' AS provider_agb, 0.25 AS value")
    old.execute("CREATE VIEW marts.results_view AS SELECT * FROM marts.results")
    old.close()

    with warehouse.connect() as con:
        (tags,) = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'warehouse'").fetchone()
        assert tags["storage_version"] == f"{STORAGE_VERSION}+"
        assert con.execute("FROM marts.results_view").fetchall() == [("P1", 0.25)]
    with warehouse.connect() as con:  # already upgraded: opened as it is
        assert con.execute("SELECT count(*) FROM marts.results").fetchone() == (1,)


def test_publishing_renames_the_working_copy_and_makes_the_next_one_from_it(tmp_path):
    from pipelines.warehouse import Warehouse

    warehouse = Warehouse(tmp_path)
    with warehouse.connect() as con:
        con.execute("CREATE TABLE marts.t AS SELECT 1 AS v")
    built = warehouse.build_path.stat().st_ino
    warehouse.publish()
    warehouse.wait_for_working_copy()
    assert warehouse.published_path.stat().st_ino == built  # renamed, not copied
    assert warehouse.build_path.stat().st_ino != built  # a file of its own: the next run never writes the published one
    assert not list(tmp_path.glob(".*.retired")) and not list(tmp_path.rglob(".*.copying"))

    with warehouse.connect() as con:  # the next run goes on from the published state
        con.execute("INSERT INTO marts.t VALUES (2)")
    published = duckdb.connect(str(warehouse.published_path), read_only=True)
    assert published.execute("SELECT count(*) FROM marts.t").fetchone() == (1,)
    published.close()
    warehouse.publish()
    warehouse.wait_for_working_copy()
    with warehouse.connect() as con:
        assert con.execute("SELECT count(*) FROM marts.t").fetchone() == (2,)


def test_a_working_copy_missing_after_publishing_is_made_again_from_the_published_warehouse(tmp_path):
    from pipelines.warehouse import Warehouse

    warehouse = Warehouse(tmp_path)
    with warehouse.connect() as con:
        con.execute("CREATE TABLE marts.t AS SELECT 7 AS v")
    warehouse.publish()
    warehouse.wait_for_working_copy()
    warehouse.build_path.unlink()  # as if the process stopped before it had copied it
    with warehouse.connect() as con:
        assert con.execute("SELECT v FROM marts.t").fetchall() == [(7,)]


def test_a_connection_left_open_on_the_working_copy_makes_publishing_copy_instead_of_rename(tmp_path):
    from pipelines.warehouse import STORAGE_VERSION, Warehouse

    warehouse = Warehouse(tmp_path)
    with warehouse.connect() as con:
        con.execute("CREATE TABLE marts.t AS SELECT 1 AS v")
    left_open = duckdb.connect(str(warehouse.build_path), config={"storage_compatibility_version": STORAGE_VERSION})
    try:
        warehouse.publish()
        warehouse.wait_for_working_copy()
        left_open.execute("INSERT INTO marts.t VALUES (2)")
        left_open.execute("CHECKPOINT")
    finally:
        left_open.close()
    published = duckdb.connect(str(warehouse.published_path), read_only=True)
    assert published.execute("SELECT count(*) FROM marts.t").fetchone() == (1,)
    published.close()


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, (1 << 20) + 3])
def test_the_unbuffered_copy_of_the_working_copy_is_byte_for_byte(tmp_path, size):
    from pipelines.warehouse import _copy_atomically

    source = tmp_path / "source.duckdb"
    source.write_bytes(bytes(range(256)) * (size // 256) + bytes(size % 256))
    _copy_atomically(source, tmp_path / "copy.duckdb", unbuffered=True)
    assert (tmp_path / "copy.duckdb").read_bytes() == source.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.duckdb", "source.duckdb"]


def test_a_warehouse_loaded_with_64_digit_client_keys_is_converted_and_rebuilt(tmp_path):
    from pipelines.warehouse import Warehouse

    landing = write_landing(tmp_path / "landing", FIRST + SECOND, [contract(P1, omzetmaximum="1000")])
    data, fresh = tmp_path / "data", tmp_path / "fresh"
    materialize(landing, data)
    keyed = ("SELECT table_schema || '.' || table_name FROM information_schema.columns JOIN information_schema.tables "
             "USING (table_catalog, table_schema, table_name) WHERE column_name = 'client_key' "
             "AND table_type = 'BASE TABLE'")
    with Warehouse(data).connect() as con:  # as a warehouse loaded before the keys were shortened
        tables = [t for (t,) in con.execute(keyed).fetchall()]
        assert {"raw.claims_stored", "staging.claim_lines", "core.claim_lines", "core.trajectories"} <= set(tables)
        for table in tables:
            con.execute(f"UPDATE {table} SET client_key = client_key || repeat('0', 32)")
    materialize(landing, data)
    materialize(landing, fresh)
    for table in tables:
        assert published_count(data, f"SELECT count(*) FROM {table} WHERE length(client_key) <> 32") == 0, table
        assert same_rows(data, fresh, f"SELECT * FROM {{}}.{table}"), table
    assert same_rows(data, fresh, "SELECT * FROM {}.marts.benchmark_results")


def test_kept_changes_serve_only_a_model_that_starts_where_its_input_started():
    """core.trajectories (by the same keys) and core.provider_years (by one of them) take core.claim_lines' kept
    changes only when they were last built from the loads and as-of date core.claim_lines was brought up to date
    from, to those core.claim_lines reflects now."""
    from datetime import date

    from pipelines.incremental import (KEPT_CHANGES_DDL, MODEL_BUILDS_DDL, Build, _kept_changes_for, _kept_tables,
                                       drop_kept_changes)
    from pipelines.sql_models import models

    con = duckdb.connect()
    con.execute("CREATE SCHEMA quality")
    con.execute(MODEL_BUILDS_DDL)
    con.execute(KEPT_CHANGES_DDL)
    before, now = date(2025, 3, 31), date(2025, 4, 30)
    con.execute("INSERT INTO quality.model_builds VALUES ('core.claim_lines', 'f', [1, 2, 3], ?, now(), 'added new "
                "loads', 1, 10)", [now])
    con.execute("INSERT INTO quality.kept_changes VALUES ('core.claim_lines', 'f', [1, 2], ?, [1, 2, 3], ?)",
                [before, now])
    for kept in _kept_tables("core.claim_lines"):
        con.execute(f"CREATE TABLE {kept} AS SELECT 1 AS x")
    trajectories = next(m for m in models("core") if m.name == "trajectories")
    provider_years = next(m for m in models("core") if m.name == "provider_years")
    up_to_date = Build("t", [1, 2, 3], now)
    assert _kept_changes_for(con, trajectories, Build("t", [1, 2], before), up_to_date) == \
        _kept_tables("core.claim_lines")
    assert _kept_changes_for(con, trajectories, Build("t", [1], before), up_to_date) is None  # a run behind
    assert _kept_changes_for(con, trajectories, Build("t", [1, 2], date(2025, 2, 28)), up_to_date) is None
    # by fewer keys (the provider alone) too: its changed keys are the providers of the kept ones
    assert _kept_changes_for(con, provider_years, Build("p", [1, 2], before), Build("p", [1, 2, 3], now)) == \
        _kept_tables("core.claim_lines")
    con.execute("UPDATE quality.model_builds SET fingerprint = 'g'")  # core.claim_lines built again since
    assert _kept_changes_for(con, trajectories, Build("t", [1, 2], before), up_to_date) is None
    drop_kept_changes(con)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'kept_changes%'").fetchone() == (0,)


@pytest.mark.slow
def test_a_run_starts_importing_great_expectations_when_the_files_load_not_during_the_run_set_up(tmp_path, monkeypatch):
    # Beside Dagster's run set-up (Python, like the import) the import made the set-up ~2 s slower; beside the
    # loading step (DuckDB, outside Python's global lock) it costs the run nothing.
    from pipelines.quality import preload
    from pipelines.run import run_pipeline

    started_at = []
    monkeypatch.setattr(preload, "_started", None)  # as in a new process
    monkeypatch.setattr(preload, "_import", lambda: started_at.append(time.time()))
    monkeypatch.setenv("PRAKTIJKVARIATIE_DASHBOARD_PREVIEWS", "0")
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_pipeline(write_landing(tmp_path / "landing", FIRST), tmp_path / "data", instance=instance,
                           progress=lambda _message: None)
    assert outcome.success
    steps = {}
    for record in instance.get_records_for_run(instance.get_runs(limit=1)[0].run_id).records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.event_type_value in ("STEP_START", "STEP_SUCCESS"):
            steps[(event.step_key, event.event_type_value)] = record.event_log_entry.timestamp
    assert len(started_at) == 1
    assert steps[("raw_extracts", "STEP_START")] <= started_at[0] <= steps[("raw_extracts", "STEP_SUCCESS")]


def writer_in_another_thread(warehouse, events: list, label: str, sql: str):
    """A thread that, once the returned event is set, opens the working copy, records ``label`` and runs ``sql``."""
    import threading

    go = threading.Event()

    def write():
        go.wait()
        with warehouse.connect() as con:
            events.append(label)
            con.execute(sql)

    return threading.Thread(target=write), go


def test_a_second_writer_waits_until_the_first_has_closed_the_working_copy(tmp_path):
    # The writer lock is what keeps two runs' steps from writing at once (runs of the main job are also queued one
    # at a time): a step of another run waits in Warehouse.connect until the first closes its connection.
    from pipelines.warehouse import Warehouse

    warehouse = Warehouse(tmp_path / "data")
    events = []
    other, first_open = writer_in_another_thread(warehouse, events, "second opened", "INSERT INTO t VALUES (2)")
    other.start()
    with warehouse.connect() as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        first_open.set()
        time.sleep(1.5)  # the second writer polls the lock every 0.5 s meanwhile
        events.append("first closing")
        con.execute("INSERT INTO t VALUES (1)")
    other.join(timeout=30)
    assert events == ["first closing", "second opened"]
    with warehouse.connect() as con:
        assert con.execute("SELECT list(x ORDER BY x) FROM t").fetchone()[0] == [1, 2]


def test_a_run_holds_the_working_copy_open_and_other_writers_wait_until_it_is_done(tmp_path, monkeypatch):
    # Inside held_open the file is opened once, at the first connect, and each connect of that thread is a cursor
    # of it; a writer in another thread waits for the writer lock until the block ends.
    import pipelines.warehouse as warehouse_module
    from pipelines.warehouse import Warehouse

    warehouse = Warehouse(tmp_path / "data")
    opened = []
    real_open = warehouse_module._open_in_storage_version
    monkeypatch.setattr(warehouse_module, "_open_in_storage_version",
                        lambda path: opened.append(path) or real_open(path))
    events = []
    other, held = writer_in_another_thread(warehouse, events, "other opened", "INSERT INTO marts.t VALUES (3)")
    with warehouse.held_open():
        with warehouse.connect() as con:
            con.execute("CREATE TABLE marts.t AS SELECT 1 AS v")
            con.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS v")  # belongs to this step's cursor
        other.start()
        held.set()
        with warehouse.connect() as con:
            con.execute("INSERT INTO marts.t VALUES (2)")
            assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'scratch'").fetchone() == (0,)
        time.sleep(1.0)  # the other writer polls the lock every 0.5 s meanwhile
        assert len(opened) == 1
        events.append("run done")
    other.join(timeout=30)
    assert events == ["run done", "other opened"]
    assert len(opened) == 2  # the run's one open, and the other writer's own
    with warehouse.connect() as con:
        assert con.execute("SELECT list(v ORDER BY v) FROM marts.t").fetchone()[0] == [1, 2, 3]


def test_publishing_inside_a_run_that_holds_the_working_copy_renames_it(tmp_path):
    from pipelines.warehouse import Warehouse

    warehouse = Warehouse(tmp_path)
    with warehouse.held_open():
        with warehouse.connect() as con:
            con.execute("CREATE TABLE marts.t AS SELECT 1 AS v")
        built = warehouse.build_path.stat().st_ino
        warehouse.publish()  # closes the held file first: a rename, not the copy a file left open would need
        assert warehouse.published_path.stat().st_ino == built
        warehouse.wait_for_working_copy()
        with warehouse.connect() as con:  # after publishing, a step opens the next working copy itself
            assert con.execute("SELECT v FROM marts.t").fetchall() == [(1,)]
    published = duckdb.connect(str(warehouse.published_path), read_only=True)
    assert published.execute("SELECT v FROM marts.t").fetchall() == [(1,)]
    published.close()


def test_the_steps_of_a_run_share_one_open_working_copy(tmp_path, monkeypatch):
    # The pipeline's resource holds the working copy for the run: its many steps open the file once before
    # publishing (and once after it, for the next working copy's first writer, here none).
    import pipelines.warehouse as warehouse_module

    opened = []
    real_open = warehouse_module._open_in_storage_version
    monkeypatch.setattr(warehouse_module, "_open_in_storage_version",
                        lambda path: opened.append(path) or real_open(path))
    landing = write_landing(tmp_path / "landing", FIRST, [contract(P1, omzetmaximum="1000")])
    result = materialize(landing, tmp_path / "data")
    assert result.success
    steps = [e for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    assert len(steps) > 30
    assert [p.name for p in opened] == ["warehouse.duckdb"]
    assert not warehouse_module._HELD  # released at the end of the run


def test_a_transaction_commits_its_block_and_rolls_back_a_block_that_raises():
    from pipelines.warehouse import transaction

    con = duckdb.connect()
    with transaction(con):
        con.execute("CREATE TABLE kept AS SELECT 1 AS x")
    with pytest.raises(ValueError, match="half-way"):
        with transaction(con):
            con.execute("CREATE TABLE dropped AS SELECT 1 AS x")
            raise ValueError("stopped half-way")
    tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"kept"}
    con.execute("BEGIN TRANSACTION")  # no transaction was left open
    con.execute("ROLLBACK")


def test_a_commit_that_fails_raises_its_own_error_not_that_of_the_rollback_after_it():
    # Two writers of one row: the second COMMIT fails, which ends its transaction; rolling back then would raise
    # "no transaction is active" instead of the conflict.
    from pipelines.warehouse import transaction

    con = duckdb.connect()
    con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    other = con.cursor()
    with pytest.raises(duckdb.TransactionException, match="(?i)constraint|conflict") as raised:
        with transaction(other):
            other.execute("INSERT INTO t VALUES (1)")
            with transaction(con):
                con.execute("INSERT INTO t VALUES (1)")
    assert "no transaction is active" not in str(raised.value)
    assert con.execute("SELECT count(*) FROM t").fetchone() == (1,)
