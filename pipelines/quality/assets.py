"""Assets of the ``quality`` group: the quality tables and views, and the GX Data Docs of the run.

``sql/quality/<name>.sql`` are plain SELECTs like the other SQL models, but some are views (always current,
nothing to store), one is built by its check, and the others are tables (read by several expectations);
``QUALITY_MODELS`` says which is which, and ``sql_models.materialise`` builds them.
"""

import os
import shutil
from pathlib import Path

import dagster as dg

from pipelines.resources import PipelineSettings
from pipelines.sql_models import SqlModel, materialise, models
from pipelines.transform.assets import asset_key

#: sql/quality/<name>.sql -> how it is materialised. CHECK_VIEW: no asset; the check whose suite has
#: ``meta.prepare: "view"`` builds it right before validating and drops it afterwards (a blocking check cannot
#: wait for an asset downstream of the asset it blocks).
QUALITY_MODELS = {
    "rejected_rows": "VIEW",
    "file_accounting": "TABLE",
    "claim_line_checks": "TABLE",  # read by four expectations: computed once, not per expectation
    "scorecard_coverage": "VIEW",
    "claim_lines_integrity": "CHECK_VIEW",
}
DATA_DOCS_DIR = "data_docs"  # under DATA_DIR, beside (not inside) DATA_DIR/dashboards
DATA_DOCS_PRIORITY = "-10"  # after every check that is ready at the same time


def quality_assets() -> list[dg.AssetsDefinition]:
    """The quality tables/views and ``quality/data_docs``, for ``pipelines.definitions.all_assets``."""
    return [*(quality_model_asset(m) for m in quality_models() if QUALITY_MODELS[m.name] != "CHECK_VIEW"),
            data_docs_asset()]


def quality_models() -> list[SqlModel]:
    found = models("quality")
    unknown = sorted({m.name for m in found} - set(QUALITY_MODELS))
    if unknown:
        raise ValueError(f"sql/quality/{unknown[0]}.sql: add it to QUALITY_MODELS (VIEW or TABLE)")
    return found


def build_quality_model(con, model: SqlModel, full_rebuild: bool = False) -> int:
    """(Re)create the view or table of ``model`` (or bring an incremental one up to date) and return its row
    count."""
    rows = materialise(con, model, as_view=QUALITY_MODELS[model.name] != "TABLE", full_rebuild=full_rebuild)
    if rows is None:  # a view: its rows are counted for the asset's metadata
        (rows,) = con.execute(f"SELECT count(*) FROM {model.table}").fetchone()
    return rows


def quality_model_asset(model: SqlModel) -> dg.AssetsDefinition:
    kind = QUALITY_MODELS[model.name]

    @dg.asset(
        key=asset_key(model.table),
        deps=[asset_key(t) for t in model.inputs],
        group_name="quality",
        description=model.description,
        kinds={"duckdb", "sql"},
        metadata={"sql_file": f"sql/quality/{model.path.name}", "materialised_as": kind.lower()},
    )
    def _build(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
        with settings.warehouse.connect() as con:
            rows = build_quality_model(con, model, full_rebuild=settings.full_rebuild)
            metadata = {"rows": rows, "table": model.table}
            if model.name == "file_accounting":
                files, quarantined, with_rejects, unbalanced = con.execute(
                    "SELECT count(*), count(quarantined_file), count(file_with_rejected_rows), "
                    "count(*) FILTER (WHERE NOT balanced) FROM quality.file_accounting"
                ).fetchone()
                metadata.update({"files": files, "files_quarantined": quarantined,
                                 "files_with_rejected_rows": with_rejects, "files_unbalanced": unbalanced})
        return dg.MaterializeResult(metadata=metadata)

    return _build


def data_docs_asset() -> dg.AssetsDefinition:
    from pipelines.quality.checks import checked_asset_keys

    @dg.asset(
        key=["quality", "data_docs"],
        deps=checked_asset_keys(),
        group_name="quality",
        kinds={"html"},
        op_tags={"dagster/priority": DATA_DOCS_PRIORITY},
        description="Great Expectations Data Docs of the run's validations (DATA_DIR/data_docs/index.html): every "
                    "suite, every expectation, with the failing values. Built from quality.validation_results; "
                    "the folder is replaced as a whole.",
    )
    def data_docs(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
        return build_run_data_docs(settings, context.run_id, log=context.log)

    return data_docs


def build_run_data_docs(settings: PipelineSettings, run_id: str | None, log=None) -> dg.MaterializeResult:
    """Build DATA_DIR/data_docs from the validation results of ``run_id`` (else the latest run with results)."""
    from pipelines.quality.results import load_validation_results

    with settings.warehouse.connect() as con:
        found_run, results = load_validation_results(con, run_id)
        if not results and run_id is not None:
            found_run, results = load_validation_results(con, None)
    out = Path(settings.data_dir) / DATA_DOCS_DIR
    if not results:
        if log is not None:
            log.warning("no validation results in the warehouse yet: the quality checks have not run")
        return dg.MaterializeResult(metadata={"validations": 0, "path": dg.MetadataValue.path(str(out))})
    index = replace_data_docs(results, out)
    failed = sum(1 for r in results if not r.success)
    return dg.MaterializeResult(metadata={
        "index": dg.MetadataValue.path(str(index)),
        "validations": len(results),
        "failed_validations": failed,
        "from_run": found_run or "",
        "this_run": found_run == run_id,
    })


def replace_data_docs(results: list, out: Path) -> Path:
    """Build the site in a sibling folder and swap it in, so readers never see half a site."""
    from pipelines.quality.gx_runner import build_data_docs

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = out.with_name(f".{out.name}.building")
    old = out.with_name(f".{out.name}.old")
    for folder in (fresh, old):
        shutil.rmtree(folder, ignore_errors=True)
    build_data_docs(results, fresh)
    if out.exists():
        os.replace(out, old)
    os.replace(fresh, out)
    shutil.rmtree(old, ignore_errors=True)
    return out / "index.html"
