"""The expectation suites in expectations/*.json.

1. Every suite file loads with every expectation kept, and follows the rules of pipelines.quality.suites.
2. Every expectation fails on a failing example: one tiny bad warehouse (plain DuckDB, no pipeline) holds, for
   each table a suite validates, a few good rows plus bad rows annotated with the expectations they break; the
   expected unexpected_count of each expectation is the sum of those annotations (counted by hand).
3. Every suite runs against a warehouse built from generated sample data with every expectation evaluated.
"""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from pipelines.benchmarks.registry import benchmarks
from pipelines.quality.gx_runner import load_suite, validate_table
from pipelines.quality.suites import (SuiteError, bindings_for_file, resolve_parameters, suite_bindings,
                                      suite_files)
from tests.quality.runs import materialize_with_checks, opened_run, run_record

SUITE_FILES = suite_files()
BINDINGS = suite_bindings()


# ---------------------------------------------------------------------------------------------------------------
# 1. the files
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.stem)
def test_suite_file_loads_with_every_expectation_kept(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    suite = load_suite(path)
    assert suite.name == path.stem
    assert len(suite.expectations) == len(data["expectations"]) > 0
    for exp in data["expectations"]:
        assert exp["meta"]["severity"] in ("fatal", "error", "warn")
        assert len(exp["meta"]["why"]) > 20, exp


def test_every_rendered_suite_loads_in_gx():
    for binding in BINDINGS:
        assert len(load_suite(binding.suite).expectations) == len(binding.expectations), binding.suite_name


def test_checks_cover_the_layers_and_every_benchmark():
    on = {(b.asset_path, b.check_name): b for b in BINDINGS}
    for asset, check in [("raw/claims", "landing_claims"), ("raw/contracts", "landing_contracts"),
                         ("raw/load_manifest", "file_accounting"), ("reference/prestatiecodes",
                                                                    "reference_prestatiecodes"),
                         ("staging/claim_lines", "staging_claim_lines"),
                         ("staging/claim_lines", "staging_claim_lines_integrity"),
                         ("staging/claim_lines", "claim_line_checks"),
                         ("marts/provider_scorecard", "provider_scorecard"),
                         ("marts/provider_scorecard", "scorecard_coverage")]:
        assert (asset, check) in on
    for b in benchmarks():
        assert (f"marts/{b.name}", "marts") in on
    assert {b.check_name for b in BINDINGS if b.blocking} == {"reference_prestatiecodes",
                                                              "staging_claim_lines_integrity"}


def test_a_new_benchmark_is_covered_without_a_new_suite():
    new = SimpleNamespace(name="waiting_time_share", unit="share", direction="lower_is_better", value_column="share",
                          numerator_column="late_clients", denominator_column="clients", threshold_column="threshold",
                          volume_column="clients")
    (binding,) = bindings_for_file(Path("expectations/marts.json"), [new])
    assert binding.table == "marts.waiting_time_share" and binding.asset_key == ("marts", "waiting_time_share")
    columns = {e["kwargs"].get("column") for e in binding.expectations}
    assert {"share", "late_clients", "clients"} <= columns
    assert not re.search(r"\{[a-z_]+\}", json.dumps(binding.expectations))  # every placeholder filled


def write_suite(tmp_path: Path, expectations: list[dict], meta: dict | None = None) -> Path:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"name": "s", "meta": meta or {"table": "raw.claims"}, "expectations": expectations}))
    return path


def exp(severity="warn", why="Because a reason is needed here.", **kwargs):
    return {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a", **kwargs},
            "meta": {"severity": severity, "why": why}}


