"""The bad-input matrix: every way an insurer extract can be broken, loaded in one landing folder.

For each case: where the rows went (loaded, rejected with file, row, column and reason, or the whole file
quarantined with a reason naming file and row), and that nothing is lost: per file, rows in the file = rows
loaded + rows rejected (quality.file_accounting), the landing folder is untouched, a quarantined file is copied
whole with a reason file, and a second run over the same folder adds nothing.
"""

import hashlib
from pathlib import Path

import duckdb
import pytest

from pipelines.contract import CLAIMS, CONTRACTS
from pipelines.ingest.load import ExtractError, _read_csv_into_landing, _scan_lines, _sniff_csv
from tests.builders import BEH_60, P1, P2, claim, contract, materialize, rows, write_csv
from tests.quality.runs import build_once

HEADER = ",".join(CLAIMS.columns)


def line(claim_id: str, *, amount: str = "100.00", location: str = "", extra: str = "") -> str:
    """One claims CSV line with the contract's columns in order."""
    values = {c: "" for c in CLAIMS.columns}
    values.update(claim_id=claim_id, debit_credit="D", provider_agb=P1, client_id="c1", prestatiecode=BEH_60,
                  service_date="2025-03-01", declared_amount=amount, location_id=location)
    return ",".join(values[c] for c in CLAIMS.columns) + extra


GOOD = [claim(f"G{i}", "c1", "2025-03-01", BEH_60) for i in range(3)]


def build_landing(folder: Path) -> None:
    write_csv(folder / "claims_00_good.csv", GOOD, CLAIMS.columns)
    write_csv(folder / "contracts.csv", [contract(P1), contract(P2)], CONTRACTS.columns)
    write_csv(folder / "claims_01_tab.csv", [claim("T1", "c1", "2025-03-01", BEH_60)], CLAIMS.columns, delimiter="\t")
    latin = write_csv(folder / "claims_02_latin1.csv", [claim("L1", "c1", "2025-03-01", BEH_60),
                                                         {**claim("L2", "c1", "2025-03-01", BEH_60),
                                                          "trajectory_id": "Zoë"}], CLAIMS.columns)
    latin.write_bytes(latin.read_text(encoding="utf-8").encode("latin-1"))
    (folder / "claims_02b_latin1_header.csv").write_bytes(
        (HEADER + ",locatié\n" + line("LH1") + ",x\n").encode("latin-1"))
    write_csv(folder / "claims_03_missing_column.csv", [claim("M1", "c1", "2025-03-01", BEH_60)],
              tuple(c for c in CLAIMS.columns if c != "service_date"))
    write_csv(folder / "claims_04_extra_columns.csv", [{**claim("E1", "c1", "2025-03-01", BEH_60), "kleur": "blauw"}],
              (*CLAIMS.columns, "kleur"))
    (folder / "claims_05_empty.csv").write_bytes(b"")
    write_csv(folder / "claims_06_header_only.csv", [], CLAIMS.columns)
    truncated = "\n".join([HEADER, line("TR1"), line("TR2")])
    (folder / "claims_07_truncated.csv").write_text(truncated[: truncated.rfind(",", 0, len(truncated) - 40)],
                                                     encoding="utf-8")
    write_csv(folder / "claims_08_text_amount.csv", [claim("A1", "c1", "2025-03-01", BEH_60, "honderd"),
                                                      claim("A2", "c1", "2025-03-01", BEH_60)], CLAIMS.columns)
    write_csv(folder / "claims_09_impossible_date.csv", [claim("D1", "c1", "2025-02-30", BEH_60),
                                                          claim("D2", "c1", "2025-02-28", BEH_60)], CLAIMS.columns)
    write_csv(folder / "claims_10_unknown_code.csv", [claim("U1", "c1", "2025-03-01", "XX9999"),
                                                       claim("U2", "c1", "2025-03-01", BEH_60)], CLAIMS.columns)
    write_csv(folder / "claims_11_negative.csv", [claim("N1", "c1", "2025-03-01", BEH_60, "-50.00"),
                                                   claim("N2", "c1", "2025-03-01", BEH_60)], CLAIMS.columns)
    # re-delivery: G0 identical, G1 with another amount; sorts after claims_00 so it loads later and wins
    write_csv(folder / "claims_12_redelivery.csv", [GOOD[0], {**GOOD[1], "declared_amount": "150.00"}],
              CLAIMS.columns)
    (folder / "claims_13_binary.csv").write_bytes(bytes(range(256)) * 40)
    write_csv(folder / "claims_14_long_field.csv", [{**claim("LF1", "c1", "2025-03-01", BEH_60),
                                                     "location_id": "x" * 100_000},
                                                    claim("LF2", "c1", "2025-03-01", BEH_60)], CLAIMS.columns)
    # bugs the matrix revealed (fixed in load.py / claims_typed.sql)
    (folder / "claims_15_blank_lines.csv").write_text(
        "\n".join([HEADER, line("B1"), "", "", line("B2", amount="veel"), line("B3"), "", ""]), encoding="utf-8")
    (folder / "claims_16_multiline_value.csv").write_text(
        "\n".join([HEADER, line("Q1", location='"Utrecht\nZuid"'), line("Q2", amount="veel"), line("Q3")]) + "\n",
        encoding="utf-8")
    (folder / "claims_17_unterminated_quote.csv").write_text(
        "\n".join([HEADER, line("UQ1"), line('"UQ2'), line("UQ3"), line("UQ4")]) + "\n", encoding="utf-8")
    (folder / "claims_18_wide_row.csv").write_text(
        "\n".join([HEADER, line("W1", extra=",extra"), line("W2")]) + "\n", encoding="utf-8")
    write_csv(folder / "claims_19_blank_client.csv", [claim("BC1", "   ", "2025-03-01", BEH_60),
                                                       claim("BC2", "c1", "2025-03-01", BEH_60)], CLAIMS.columns)
    write_csv(folder / "claims_20_mixed_decimals.csv", [claim("MD1", "c1", "2025-03-01", BEH_60, "12,50"),
                                                         claim("MD2", "c1", "2025-03-01", BEH_60, "12.5"),
                                                         claim("MD3", "c1", "2025-03-01", BEH_60, "1.234,50")],
              CLAIMS.columns, delimiter=";")


