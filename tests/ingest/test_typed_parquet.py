"""A Parquet file's typed values (dates, amounts, numbers, yes/no) are kept in their type in raw.<kind>_stored,
and everything a user sees is the same as for the same values delivered as text: raw.<kind> shows the text,
staging types them the same, and a value that does not fit its contract type is still rejected with its text."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.contract import CLAIMS, CONTRACTS, raw_columns
from pipelines.ingest.load import MANIFEST_DDL, load_landing
from tests.builders import BEH_60, P1, claim, contract, materialize, rows, write_csv

TYPED = {  # the Parquet types of the typed contract columns, as a pandas or Spark export writes them
    "birth_year": pa.int64(), "trajectory_start_date": pa.date32(), "service_date": pa.date32(), "zvt": pa.int64(),
    "privacy_flag": pa.bool_(), "referral_date": pa.date32(), "declared_amount": pa.decimal128(12, 2),
    "allowed_amount": pa.decimal128(12, 2), "submitted_date": pa.date32(),
}
CONTRACT_TYPED = {"year": pa.int32(), "omzetmaximum": pa.decimal128(16, 2)}


def _typed(value, kind: pa.DataType):
    if value is None or value == "":
        return None
    if pa.types.is_date(kind):
        return date.fromisoformat(value)
    if pa.types.is_decimal(kind):
        return Decimal(value)
    if pa.types.is_boolean(kind):
        return value == "true"
    return int(value)


def write_parquet(path: Path, lines: list[dict], columns: tuple[str, ...], types: dict) -> None:
    arrays = {c: pa.array([_typed(line.get(c), types[c]) if c in types else line.get(c) for line in lines],
                          types.get(c, pa.string())) for c in columns}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays), path)


def lines(prefix: str) -> list[dict]:
    return [
        {**claim(f"{prefix}1", "c1", "2025-01-06", BEH_60, "100.00", zvt=4, privacy=False, allowed="80.50"),
         "birth_year": "1988", "trajectory_start_date": "2024-12-01", "referral_date": "2024-11-15",
         "submitted_date": "2025-02-01"},
        claim(f"{prefix}2", "c2", "2025-03-04", BEH_60, "55.25", privacy=True),
        claim(f"{prefix}3", "c3", "2025-04-01", BEH_60, "0.00", trajectory=None),
    ]


def per_file(found: list[dict]) -> dict[str, dict[str, dict]]:
    """{file letter (P or C): {line number: the row without where it came from}} (claim_ids are P1, C1, ...)."""
    out: dict[str, dict[str, dict]] = {}
    for r in found:
        out.setdefault(r["claim_id"][0], {})[r["claim_id"][1:]] = {
            k: v for k, v in r.items() if k not in ("claim_id", "load_id", "source_row", "file_name")}
    return out


def test_typed_parquet_values_are_stored_typed_and_read_as_the_same_values_as_text(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing / "claims_typed.parquet", lines("P"), CLAIMS.columns, TYPED)
    write_csv(landing / "claims_text.csv", lines("C"), CLAIMS.columns)
    write_parquet(landing / "contracts.parquet", [contract(P1, 2025, omzetmaximum="250000.00")], CONTRACTS.columns,
                  CONTRACT_TYPED)
    materialize(landing, tmp_path / "data")
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)

    stored = rows(con, "SELECT s.* FROM raw.claims_stored AS s JOIN raw.load_manifest AS m USING (load_id) "
                       "WHERE m.file_name = 'claims_typed.parquet' AND claim_id = 'P1'")[0]
    assert stored["service_date"] is None and stored["service_date_value"] == date(2025, 1, 6)
    assert stored["declared_amount"] is None and stored["declared_amount_value"] == Decimal("100.00")
    assert stored["birth_year_value"] == 1988 and stored["privacy_flag_value"] is False
    text = rows(con, "SELECT s.* FROM raw.claims_stored AS s JOIN raw.load_manifest AS m USING (load_id) "
                     "WHERE m.file_name = 'claims_text.csv' AND claim_id = 'C1'")[0]
    assert text["service_date"] == "2025-01-06" and text["service_date_value"] is None

    # raw.claims shows the typed values as the text a CSV delivers them in
    by_file = per_file(rows(con, "SELECT * FROM raw.claims"))
    assert by_file["P"] == by_file["C"]
    assert by_file["P"]["1"]["service_date"] == "2025-01-06" and by_file["P"]["1"]["allowed_amount"] == "80.50"
    assert by_file["P"]["1"]["privacy_flag"] == "false" and by_file["P"]["1"]["birth_year"] == "1988"

    # staging types both files the same
    typed = per_file(rows(con, "SELECT * FROM staging.claims_typed"))
    assert typed["P"] == typed["C"]
    assert typed["P"]["1"]["service_date"] == date(2025, 1, 6) and typed["P"]["1"]["allowed_amount"] == Decimal("80.50")
    assert typed["P"]["1"]["reject_reason"] is None

    assert rows(con, "SELECT year, omzetmaximum FROM staging.contracts") == [
        {"year": 2025, "omzetmaximum": Decimal("250000.00")}]
    assert rows(con, "SELECT year, omzetmaximum FROM raw.contracts") == [{"year": "2025", "omzetmaximum": "250000.00"}]


def test_a_typed_value_that_does_not_fit_its_contract_type_is_kept_as_text_and_rejected_with_it(tmp_path):
    landing = tmp_path / "landing"
    bad = [
        {**claim("B1", "c1", "2025-01-06", BEH_60), "birth_year": "30000000000"},  # beyond INTEGER
        claim("B2", "c1", "2025-01-07", BEH_60, "-5.00"),                          # a negative amount
        claim("B3", "c1", "", BEH_60),                                             # no service date
        claim("B4", "c1", "2025-01-08", BEH_60, allowed="-1.25"),                  # a negative allowed amount
        claim("B5", "c1", "2025-01-09", BEH_60),                                   # fine
    ]
    write_parquet(landing / "claims_bad.parquet", bad, CLAIMS.columns, TYPED)
    con = duckdb.connect()
    for schema in ("raw",):
        con.execute(f"CREATE SCHEMA {schema}")
    load_landing(con, landing, tmp_path / "quarantine", "secret")
    stored = {r["claim_id"]: r for r in rows(con, "SELECT * FROM raw.claims_stored")}
    assert stored["B1"]["birth_year"] == "30000000000" and stored["B1"]["birth_year_value"] is None
    assert stored["B5"]["birth_year"] is None and stored["B5"]["birth_year_value"] is None
    assert dict(con.execute("SELECT claim_id, birth_year FROM raw.claims").fetchall())["B1"] == "30000000000"
    con.close()

    materialize(landing, tmp_path / "data")
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    rejected = {r["claim_id"]: (r["reject_column"], r["reject_reason"])
                for r in rows(con, "SELECT * FROM staging.claims_typed WHERE reject_reason IS NOT NULL")}
    assert rejected == {
        "B1": ("birth_year", "not a year: 30000000000"),
        "B2": ("declared_amount", "negative amount (the sign comes from debit_credit): -5.00"),
        "B3": ("service_date", "required value is empty"),
        "B4": ("allowed_amount", "negative amount (the sign comes from debit_credit): -1.25"),
    }
    assert [r[0] for r in con.execute("SELECT claim_id FROM staging.claim_lines").fetchall()] == ["B5"]


def test_a_warehouse_whose_raw_tables_hold_text_only_keeps_its_rows_when_the_next_file_loads_typed(tmp_path):
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    # raw.claims as every warehouse stored it before typed values were kept: a table of text
    columns = raw_columns(CLAIMS)
    con.execute(f"CREATE TABLE raw.claims (load_id INTEGER NOT NULL, source_row BIGINT NOT NULL, "
                f"{', '.join(f'{c} VARCHAR' for c in columns)})")
    old = {c: f"text of {c}" for c in columns} | {"service_date": "2025-01-06", "declared_amount": "12.50"}
    con.execute(f"INSERT INTO raw.claims VALUES (1, 2, {', '.join('?' for _ in columns)})", [old[c] for c in columns])
    con.execute(MANIFEST_DDL)
    con.execute("INSERT INTO raw.load_manifest VALUES (1, 'claims_1.csv', 'claims', 'x', 1, 'loaded', 1, 1, 0, ',', "
                "'.', NULL, NULL, now())")

    landing = tmp_path / "landing"
    write_parquet(landing / "claims_2.parquet", lines("P"), CLAIMS.columns, TYPED)
    summary = load_landing(con, landing, tmp_path / "quarantine", "secret")
    assert summary.loaded == ["claims_2.parquet"], summary
    kinds = dict(con.execute("SELECT table_name, table_type FROM information_schema.tables "
                             "WHERE table_schema = 'raw' AND table_name LIKE 'claims%'").fetchall())
    assert kinds == {"claims": "VIEW", "claims_stored": "BASE TABLE"}
    assert rows(con, "SELECT * FROM raw.claims WHERE load_id = 1") == [{"load_id": 1, "source_row": 2, **old}]
    assert rows(con, "SELECT service_date_value FROM raw.claims_stored WHERE load_id = 1") == [
        {"service_date_value": None}]
    assert con.execute("SELECT count(*) FROM raw.claims_stored WHERE service_date_value IS NOT NULL").fetchone() == (3,)
