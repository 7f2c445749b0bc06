"""The data-quality checks in the Dagster graph: where they sit, what they block, what a run records.

Two runs through the real graph (checks included): tiny extracts plus one unreadable file (a failed ERROR check
that blocks nothing), and extracts whose every row is rejected (the fatal check blocks core and marts). The
severity rules themselves are tested without Dagster on hand-made outcomes.
"""

import shutil

import dagster as dg
import duckdb
import pytest

from pipelines.contract import CLAIMS
from pipelines.definitions import MAIN_JOB, all_assets, build_definitions
from pipelines.quality.checks import check_result
from pipelines.quality.gx_runner import ExpectationOutcome
from pipelines.quality.suites import suite_bindings
from pipelines.quality.summary import quality_summary
from pipelines.resources import PipelineSettings
from tests.builders import BEH_60, DIAG_60, GROUP, P1, P2, claim, contract, credit, write_csv, write_landing
from tests.quality.runs import build_once, materialize_with_checks, opened_run, run_record


def evaluations(record: dict) -> dict[tuple[str, str], dict]:
    return {(c["asset"], c["check"]): c for c in record["checks"]}


# ---------------------------------------------------------------------------------------------------------------
# definitions
# ---------------------------------------------------------------------------------------------------------------

def test_checks_sit_on_the_assets_they_validate_in_the_definitions(tmp_path):
    defs = build_definitions(PipelineSettings(landing_dir=str(tmp_path), data_dir=str(tmp_path)))
    graph = defs.resolve_asset_graph()
    specs = {(k.asset_key.to_user_string(), k.name): graph.get_check_spec(k) for k in graph.asset_check_keys}
    expected = {(b.asset_path, b.check_name): b.blocking for b in suite_bindings()}
    assert {key: spec.blocking for key, spec in specs.items()} == expected
    assert specs[("staging/claim_lines", "staging_claim_lines_integrity")].blocking
    assert specs[("reference/prestatiecodes", "reference_prestatiecodes")].blocking
    assert not specs[("raw/load_manifest", "file_accounting")].blocking
    for key in specs:
        assert graph.has(dg.AssetKey(key[0].split("/"))), key
    # the main job runs them, and publishing waits for the Data Docs
    job = defs.resolve_job_def(MAIN_JOB)
    assert set(job.asset_layer.asset_graph.asset_check_keys) == set(graph.asset_check_keys)
    publish = graph.get(dg.AssetKey("published_warehouse"))
    assert dg.AssetKey(["quality", "data_docs"]) in publish.parent_keys
    assert graph.get(dg.AssetKey(["quality", "data_docs"])).group_name == "quality"


# ---------------------------------------------------------------------------------------------------------------
# severity rules, on hand-made outcomes
# ---------------------------------------------------------------------------------------------------------------

BINDING = next(b for b in suite_bindings() if b.check_name == "claim_line_checks")  # 3 warn/error + 1 count_only


def outcome(i: int, *, success=True, evaluated=True, unexpected=0) -> ExpectationOutcome:
    exp = BINDING.expectations[i]
    return ExpectationOutcome(
        suite=BINDING.suite_name, expectation=exp["type"], column=exp["kwargs"].get("column"), kwargs=exp["kwargs"],
        success=success, evaluated=evaluated, unexpected_count=unexpected if evaluated else None, element_count=10,
        unexpected_sample=["D404"] if not success else [], severity=exp["meta"]["severity"],
        message=f"[{exp['meta']['severity']}] {exp['type']} on {exp['kwargs'].get('column')}: "
                + ("could not be evaluated: boom" if not evaluated else ("FAILED" if not success else "passed")),
    )


def severities():
    return [e["meta"]["severity"] for e in BINDING.expectations], [e["meta"].get("count_only", False)
                                                                     for e in BINDING.expectations]


def test_all_passed_and_counted_only_expectations_pass_the_check():
    results = [outcome(i) for i in range(4)]
    results[3] = outcome(3, success=True, unexpected=7)  # count_only: counted, never failed
    result = check_result(BINDING, results)
    assert result.passed
    assert result.metadata["count_after_as_of"].value == 7


