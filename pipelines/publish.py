"""The last asset of every run: publish the finished working copy for readers (see pipelines/warehouse.py)."""


import dagster as dg

from pipelines.ingest.assets import WAREHOUSE_POOL
from pipelines.resources import PipelineSettings


def publish_asset(upstream: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(key=["published_warehouse"], deps=upstream, group_name="publish", kinds={"duckdb"},
              pool=WAREHOUSE_POOL,
              description="DATA_DIR/warehouse.duckdb: the published warehouse that analysts and data engineers "
                          "open read-only. Replaced atomically at the end of a successful run.")
    def published_warehouse(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
        path = settings.warehouse.publish()
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                              "size_mb": round(path.stat().st_size / 1e6, 1)})

    return published_warehouse
