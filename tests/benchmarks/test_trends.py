"""marts.benchmark_trends: the value at a month end is what a run with that month end as as-of date publishes."""

import datetime as dt

import pytest

from pipelines.benchmarks.trends import month_ends
from tests.benchmarks import test_diagnostics_only_share as diagnostics
from tests.benchmarks import test_turnover_cap as turnover
from tests.builders import BEH_60, DIAG_60, claim, rows

# the diagnostics extract moved to providers of its own, so the turnover of 00000001 is the turnover extract's
CLAIMS = [*turnover.CLAIMS, *[{**c, "claim_id": "d-" + c["claim_id"], "provider_agb": "9" + c["provider_agb"][1:],
                               "related_claim_id": c["related_claim_id"] and "d-" + c["related_claim_id"]}
                              for c in diagnostics.CLAIMS]]
CONTRACTS = turnover.CONTRACTS
COLUMNS = "benchmark, provider_agb, year, numerator, denominator, value, threshold, meets_norm, volume"


def turnover_of_00000001(trend) -> dict:
    """The turnover-cap utilisation of provider 00000001 at each month end of the trend."""
    return {r["period_end"]: r["value"] for r in rows(
        trend, "SELECT period_end, value FROM marts.benchmark_trends "
               "WHERE benchmark = 'turnover_cap' AND provider_agb = '00000001' ORDER BY period_end")}


def test_month_ends_count_back_from_the_as_of_date():
    assert month_ends(dt.date(2025, 3, 10), 3) == [dt.date(2025, 1, 31), dt.date(2025, 2, 28), dt.date(2025, 3, 10)]


def test_a_month_end_of_the_trend_equals_a_run_as_of_that_date(warehouse_for):
    trend = warehouse_for(CLAIMS, CONTRACTS, as_of="2025-03-31", trend_months=3)
    as_of_february = warehouse_for(CLAIMS, CONTRACTS, as_of="2025-02-28")
    at_february = rows(trend, f"SELECT {COLUMNS} FROM marts.benchmark_trends WHERE period_end = DATE '2025-02-28'")
    published = rows(as_of_february, f"SELECT {COLUMNS} FROM marts.benchmark_results WHERE year = 2025")
    key = lambda r: (r["benchmark"], r["provider_agb"])  # noqa: E731
    assert sorted(at_february, key=key) == sorted(published, key=key)
    statuses = turnover_of_00000001(trend)
    assert statuses == {dt.date(2025, 1, 31): 0.3, dt.date(2025, 2, 28): 0.6, dt.date(2025, 3, 31): 0.8}


def test_a_line_dated_on_a_month_end_counts_at_that_month_end(warehouse_for):
    # P1's turnover: 300 on 10 January, 100 on the month end 31 January itself, 300 on 10 February
    on_month_end = [*turnover.CLAIMS, claim("a0", "a", "2025-01-31", BEH_60, "100.00")]
    trend = warehouse_for(on_month_end, CONTRACTS, as_of="2025-02-28", trend_months=2)
    statuses = turnover_of_00000001(trend)
    assert statuses == {dt.date(2025, 1, 31): 0.4, dt.date(2025, 2, 28): 0.7}


# TX was treated in 2024 and has only diagnostiek in 2025: with treatment in 2025's casemix because of 2024.
# TY starts in 2024 and comes back only in February 2025: not in January's casemix.
CROSS_YEAR = [*diagnostics.CLAIMS, claim("x1", "x", "2024-11-01", BEH_60, trajectory="TX"),
              claim("x2", "x", "2025-01-20", DIAG_60, trajectory="TX"),
              claim("y1", "y", "2024-10-01", DIAG_60, trajectory="TY"),
              claim("y2", "y", "2025-02-10", DIAG_60, trajectory="TY")]


@pytest.mark.parametrize("month_end", ["2024-12-31", "2025-01-31", "2025-02-28"])
def test_trajectories_that_span_years_count_as_in_a_run_as_of_that_month_end(warehouse_for, month_end):
    # the trend reads only a month end's year plus the earlier lines of trajectories active in it (TX, T6, g)
    trend = warehouse_for(CROSS_YEAR, diagnostics.CONTRACTS, as_of="2025-03-15", trend_months=4)
    as_of_then = warehouse_for(CROSS_YEAR, diagnostics.CONTRACTS, as_of=month_end)
    year = int(month_end[:4])
    at_month_end = rows(trend, f"SELECT {COLUMNS} FROM marts.benchmark_trends WHERE period_end = DATE '{month_end}'")
    published = rows(as_of_then, f"SELECT {COLUMNS} FROM marts.benchmark_results WHERE year = {year}")
    key = lambda r: (r["benchmark"], r["provider_agb"])  # noqa: E731
    assert at_month_end and sorted(at_month_end, key=key) == sorted(published, key=key)