@pytest.mark.parametrize("expectations, meta, message", [
    ([exp("fatal"), exp("error")], None, "only fatal"),
    ([{**exp(), "meta": {"severity": "warn"}}], None, "meta.why"),
    ([{**exp(), "meta": {"severity": "critical", "why": "x" * 30}}], None, "meta.severity"),
    ([exp()], {"table": "claims"}, "schema.table"),
    ([{**exp(), "meta": {"severity": "warn", "why": "x" * 30, "count_only": True}}], None, "mostly: 0"),
    ([exp(column="{no_such_field}")], {"table": "marts.{name}", "for_each": "benchmark"}, "unknown placeholder"),
    ([exp()], {"table": "raw.claims", "prepare": "table"}, "meta.prepare"),
], ids=["mixed-fatal", "no-why", "bad-severity", "bad-table", "count-only-without-mostly", "bad-placeholder",
        "bad-prepare"])
def test_suite_rules_are_enforced(tmp_path, expectations, meta, message):
    with pytest.raises(SuiteError, match=message):
        bindings_for_file(write_suite(tmp_path, expectations, meta), list(benchmarks())[:1])


# ---------------------------------------------------------------------------------------------------------------
# 2. a failing example per expectation
# ---------------------------------------------------------------------------------------------------------------

def key_of(exp: dict) -> str:
    """A short name of an expectation, unique within its suite (asserted below)."""
    kind = exp["type"].removeprefix("expect_")
    kw = exp["kwargs"]
    if kind == "column_pair_values_a_to_be_greater_than_b":
        return f"pair:{kw['column_A']}>={kw['column_B']}"
    if kind == "compound_columns_to_be_unique":
        return f"compound_unique:{','.join(kw['column_list'])}"
    if kind == "table_row_count_to_be_between":
        return "row_count"

    def bound(v):
        return f"${v['$PARAMETER']}" if isinstance(v, dict) else v

    short = {"column_to_exist": "exists", "column_values_to_not_be_null": "not_null",
             "column_values_to_be_null": "null", "column_values_to_be_unique": "unique",
             "column_values_to_match_regex": "regex", "column_values_to_not_match_regex": "not_regex",
             "column_values_to_be_in_set": "in_set"}
    if kind == "column_values_to_be_between":
        return f"between:{kw['column']}[{bound(kw.get('min_value'))},{bound(kw.get('max_value'))}]"
    return f"{short[kind]}:{kw['column']}"


# table -> column types, good rows, bad rows (overrides of the first good row, the expectations each breaks)
V, I, D, N, B = "VARCHAR", "INTEGER", "DATE", "DECIMAL(14,2)", "BOOLEAN"
CLAIM_TEXT = ("load_id", "source_row", "claim_id", "related_claim_id", "debit_credit", "uzovi", "provider_agb",
              "practitioner_agb", "client_key", "birth_year", "trajectory_id", "trajectory_start_date", "prestatiecode",
              "service_date", "zvt", "zorglabel", "privacy_flag", "referral_type", "referral_date", "location_id",
              "declared_amount", "allowed_amount", "submitted_date")
