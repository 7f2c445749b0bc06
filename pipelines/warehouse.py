"""The DuckDB warehouse: where it lives, how it is opened, and how a finished build is published.

Two files, so that readers are never blocked and never see a half-built warehouse:

* ``DATA_DIR/build/warehouse.duckdb`` is the working copy. Only the pipeline opens it, one writer at a time
  (a file lock serialises writers from different processes; DuckDB itself also refuses a second writer).
* ``DATA_DIR/warehouse.duckdb`` is the published copy that analysts and data engineers open. A run copies the
  finished working copy next to it and renames it into place (``os.replace`` is atomic on one file system).
  A reader that already has the old file open keeps reading the old inode; the next connection sees the new
  state; a run that fails before publishing leaves the published file untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

SCHEMAS = ("reference", "raw", "staging", "core", "marts", "quality")
# DuckDB's storage format for the warehouse files. Newer formats write string columns ~25% faster (they are most
# of every claim-line table) and store them smaller; the file then needs DuckDB 1.5 or later to open.
STORAGE_VERSION = "v1.5.0"
WRITER_LOCK_TIMEOUT_S = 6 * 3600


@dataclass(frozen=True)
class Warehouse:
    data_dir: Path
    memory_limit: str = "4GB"
    threads: int | None = None

    @property
    def build_path(self) -> Path:
        return self.data_dir / "build" / "warehouse.duckdb"

    @property
    def published_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def dashboards_dir(self) -> Path:
        return self.data_dir / "dashboards"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def spill_dir(self) -> Path:
        return self.data_dir / "build" / "spill"

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the working copy for writing, holding the writer lock for as long as the connection lives."""
        self.build_path.parent.mkdir(parents=True, exist_ok=True)
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        with _writer_lock(self.build_path.parent / ".writer.lock"):
            con = _open_in_storage_version(self.build_path)
            try:
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
                con.execute(f"SET temp_directory = '{self.spill_dir.as_posix()}'")
                if self.threads:
                    con.execute(f"SET threads = {int(self.threads)}")
                for schema in SCHEMAS:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                yield con
            finally:
                con.close()

    def publish(self) -> Path:
        """Copy the working copy to the published path atomically. Returns the published path."""
        with self.connect() as con:
            con.execute("CHECKPOINT")
        staging_copy = self.published_path.with_name(f".{self.published_path.name}.publishing")
        with _writer_lock(self.build_path.parent / ".writer.lock"):
            shutil.copyfile(self.build_path, staging_copy)
            os.replace(staging_copy, self.published_path)
        return self.published_path


@contextlib.contextmanager
def run_lock(warehouse: Warehouse) -> Iterator[None]:
    """Held by a whole CLI run, so that two runs on one data directory never interleave their steps.

    (Runs started by the Dagster daemon are serialised by the run queue's tag concurrency limit instead.)
    """
    with _writer_lock(warehouse.build_path.parent / ".run.lock"):
        yield


def open_published(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published warehouse, as a data engineer would open it."""
    return duckdb.connect(str(Warehouse(data_dir).published_path), read_only=True)


def _storage_version(con: duckdb.DuckDBPyConnection, database: str) -> str:
    (tags,) = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = ?", [database]).fetchone()
    return tags.get("storage_version", "").rstrip("+")


def _open_in_storage_version(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection to the working copy, which is (made) in :data:`STORAGE_VERSION`: a new file is created in
    it; a file made in an older format is rewritten once (the format of a DuckDB file is fixed when it is
    created). The published copy follows at the next publish."""
    con = duckdb.connect(str(path), config={"storage_compatibility_version": STORAGE_VERSION})
    (database,) = con.execute("SELECT current_database()").fetchone()
    if _storage_version(con, database) == STORAGE_VERSION:
        return con
    con.close()
    _upgrade_storage(path)
    return duckdb.connect(str(path), config={"storage_compatibility_version": STORAGE_VERSION})


def _upgrade_storage(path: Path) -> None:
    """Rewrite the DuckDB file ``path`` in :data:`STORAGE_VERSION`."""
    upgraded = path.with_name(f".{path.name}.upgrading")
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{path.as_posix()}' AS current_copy (READ_ONLY)")
        upgraded.unlink(missing_ok=True)
        con.execute(f"ATTACH '{upgraded.as_posix()}' AS upgraded (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("COPY FROM DATABASE current_copy TO upgraded")
        con.execute("DETACH upgraded")
    finally:
        con.close()
    os.replace(upgraded, path)


@contextlib.contextmanager
def _writer_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + WRITER_LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another pipeline run holds the warehouse writer lock {path}") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