def checksums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _build(folder: Path) -> dict:
    landing = folder / "landing"
    build_landing(landing)
    before = checksums(landing)
    data_dir = folder / "data"
    materialize(landing, data_dir)
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    counts = {t: con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for t in ("claims", "load_manifest")}
    con.close()
    materialize(landing, data_dir)  # the nightly run again over the same folder: nothing new
    return {"before": before, "first_counts": counts}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder, record = build_once(tmp_path_factory, "bad_input", _build)
    data_dir = folder / "data"
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    yield {"con": con, "data_dir": data_dir, "landing": folder / "landing", **record}
    con.close()


def manifest(con, file_name: str) -> dict:
    (found,) = rows(con, "SELECT * FROM raw.load_manifest WHERE file_name = ?", [file_name])
    return found


def rejected(con, file_name: str) -> list[dict]:
    return rows(con, "SELECT source_row, column_name, reason, stage FROM quality.rejected_rows WHERE file_name = ? "
                     "ORDER BY source_row", [file_name])


def used_ids(con, file_name: str) -> list[str]:
    return [r["claim_id"] for r in rows(con, "SELECT claim_id FROM staging.claim_lines WHERE file_name = ? "
                                             "ORDER BY source_row", [file_name])]


def accounting(con, file_name: str) -> dict:
    (found,) = rows(con, "SELECT * FROM quality.file_accounting WHERE file_name = ?", [file_name])
    return found


