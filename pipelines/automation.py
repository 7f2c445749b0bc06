"""Unattended operation: a nightly schedule and a sensor on the landing folder.

Both start the main job, which loads only what is new (the load manifest), recomputes and publishes. The sensor
compares the landing folder with the manifest of the *published* warehouse, opened read-only, so it never
waits for or blocks a running build.
"""

import hashlib
import json
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.contract import kind_of
from pipelines.ingest.checksums import checksums
from pipelines.resources import PipelineSettings

NIGHTLY_CRON = "0 2 * * *"
TIMEZONE = "Europe/Amsterdam"


def landed_files(landing_dir: Path, known_checksums: dict[str, str]) -> dict[str, str]:
    """name -> sha256 of every extract in the landing folder.

    ``known_checksums`` (fingerprint name|size|mtime -> sha256) saves rehashing unchanged files; it is pruned in
    place to the files that are still there.
    """
    if not landing_dir.is_dir():
        known_checksums.clear()
        return {}
    extracts = [p for p in sorted(landing_dir.iterdir()) if p.is_file() and kind_of(p.name) is not None]
    return {path.name: sha for path, sha in checksums(extracts, known_checksums).items()}


def published_manifest(warehouse_path: Path) -> set[tuple[str, str]]:
    """(file_name, checksum) of every file the published warehouse has loaded or quarantined."""
    if not warehouse_path.exists():
        return set()
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        exists = con.execute("SELECT count(*) FROM information_schema.tables "
                             "WHERE table_schema = 'raw' AND table_name = 'load_manifest'").fetchone()[0]
        if not exists:
            return set()
        return set(con.execute("SELECT file_name, checksum_sha256 FROM raw.load_manifest").fetchall())
    finally:
        con.close()


def new_extracts(settings: PipelineSettings, cache: dict[str, str]) -> list[tuple[str, str]]:
    landed = landed_files(Path(settings.landing_dir), cache)
    done = published_manifest(settings.warehouse.published_path)
    return sorted((name, sha) for name, sha in landed.items() if (name, sha) not in done)


def build_automation(job) -> tuple[list, list]:
    nightly = dg.ScheduleDefinition(
        name="nightly",
        job=job,
        cron_schedule=NIGHTLY_CRON,
        execution_timezone=TIMEZONE,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every night: load new extracts, revalidate, recompute and publish.",
    )

    @dg.sensor(job=job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Starts a run when an extract appears in the landing folder that the published "
                           "warehouse has not loaded yet.")
    def new_landing_files(context: dg.SensorEvaluationContext, settings: PipelineSettings):
        cursor = json.loads(context.cursor) if context.cursor else {}
        new = new_extracts(settings, cursor)
        context.update_cursor(json.dumps(cursor))
        if not new:
            return dg.SkipReason("no new extracts in the landing folder")
        run_key = hashlib.sha256(json.dumps(new).encode()).hexdigest()[:16]
        return dg.RunRequest(run_key=run_key, tags={"praktijkvariatie/new_files": ", ".join(n for n, _ in new)[:200]})

    return [nightly], [new_landing_files]