def test_check_severity_is_the_worst_failed_expectation():
    levels, _ = severities()
    warn = levels.index("warn")
    error = levels.index("error")
    only_warn = check_result(BINDING, [outcome(i, success=i != warn, unexpected=int(i == warn)) for i in range(4)])
    assert not only_warn.passed and only_warn.severity == dg.AssetCheckSeverity.WARN
    both = check_result(BINDING, [outcome(i, success=i not in (warn, error), unexpected=1) for i in range(4)])
    assert not both.passed and both.severity == dg.AssetCheckSeverity.ERROR
    details = both.metadata["details"].value
    assert "2 of 4 expectations failed" in details and details.index("[error]") < details.index("[warn]")


def test_an_expectation_that_could_not_be_evaluated_fails_the_check_with_error():
    levels, _ = severities()
    warn = levels.index("warn")
    result = check_result(BINDING, [outcome(i, evaluated=i != warn, success=i != warn) for i in range(4)])
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "could not be evaluated" in result.metadata["details"].value
    assert result.metadata["unevaluated_expectations"].value == 1


def test_a_suite_that_could_not_run_fails_the_check_with_error():
    result = check_result(BINDING, [], error="ValueError: cannot read table quality.claim_line_checks")
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "could not run" in result.metadata["details"].value


# ---------------------------------------------------------------------------------------------------------------
# a run with one unreadable file: a failed ERROR check, nothing blocked
# ---------------------------------------------------------------------------------------------------------------

D1 = claim("D1", "c1", "2025-02-01", BEH_60, provider=P1, zvt=3)
CLAIMS_OK = [
    D1, claim("D2", "c2", "2025-02-03", DIAG_60, provider=P1, zvt=1), claim("D3", "c3", "2025-03-01", GROUP,
                                                                           provider=P2, zvt=4),
    claim("D4", "c1", "2025-04-01", BEH_60, provider=P2, zorglabel="S01"),
    credit("C1", D1, "40.00"),
    {**credit("C2", D1, "10.00"), "related_claim_id": "NOT-THERE"},  # an orphan credit: a WARN finding
]


def _build_bad_file_run(folder):
    landing = write_landing(folder / "landing", CLAIMS_OK, [contract(P1), contract(P2, omzetmaximum="5000.00")])
    (landing / "claims_2_broken.csv").write_bytes(b"\x00\x01PK" * 100)  # a zip named .csv: quarantined
    data_dir = folder / "data"
    (data_dir / "dashboards").mkdir(parents=True)
    (data_dir / "dashboards" / "keep.html").write_text("owned by the dashboards component")
    first = run_record(materialize_with_checks(landing, data_dir))
    second = run_record(materialize_with_checks(landing, data_dir))  # the next night: no new files
    return {**first, "next_night": second}


@pytest.fixture(scope="module")
def bad_file_run(tmp_path_factory):
    with opened_run(tmp_path_factory, "one_bad_file", _build_bad_file_run) as run:
        yield run


def test_the_next_run_without_new_files_does_not_fail_on_old_deliveries(bad_file_run):
    first, con, _ = bad_file_run
    record = first["next_night"]
    assert record["success"] and record["failed_error_checks"] == []
    checks = evaluations(record)
    accounting = checks[("raw/load_manifest", "file_accounting")]
    assert accounting["passed"] and "no file was loaded by this run" in accounting["metadata"]["scope"]
    assert checks[("raw/claims", "landing_claims")]["passed"]
    # the current state still has its orphan credit: staging checks keep saying so
    assert not checks[("staging/claim_lines", "claim_line_checks")]["passed"]
    summary = quality_summary(con)  # the latest run's checks; the files of all runs
    assert summary["checks_run_id"] == record["run_id"] and summary["files_quarantined"] == 1
    assert [c["check"] for c in summary["failed_checks"]] == ["claim_line_checks"]