def test_only_models_whose_rows_span_years_read_the_earlier_lines_in_a_month_end(warehouse_for):
    from pipelines.benchmarks.registry import benchmarks
    from pipelines.benchmarks.trends import spanning_years
    from pipelines.sql_models import models

    built = warehouse_for(CLAIMS, CONTRACTS, as_of="2025-03-31", trend_months=3)
    assert spanning_years(built, [*models("core"), *(b.model for b in benchmarks())]) == {"core.trajectories"}


def test_the_month_ends_are_the_same_whether_keys_are_hashed_or_numbered(warehouse_for, tmp_path, monkeypatch):
    # The scratch copy replaces the text keys by their hash when that is one-to-one (the usual case), else by a
    # number per key. A hash that maps every key to 0 or 1 forces the numbered copy; both give the published rows.
    from pipelines.benchmarks import trend_copy
    from tests.builders import build

    hashed = warehouse_for(CROSS_YEAR, diagnostics.CONTRACTS, as_of="2025-03-15", trend_months=4)
    copies = []
    numbered_copy = trend_copy._copy_year_lines_numbered
    monkeypatch.setattr(trend_copy, "_copy_year_lines_numbered",
                        lambda *args: copies.append(args) or numbered_copy(*args))
    monkeypatch.setattr(trend_copy, "KEY_HASH", "(hash({}) % 2)")
    numbered = build(tmp_path, CROSS_YEAR, list(diagnostics.CONTRACTS), as_of="2025-03-15", trend_months=4)
    assert [args[3] for args in copies] == [2024, 2025]  # the years of the three earlier month ends
    trend = f"SELECT period_end, {COLUMNS} FROM marts.benchmark_trends"
    key = lambda r: (r["period_end"], r["benchmark"], r["provider_agb"])  # noqa: E731
    assert sorted(rows(numbered, trend), key=key) == sorted(rows(hashed, trend), key=key)
    numbered.close()


def test_the_scratch_copy_hashes_keys_one_to_one_and_keeps_missing_keys_missing(tmp_path, monkeypatch):
    import duckdb

    from pipelines.benchmarks import trend_copy
    from pipelines.benchmarks.scratch import scratch_databases

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA core")
    # 1,000 lines of 2025, every third without a trajectory (a credit, say)
    con.execute("CREATE TABLE core.claim_lines AS SELECT 'client ' || (i % 400) AS client_key, "
                "CASE WHEN i % 3 > 0 THEN 'trajectory ' || (i % 600) END AS trajectory_key, "
                "DATE '2025-01-01' + CAST(i % 300 AS INTEGER) AS service_date, 2025 AS year, "
                "i % 3 > 0 AS counts_as_activity FROM range(1000) AS t(i)")
    assert trend_copy.keys_hash_one_to_one(con, "w")
    with scratch_databases(con) as warehouse:
        for hashed in (True, False):
            trend_copy.copy_year_lines(con, warehouse, ["client_key", "trajectory_key"], 2025, dt.date(2025, 12, 31),
                                   hashed_keys=hashed)
            copied = con.execute("SELECT count(*), count(trajectory_key), count(DISTINCT client_key), "
                                 "count(DISTINCT trajectory_key) FROM scratch_core.trend_lines").fetchone()
            assert copied == (1000, 666, 400, 400), hashed  # trajectory i % 600 with i % 3 > 0: 400 distinct
    monkeypatch.setattr(trend_copy, "KEY_HASH", "(hash({}) % 399)")
    assert not trend_copy.keys_hash_one_to_one(con, "w")


