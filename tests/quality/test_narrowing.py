"""Checks that validate only the rows a run changed (suite meta ``changes_of``, pipelines/quality/narrowing.py).

Runs through the real graph, one new file per night: the staging suites validate the claim_ids of the new file
(and one other row) only after a validation that found no unexpected row, and a problem found stays reported.
"""

import duckdb
import pytest

from pipelines.contract import CLAIMS
from pipelines.quality.checks import run_suite_check
from pipelines.quality.suites import SuiteError, bindings_for_file, suite_bindings
from pipelines.resources import PipelineSettings
from tests.builders import BEH_60, DIAG_60, P1, P2, claim, contract, credit, write_csv, write_landing
from tests.quality.runs import materialize_with_checks, run_record

FIRST = [claim("N1", "c1", "2025-02-01", BEH_60, provider=P1, zvt=3),
         claim("N2", "c2", "2025-02-03", DIAG_60, provider=P1, zvt=1),
         claim("N3", "c3", "2025-03-01", BEH_60, provider=P2, zvt=4),
         claim("N4", "c4", "2025-03-02", BEH_60, provider=P2, zvt=4)]
# N2 delivered again (a changed claim_id), N5 new with a malformed practitioner AGB (a WARN of the plausibility
# suite), a credit for N1 (so N1 is changed too, through its credit's claim_id: CN1 only)
SECOND = [dict(FIRST[1], declared_amount="90.00"),
          {**claim("N5", "c5", "2025-04-01", BEH_60, provider=P2, zvt=4), "practitioner_agb": "123"},
          credit("CN1", FIRST[0], "40.00")]
THIRD = [claim("N6", "c6", "2025-05-01", BEH_60, provider=P1, zvt=2)]

INTEGRITY = ("staging/claim_lines", "staging_claim_lines_integrity")
PLAUSIBILITY = ("staging/claim_lines", "staging_claim_lines")


def checks(record: dict) -> dict:
    return {(c["asset"], c["check"]): c for c in record["checks"]}


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("narrowing")
    landing = write_landing(folder / "landing", FIRST, [contract(P1), contract(P2)])
    data_dir = folder / "data"
    records = [run_record(materialize_with_checks(landing, data_dir))]
    for number, lines in ((2, SECOND), (3, THIRD)):
        write_csv(landing / f"claims_{number}.csv", lines, CLAIMS.columns)
        records.append(run_record(materialize_with_checks(landing, data_dir)))
    return records, data_dir


def claim_loads(data_dir) -> list[int]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return [load_id for (load_id,) in con.execute(
            "SELECT load_id FROM raw.load_manifest WHERE kind = 'claims' ORDER BY 1").fetchall()]
    finally:
        con.close()


def coverage(data_dir, file: str = "warehouse.duckdb") -> dict:
    con = duckdb.connect(str(data_dir / file), read_only=True)
    try:
        return {name: list(loads) for name, loads in con.execute(
            "SELECT check_name, loads FROM quality.check_coverage ORDER BY 1").fetchall()}
    finally:
        con.close()


def test_the_first_run_validates_everything_and_keeps_what_it_covered(nights):
    records, _ = nights
    first = checks(records[0])
    for key in (INTEGRITY, PLAUSIBILITY):
        assert first[key]["passed"]
        assert "scope" not in first[key]["metadata"]


def test_the_next_run_validates_the_claim_ids_of_its_file_and_one_other_row(nights):
    records, _ = nights
    second = checks(records[1])
    integrity, plausibility = second[INTEGRITY], second[PLAUSIBILITY]
    # N2, N5 and CN1 were delivered (N1 is not: its credit's claim_id is CN1), plus one unchanged row
    for check in (integrity, plausibility):
        assert check["metadata"]["scope"].startswith("4 rows: those of the claim_id values that the loads since")
    assert integrity["passed"]
    # the malformed AGB of the new line is found in the narrowed rows
    assert not plausibility["passed"] and plausibility["severity"] == "WARN"
    assert plausibility["metadata"]["unexpected_rows"] == 1 and "123" in plausibility["metadata"]["details"]


