"""``-- materialise: incremental by load_id``: new loads are added, anything else that changed rebuilds."""

import contextlib

import duckdb
import pytest

from pipelines.sql_models import SqlModel, materialise

TYPED = """-- staging.claims_typed: toy row-local model
-- materialise: incremental by load_id
SELECT r.load_id, r.source_row, upper(r.code) AS code, c.label,
       CASE WHEN r.code = 'boom' THEN error('a value this model cannot take') END AS failure
FROM raw.claims AS r
LEFT JOIN reference.codes AS c ON c.code = upper(r.code)
"""


@pytest.fixture
def con(tmp_path):
    sql = tmp_path / "staging" / "claims_typed.sql"
    sql.parent.mkdir()
    sql.write_text(TYPED)
    con = duckdb.connect()
    create_inputs(con)
    yield con
    con.close()


def create_inputs(con):
    for schema in ("raw", "reference", "staging", "quality"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute("CREATE TABLE raw.load_manifest (load_id INTEGER, kind VARCHAR, status VARCHAR, rows_loaded BIGINT)")
    con.execute("CREATE TABLE raw.claims (load_id INTEGER, source_row BIGINT, code VARCHAR)")
    con.execute("CREATE TABLE reference.codes AS SELECT 'A' AS code, 'first' AS label")


@pytest.fixture
def model(tmp_path):
    return SqlModel("staging", "claims_typed", tmp_path / "staging" / "claims_typed.sql")


def load(con, load_id, codes, status="loaded"):
    con.execute("INSERT INTO raw.load_manifest VALUES (?, 'claims', ?, ?)", [load_id, status, len(codes)])
    for row, code in enumerate(codes, start=2):
        con.execute("INSERT INTO raw.claims VALUES (?, ?, ?)", [load_id, row, code])


def build(con, model):
    rows = materialise(con, model)
    how, loads, added = con.execute(
        "SELECT how, loads_added, rows_added FROM quality.model_builds WHERE model = 'staging.claims_typed'").fetchone()
    return rows, how, loads, added


def table(con):
    return con.execute("SELECT load_id, source_row, code, label FROM staging.claims_typed ORDER BY ALL").fetchall()


def test_new_loads_are_added_and_a_rerun_adds_nothing(con, model):
    load(con, 1, ["a", "b"])
    assert build(con, model) == (2, "rebuilt", 1, 2)
    load(con, 2, ["a"])
    assert build(con, model) == (3, "added new loads", 1, 1)
    assert build(con, model) == (3, "added new loads", 0, 0)
    assert table(con) == [(1, 2, "A", "first"), (1, 3, "B", None), (2, 2, "A", "first")]


def test_a_changed_reference_table_retypes_every_load(con, model):
    load(con, 1, ["a", "b"])
    build(con, model)
    con.execute("INSERT INTO reference.codes VALUES ('B', 'second')")
    load(con, 2, ["b"])
    assert build(con, model) == (3, "rebuilt", 2, 3)
    assert table(con) == [(1, 2, "A", "first"), (1, 3, "B", "second"), (2, 2, "B", "second")]


def test_a_changed_sql_file_rebuilds(con, model):
    load(con, 1, ["a"])
    build(con, model)
    model.path.write_text(TYPED.replace("upper(r.code)", "lower(r.code)"))
    assert build(con, model) == (1, "rebuilt", 1, 1)
    assert table(con) == [(1, 2, "a", None)]


def test_a_load_no_longer_in_raw_rebuilds_and_quarantined_files_add_nothing(con, model):
    load(con, 1, ["a"])
    load(con, 2, ["b"])
    build(con, model)
    con.execute("DELETE FROM raw.claims WHERE load_id = 1")
    con.execute("DELETE FROM raw.load_manifest WHERE load_id = 1")
    load(con, 3, [], status="quarantined")
    con.execute("INSERT INTO raw.load_manifest VALUES (4, 'contracts', 'loaded', 10)")  # another raw table
    assert build(con, model) == (1, "rebuilt", 1, 1)
    assert table(con) == [(2, 2, "B", None)]
    assert build(con, model) == (1, "added new loads", 0, 0)


def test_a_failed_build_leaves_the_table_and_its_record_as_they_were(con, model):
    load(con, 1, ["a"])
    build(con, model)
    load(con, 2, ["a", "boom"])
    with pytest.raises(duckdb.Error, match="cannot take"):
        materialise(con, model)
    assert table(con) == [(1, 2, "A", "first")]
    assert con.execute("SELECT how, loads_added FROM quality.model_builds").fetchone() == ("rebuilt", 1)
    con.execute("DELETE FROM raw.claims WHERE code = 'boom'")  # the load is repaired: the next build adds it
    assert build(con, model) == (2, "added new loads", 1, 1)


LATEST = """-- staging.latest: toy per-claim model (the latest delivery of each claim_id, and how many there were)
-- materialise: incremental by claim_id of staging.claims_typed
SELECT claim_id, arg_max(code, load_id) AS code, count(*) AS deliveries, max(load_id) AS load_id
FROM staging.claims_typed
GROUP BY claim_id
"""


@pytest.fixture
def per_claim(con, model, tmp_path):
    model.path.write_text(TYPED.replace("r.source_row,", "r.source_row, r.claim_id,"))
    con.execute("ALTER TABLE raw.claims ADD COLUMN claim_id VARCHAR")
    sql = tmp_path / "staging" / "latest.sql"
    sql.write_text(LATEST)
    (tmp_path / "changes").mkdir()
    (tmp_path / "changes" / "staging.latest.sql").write_text("SELECT claim_id FROM changed_claims")
    (tmp_path / "changes" / "linked_claims.sql").write_text("SELECT claim_id FROM changed_claims")
    return SqlModel("staging", "latest", sql)


def load_claims(con, load_id, claims):
    con.execute("INSERT INTO raw.load_manifest VALUES (?, 'claims', 'loaded', ?)", [load_id, len(claims)])
    for row, (claim_id, code) in enumerate(claims, start=2):
        con.execute("INSERT INTO raw.claims VALUES (?, ?, ?, ?)", [load_id, row, code, claim_id])


def latest(con):
    return con.execute("SELECT claim_id, code, deliveries, load_id FROM staging.latest ORDER BY ALL").fetchall()


def test_claim_ids_in_new_loads_are_recomputed_from_all_their_deliveries(con, model, per_claim):
    load_claims(con, 1, [("c1", "a"), ("c2", "a")])
    materialise(con, model)
    materialise(con, per_claim)
    load_claims(con, 2, [("c2", "b"), ("c3", "b")])
    materialise(con, model)
    assert materialise(con, per_claim) == 3
    assert con.execute("SELECT how, loads_added, rows_added FROM quality.model_builds "
                       "WHERE model = 'staging.latest'").fetchone() == ("added new loads", 1, 2)
    assert latest(con) == [("c1", "A", 1, 1), ("c2", "B", 2, 2), ("c3", "B", 1, 2)]
    con.execute("CREATE TABLE full_build AS " + LATEST)
    assert con.execute("SELECT * FROM full_build EXCEPT SELECT * FROM staging.latest").fetchall() == []


def test_a_rebuilt_input_rebuilds_the_per_claim_model(con, model, per_claim):
    load_claims(con, 1, [("c1", "a")])
    materialise(con, model)
    materialise(con, per_claim)
    con.execute("UPDATE reference.codes SET label = 'changed'")
    materialise(con, model)  # rebuilt: new fingerprint
    materialise(con, per_claim)
    assert con.execute("SELECT how FROM quality.model_builds WHERE model = 'staging.latest'").fetchone() == ("rebuilt",)


def test_a_full_rebuild_is_done_on_request(con, model):
    load(con, 1, ["a"])
    build(con, model)
    load(con, 2, ["b"])
    materialise(con, model, full_rebuild=True)
    assert con.execute("SELECT how, loads_added, rows_added FROM quality.model_builds").fetchone() == ("rebuilt", 2, 2)
    assert build(con, model) == (2, "added new loads", 0, 0)


def test_a_per_claim_model_built_before_its_input_takes_in_a_new_load_catches_up_later(con, model, per_claim):
    load_claims(con, 1, [("c1", "a")])
    materialise(con, model)
    materialise(con, per_claim)
    load_claims(con, 2, [("c1", "b")])
    materialise(con, per_claim)  # e.g. one asset materialised from the UI: staging.claims_typed has not typed load 2
    assert con.execute("SELECT loads FROM quality.model_builds WHERE model = 'staging.latest'").fetchone() == ([1],)
    materialise(con, model)
    materialise(con, per_claim)
    assert latest(con) == [("c1", "B", 2, 2)]


def test_a_model_built_by_the_same_keys_from_an_incremental_model_takes_that_models_changes(con, model, per_claim,
                                                                                          tmp_path):
    sql = tmp_path / "staging" / "codes.sql"  # no sql/changes file of its own
    sql.write_text("-- materialise: incremental by claim_id of staging.latest\n"
                   "SELECT claim_id, lower(code) AS code, deliveries > 1 AS redelivered FROM staging.latest\n")
    codes = SqlModel("staging", "codes", sql)
    load_claims(con, 1, [("c1", "a"), ("c2", "a")])
    for m in (model, per_claim, codes):
        materialise(con, m)
    load_claims(con, 2, [("c2", "b"), ("c3", "b")])
    for m in (model, per_claim):
        materialise(con, m)
    assert materialise(con, codes) == 3
    assert con.execute("SELECT how, loads_added, rows_added FROM quality.model_builds "
                       "WHERE model = 'staging.codes'").fetchone() == ("added new loads", 1, 2)
    assert con.execute("SELECT * FROM staging.codes ORDER BY ALL").fetchall() == [
        ("c1", "a", False), ("c2", "b", True), ("c3", "b", False)]


def test_a_model_that_takes_its_inputs_changes_may_not_read_the_as_of_date(con, model, per_claim, tmp_path):
    # Its rows of keys whose input did not change could still change with a moved as-of date, which its input's
    # changes do not cover: it needs a changes file of its own.
    sql = tmp_path / "staging" / "recent.sql"
    sql.write_text("-- materialise: incremental by claim_id of staging.latest\n"
                   "SELECT l.claim_id, p.as_of FROM staging.latest AS l CROSS JOIN core.run_parameters AS p\n")
    con.execute("CREATE SCHEMA core")
    con.execute("CREATE TABLE core.run_parameters AS SELECT DATE '2025-03-31' AS as_of")
    load_claims(con, 1, [("c1", "a")])
    for m in (model, per_claim):
        materialise(con, m)
    with pytest.raises(ValueError, match="reads core.run_parameters: a moved as-of date"):
        materialise(con, SqlModel("staging", "recent", sql))
    (tmp_path / "changes" / "staging.recent.sql").write_text("SELECT claim_id FROM changed_claims")
    assert materialise(con, SqlModel("staging", "recent", sql)) == 1


TEMP_OBJECTS = "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'temp' ORDER BY ALL"


def test_a_per_claim_build_narrows_its_input_before_writing_and_drops_it_also_when_writing_fails(con, model,
                                                                                                 per_claim,
                                                                                                 monkeypatch):
    import pipelines.incremental as incremental

    load_claims(con, 1, [("c1", "a"), ("c2", "a")])
    materialise(con, model)
    materialise(con, per_claim)
    load_claims(con, 2, [("c1", "b")])
    materialise(con, model)
    seen = []

    def stop_writing(con, *args):
        seen.append(con.execute(TEMP_OBJECTS).fetchall())
        raise duckdb.ConversionException("stopped half-way")

    monkeypatch.setattr(incremental, "_bring_up_to_date", stop_writing)
    with pytest.raises(duckdb.Error, match="stopped half-way"):
        materialise(con, per_claim)
    assert seen == [[("changed_input",), ("changed_keys",)]]  # made before the transaction that writes
    assert con.execute(TEMP_OBJECTS).fetchall() == []
    assert latest(con) == [("c1", "A", 1, 1), ("c2", "A", 1, 1)]
    monkeypatch.undo()
    assert materialise(con, per_claim) == 2
    assert con.execute(TEMP_OBJECTS).fetchall() == []
    assert latest(con) == [("c1", "B", 2, 2), ("c2", "A", 1, 1)]


# ~6.9 MB of text for every build: more than a 4MB limit holds (an aggregate DuckDB cannot spill), far less than 1GB
NEEDS_MEMORY = """-- staging.claims_typed: toy row-local model that needs some memory to compute
-- materialise: incremental by load_id
SELECT r.load_id, r.source_row, upper(r.code) AS code,
       (SELECT length(string_agg(CAST(x AS VARCHAR), ',')) FROM range(1000000) AS n(x)) AS text_length
FROM raw.claims AS r
"""


def memory_limit(con):
    return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


@contextlib.contextmanager
def built_from_two_loads(tmp_path, monkeypatch, sql, incremental_memory_limit):
    """A model in a working copy opened as a run opens it (memory limit 1GB), rebuilt from a first load and brought up
    to date with a second. Yields the connection, what the second build returned and the memory limit in force each
    time a build wrote new rows."""
    import pipelines.incremental as incremental
    from pipelines.warehouse import Warehouse

    path = tmp_path / "sql" / "staging" / "claims_typed.sql"
    path.parent.mkdir(parents=True)
    path.write_text(sql)
    model = SqlModel("staging", "claims_typed", path)
    seen, write = [], incremental._bring_up_to_date

    def spy(con, *args):
        seen.append(memory_limit(con))
        return write(con, *args)

    monkeypatch.setattr(incremental, "_bring_up_to_date", spy)
    warehouse = Warehouse(tmp_path / "data", memory_limit="1GB", threads=1,
                          incremental_memory_limit=incremental_memory_limit)
    with warehouse.connect() as con:
        create_inputs(con)
        load(con, 1, ["a", "b"])
        assert build(con, model) == (2, "rebuilt", 1, 2)
        assert memory_limit(con) == "953.6 MiB"  # 1GB
        load(con, 2, ["c"])
        yield con, build(con, model), seen


def test_a_build_that_adds_new_loads_runs_under_the_incremental_memory_limit_and_a_rebuild_under_the_runs_own(
        tmp_path, monkeypatch):
    with built_from_two_loads(tmp_path, monkeypatch, TYPED, incremental_memory_limit="64MB") as (con, added, seen):
        assert added == (3, "added new loads", 1, 1)
        assert seen == ["61.0 MiB"]  # 64MB
        assert memory_limit(con) == "953.6 MiB"
        assert table(con) == [(1, 2, "A", "first"), (1, 3, "B", None), (2, 2, "C", None)]


def test_a_build_that_needs_more_than_the_incremental_memory_limit_is_done_again_under_the_runs_own(
        tmp_path, monkeypatch):
    with built_from_two_loads(tmp_path, monkeypatch, NEEDS_MEMORY, incremental_memory_limit="4MB") as (
            con, added, seen):
        assert added == (3, "added new loads", 1, 1)
        assert seen == ["3.8 MiB", "953.6 MiB"]  # out of memory at 4MB, then done under the run's 1GB
        assert memory_limit(con) == "953.6 MiB"
        assert con.execute("SELECT load_id, source_row, code, text_length FROM staging.claims_typed ORDER BY ALL"
                           ).fetchall() == [(1, 2, "A", 6888889), (1, 3, "B", 6888889), (2, 2, "C", 6888889)]
        # the failed attempt wrote nothing: one build record, no row twice
        assert con.execute("SELECT count(*) FROM quality.model_builds").fetchone() == (1,)


def test_memory_sizes_are_read_as_duckdb_reads_them_and_a_mistyped_incremental_limit_fails_at_once(tmp_path):
    from pipelines.warehouse import Warehouse, memory_bytes

    assert memory_bytes("512MB") == 512_000_000
    assert memory_bytes("2 gb") == 2_000_000_000
    assert memory_bytes("1.5GiB") == 1_610_612_736
    assert memory_bytes("2G") == 2_000_000_000
    assert memory_bytes("4096 bytes") == 4096
    for mistyped in ("half", "4096", "80%", "2 mi"):  # DuckDB refuses these too
        with pytest.raises(ValueError, match="not a memory size"):
            Warehouse(tmp_path, incremental_memory_limit=mistyped)