TABLES = {
    "reference.prestatiecodes": {
        "columns": {"prestatiecode": V, "family": V, "activity": V, "setting": I, "beroepscategorie": I,
                    "duration_min": I, "group_size": I},
        "good": [{"prestatiecode": "CO0001", "family": "consult", "activity": "behandeling", "setting": 1,
                  "beroepscategorie": 3, "duration_min": 45, "group_size": None},
                 {"prestatiecode": "GC0001", "family": "groepsconsult", "activity": "behandeling", "setting": None,
                  "beroepscategorie": 3, "duration_min": 30, "group_size": 4}],
        "bad": [
            ({"prestatiecode": None}, {"not_null:prestatiecode": 1}),
            ({"prestatiecode": "CO0002"}, {"unique:prestatiecode": 1}),
            ({"prestatiecode": "CO0002"}, {"unique:prestatiecode": 1}),
            ({"prestatiecode": "co0003"}, {"regex:prestatiecode": 1}),
            ({"prestatiecode": "CO0004", "family": "workshop"}, {"in_set:family": 1}),
            ({"prestatiecode": "CO0005", "family": None}, {"not_null:family": 1}),
            ({"prestatiecode": "CO0006", "activity": "therapie"}, {"in_set:activity": 1}),
            ({"prestatiecode": "CO0007", "activity": None}, {"not_null:activity": 1}),
            ({"prestatiecode": "CO0008", "setting": 9}, {"in_set:setting": 1}),
            ({"prestatiecode": "CO0009", "setting": None}, {"not_null:setting": 1}),
            ({"prestatiecode": "CO0010", "beroepscategorie": 99}, {"in_set:beroepscategorie": 1}),
            ({"prestatiecode": "CO0011", "duration_min": 0}, {"between:duration_min[1,600]": 1}),
            ({"prestatiecode": "CO0012", "duration_min": None}, {"not_null:duration_min": 1}),
            ({"prestatiecode": "CO0013", "group_size": 1}, {"between:group_size[2,50]": 1}),
        ],
    },
    "raw.claims": {
        "columns": {c: (I if c in ("load_id", "source_row") else V) for c in CLAIM_TEXT},
        "good": [{"load_id": 1, "source_row": 2, "claim_id": "A1", "related_claim_id": None, "debit_credit": "D",
                  "uzovi": "3311", "provider_agb": "00000001", "practitioner_agb": "00000011", "client_key": "k1",
                  "birth_year": "1980", "trajectory_id": "T1", "trajectory_start_date": "2025-01-01",
                  "prestatiecode": "CO0001", "service_date": "2025-03-01", "zvt": "3", "zorglabel": "S01",
                  "privacy_flag": "false", "referral_type": "01", "referral_date": "2025-01-01", "location_id": None,
                  "declared_amount": "100.00", "allowed_amount": "1.234,50", "submitted_date": "2025-04-01"}],
        "bad": [
            *[({column: None}, {f"not_null:{column}": 1})
              for column in ("claim_id", "debit_credit", "provider_agb", "client_key", "prestatiecode", "service_date",
                             "declared_amount")],
            ({"provider_agb": "1234567"}, {"regex:provider_agb": 1}),
            ({"practitioner_agb": "ABC"}, {"regex:practitioner_agb": 1}),
            ({"debit_credit": "X"}, {"regex:debit_credit": 1}),
            ({"prestatiecode": "CO627"}, {"regex:prestatiecode": 1}),
            ({"service_date": "01-03-2025"}, {"regex:service_date": 1}),
            ({"referral_date": "2025/01/01"}, {"regex:referral_date": 1}),
            ({"trajectory_start_date": "gisteren"}, {"regex:trajectory_start_date": 1}),
            ({"submitted_date": "20250401"}, {"regex:submitted_date": 1}),
            ({"declared_amount": "honderd"}, {"regex:declared_amount": 1}),
            ({"declared_amount": "-5.00"}, {"not_regex:declared_amount": 1}),
            ({"allowed_amount": "1,2,3"}, {"regex:allowed_amount": 1}),
            ({"allowed_amount": "-1"}, {"not_regex:allowed_amount": 1}),
            ({"zvt": "9"}, {"in_set:zvt": 1}),
            ({"zorglabel": "DIGITAAL"}, {"regex:zorglabel": 1}),
            ({"privacy_flag": "misschien"}, {"regex:privacy_flag": 1}),
            ({"birth_year": "80"}, {"regex:birth_year": 1}),
            ({"referral_type": "8"}, {"regex:referral_type": 1}),
            ({"uzovi": "33"}, {"regex:uzovi": 1}),
        ],
    },
    "raw.contracts": {
        "columns": {"load_id": I, "source_row": I, "provider_agb": V, "year": V, "provider_name": V,
                    "provider_type": V, "omzetmaximum": V},
        "good": [{"load_id": 1, "source_row": 2, "provider_agb": "00000001", "year": "2025", "provider_name": "X",
                  "provider_type": "Vrijgevestigde", "omzetmaximum": "1.000.000,00"}],
        "bad": [
            ({"load_id": 2, "provider_agb": None}, {"not_null:provider_agb": 1}),
            ({"load_id": 3, "year": None}, {"not_null:year": 1}),
            ({"load_id": 4, "provider_type": None}, {"not_null:provider_type": 1}),
            ({"load_id": 5, "provider_agb": "1"}, {"regex:provider_agb": 1}),
            ({"load_id": 6, "year": "25"}, {"regex:year": 1}),
            ({"load_id": 7, "provider_type": "ziekenhuis"}, {"regex:provider_type": 1}),
            ({"load_id": 8, "omzetmaximum": "veel"}, {"regex:omzetmaximum": 1}),
            ({"load_id": 9}, {"compound_unique:load_id,provider_agb,year": 1}),
            ({"load_id": 9}, {"compound_unique:load_id,provider_agb,year": 1}),
        ],
    },
    "quality.file_accounting": {
        "columns": {"file_name": V, "quarantined_file": V, "file_with_rejected_rows": V, "balanced": B,
                    "rows_superseded": I},
        "good": [{"file_name": "claims_1.csv", "quarantined_file": None, "file_with_rejected_rows": None,
                  "balanced": True, "rows_superseded": 0}],
        "bad": [
            ({"quarantined_file": "claims_2.csv", "balanced": None}, {"null:quarantined_file": 1}),
            ({"file_with_rejected_rows": "claims_3.csv"}, {"null:file_with_rejected_rows": 1}),
            ({"balanced": False}, {"in_set:balanced": 1}),
            ({"rows_superseded": -1}, {"between:rows_superseded[0,None]": 1}),
        ],
    },
    # the fatal suite validates the view the check builds over staging.claim_lines (sql/quality/claim_lines_integrity.sql)
    "quality.claim_lines_integrity": {
        "columns": {"claim_id": V, "debit_credit": V, "provider_agb": V, "client_key": V, "prestatiecode": V,
                    "service_date": D, "declared_amount": N, "amount": N, "unknown_prestatiecode": V},
        "good": [{"claim_id": "A1", "debit_credit": "D", "provider_agb": "00000001", "client_key": "k1",
                  "prestatiecode": "CO0001", "service_date": "2025-03-01", "declared_amount": 100, "amount": 90,
                  "unknown_prestatiecode": None}],
        "bad": [
            ({"claim_id": "DUP"}, {"unique:claim_id": 1}),
            ({"claim_id": "DUP"}, {"unique:claim_id": 1}),
            *[({"claim_id": f"NN{i}", column: None}, {f"not_null:{column}": 1})
              for i, column in enumerate(("debit_credit", "provider_agb", "client_key", "prestatiecode",
                                          "service_date", "declared_amount", "amount"))],
            ({"claim_id": None}, {"not_null:claim_id": 1}),
            ({"claim_id": "X1", "debit_credit": "X"}, {"in_set:debit_credit": 1}),
            ({"claim_id": "X2", "prestatiecode": "ZZ9999", "unknown_prestatiecode": "ZZ9999"},
             {"null:unknown_prestatiecode": 1}),
            ({"claim_id": "X3", "declared_amount": -1}, {"between:declared_amount[0,None]": 1}),
        ],
    },
    "staging.claim_lines": {
        "columns": {"claim_id": V, "related_claim_id": V, "debit_credit": V, "provider_agb": V, "practitioner_agb": V,
                    "birth_year": I, "trajectory_start_date": D, "service_date": D, "zvt": I, "zorglabel": V,
                    "referral_date": D, "declared_amount": N, "allowed_amount": N, "submitted_date": D},
        "good": [{"claim_id": "A1", "related_claim_id": None, "debit_credit": "D", "provider_agb": "00000001",
                  "practitioner_agb": "00000011", "birth_year": 1980, "trajectory_start_date": "2025-01-01",
                  "service_date": "2025-03-01", "zvt": 3, "zorglabel": "S01", "referral_date": "2025-01-01",
                  "declared_amount": 100, "allowed_amount": 90, "submitted_date": "2025-04-01"}],
        "bad": [
            ({"claim_id": "P0", "declared_amount": -1, "allowed_amount": None},
             {"between:declared_amount[0,10000]": 1}),
            ({"claim_id": "P1", "provider_agb": "123"}, {"regex:provider_agb": 1}),
            ({"claim_id": "P2", "practitioner_agb": "X"}, {"regex:practitioner_agb": 1}),
            ({"claim_id": "P3", "zvt": 9}, {"in_set:zvt": 1}),
            ({"claim_id": "P4", "zorglabel": "S99"}, {"in_set:zorglabel": 1}),
            ({"claim_id": "P5", "declared_amount": 20000}, {"between:declared_amount[0,10000]": 1}),
            # above the ceiling, and more than was declared
            ({"claim_id": "P6", "allowed_amount": 10001},
             {"between:allowed_amount[0,10000]": 1, "pair:declared_amount>=allowed_amount": 1}),
            ({"claim_id": "P7", "declared_amount": 50, "allowed_amount": 60}, {"pair:declared_amount>=allowed_amount": 1}),
            ({"claim_id": "P8", "referral_date": "2025-03-02"}, {"pair:service_date>=referral_date": 1}),
            ({"claim_id": "P9", "trajectory_start_date": "2025-04-01"}, {"pair:service_date>=trajectory_start_date": 1}),
            ({"claim_id": "P10", "submitted_date": "2025-02-01"}, {"pair:submitted_date>=service_date": 1}),
            ({"claim_id": "P11", "birth_year": 1800}, {"between:birth_year[1900,2100]": 1}),
            ({"claim_id": "P12", "debit_credit": "C"}, {"not_null:related_claim_id": 1}),
        ],
    },
    "quality.claim_line_checks": {
        "columns": {"claim_id": V, "credit_without_debit": V, "outside_contract_years": I,
                    "year_without_contract": V, "after_as_of": D},
        "good": [{"claim_id": "A1", "credit_without_debit": None, "outside_contract_years": None,
                  "year_without_contract": None, "after_as_of": None}],
        "bad": [
            ({"claim_id": "C1", "credit_without_debit": "D404"}, {"null:credit_without_debit": 1}),
            ({"claim_id": "C2", "outside_contract_years": 2019}, {"null:outside_contract_years": 1}),
            ({"claim_id": "C3", "year_without_contract": "00000009/2025"}, {"null:year_without_contract": 1}),
            ({"claim_id": "C4", "after_as_of": "2026-02-01"}, {"null:after_as_of": 1}),  # counted, never failed
            ({"claim_id": "C5", "after_as_of": "2026-03-01"}, {"null:after_as_of": 1}),
        ],
    },
    "marts.provider_scorecard": {
        "columns": {"provider_agb": V, "year": I, "norms_missed": I, "norms_evaluated": I},
        "good": [{"provider_agb": "00000001", "year": 2025, "norms_missed": 1, "norms_evaluated": 3}],
        "bad": [
            ({"provider_agb": None}, {"not_null:provider_agb": 1}),
            ({"provider_agb": "DUP"}, {"compound_unique:provider_agb,year": 1}),
            ({"provider_agb": "DUP"}, {"compound_unique:provider_agb,year": 1}),
            ({"provider_agb": "00000002", "norms_missed": -1}, {"between:norms_missed[0,$benchmark_count]": 1}),
            ({"provider_agb": "00000003", "norms_evaluated": 7}, {"between:norms_evaluated[0,$benchmark_count]": 1}),
            ({"provider_agb": "00000004", "norms_missed": 3, "norms_evaluated": 2},
             {"pair:norms_evaluated>=norms_missed": 1}),
        ],
    },
    "quality.scorecard_coverage": {
        "columns": {"provider_agb": V, "year": I, "missing_from_scorecard": V},
        "good": [{"provider_agb": "00000001", "year": 2025, "missing_from_scorecard": None}],
        "bad": [({"provider_agb": "00000009", "missing_from_scorecard": "00000009/2025"},
                 {"null:missing_from_scorecard": 1})],
    },
}
# the mart of every benchmark, by role; which expectations exist depends on the benchmark's unit (marts.json)
MART_GOOD = {"provider_agb": "00000001", "year": 2025, "value": 0.5, "numerator": 1, "denominator": 2}
MART_BAD = [
    ({"provider_agb": None}, {"not_null:provider_agb": 1}),
    ({"year": None}, {"not_null:year": 1}),
    ({"provider_agb": "DUP"}, {"compound_unique:provider_agb,year": 1}),
    ({"provider_agb": "DUP"}, {"compound_unique:provider_agb,year": 1}),
    ({"value": 1.5}, {"between:{value}[0,1]": 1}),
    ({"value": -0.1}, {"between:{value}[0,1]": 1, "between:{value}[0,None]": 1}),
    ({"numerator": -1}, {"between:{numerator}[0,None]": 1}),
    ({"numerator": None, "denominator": -1}, {"between:{denominator}[0,None]": 1}),
    ({"numerator": 5, "denominator": 2}, {"pair:{denominator}>={numerator}": 1}),
    ({"value": None, "denominator": 10}, {"not_null:{value}": 1}),
]
# empty tables: the row-count expectations; a claims table without the required columns: column_to_exist
EMPTY = {"reference.prestatiecodes": "empty.prestatiecodes", "quality.claim_lines_integrity": "empty.claim_lines",
         "marts.provider_scorecard": "empty.provider_scorecard"}