def _claim_lines_with_one_big_and_one_small_scope(tmp_path, monkeypatch, many: str, one: str):
    """A warehouse whose lines of the scope ``many`` (SQL for i < 1000) have 400 clients and trajectories and those of
    ``one`` (i = 1000) one of each, and a key hash that is one-to-one over one key but not over 400."""
    import duckdb

    from pipelines.benchmarks import trend_copy

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA core")
    con.execute(f"CREATE TABLE core.claim_lines AS SELECT CASE WHEN i < 1000 THEN {many} ELSE {one} END AS scope, "
                "'client ' || (i % 400) AS client_key, 'trajectory ' || (i % 400) AS trajectory_key "
                "FROM range(1001) AS t(i)")
    monkeypatch.setattr(trend_copy, "KEY_HASH", "(hash({}) % 2)")
    return con, trend_copy


def test_the_key_hash_is_checked_over_the_keys_of_the_providers_a_copy_takes(tmp_path, monkeypatch):
    con, trend_copy = _claim_lines_with_one_big_and_one_small_scope(tmp_path, monkeypatch, "'P0'", "'P1'")
    con.execute("ALTER TABLE core.claim_lines RENAME scope TO provider_agb")
    assert not trend_copy.keys_hash_one_to_one(con, "w")
    assert not trend_copy.keys_hash_one_to_one(con, "w", ["P0"])
    assert trend_copy.keys_hash_one_to_one(con, "w", ["P1"])
    checks = trend_copy.KeyHashChecks(con, "w")
    assert [checks(["P1"]), checks(), checks(["P1"]), checks(["P0", "P1"])] == [True, False, True, False]
    monkeypatch.setattr(trend_copy, "KEY_HASH", "hash({})")
    checks = trend_copy.KeyHashChecks(con, "w")
    assert checks() and checks(["P0"]) and list(checks.checked) == [(None, None)]  # every provider's covers P0's


def test_the_key_hash_is_checked_over_the_keys_of_the_year_a_copy_takes(tmp_path, monkeypatch):
    con, trend_copy = _claim_lines_with_one_big_and_one_small_scope(tmp_path, monkeypatch, "2025", "2026")
    con.execute("ALTER TABLE core.claim_lines RENAME scope TO year")
    con.execute("ALTER TABLE core.claim_lines ADD COLUMN provider_agb VARCHAR DEFAULT 'P0'")
    assert not trend_copy.keys_hash_one_to_one(con, "w")
    assert not trend_copy.keys_hash_one_to_one(con, "w", year=2025)
    assert trend_copy.keys_hash_one_to_one(con, "w", year=2026)
    assert trend_copy.keys_hash_one_to_one(con, "w", ["P0"], 2026)
    checks = trend_copy.KeyHashChecks(con, "w")
    assert [checks(year=2026), checks(["P0"], 2026), checks(), checks(["P0"], 2025)] == [True, True, False, False]
    assert list(checks.checked) == [(None, 2026), (None, None), (("P0",), 2025)]  # (P0, 2026): covered by 2026's


def test_repeating_text_is_copied_as_an_enum_that_compares_and_sorts_as_the_text(tmp_path):
    import duckdb

    from pipelines.benchmarks import trend_copy
    from pipelines.benchmarks.scratch import scratch_databases

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA core")
    # two million lines (the sample judging repetition takes 1% of vectors of 2,048 rows): a code whose text order
    # ('B10' < 'B9' < 'a' < 'b') is no other order, a claim_id of its own per line, a column without values
    con.execute("CREATE TABLE core.claim_lines AS SELECT 'c' || i AS claim_id, "
                "['b', 'B9', 'a', 'B10'][i % 4 + 1] AS code, CAST(NULL AS VARCHAR) AS empty, "
                "'client ' || (i % 400) AS client_key, 'trajectory ' || (i % 600) AS trajectory_key, "
                "DATE '2025-01-01' + CAST(i % 300 AS INTEGER) AS service_date, 2025 AS year, "
                "TRUE AS counts_as_activity FROM range(2000000) AS t(i)")
    columns = ["claim_id", "code", "empty", "client_key", "service_date", "year"]
    questions = ("SELECT list(DISTINCT code ORDER BY code), min(code), max(code), "
                 "arg_max(claim_id, struct_pack(code := code, claim_id := claim_id)), "
                 "count(*) FILTER (WHERE code < 'B5'), count(*) FILTER (WHERE code = 'S01'), "
                 "count(*) FILTER (WHERE code IN ('a', 'zz')), count(empty), max(code || '|') FROM {}")
    as_text = con.execute(questions.format("core.claim_lines")).fetchone()
    assert as_text[:3] == (["B10", "B9", "a", "b"], "B10", "b")
    with scratch_databases(con) as warehouse:
        encoded = trend_copy.encode_repeating_text(con, warehouse, columns)
        assert encoded == {"code": "scratch_core.trend_code", "empty": "scratch_core.trend_empty"}
        for hashed in (True, False):
            trend_copy.copy_year_lines(con, warehouse, columns, 2025, dt.date(2025, 12, 31), hashed, encoded)
            assert con.execute("SELECT typeof(code), typeof(claim_id) FROM scratch_core.trend_lines LIMIT 1"
                               ).fetchone() == ("ENUM('B10', 'B9', 'a', 'b')", "VARCHAR")
            assert con.execute(questions.format("scratch_core.trend_lines")).fetchone() == as_text, hashed