def test_a_validation_that_found_a_problem_is_no_starting_point(nights):
    """The night after, the plausibility suite validates every row again (the bad line is still there and still
    reported); the integrity suite, which found nothing, validates the new file's row and one other."""
    records, data_dir = nights
    third = checks(records[2])
    assert "scope" not in third[PLAUSIBILITY]["metadata"]
    assert not third[PLAUSIBILITY]["passed"] and third[PLAUSIBILITY]["metadata"]["unexpected_rows"] == 1
    assert third[INTEGRITY]["metadata"]["scope"].startswith("2 rows:") and third[INTEGRITY]["passed"]
    assert coverage(data_dir) == {"staging_claim_lines_integrity": claim_loads(data_dir)}


def test_a_narrowed_check_sees_every_row_of_a_changed_claim_id(nights, tmp_path):
    """A second row for a claim_id of the new file (what a fault in bringing the table up to date would leave) is
    a duplicate the narrowed integrity check finds; a row without a claim_id is always validated."""
    records, data_dir = nights
    working = data_dir / "build" / "warehouse.duckdb"
    con = duckdb.connect(str(working))
    try:
        # as if the last validation had covered the loads before the newest (THIRD: N6)
        con.execute("UPDATE quality.check_coverage SET loads = ? WHERE check_name = ?",
                    [claim_loads(data_dir)[:-1], INTEGRITY[1]])
        con.execute("INSERT INTO staging.claim_lines SELECT * FROM staging.claim_lines WHERE claim_id = 'N6'")
        con.execute("INSERT INTO staging.claim_lines SELECT * REPLACE (NULL AS claim_id) FROM staging.claim_lines "
                    "WHERE claim_id = 'N3'")
    finally:
        con.close()
    settings = PipelineSettings(landing_dir=str(tmp_path), data_dir=str(data_dir), threads=1, memory_limit="1GB")
    binding = next(b for b in suite_bindings() if b.check_name == INTEGRITY[1])
    result = run_suite_check(binding, settings, run_id="by-hand")
    assert not result.passed
    assert result.metadata["scope"].value.startswith("4 rows:")  # N6 twice, the NULL claim_id, one other
    failed = {line for line in result.metadata["details"].value.splitlines() if line.startswith("- ")}
    assert len(failed) == 2 and any("unique" in line and "N6" in line for line in failed), failed
    assert any("null" in line and "claim\\_id" in line for line in failed), failed
    assert coverage(data_dir, "build/warehouse.duckdb") == {}  # the next validation covers everything again


def _suite(tmp_path, expectations: list[dict]):
    path = tmp_path / "narrow.json"
    import json

    path.write_text(json.dumps({"name": "narrow", "meta": {"table": "staging.claim_lines",
                                                           "changes_of": "staging.claim_lines"},
                                "expectations": [{**e, "meta": {"severity": "warn", "why": "x"}}
                                                 for e in expectations]}), encoding="utf-8")
    return path


@pytest.mark.parametrize("expectation", [
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "client_key"}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 100}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 2}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "zvt", "mostly": 0.9}},
    {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "min_value": 0}},
])
def test_a_suite_that_validates_changed_rows_holds_only_row_wise_expectations(tmp_path, expectation):
    with pytest.raises(SuiteError, match="not row-wise"):
        bindings_for_file(_suite(tmp_path, [expectation]))


def test_row_wise_expectations_are_accepted(tmp_path):
    (binding,) = bindings_for_file(_suite(tmp_path, [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "claim_id"}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b",
         "kwargs": {"column_A": "service_date", "column_B": "referral_date", "or_equal": True}},
    ]))
    assert binding.changes_of == "staging.claim_lines"