MISSING_COLUMNS = {"raw.claims": "missing.claims"}


def _create(con, table: str, columns: dict[str, str], records: list[dict]) -> None:
    con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
    if records:
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in columns)})",
                        [[r.get(c) for c in columns] for r in records])


def _mart_table(benchmark) -> tuple[dict, list[dict], dict[str, int]]:
    role = {"value": benchmark.value_column, "numerator": benchmark.numerator_column,
            "denominator": benchmark.denominator_column}
    columns = {"provider_agb": V, "year": I, **{role[r]: "DOUBLE" for r in role}}
    records, expected = [], {}
    for i, (overrides, breaks) in enumerate([({}, {}), *MART_BAD]):
        row = {**MART_GOOD, "provider_agb": f"0000{i:04d}", **overrides}
        records.append({role.get(k, k): v for k, v in row.items()})
        for key, n in breaks.items():
            rendered = key.format(**role)
            expected[rendered] = expected.get(rendered, 0) + n
    return columns, records, expected


@pytest.fixture(scope="module")
def bad_warehouse(tmp_path_factory) -> tuple[Path, dict[str, dict[str, int]]]:
    path = tmp_path_factory.mktemp("bad") / "bad.duckdb"
    con = duckdb.connect(str(path))
    expected: dict[str, dict[str, int]] = {}
    for schema in ("reference", "raw", "staging", "quality", "marts", "empty", "missing"):
        con.execute(f"CREATE SCHEMA {schema}")
    for table, spec in TABLES.items():
        records = list(spec["good"])
        expected[table] = {}
        for overrides, breaks in spec["bad"]:
            records.append({**spec["good"][0], **overrides})
            for key, n in breaks.items():
                expected[table][key] = expected[table].get(key, 0) + n
        _create(con, table, spec["columns"], records)
        if table in EMPTY:
            _create(con, EMPTY[table], spec["columns"], [])
    _create(con, "missing.claims", {"load_id": I, "source_row": I, "related_claim_id": V}, [])
    for b in benchmarks():
        columns, records, expected[f"marts.{b.name}"] = _mart_table(b)
        _create(con, f"marts.{b.name}", columns, records)
    # reference value sets the suites read at run time
    _create(con, "reference.settings", {"setting": I}, [{"setting": s} for s in range(1, 9)])
    _create(con, "reference.beroepscategorieen", {"beroepscategorie": I}, [{"beroepscategorie": s} for s in range(1, 9)])
    _create(con, "reference.zorglabels", {"zorglabel": V}, [{"zorglabel": "S01"}])
    con.close()
    return path, expected


