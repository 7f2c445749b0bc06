"""Test helpers: a run through the real graph with the quality checks, built once per test session.

pytest-xdist (``-n 2``) gives each worker its own copy of a module-scoped fixture, so an expensive warehouse
would be built twice. ``build_once`` builds it in a folder the workers share (the documented xdist pattern:
the parent of each worker's basetemp, with a lock) and keeps what the tests need from the Dagster result as
JSON, because the result object itself cannot cross processes.
"""

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from pipelines.definitions import all_assets
from pipelines.quality.checks import quality_checks
from pipelines.resources import PipelineSettings
from pipelines.run import _failed_error_checks


def materialize_with_checks(landing: Path, data_dir: Path, **options) -> dg.ExecuteInProcessResult:
    """Like tests.builders.materialize, with the quality checks (what the CLI and the schedule run)."""
    settings = PipelineSettings(landing_dir=str(landing), data_dir=str(data_dir), trend_months=1, threads=1,
                                memory_limit="1GB", **options)
    selection = dg.AssetSelection.all() - dg.AssetSelection.groups("dashboards")
    result = dg.materialize([*all_assets(), *quality_checks()], selection=selection, resources={"settings": settings},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    settings.warehouse.wait_for_working_copy()  # made in the background after publishing, as the CLI waits for it
    return result


def run_record(result: dg.ExecuteInProcessResult) -> dict:
    """What the tests read from a run, as JSON."""
    checks = []
    failures = []
    for event in result.all_events:
        data = event.event_specific_data
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            checks.append({
                "asset": data.asset_key.to_user_string(), "check": data.check_name, "passed": data.passed,
                "severity": data.severity.value, "blocking": bool(data.blocking),
                "metadata": {k: (v.value if isinstance(v.value, (str, int, float, bool)) or v.value is None
                                 else str(v.value)) for k, v in data.metadata.items()},
            })
        elif event.event_type_value == "STEP_FAILURE":
            cause = data.error.cause
            failures.append({"step": event.step_key, "message": data.error.message,
                             "cause": cause.cls_name if cause else None,
                             "cause_message": cause.message if cause else None})
    return {
        "run_id": result.run_id,
        "success": result.success,
        "started": [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"],
        "materialized": sorted({e.event_specific_data.materialization.asset_key.to_user_string()
                                for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}),
        "checks": checks,
        "failures": failures,
        "failed_error_checks": _failed_error_checks(result),
    }


def build_once(tmp_path_factory, name: str, build: Callable[[Path], dict | None]) -> tuple[Path, dict]:
    """Run ``build(folder)`` once per test session (across xdist workers); return the folder and its record."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session only
    folder = base / f"shared_{name}"
    with open(base / f"shared_{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / "record.json"
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            record = build(folder) or {}
            done.write_text(json.dumps(record), encoding="utf-8")
    return folder, json.loads(done.read_text(encoding="utf-8"))


@contextlib.contextmanager
def opened_run(tmp_path_factory, name: str, build: Callable):
    """A run built once (see build_once) that succeeded, with a read-only connection to its published warehouse:
    yields (record, connection, data_dir)."""
    import duckdb

    folder, record = build_once(tmp_path_factory, name, build)
    assert record["success"], record["failures"]
    con = duckdb.connect(str(folder / "data" / "warehouse.duckdb"), read_only=True)
    try:
        yield record, con, folder / "data"
    finally:
        con.close()
