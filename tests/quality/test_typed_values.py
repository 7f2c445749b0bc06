"""The landing suite evaluated once per distinct typed value (pipelines/quality/typed_values.py) gives what it gives
row by row, on every expectation: typed values that break a rule (a year with five digits, a negative amount, a
birth year before 1900, a ZVT outside its set), text values that break it, and missing ones; and the counting query
really is the rewritten one."""

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines.contract import CLAIMS
from pipelines.ingest.load import load_landing
from pipelines.quality import typed_values
from pipelines.quality.gx_runner import run_validation
from tests.builders import BEH_60, claim, write_csv
from tests.ingest.test_typed_parquet import TYPED

SUITE = Path(__file__).parents[2] / "expectations" / "landing_claims.json"
DAY_AFTER_9999 = (date(9999, 12, 31) - date(1970, 1, 1)).days + 1  # 10000-01-01 as days since 1970 (date32)


def typed_file(path: Path) -> None:
    """Eight Parquet lines whose typed values break the landing rules here and there (hand-counted below)."""
    def column(name, values):
        if name == "service_date":  # the last line's service date is in the year 10000: its text has five digits
            days = [(v - date(1970, 1, 1)).days if v else None for v in values[:-1]] + [DAY_AFTER_9999]
            return pa.array(days, pa.int32()).cast(pa.date32())
        return pa.array(values, TYPED.get(name, pa.string()))

    n = 8
    values = {
        "claim_id": [f"P{i}" for i in range(n)], "debit_credit": ["D"] * n, "provider_agb": ["00000001"] * n,
        "client_id": ["c1", "c2"] * 4, "prestatiecode": [BEH_60] * n, "trajectory_id": ["T1"] * n,
        "service_date": [date(2025, 1, 1) + timedelta(days=i % 3) for i in range(n)],
        "declared_amount": [Decimal("100.00"), Decimal("-5.00"), Decimal("12.50"), Decimal("100.00"),
                            Decimal("-5.00"), None, Decimal("7.00"), Decimal("100.00")],  # 2 negative, 1 missing
        "allowed_amount": [None, Decimal("80.00"), None, Decimal("-1.00"), None, None, None, None],  # 1 negative
        "birth_year": [1988, 1850, None, 1988, 2101, 1988, None, 1988],  # 1850 and 2101 break ^(19|20)[0-9]{2}$
        "zvt": [4, 9, None, 4, 21, 22, None, 4],  # 9 and 22 are not ZVTs
        "privacy_flag": [True, False, None, True, True, False, None, True],
        "trajectory_start_date": [date(2024, 12, 1)] * n, "referral_date": [None] * n,
        "submitted_date": [date(2025, 2, 1)] * n,
    }
    table = pa.table({c: column(c, values.get(c, [None] * n)) for c in CLAIMS.columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def text_lines() -> list[dict]:
    """The same rules broken by text values (a CSV file), and kept."""
    return [
        {**claim("C1", "c1", "2025-1-06", BEH_60, "-3.00"), "birth_year": "18x5"},  # date, negative, year
        {**claim("C2", "c2", "2025-01-07", BEH_60, zvt=9, privacy=True), "birth_year": "1990"},
        claim("C3", "c3", "2025-01-08", BEH_60, "1.234,5"),
    ]


def warehouse(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    typed_file(landing / "claims_typed.parquet")
    write_csv(landing / "claims_text.csv", text_lines(), CLAIMS.columns)
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE SCHEMA quality")
    load_landing(con, landing, tmp_path / "quarantine", "secret")
    con.close()
    return path


def outcome_table(validation) -> list[tuple]:
    return [(o.expectation, o.column, o.success, o.evaluated, o.unexpected_count, o.element_count,
             sorted(o.unexpected_sample), o.severity) for o in validation.outcomes]


def test_a_condition_on_a_typed_column_counts_the_same_rows_once_per_distinct_value(tmp_path):
    path = warehouse(tmp_path)
    con = duckdb.connect(str(path))
    statements = []

    def remember(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", remember)
    try:
        typed = typed_values.prepare(con, CLAIMS, "quality.landing_this_run", "load_id >= 0", min_rows=0)
        by_value = run_validation(path, "quality.landing_this_run", SUITE, connection=con, typed_values=typed)
        rewritten = list(statements)
        con.execute("CREATE VIEW quality.landing_row_by_row AS SELECT * FROM raw.claims")
        by_row = run_validation(path, "quality.landing_row_by_row", SUITE, connection=con)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", remember)

    assert outcome_table(by_value) == outcome_table(by_row)
    counts = {(o.expectation, o.column): o.unexpected_count for o in by_value.outcomes}
    assert counts[("expect_column_values_to_match_regex", "service_date")] == 2      # 10000-01-01 and 2025-1-06
    assert counts[("expect_column_values_to_not_match_regex", "declared_amount")] == 3  # -5.00 twice, -3.00
    assert counts[("expect_column_values_to_match_regex", "declared_amount")] == 0      # 1.234,5 is an amount
    assert counts[("expect_column_values_to_not_be_null", "declared_amount")] == 1
    assert counts[("expect_column_values_to_not_match_regex", "allowed_amount")] == 1
    assert counts[("expect_column_values_to_match_regex", "birth_year")] == 3          # 1850, 2101, 18x5
    assert counts[("expect_column_values_to_be_in_set", "zvt")] == 3                   # 9, 22, and the text 9

    counting = " ".join(max(rewritten, key=len).split())  # GX's one query counting every expectation's rows
    for column, _ in CLAIMS.typed_columns:
        assert f"{column}__value IN (SELECT v FROM quality.landing_this_run__{column}" in counting
        assert f"coalesce({column}" not in counting and f" {column} IS" not in counting

    typed_values.drop(con, "raw.claims", "quality.landing_this_run")
    left = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'landing_this_run__%'")
    assert left.fetchone()[0] == 0


def test_a_few_rows_are_checked_row_by_row(tmp_path):
    con = duckdb.connect(str(warehouse(tmp_path)))
    assert typed_values.prepare(con, CLAIMS, "quality.landing_this_run", "load_id >= 0", min_rows=12) == {}
    assert set(typed_values.prepare(con, CLAIMS, "quality.landing_this_run", "load_id >= 0", min_rows=11)) == {
        column for column, _ in CLAIMS.typed_columns}  # eleven rows: eight Parquet lines and three CSV lines