def _parameters(path: Path, binding) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return resolve_parameters(con, binding.parameter_names)
    finally:
        con.close()


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: f"{b.suite_name}")
def test_every_expectation_fails_on_its_bad_example_with_the_hand_counted_count(bad_warehouse, binding):
    path, expected_by_table = bad_warehouse
    expected = expected_by_table[binding.table]
    keys = [key_of(e) for e in binding.expectations]
    assert len(set(keys)) == len(keys), f"expectation names not unique in {binding.suite_name}: {keys}"
    parameters = _parameters(path, binding)

    outcomes = validate_table(path, binding.table, binding.suite, expectation_parameters=parameters)
    structural = {"row_count"} | {k for k in keys if k.startswith("exists:")}
    for exp, key, outcome in zip(binding.expectations, keys, outcomes, strict=True):
        label = f"{binding.suite_name} {key}: {outcome.message}"
        assert outcome.evaluated, label
        if key in structural:
            assert outcome.success, label  # these fail on the empty / column-less tables below
            continue
        assert expected.get(key, 0) > 0, f"no failing example for {label}"
        assert outcome.unexpected_count == expected[key], label
        count_only = exp["meta"].get("count_only", False)
        assert outcome.success is count_only, label
        assert outcome.severity == exp["meta"]["severity"]

    if "row_count" in keys:
        empty = validate_table(path, EMPTY[binding.table], binding.suite, expectation_parameters=parameters)
        (row_count,) = [o for k, o in zip(keys, empty) if k == "row_count"]
        assert row_count.evaluated and not row_count.success and row_count.observed_value == 0
    if binding.table in MISSING_COLUMNS and any(k.startswith("exists:") for k in keys):
        missing = validate_table(path, MISSING_COLUMNS[binding.table], binding.suite,
                                 expectation_parameters=parameters)
        exists = [o for k, o in zip(keys, missing) if k.startswith("exists:")]
        assert exists and all(o.evaluated and not o.success for o in exists)


