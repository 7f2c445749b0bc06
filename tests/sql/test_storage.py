"""``-- store uncompressed: <columns>``: those columns are stored without compression, the table is otherwise what
``CREATE TABLE ... AS`` makes of the same SELECT, and a failed build leaves the previous table."""

import duckdb
import pytest

from pipelines.sql_models import SqlModel, materialise

LINES = """-- core.lines: toy model with a unique key and a repeating code
-- store uncompressed: line_id
SELECT 'L' || lpad(CAST(i AS VARCHAR), 11, '0') AS line_id, CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END AS code,
       CAST(i AS DECIMAL(18, 2)) AS amount, DATE '2026-01-01' + CAST(i % 300 AS INTEGER) AS service_date
FROM range((SELECT n FROM core.line_count)) AS t(i)
"""

ADDED = """-- core.added: toy incremental model
-- materialise: incremental by load_id
-- store uncompressed: line_id
SELECT load_id, 'L' || CAST(load_id AS VARCHAR) || '-' || CAST(i AS VARCHAR) AS line_id
FROM raw.loads, range(rows) AS t(i)
"""


def model(tmp_path, name, sql):
    path = tmp_path / "core" / f"{name}.sql"
    path.parent.mkdir(exist_ok=True)
    path.write_text(sql)
    return SqlModel("core", name, path)


def compression(con, table, column):
    """The compression of the column's data segments after a checkpoint."""
    con.execute("CHECKPOINT")
    return {c for (c,) in con.execute(
        f"SELECT DISTINCT compression FROM pragma_storage_info('{table}') "
        "WHERE column_name = ? AND segment_type NOT IN ('VALIDITY')", [column]).fetchall()}


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    for schema in ("raw", "core", "quality"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute("CREATE TABLE core.line_count AS SELECT 50000 AS n")
    yield con
    con.close()


def test_named_columns_are_stored_uncompressed_and_the_table_is_as_created_from_the_select(con, tmp_path):
    lines = model(tmp_path, "lines", LINES)
    assert materialise(con, lines) == 50000
    assert compression(con, "core.lines", "line_id") == {"Uncompressed"}
    assert "Uncompressed" not in compression(con, "core.lines", "code")
    con.execute(f"CREATE TABLE core.as_selected AS {lines.sql}")
    assert con.execute("DESCRIBE core.lines").fetchall() == con.execute("DESCRIBE core.as_selected").fetchall()
    assert con.execute("SELECT * FROM core.lines EXCEPT ALL SELECT * FROM core.as_selected").fetchall() == []
    assert con.execute("SELECT * FROM core.as_selected EXCEPT ALL SELECT * FROM core.lines").fetchall() == []


def test_a_failed_build_leaves_the_previous_table(con, tmp_path):
    lines = model(tmp_path, "lines", LINES)
    materialise(con, lines)
    # fails on its last row, after the table was declared again
    lines.path.write_text(LINES.replace(
        "AS service_date", "AS service_date, CAST(CASE WHEN i = 49999 THEN error('no lines') END AS INTEGER) AS failure"))
    with pytest.raises(duckdb.Error, match="no lines"):
        materialise(con, lines)
    assert con.execute("SELECT count(*) FROM core.lines").fetchone() == (50000,)


def test_rows_added_to_an_incremental_model_are_stored_uncompressed_too(con, tmp_path):
    added = model(tmp_path, "added", ADDED)
    con.execute("CREATE TABLE raw.load_manifest (load_id INTEGER, kind VARCHAR, status VARCHAR, rows_loaded BIGINT)")
    con.execute("CREATE TABLE raw.loads (load_id INTEGER, rows INTEGER)")
    for load_id in (1, 2):
        con.execute("INSERT INTO raw.load_manifest VALUES (?, 'claims', 'loaded', 40000)", [load_id])
        con.execute("INSERT INTO raw.loads VALUES (?, 40000)", [load_id])
        materialise(con, added)
    how, = con.execute("SELECT how FROM quality.model_builds WHERE model = 'core.added'").fetchone()
    assert how == "added new loads"
    assert con.execute("SELECT count(*) FROM core.added").fetchone() == (80000,)
    assert compression(con, "core.added", "line_id") == {"Uncompressed"}
