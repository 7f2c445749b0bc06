"""The Dagster code location: every asset, check, job, schedule and sensor of praktijkvariatie.

``dagster dev`` (and the daemon) load :data:`defs`, configured from PRAKTIJKVARIATIE_* environment variables;
the CLI builds the same definitions with its own settings via :func:`build_definitions`.
"""

from __future__ import annotations

import dagster as dg

from pipelines.automation import build_automation
from pipelines.benchmarks.assets import benchmark_assets
from pipelines.dashboards.assets import dashboard_assets
from pipelines.ingest.assets import raw_extracts, reference_tables
from pipelines.publish import publish_asset
from pipelines.quality.assets import quality_assets
from pipelines.quality.checks import quality_checks
from pipelines.resources import PipelineSettings, settings_from_env
from pipelines.transform.assets import sql_model_assets

MAIN_JOB = "praktijkvariatie"


def all_assets() -> list[dg.AssetsDefinition]:
    assets = [
        reference_tables,
        raw_extracts,
        *sql_model_assets("staging"),
        *sql_model_assets("core"),
        *benchmark_assets(),
        *quality_assets(),
    ]
    upstream = [key for a in assets for key in a.keys]
    # The dashboards read the published warehouse, so they come after it.
    return [*assets, publish_asset(upstream), *dashboard_assets()]


def build_definitions(settings: PipelineSettings) -> dg.Definitions:
    assets = all_assets()
    main_job = dg.define_asset_job(
        MAIN_JOB,
        selection=dg.AssetSelection.all(),
        description="Load new extracts, rebuild staging, core and marts, validate, publish.",
        tags={"praktijkvariatie/writes": "warehouse"},
    )
    schedules, sensors = build_automation(main_job)
    return dg.Definitions(
        assets=assets,
        asset_checks=quality_checks(),
        jobs=[main_job],
        schedules=schedules,
        sensors=sensors,
        resources={"settings": settings},
        # One writer: steps of a run execute one after another in one process.
        executor=dg.in_process_executor,
    )


defs = build_definitions(settings_from_env())