def test_every_bad_example_is_used(bad_warehouse):
    """Annotations that name no expectation would be dead test data (e.g. after a suite change)."""
    _, expected_by_table = bad_warehouse
    keys = {(b.table, key_of(e)) for b in BINDINGS for e in b.expectations}
    for table, expected in expected_by_table.items():
        if table.startswith("marts.") and table != "marts.provider_scorecard":
            continue  # the mart rows serve three kinds of benchmark: each uses a subset
        unused = [k for k in expected if (table, k) not in keys]
        assert not unused, f"{table}: {unused}"


# ---------------------------------------------------------------------------------------------------------------
# 3. generated sample data: every expectation evaluated
# ---------------------------------------------------------------------------------------------------------------

def _build_sample_run(folder: Path) -> dict:
    from sample_data.generate import generate

    generate(folder / "landing", providers=8, clients=300, years=(2025, 2026), seed=1)
    return run_record(materialize_with_checks(folder / "landing", folder / "data"))


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    with opened_run(tmp_path_factory, "sample_data", _build_sample_run) as run:
        yield run


def test_every_suite_is_evaluated_on_generated_sample_data(sample_run):
    record, con, _ = sample_run
    assert record["success"]
    assert len(record["checks"]) == len(BINDINGS)
    rows = con.execute("SELECT suite, expectation, column_name, evaluated, message FROM quality.expectation_results"
                       ).fetchall()
    unevaluated = [r[4] for r in rows if not r[3]]
    assert not unevaluated, "\n".join(unevaluated)
    assert len(rows) == sum(len(b.expectations) for b in BINDINGS)
    assert {r[0] for r in rows} == {b.suite_name for b in BINDINGS}


def test_generated_sample_data_passes_every_fatal_and_error_expectation(sample_run):
    _, con, _ = sample_run
    failed = con.execute("SELECT message FROM quality.expectation_results WHERE NOT success AND NOT count_only "
                         "AND severity IN ('fatal', 'error')").fetchall()
    assert not failed, "\n".join(m for (m,) in failed)
    (balanced,) = con.execute("SELECT bool_and(balanced) FROM quality.file_accounting").fetchone()
    assert balanced