def test_one_bad_file_fails_an_error_check_and_the_marts_are_still_built(bad_file_run):
    record, _, _ = bad_file_run
    assert record["success"]
    checks = evaluations(record)
    accounting = checks[("raw/load_manifest", "file_accounting")]
    assert not accounting["passed"] and accounting["severity"] == "ERROR" and not accounting["blocking"]
    assert "claims_2_broken.csv" in accounting["metadata"]["details"].replace("\\_", "_")
    assert "raw/load_manifest:file_accounting" in record["failed_error_checks"]  # the CLI's exit code sees it
    built = set(record["materialized"])
    assert {f"marts/{name}" for name in ("group_treatment_share", "s01_usage", "provider_scorecard")} <= built
    assert "published_warehouse" in built and "quality/data_docs" in built
    # every other check ran; the orphan credit is a warning, not an error
    assert len(checks) == len(suite_bindings())
    assert {k for k, e in checks.items() if not e["passed"]} == {("raw/load_manifest", "file_accounting"),
                                                                  ("staging/claim_lines", "claim_line_checks")}
    assert checks[("staging/claim_lines", "claim_line_checks")]["severity"] == "WARN"


def test_every_check_runs_right_after_its_asset_and_before_publishing(bad_file_run):
    record, _, _ = bad_file_run
    started = record["started"]
    position = {key: i for i, key in enumerate(started)}
    checks = [k for k in started if k.endswith(tuple(f"_{b.check_name}" for b in suite_bindings()))]
    assert checks and all(position[k] < position["quality__data_docs"] < position["published_warehouse"]
                          for k in checks)


def test_results_are_recorded_without_client_keys(bad_file_run):
    record, con, _ = bad_file_run
    rows = con.execute("SELECT run_id, check_name, severity, evaluated, success, sample, message "
                       "FROM quality.expectation_results WHERE run_id = ?", [record["run_id"]]).fetchall()
    assert len(rows) == sum(len(b.expectations) for b in suite_bindings())
    assert all(r[3] for r in rows)
    (runs,) = con.execute("SELECT count(DISTINCT run_id) FROM quality.expectation_results").fetchone()
    assert runs == 2  # kept across runs
    keys = {k for (k,) in con.execute("SELECT DISTINCT client_key FROM staging.claim_lines").fetchall()}
    for *_, sample, message in rows:
        assert not any(k in (sample or "") or k in message for k in keys)
    (failed,) = [r for r in rows if r[1] == "file_accounting" and not r[4] and "quarantined_file" in r[6]]
    assert failed[5] == "claims_2_broken.csv"
    # the view the fatal check builds for itself is dropped again; the quality tables and views are published
    objects = {f"{s}.{n}" for s, n in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name = 'quality' "
        "UNION SELECT schema_name, view_name FROM duckdb_views() WHERE schema_name = 'quality'").fetchall()}
    assert "quality.claim_lines_integrity" not in objects and not {o for o in objects if o.endswith("_this_run")}
    assert {"quality.rejected_rows", "quality.file_accounting", "quality.claim_line_checks",
            "quality.scorecard_coverage", "quality.expectation_results", "quality.validation_results"} <= objects


def test_data_docs_are_built_beside_the_dashboards_from_the_run(bad_file_run):
    _, _, data_dir = bad_file_run
    index = data_dir / "data_docs" / "index.html"
    text = index.read_text(encoding="utf-8")
    # the docs of the latest run (the fixture's second, with no new file): only the orphan credit is left
    assert "passed: file_accounting on quality.file_accounting_this_run" in text
    assert "FAILED: claim_line_checks on quality.claim_line_checks" in text
    assert "passed: marts.s01_usage on marts.s01_usage" in text
    assert len(list((data_dir / "data_docs" / "validations").rglob("*.html"))) == len(suite_bindings())
    assert (data_dir / "dashboards" / "keep.html").is_file()  # never touched
    assert not list((data_dir / "dashboards").rglob("*validations*"))