# ---------------------------------------------------------------------------------------------------------------
# whole files that cannot be read: quarantined with a reason naming the file (and the row where known)
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("file_name, words", [
    ("claims_01_tab.csv", ["claims_01_tab.csv", "row 1 (header)", "delimiter", "tab"]),
    ("claims_02b_latin1_header.csv", ["claims_02b_latin1_header.csv", "row 1 (header)", "not UTF-8"]),
    ("claims_03_missing_column.csv", ["claims_03_missing_column.csv", "row 1 (header)", "missing", "service_date"]),
    ("claims_05_empty.csv", ["claims_05_empty.csv", "empty"]),
    ("claims_13_binary.csv", ["claims_13_binary.csv", "binary"]),
    ("claims_17_unterminated_quote.csv", ["claims_17_unterminated_quote.csv", "row 3", "never closed",
                                          "lines 4-5"]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_unreadable_file_is_quarantined_whole_with_a_clear_reason(run, file_name, words):
    con = run["con"]
    entry = manifest(con, file_name)
    assert entry["status"] == "quarantined"
    for word in words:
        assert word in entry["reason"], (word, entry["reason"])
    copies = list((run["data_dir"] / "quarantine").glob(f"*_{file_name}"))
    assert len(copies) == 1 and copies[0].read_bytes() == (run["landing"] / file_name).read_bytes()
    reason_file = copies[0].with_name(copies[0].name + ".reason.txt")
    assert reason_file.read_text(encoding="utf-8").strip() == entry["reason"]
    assert accounting(con, file_name)["quarantined_file"] == file_name
    assert con.execute("SELECT count(*) FROM raw.claims WHERE load_id = ?", [entry["load_id"]]).fetchone() == (0,)


# ---------------------------------------------------------------------------------------------------------------
# rows that cannot be used: rejected with file, row, column and reason; the rest of the file loads
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("file_name, expected_rejects, loaded", [
    ("claims_02_latin1.csv", [(3, "trajectory_id", "INVALID ENCODING", "reading")], ["L1"]),
    ("claims_07_truncated.csv", [(3, "provider_agb", "MISSING COLUMNS", "reading")], ["TR1"]),
    ("claims_08_text_amount.csv", [(2, "declared_amount", "not an amount: honderd", "typing")], ["A2"]),
    ("claims_09_impossible_date.csv", [(2, "service_date", "not a date (YYYY-MM-DD): 2025-02-30", "typing")],
     ["D2"]),
    ("claims_10_unknown_code.csv", [(2, "prestatiecode", "unknown prestatiecode: XX9999", "typing")], ["U2"]),
    ("claims_11_negative.csv", [(2, "declared_amount", "negative amount", "typing")], ["N2"]),
    # blank lines are skipped but counted: the rejected row is reported on its own line (5), not on line 3
    ("claims_15_blank_lines.csv", [(5, "declared_amount", "not an amount: veel", "typing")], ["B1", "B3"]),
    # a quoted value spanning lines 2-3: the next row starts on line 4
    ("claims_16_multiline_value.csv", [(4, "declared_amount", "not an amount: veel", "typing")], ["Q1", "Q3"]),
    # one row with an extra field: that row is rejected, the file is not quarantined
    ("claims_18_wide_row.csv", [(2, None, "TOO MANY COLUMNS", "reading")], ["W2"]),
    # a blank client_id is empty, never hashed as ''
    ("claims_19_blank_client.csv", [(2, "client_id", "required value is empty", "typing")], ["BC2"]),
    # a decimal point in a decimal-comma file is ambiguous ('12.5' was read as 125.00): rejected
    ("claims_20_mixed_decimals.csv", [(3, "declared_amount", "decimal comma", "typing")], ["MD1", "MD3"]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_row_is_rejected_with_file_row_column_and_reason_and_the_rest_loads(run, file_name, expected_rejects,
                                                                                loaded):
    con = run["con"]
    assert manifest(con, file_name)["status"] == "loaded"
    found = rejected(con, file_name)
    assert len(found) == len(expected_rejects), found
    for reject, (row, column, reason, stage) in zip(found, expected_rejects):
        assert reject["source_row"] == row, reject
        assert reject["column_name"] == column, reject
        assert reason in reject["reason"], reject
        assert reject["stage"] == stage, reject
    assert used_ids(con, file_name) == loaded
    entry = accounting(con, file_name)
    assert entry["file_with_rejected_rows"] == file_name and entry["rows_rejected"] == len(expected_rejects)


def test_extra_columns_are_ignored_and_named(run):
    con = run["con"]
    assert manifest(run["con"], "claims_04_extra_columns.csv")["ignored_columns"] == "kleur"
    assert used_ids(con, "claims_04_extra_columns.csv") == ["E1"]
    assert rejected(con, "claims_04_extra_columns.csv") == []


def test_header_only_file_loads_nothing_and_balances(run):
    entry = accounting(run["con"], "claims_06_header_only.csv")
    assert entry["status"] == "loaded" and entry["rows_in_file"] == 0 and entry["balanced"] is True


def test_very_long_field_is_kept_whole(run):
    (found,) = rows(run["con"], "SELECT length(location_id) AS n FROM staging.claim_lines WHERE claim_id = 'LF1'")
    assert found["n"] == 100_000
    assert used_ids(run["con"], "claims_14_long_field.csv") == ["LF1", "LF2"]


def test_decimal_comma_amounts_with_thousands_separators_still_load(run):
    amounts = dict(run["con"].execute(
        "SELECT claim_id, CAST(amount AS VARCHAR) FROM staging.claim_lines WHERE claim_id IN ('MD1', 'MD3')"
    ).fetchall())
    assert amounts == {"MD1": "12.50", "MD3": "1234.50"}


def test_identical_redelivery_counts_once_and_conflicting_redelivery_uses_the_later_file(run):
    con = run["con"]
    lines = {r["claim_id"]: r for r in rows(con, "SELECT claim_id, file_name, deliveries, CAST(amount AS VARCHAR) "
                                                 "AS amount FROM staging.claim_lines WHERE claim_id LIKE 'G%'")}
    assert set(lines) == {"G0", "G1", "G2"}  # one line per claim_id
    assert lines["G0"]["deliveries"] == 2 and lines["G1"]["amount"] == "150.00"
    assert lines["G1"]["file_name"] == "claims_12_redelivery.csv"
    (conflict,) = rows(con, "SELECT * FROM staging.claim_conflicts")
    assert conflict["claim_id"] == "G1" and conflict["used_file"] == "claims_12_redelivery.csv"
    superseded = accounting(con, "claims_00_good.csv")
    assert (superseded["rows_used"], superseded["rows_superseded"], superseded["balanced"]) == (1, 2, True)


# ---------------------------------------------------------------------------------------------------------------
# no loss, no double counting
# ---------------------------------------------------------------------------------------------------------------

def test_every_row_of_every_loaded_file_is_accounted_for(run):
    con = run["con"]
    unbalanced = rows(con, "SELECT file_name, rows_in_file, rows_loaded, rows_rejected FROM quality.file_accounting "
                           "WHERE status = 'loaded' AND NOT balanced")
    assert unbalanced == []
    (missing,) = con.execute("SELECT count(*) FROM quality.file_accounting WHERE balanced IS NULL AND status = 'loaded'"
                             ).fetchone()
    assert missing == 0
    # the independent count matches the files: data lines minus blank lines (and the multi-line value's 2nd line)
    assert accounting(con, "claims_15_blank_lines.csv")["rows_in_file"] == 3
    assert accounting(con, "claims_16_multiline_value.csv")["rows_in_file"] == 3
    files = {p.name for p in run["landing"].iterdir()}
    assert {r["file_name"] for r in rows(con, "SELECT file_name FROM raw.load_manifest")} == files


def test_landing_folder_is_never_changed(run):
    assert checksums(run["landing"]) == run["before"]


def test_second_run_over_the_same_folder_loads_nothing_again(run):
    con = run["con"]
    counts = {t: con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for t in ("claims", "load_manifest")}
    assert counts == run["first_counts"]
    (duplicates,) = con.execute("SELECT count(*) - count(DISTINCT claim_id) FROM staging.claim_lines").fetchone()
    assert duplicates == 0


# ---------------------------------------------------------------------------------------------------------------
# the loader's own guards, without Dagster
# ---------------------------------------------------------------------------------------------------------------

def test_rows_that_the_reader_and_the_independent_count_disagree_on_stop_the_file(tmp_path, monkeypatch):
    path = tmp_path / "claims_x.csv"
    path.write_text("\n".join([HEADER, line("X1"), line("X2")]) + "\n", encoding="utf-8")
    scan = _scan_lines(path)
    assert (scan.lines, scan.records, scan.blank_lines) == (3, 2, [])
    monkeypatch.setattr("pipelines.ingest.load._scan_lines", lambda p: scan.__class__(
        lines=4, records=3, blank_lines=[], has_quotes=False))
    con = duckdb.connect()
    delimiter, header = _sniff_csv(path)
    with pytest.raises(ExtractError, match=r"claims_x.csv: the file has 3 data rows but the reader returned 2 rows"):
        _read_csv_into_landing(con, path, delimiter, header)


def test_line_scan_counts_lines_and_blank_lines_across_blocks(tmp_path):
    path = tmp_path / "claims_blocks.csv"
    path.write_bytes(b"h1,h2\r\n" + b"a,b\r\n" * 5 + b"\r\n" + b"c,d\r\n\n" + b"e,f")  # no final line break
    scan = _scan_lines(path)
    assert (scan.lines, scan.blank_lines, scan.records) == (10, [7, 9], 7)
    assert _scan_lines(path, block_size=7) == scan
