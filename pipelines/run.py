"""Run the whole asset graph headless, in this process, and summarise the outcome for the terminal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from pipelines.definitions import MAIN_JOB, build_definitions
from pipelines.resources import PipelineSettings
from pipelines.warehouse import Warehouse, run_lock


@dataclass
class RunOutcome:
    success: bool
    data_dir: Path
    failed_steps: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.success and not self.failed_checks else 1

    def report(self) -> str:
        warehouse = Warehouse(self.data_dir)
        if not self.success:
            verdict = "FAILED: the published warehouse was left as it was"
        elif self.failed_checks:
            verdict = "published what the valid data supports, but ERROR checks failed (exit code 1)"
        else:
            verdict = "succeeded"
        lines = ["", f"praktijkvariatie run {verdict}"]
        for key, value in self.summary.items():
            lines.append(f"  {key}: {value}")
        for check in self.failed_checks:
            lines.append(f"  failed check: {check}")
        for step in self.failed_steps:
            lines.append(f"  failed step: {step}")
        lines.append(f"  warehouse:  {warehouse.published_path}")
        lines.append(f"  dashboards: {warehouse.dashboards_dir / 'index.html'}")
        return "\n".join(lines)


def run_pipeline(landing_dir: Path, data_dir: Path, policy: str = "default", as_of: str = "",
                 progress: Callable[[str], None] = print, instance: dg.DagsterInstance | None = None,
                 **settings_overrides) -> RunOutcome:
    if instance is None:
        with dg.DagsterInstance.get() as own_instance:  # closed at the end: its event log's files are kept open
            return run_pipeline(landing_dir, data_dir, policy, as_of, progress, own_instance, **settings_overrides)
    # GX is imported when the loading step starts (pipelines/quality/preload.py), not here: beside Dagster's run
    # set-up, which is Python too, the import made the set-up ~2 s slower
    settings = PipelineSettings(landing_dir=str(landing_dir), data_dir=str(data_dir), policy=policy, as_of=as_of,
                                **settings_overrides)
    defs = build_definitions(settings)
    job = defs.resolve_job_def(MAIN_JOB)
    progress(f"running {MAIN_JOB}: landing {landing_dir}, policy {policy}, as-of {as_of or 'latest service date'}")
    with run_lock(settings.warehouse):  # a second CLI run on the same data directory waits for this one
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        copied = settings.warehouse.wait_for_working_copy()  # made in the background after publishing
    if copied:
        progress(f"next working copy made in {copied[0]:.1f} s after publishing ({copied[1]:.1f} s after the last step)")
    failed_steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    outcome = RunOutcome(success=result.success, data_dir=data_dir, failed_steps=failed_steps)
    outcome.summary = {**_summary(result), **_quality(settings, result.run_id)}
    outcome.failed_checks = _failed_error_checks(result)
    return outcome


def _quality(settings: PipelineSettings, run_id: str) -> dict:
    """Rows rejected by reason, quarantined files and failed checks, read from the working copy (which holds
    this run's results even when it stopped before publishing)."""
    import duckdb

    from pipelines.quality.summary import quality_summary

    path = settings.warehouse.build_path
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        quality = quality_summary(con, run_id)
    except duckdb.Error as error:  # a run that stopped before the quality tables existed
        return {"quality summary": f"not available ({error.__class__.__name__})"}
    finally:
        con.close()
    out = {
        "rows valid (all loads)": quality.get("rows_loaded"),
        "rows rejected (all loads)": quality.get("rows_rejected"),
        "rows superseded by a later delivery": quality.get("rows_superseded"),
    }
    for reason, count in list((quality.get("rows_rejected_by_reason") or {}).items())[:10]:
        out[f"  rejected: {reason}"] = count
    for item in quality.get("quarantined") or []:
        out[f"  quarantined: {item['file']}"] = item["reason"]
    for check in quality.get("failed_checks") or []:
        out[f"  check {check['severity']}: {check['check']} on {check['asset']}"] = \
            f"{check['failed_expectations']} expectation(s) failed"
    for number, message in enumerate(quality.get("fatal") or [], start=1):
        out[f"  fatal problem {number}"] = message
    return out


def _summary(result: dg.ExecuteInProcessResult) -> dict:
    summary = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization.asset_key == dg.AssetKey(["raw", "load_manifest"]):
            meta = {k: v.value for k, v in materialization.metadata.items()}
            labels = {"files_loaded": "files loaded", "files_skipped": "files skipped (loaded before)",
                      "files_quarantined": "files quarantined", "rows_loaded": "rows read into raw",
                      "lines_rejected": "lines unreadable"}
            for key, label in labels.items():
                summary[label] = meta.get(key)
    return summary


def _failed_error_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    failed = []
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        evaluation = event.event_specific_data
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            failed.append(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}")
    return failed
