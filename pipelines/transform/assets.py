"""One asset per SQL model in ``sql/staging``, ``sql/core`` and ``sql/marts`` (made by one factory)."""


import dagster as dg

from pipelines.resources import PipelineSettings
from pipelines.sql_models import SqlModel, materialise, models


def asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def sql_model_asset(model: SqlModel, extra_metadata: dict | None = None) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(model.table),
        deps=[asset_key(t) for t in model.inputs],
        group_name=model.schema,
        description=model.description,
        kinds={"duckdb", "sql"},
        metadata={"sql_file": str(model.path.relative_to(model.path.parents[2])), **(extra_metadata or {})},
    )
    def _build(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
        with settings.warehouse.connect() as con:
            rows = materialise(con, model, full_rebuild=settings.full_rebuild)
        if rows is None:
            return dg.MaterializeResult(metadata={"view": model.table})
        return dg.MaterializeResult(metadata={"rows": rows, "table": model.table})

    return _build


def sql_model_assets(schema: str, exclude: set[str] = frozenset()) -> list[dg.AssetsDefinition]:
    return [sql_model_asset(m) for m in models(schema) if m.name not in exclude]
