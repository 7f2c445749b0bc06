"""Cleaning rules of staging and core (docs/cleaning-rules.md) on hand-made extracts."""

from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.contract import CLAIMS
from tests.builders import (BEH_45, BEH_60, BEH_60_S8, DIAG_60, P1, claim, credit, materialize, rows, write_csv,
                            write_landing)

D_REVERSED = claim("D01", "c1", "2025-02-01", BEH_60, "100.00")
D_PARTIAL = claim("D02", "c1", "2025-02-02", BEH_60, "100.00")
D_TWO_CREDITS = claim("D03", "c1", "2025-02-03", BEH_60, "100.00")
D_CONFLICT = claim("D04", "c1", "2025-02-04", BEH_60, "100.00")
D_ALLOWED = claim("D05", "c1", "2025-02-05", BEH_60, "100.00", allowed="80.00")

FIRST_FILE = [
    D_REVERSED, credit("C01", D_REVERSED),
    D_PARTIAL, credit("C02", D_PARTIAL, "30.00"),
    D_TWO_CREDITS, credit("C03a", D_TWO_CREDITS, "60.00"), credit("C03b", D_TWO_CREDITS, "40.00"),
    D_CONFLICT, D_ALLOWED,
    {**credit("C09", D_REVERSED, "25.00"), "related_claim_id": "NOT-IN-DATA"},
    {**credit("C10", D_PARTIAL, "5.00"), "related_claim_id": "C02"},  # names a credit line, not a debit line
    {**credit("C11", D_PARTIAL, "5.00"), "related_claim_id": ""},  # names no line
    # no trajectory_id: 2024-01-10 and 2024-06-01 together; 2025-07-01 is 395 days later -> new trajectory;
    # 2026-07-01 is exactly 365 days after that -> same trajectory
    claim("G1", "c2", "2024-01-10", DIAG_60, trajectory=None),
    claim("G2", "c2", "2024-06-01", BEH_60, trajectory=None),
    claim("G3", "c2", "2025-07-01", BEH_60, trajectory=None),
    claim("G4", "c2", "2026-07-01", BEH_60, trajectory=None),
    # ZVT carry-forward within trajectory Z
    claim("Z0", "c3", "2025-01-02", DIAG_60, trajectory="Z"),                 # before any ZVT: unknown
    claim("Z1", "c3", "2025-01-05", DIAG_60, trajectory="Z", zvt=3),
    claim("Z2", "c3", "2025-01-05", BEH_60, trajectory="Z", zvt=5),          # same day, greater claim_id wins
    claim("Z3", "c3", "2025-02-01", BEH_60_S8, trajectory="Z"),              # carried: 5
    claim("Z4", "c3", "2025-03-01", BEH_60, trajectory="Z", zvt=9),          # 9 is no ZVT: carried 5
    claim("Z5", "c3", "2025-04-01", BEH_60, trajectory="Z", zvt=2),
    claim("Z6", "c3", "2025-04-01", BEH_45, trajectory="Z"),                 # same day as Z5: carried 2
    {**claim("Z7", "c3", "2025-05-01", BEH_60, trajectory="Z"), "zvt": 1},
    {**claim("Z8", "c3", "2025-06-01", BEH_60, trajectory="Z", zvt=4), "debit_credit": "D"},
    credit("Z8C", claim("Z8", "c3", "2025-06-01", BEH_60, trajectory="Z", zvt=4)),  # Z8 reversed: its ZVT is not carried
    claim("Z9", "c3", "2025-07-01", BEH_60, trajectory="Z"),                 # carried 1 (from Z7)
    claim("LATE", "c3", "2027-01-01", BEH_60, trajectory="Z"),               # after the as-of date
    # ZVT carry-forward within trajectory Y, whose activity lines give one ZVT only
    claim("Y0", "c4", "2025-01-02", DIAG_60, trajectory="Y"),                 # before the first ZVT: unknown
    claim("Y1", "c4", "2025-01-05", DIAG_60, trajectory="Y", zvt=4),
    claim("Y0b", "c4", "2025-01-05", BEH_60, trajectory="Y"),                # same day as Y1: carried 4
    claim("Y2", "c4", "2025-02-01", BEH_60, trajectory="Y", zvt=9),          # 9 is no ZVT: carried 4
    credit("Y3C", claim("Y3", "c4", "2025-03-01", BEH_60, trajectory="Y", zvt=7)),  # Y3 reversed: 7 is not carried
    claim("Y3", "c4", "2025-03-01", BEH_60, trajectory="Y", zvt=7),
    claim("Y4", "c4", "2025-04-01", BEH_60, trajectory="Y"),                 # carried 4
    claim("Y5", "c4", "2025-05-01", BEH_60, trajectory="Y", zvt=4),
    claim("Y6", "c4", "2025-06-01", BEH_60, trajectory="Y"),                 # carried 4
    # trajectory X has no line with a ZVT: unknown, also after the first ZVT of the client's trajectory Y
    claim("X1", "c4", "2025-01-02", DIAG_60, trajectory="X"),
    claim("X2", "c4", "2025-02-10", BEH_60, trajectory="X"),
    # one client, two trajectories with one ZVT each: a line takes its own trajectory's
    claim("A1", "c5", "2025-01-05", DIAG_60, trajectory="A", zvt=2),
    claim("B1", "c5", "2025-01-06", DIAG_60, trajectory="B", zvt=6),
    claim("A2", "c5", "2025-02-01", BEH_60, trajectory="A"),                 # carried 2
    claim("B2", "c5", "2025-02-01", BEH_60, trajectory="B"),                 # carried 6
    # no trajectory_id: the second trajectory (after a gap of more than 365 days) has no ZVT of its own
    claim("U1", "c6", "2024-01-10", DIAG_60, trajectory=None, zvt=3),
    claim("U2", "c6", "2024-02-01", BEH_60, trajectory=None),               # carried 3
    claim("U3", "c6", "2025-06-01", BEH_60, trajectory=None),               # a new trajectory: unknown
    # a delivered trajectory_id '#1' beside lines without one: two trajectories, not the untracked number 1
    claim("H1", "c7", "2025-01-05", DIAG_60, trajectory="#1", zvt=2),
    claim("H2", "c7", "2025-01-06", BEH_60, trajectory=None),               # its own trajectory: unknown
]
SECOND_FILE = [
    D_REVERSED,                                       # identical re-delivery: ignored
    {**D_CONFLICT, "declared_amount": "120.00"},      # conflicting re-delivery: the later file wins
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cleaning")
    landing = write_landing(tmp / "landing", FIRST_FILE, name="claims_1.csv")
    write_csv(landing / "claims_2.csv", SECOND_FILE, CLAIMS.columns, delimiter=";")
    materialize(landing, tmp / "data", as_of="2026-12-31")
    con = duckdb.connect(str(tmp / "data" / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


def net(con, claim_id):
    (found,) = rows(con, "SELECT * FROM staging.net_lines WHERE claim_id = ?", [claim_id])
    return found


def test_full_credit_reverses_the_debit_line(warehouse):
    line = net(warehouse, "D01")
    assert line["is_reversed"] and line["net_amount"] == 0
    assert line["credited_amount"] == Decimal("100.00")


def test_partial_credit_lowers_the_net_amount_and_keeps_the_activity(warehouse):
    line = net(warehouse, "D02")
    assert not line["is_reversed"]
    assert line["net_amount"] == Decimal("70.00")


def test_credits_that_add_up_to_the_amount_reverse_it(warehouse):
    line = net(warehouse, "D03")
    assert line["is_reversed"] and line["credit_lines"] == 2


def test_credit_without_its_debit_line_still_lowers_cost(warehouse):
    line = net(warehouse, "C09")
    assert line["line_type"] == "orphan_credit" and line["net_amount"] == Decimal("-25.00")


def test_a_credit_whose_debit_line_is_not_in_the_data_is_flagged_with_what_it_names(warehouse):
    found = {r["claim_id"]: r["credit_without_debit"] for r in rows(
        warehouse, "SELECT claim_id, credit_without_debit FROM quality.claim_line_checks WHERE debit_credit = 'C'")}
    assert found == {"C01": None, "C02": None, "C03a": None, "C03b": None, "Z8C": None, "Y3C": None,
                     "C09": "NOT-IN-DATA", "C10": "C02", "C11": "(empty)"}
    assert rows(warehouse, "SELECT claim_id FROM quality.claim_line_checks "
                           "WHERE debit_credit = 'D' AND credit_without_debit IS NOT NULL") == []


def test_allowed_amount_is_used_when_present(warehouse):
    assert net(warehouse, "D05")["amount"] == Decimal("80.00")


def test_identical_redelivery_is_ignored(warehouse):
    (line,) = rows(warehouse, "SELECT deliveries, file_name FROM staging.claim_lines WHERE claim_id = 'D01'")
    assert line["deliveries"] == 2
    assert rows(warehouse, "SELECT * FROM staging.claim_conflicts WHERE claim_id = 'D01'") == []


def test_conflicting_redelivery_uses_the_latest_file_and_is_reported(warehouse):
    (line,) = rows(warehouse, "SELECT amount, file_name FROM staging.claim_lines WHERE claim_id = 'D04'")
    assert line == {"amount": Decimal("120.00"), "file_name": "claims_2.csv"}
    (conflict,) = rows(warehouse, "SELECT * FROM staging.claim_conflicts WHERE claim_id = 'D04'")
    assert conflict["versions"] == 2 and conflict["used_file"] == "claims_2.csv"


def test_decimal_comma_file_is_read_with_its_own_separator(warehouse):
    (manifest,) = rows(warehouse, "SELECT delimiter, decimal_separator FROM raw.load_manifest "
                                  "WHERE file_name = 'claims_2.csv'")
    assert manifest == {"delimiter": ";", "decimal_separator": "."}  # written with a decimal point


def test_gap_of_more_than_365_days_starts_a_new_trajectory(warehouse):
    found = rows(warehouse, "SELECT claim_id, trajectory_key FROM core.claim_lines WHERE claim_id LIKE 'G%' "
                            "ORDER BY claim_id")
    keys = [r["trajectory_key"].split("|")[-1] for r in found]
    assert keys == ["#1", "#1", "#2", "#2"]


def test_a_delivered_trajectory_id_is_never_taken_for_an_untracked_trajectory(warehouse):
    found = rows(warehouse, "SELECT claim_id, trajectory_key FROM core.claim_lines WHERE claim_id LIKE 'H%' "
                            "ORDER BY claim_id")
    assert [r["trajectory_key"].split("|")[-1] for r in found] == ["##1", "#1"]
    (trajectories,) = rows(warehouse, "SELECT count(*) AS n FROM core.trajectories WHERE trajectory_key IN (?, ?)",
                           [r["trajectory_key"] for r in found])
    assert trajectories["n"] == 2


@pytest.mark.parametrize("claim_id, line_zvt", [
    ("Z0", None), ("Z1", 3), ("Z2", 5), ("Z3", 5), ("Z4", 5), ("Z5", 2), ("Z6", 2), ("Z7", 1), ("Z9", 1),
    ("Y0", None), ("Y1", 4), ("Y0b", 4), ("Y2", 4), ("Y3", 7), ("Y4", 4), ("Y5", 4), ("Y6", 4), ("X1", None),
    ("X2", None), ("A2", 2), ("B2", 6), ("U2", 3), ("U3", None), ("H2", None),
])
def test_line_zvt_is_carried_forward_within_the_trajectory(warehouse, claim_id, line_zvt):
    (line,) = rows(warehouse, "SELECT line_zvt FROM core.claim_lines WHERE claim_id = ?", [claim_id])
    assert line["line_zvt"] == line_zvt


def test_lines_after_the_as_of_date_are_left_out(warehouse):
    assert rows(warehouse, "SELECT * FROM core.claim_lines WHERE claim_id = 'LATE'") == []
    assert rows(warehouse, "SELECT claim_id FROM staging.claim_lines WHERE claim_id = 'LATE'") == [{"claim_id": "LATE"}]


def test_clear_client_ids_never_reach_the_warehouse(warehouse):
    tables = rows(warehouse, "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                             "WHERE data_type = 'VARCHAR'")
    for t in tables:
        hits = warehouse.execute(
            f'SELECT count(*) FROM {t["table_schema"]}.{t["table_name"]} WHERE "{t["column_name"]}" IN (?, ?, ?)',
            ["c1", "c2", "c3"]).fetchone()[0]
        assert hits == 0, f"clear client id in {t}"
    assert "client_id" not in {t["column_name"] for t in tables}


def test_a_parquet_file_with_amounts_as_text_in_decimal_comma_is_read_with_its_separator(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    lines = [claim("P1", "c1", "2025-01-01", BEH_60, "1.234,50"), claim("P2", "c1", "2025-01-02", BEH_60, "12,5")]
    text = {c: pa.array([None if line.get(c) is None else str(line[c]) for line in lines], pa.string())
            for c in CLAIMS.columns}
    pq.write_table(pa.table(text), landing / "claims_text.parquet")
    materialize(landing, tmp_path / "data")
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    amounts = dict(con.execute("SELECT claim_id, amount FROM staging.claim_lines").fetchall())
    assert amounts == {"P1": Decimal("1234.50"), "P2": Decimal("12.50")}
    assert con.execute("SELECT decimal_separator FROM raw.load_manifest").fetchone() == (",",)


def test_decimal_comma_and_thousands_separator(tmp_path):
    landing = tmp_path / "landing"
    write_csv(landing / "claims_nl.csv", [claim("N1", "c1", "2025-01-01", BEH_60, "1.234,50"),
                                          claim("N2", "c1", "2025-01-02", BEH_60, "12,5")],
              CLAIMS.columns, delimiter=";")
    materialize(landing, tmp_path / "data")
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    amounts = dict(con.execute("SELECT claim_id, amount FROM staging.claim_lines").fetchall())
    assert amounts == {"N1": Decimal("1234.50"), "N2": Decimal("12.50")}
    assert con.execute("SELECT decimal_separator FROM raw.load_manifest").fetchone() == (",",)