def test_quality_summary_reports_files_rows_and_failed_checks(bad_file_run):
    record, con, _ = bad_file_run
    summary = quality_summary(con, run_id=record["run_id"])
    assert summary["files_loaded"] == 2 and summary["files_quarantined"] == 1
    assert summary["quarantined"][0]["file"] == "claims_2_broken.csv"
    assert summary["rows_in_files"] == len(CLAIMS_OK) + 2 and summary["rows_rejected"] == 0
    assert summary["valid_claim_lines"] == len(CLAIMS_OK) and summary["unbalanced_files"] == []
    failed = {c["check"]: c for c in summary["failed_checks"]}
    assert failed["file_accounting"]["severity"] == "ERROR" and not failed["file_accounting"]["blocking"]
    assert failed["claim_line_checks"]["severity"] == "WARN"
    assert summary["fatal"] == []


# ---------------------------------------------------------------------------------------------------------------
# fatal: no valid claim line at all
# ---------------------------------------------------------------------------------------------------------------

def _build_fatal_run(folder):
    landing = folder / "landing"
    write_csv(landing / "claims_1.csv", [claim("X1", "c1", "2025-02-30", BEH_60),
                                         claim("X2", "c1", "2025-03-01", "ZZ0000")], CLAIMS.columns)
    return run_record(materialize_with_checks(landing, folder / "data"))


@pytest.fixture(scope="module")
def fatal_run(tmp_path_factory):
    folder, record = build_once(tmp_path_factory, "fatal", _build_fatal_run)
    con = duckdb.connect(str(folder / "data" / "build" / "warehouse.duckdb"), read_only=True)
    yield record, con
    con.close()


def test_no_valid_claims_blocks_core_and_marts_with_a_clear_reason(fatal_run):
    record, con = fatal_run
    assert not record["success"]
    gate = evaluations(record)[("staging/claim_lines", "staging_claim_lines_integrity")]
    assert not gate["passed"] and gate["severity"] == "ERROR" and gate["blocking"]
    assert "No valid claim line at all" in gate["metadata"]["details"]
    loaded = gate["metadata"]["loaded"]
    assert "0 usable" in loaded and "service_date: not a date" in loaded and "prestatiecode: unknown" in loaded
    assert "staging/claim_lines:staging_claim_lines_integrity" in record["failed_error_checks"]
    built = set(record["materialized"])
    assert "staging/claim_lines" in built
    blocked = {k for k in built if k.startswith(("core/", "marts/"))} - {"core/policy_parameters"}  # reads no claims
    assert not blocked and "published_warehouse" not in built
    (failure,) = record["failures"]
    assert failure["step"] == "staging__claim_lines_staging_claim_lines_integrity"
    assert "blocking asset check failed" in failure["message"]
    summary = quality_summary(con)
    assert summary["valid_claim_lines"] == 0 and any("no valid claim lines" in m for m in summary["fatal"])


# ---------------------------------------------------------------------------------------------------------------
# fatal: broken reference data
# ---------------------------------------------------------------------------------------------------------------

def test_broken_reference_data_stops_the_run_before_anything_is_counted(tmp_path, monkeypatch):
    from pipelines.paths import PROJECT_ROOT

    reference = tmp_path / "reference"
    shutil.copytree(PROJECT_ROOT / "reference", reference)
    (reference / "zorglabels.csv").unlink()
    monkeypatch.setenv("PRAKTIJKVARIATIE_REFERENCE_DIR", str(reference))
    landing = write_landing(tmp_path / "landing", CLAIMS_OK, [contract(P1)])
    settings = PipelineSettings(landing_dir=str(landing), data_dir=str(tmp_path / "data"), threads=1,
                                memory_limit="1GB")
    result = dg.materialize(all_assets(), selection=dg.AssetSelection.all() - dg.AssetSelection.groups("dashboards"),
                            resources={"settings": settings}, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)
    record = run_record(result)
    assert not record["success"]
    (failure,) = record["failures"]
    assert failure["step"] == "reference_tables" and failure["cause"] == "ReferenceDataError"
    assert "zorglabels.csv is missing" in failure["cause_message"]
    built = set(record["materialized"])
    assert not {"staging/claims_typed", "staging/claim_lines", "core/claim_lines", "published_warehouse"} & built
    assert not {k for k in built if k.startswith("marts/")}