def test_a_benchmark_declared_per_provider_gives_a_provider_its_rows_from_its_own_lines_alone(tmp_path):
    # What a nightly run relies on when it recomputes such a benchmark's trend for the changed providers only
    # (registry.py, per_provider). The cost per client compares providers (peer prices): not declared, and here
    # its rows do change without the other providers' lines, which shows the extract lets the check tell.
    import duckdb

    from pipelines.benchmarks import trends
    from pipelines.benchmarks.registry import benchmarks
    from pipelines.benchmarks.scratch import scratch_databases
    from pipelines.benchmarks.trend_copy import copy_year_lines
    from tests.benchmarks import test_cost_per_client as cost
    from tests.builders import P1, build

    prefixed = [{**c, "claim_id": "c-" + c["claim_id"],
                 "related_claim_id": c["related_claim_id"] and "c-" + c["related_claim_id"]} for c in cost.CLAIMS]
    build(tmp_path, [*CLAIMS, *prefixed], CONTRACTS, as_of="2025-03-31").close()
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"))
    items = benchmarks()
    month_end = trends._MonthEnd.for_benchmarks(con, items)
    columns = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                         "'core' AND table_name = 'claim_lines' ORDER BY ordinal_position").fetchall()]
    end = dt.date(2025, 2, 28)

    def rows_of_p1(providers):
        con.execute(trends.TRENDS_DDL)
        with scratch_databases(con) as warehouse:
            con.execute("CREATE TABLE scratch_core.policy_parameters AS SELECT * FROM core.policy_parameters")
            copy_year_lines(con, warehouse, columns, 2025, end, providers=providers)
            month_end.compute(con, end, items, providers)
        return rows(con, f"SELECT {COLUMNS} FROM marts.benchmark_trends WHERE provider_agb = ? ORDER BY benchmark",
                    [P1])

    from_all_lines, from_own_lines = rows_of_p1(None), rows_of_p1([P1])
    assert {r["benchmark"] for r in from_all_lines} == {b.name for b in items}

    def same(name: str) -> bool:
        return ([r for r in from_all_lines if r["benchmark"] == name]
                == [r for r in from_own_lines if r["benchmark"] == name])

    for b in items:
        assert same(b.name) or not b.per_provider, f"{b.name} compares providers: per_provider is true in its .yml"
    assert not same("cost_per_client")
    con.close()


def test_per_provider_must_be_true_or_false(tmp_path):
    from pipelines.benchmarks.registry import RegistryError, load_benchmarks

    marts = tmp_path / "marts"
    marts.mkdir()
    (marts / "x.sql").write_text("SELECT 1", encoding="utf-8")
    meta = ("title: X\ndefinition: x\nunit: share\ndirection: higher_is_better\nvalue_column: v\n"
            "numerator_column: n\ndenominator_column: d\nnorm: v >= threshold\npolicy_source: p\nparameters: []\n")
    (marts / "x.yml").write_text(meta + "per_provider: yes please\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="x.yml: per_provider must be true or false"):
        load_benchmarks(tmp_path)
    (marts / "x.yml").write_text(meta, encoding="utf-8")
    assert load_benchmarks(tmp_path)[0].per_provider is False
    # a mart built by provider says so in its .yml too, where the test above checks it on an extract
    (marts / "x.sql").write_text("-- materialise: incremental by provider_agb of core.claim_lines\nSELECT 1",
                                 encoding="utf-8")
    with pytest.raises(RegistryError, match="x.yml must say per_provider: true"):
        load_benchmarks(tmp_path)
    (marts / "x.yml").write_text(meta + "per_provider: true\n", encoding="utf-8")
    assert load_benchmarks(tmp_path)[0].per_provider is True
