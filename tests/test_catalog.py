"""The warehouse is a documented public interface (docs/warehouse.md): every published table and column has a
comment, the data dictionary lists every table, and the example queries in docs/warehouse.md run."""

import html
import re
from pathlib import Path

import duckdb
import pytest

from pipelines.catalog import PUBLISHED_SCHEMAS, column_descriptions
from tests.builders import (BEH_45, BEH_60, BEH_60_S8, DIAG_60, GROUP, P1, P2, claim, contract, credit, materialize,
                            write_landing)

WAREHOUSE_DOC = Path(__file__).resolve().parents[1] / "docs" / "warehouse.md"
SCHEMA_LIST = ", ".join(f"'{s}'" for s in PUBLISHED_SCHEMAS)

REVERSED = claim("R1", "c1", "2025-03-01", BEH_60, provider=P1)
CLAIMS = [
    claim("A1", "c1", "2025-01-10", DIAG_60, provider=P1, zvt=2),
    claim("A2", "c1", "2025-02-10", BEH_60, provider=P1, zorglabel="S01"),
    claim("A3", "c2", "2025-02-11", GROUP, provider=P1, zvt=4),
    claim("A4", "c3", "2025-04-01", BEH_45, provider=P1, trajectory=None),
    REVERSED, credit("R1C", REVERSED),
    claim("B1", "c4", "2025-01-15", BEH_60_S8, provider=P2, zvt=1),
    claim("B2", "c5", "2025-05-20", DIAG_60, provider=P2, trajectory="T9"),
    claim("BAD", "c6", "2025-13-01", BEH_60, provider=P2),  # rejected in staging: not a date
]
CONTRACTS = [contract(P1, omzetmaximum="1000.00"), contract(P2, provider_type="instelling")]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("catalog")
    landing = write_landing(tmp / "landing", CLAIMS, CONTRACTS)
    (landing / "claims_without_columns.csv").write_text("claim_id\nX1\n", encoding="utf-8")  # quarantined
    data_dir = tmp / "data"
    materialize(landing, data_dir)
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    yield con, data_dir
    con.close()


def published_tables(con) -> list[str]:
    return [f"{s}.{t}" for s, t in con.execute(
        f"SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ({SCHEMA_LIST}) "
        f"UNION SELECT schema_name, view_name FROM duckdb_views() WHERE schema_name IN ({SCHEMA_LIST}) "
        "AND NOT internal ORDER BY 1, 2").fetchall()]


def example_statements() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", WAREHOUSE_DOC.read_text(encoding="utf-8"), re.S)
    return [s.strip() for block in blocks for s in block.split(";") if s.strip()]


def test_every_schema_is_published(published):
    con, _ = published
    schemas = {t.split(".")[0] for t in published_tables(con)}
    assert schemas == set(PUBLISHED_SCHEMAS)


def test_every_published_column_has_a_description(published):
    con, _ = published
    missing = con.execute(
        f"SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
        f"WHERE schema_name IN ({SCHEMA_LIST}) AND trim(coalesce(comment, '')) = '' ORDER BY 1").fetchall()
    assert not missing, ("columns without a description (add them to sql/columns.yml or the benchmark's "
                         f"sql/marts/<name>.yml): {[m for (m,) in missing]}")


def test_every_published_table_has_a_comment(published):
    con, _ = published
    missing = con.execute(
        f"SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        f"WHERE schema_name IN ({SCHEMA_LIST}) AND trim(coalesce(comment, '')) = '' "
        f"UNION SELECT schema_name || '.' || view_name FROM duckdb_views() "
        f"WHERE schema_name IN ({SCHEMA_LIST}) AND NOT internal AND trim(coalesce(comment, '')) = '' ORDER BY 1"
    ).fetchall()
    assert not missing, f"tables without a comment: {[m for (m,) in missing]}"


def test_described_columns_exist(published):
    """No stale entries: a described column of a published table is a column of that table."""
    con, _ = published
    existing = {f"{s}.{t}.{c}" for s, t, c in con.execute(
        f"SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE schema_name IN ({SCHEMA_LIST})"
    ).fetchall()}
    tables = set(published_tables(con))
    stale = [f"{table}.{column}" for table, spec in column_descriptions().items() if table in tables
             for column in (spec.get("columns") or {}) if f"{table}.{column}" not in existing]
    assert not stale, f"descriptions of columns that do not exist: {stale}"


def test_data_dictionary_lists_every_published_table(published):
    con, data_dir = published
    dictionary = data_dir / "data_dictionary.html"
    assert dictionary.is_file()
    text = dictionary.read_text(encoding="utf-8")
    assert [t for t in published_tables(con) if t not in text] == []
    (comment,) = con.execute("SELECT comment FROM duckdb_columns() WHERE schema_name = 'core' "
                             "AND table_name = 'claim_lines' AND column_name = 'net_amount'").fetchone()
    assert html.escape(comment) in text


def test_example_queries_name_existing_tables(published):
    con, _ = published
    pattern = re.compile(r"\b(" + "|".join(PUBLISHED_SCHEMAS) + r")\.([a-z_][a-z0-9_]*)\b")
    named = {f"{s}.{t}" for statement in example_statements() for s, t in pattern.findall(statement)}
    assert {"marts.provider_scorecard", "core.claim_lines", "marts.benchmark_trends", "core.policy_parameters",
            "quality.run_history", "raw.load_manifest"} <= named
    assert sorted(named - set(published_tables(con))) == []


def test_example_queries_run(published):
    con, _ = published
    for statement in example_statements():
        con.execute(statement).fetchall()
    (quarantined,) = con.execute("SELECT count(*) FROM raw.load_manifest WHERE status = 'quarantined'").fetchone()
    (rejected,) = con.execute("SELECT count(*) FROM staging.rejected_rows").fetchone()
    assert quarantined == 1 and rejected == 1


def test_comments_are_written_only_where_they_differ(published, tmp_path):
    """A run comments only what differs from the catalogue: a table brought up to date keeps its comments, one
    rebuilt (or commented otherwise) gets them again, and nothing else is written."""
    from pipelines.catalog import apply_comments, dictionary_markdown

    _, data_dir = published
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes((data_dir / "warehouse.duckdb").read_bytes())
    con = duckdb.connect(str(copy))
    try:
        documented = dictionary_markdown(con)
        con.execute("COMMENT ON COLUMN core.claim_lines.claim_id IS 'changed by hand'")
        con.execute("COMMENT ON TABLE core.trajectories IS NULL")
        con.execute("COMMENT ON VIEW staging.net_lines IS NULL")

        class Recording:
            statements: list[str] = []

            def execute(self, sql, *args):
                self.statements.append(sql)
                return con.execute(sql, *args)

        recording = Recording()
        assert apply_comments(recording) == []
        comments = [s for s in recording.statements if s.startswith("COMMENT")]
        assert sorted(c.split(" IS ")[0] for c in comments) == [
            'COMMENT ON COLUMN core.claim_lines."claim_id"', "COMMENT ON TABLE core.trajectories",
            "COMMENT ON VIEW staging.net_lines"]
        assert dictionary_markdown(con) == documented
        recording.statements.clear()
        apply_comments(recording)
        assert not [s for s in recording.statements if s.startswith("COMMENT")]
    finally:
        con.close()
