"""The last asset of every run: record the run, document the catalogue, publish the working copy.

Publishing renames the finished working copy into place and copies the next working copy from it in the
background (see pipelines/warehouse.py), so readers see either the previous or the new warehouse, never a
half-built one.
"""

import time
from datetime import datetime, timezone

import dagster as dg

from pipelines.catalog import apply_comments, write_dictionary
from pipelines.incremental import drop_kept_changes
from pipelines.resources import PipelineSettings

RUN_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS quality.run_history (
    run_id            VARCHAR,
    started_at        TIMESTAMP,
    finished_at       TIMESTAMP,
    as_of             DATE,
    policy            VARCHAR,
    files_loaded      INTEGER,
    files_quarantined INTEGER,
    rows_loaded       BIGINT,
    status            VARCHAR
)
"""


def record_run(con, run_id: str, started_at: datetime, status: str) -> None:
    """Append this run to quality.run_history (files and rows counted from the manifest since it started)."""
    con.execute(RUN_HISTORY_DDL)
    con.execute("DELETE FROM quality.run_history WHERE run_id = ?", [run_id])
    con.execute(
        """
        INSERT INTO quality.run_history
        SELECT ?, ?, ?, p.as_of, p.policy,
               count(*) FILTER (WHERE m.status = 'loaded'),
               count(*) FILTER (WHERE m.status = 'quarantined'),
               coalesce(sum(m.rows_loaded), 0), ?
        FROM (SELECT as_of, policy FROM core.run_parameters) AS p
        LEFT JOIN raw.load_manifest AS m ON m.loaded_at >= ?
        GROUP BY p.as_of, p.policy
        """,
        [run_id, started_at, _now(), status, started_at],
    )


def publish_asset(upstream: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(key=["published_warehouse"], deps=upstream, group_name="publish", kinds={"duckdb"},
              description="DATA_DIR/warehouse.duckdb: the published warehouse that analysts and data engineers "
                          "open read-only, with every table and column commented, and DATA_DIR/"
                          "data_dictionary.html generated from its catalogue. Replaced atomically at the end of "
                          "a successful run.")
    def published_warehouse(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
        record = context.instance.get_run_record_by_id(context.run_id)
        started_at = record.create_timestamp.replace(tzinfo=None) if record else _now()
        warehouse = settings.warehouse
        started = time.monotonic()
        with warehouse.connect() as con:
            drop_kept_changes(con)  # they served this run's incremental builds; not part of the warehouse
            record_run(con, context.run_id, started_at, "published")
            undocumented = apply_comments(con)
            dictionary = write_dictionary(con, warehouse.data_dir)
        documented = time.monotonic()
        if undocumented:
            context.log.warning(f"columns without a description in sql/columns.yml: {', '.join(undocumented)}")
        seconds = warehouse.publish()
        path = warehouse.published_path
        size_mb = round(path.stat().st_size / 1e6, 1)
        context.log.info(f"published {size_mb:,} MB: catalogue and run history {documented - started:.1f} s, "
                         + ", ".join(f"{part} {s:.1f} s" for part, s in seconds.items())
                         + "; the next working copy is being copied from it in the background")
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(path)),
            "size_mb": size_mb,
            "data_dictionary": dg.MetadataValue.path(str(dictionary)),
            "undocumented_columns": len(undocumented),
        })

    return published_warehouse


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
