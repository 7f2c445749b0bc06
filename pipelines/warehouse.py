"""The DuckDB warehouse: where it lives, how it is opened, and how a finished build is published.

Two files, so that readers are never blocked and never see a half-built warehouse:

* ``DATA_DIR/build/warehouse.duckdb`` is the working copy. Only the pipeline opens it, one writer at a time
  (a file lock serialises writers from different processes; DuckDB itself also refuses a second writer). A run
  keeps it open from its first step that needs it until it publishes (:meth:`Warehouse.held_open`).
* ``DATA_DIR/warehouse.duckdb`` is the published copy that analysts and data engineers open. A run renames the
  finished working copy into place (``os.replace`` is atomic on one file system) and then makes the next
  working copy, a copy of what it just published, in a background thread (see :meth:`Warehouse.publish`).
  A reader that already has the old file open keeps reading the old inode; the next connection sees the new
  state; a run that fails before publishing leaves the published file untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb

SCHEMAS = ("reference", "raw", "staging", "core", "marts", "quality")
# DuckDB's storage format for the warehouse files. Newer formats write string columns ~25% faster (they are most
# of every claim-line table) and store them smaller; the file then needs DuckDB 1.5 or later to open.
STORAGE_VERSION = "v1.5.0"
WRITER_LOCK_TIMEOUT_S = 6 * 3600
# DuckDB's memory limit unless PRAKTIJKVARIATIE_MEMORY_LIMIT says otherwise. DuckDB keeps the blocks it reads and
# writes in memory up to this limit, and every block beyond what the process touched before is memory it touches
# for the first time, which is what a machine short of free memory makes slow. At ten million lines a run needs
# ~2.6 GiB at this limit (4 GiB at 4GB) and was quicker in every measured pair; more lines spill more to
# DATA_DIR/build/spill/, where a larger limit can be quicker (docs/performance.md).
DEFAULT_MEMORY_LIMIT = "2GB"
# DuckDB's memory limit while a build brings a table up to date with a run's new files (pipelines/incremental.py), and
# while the trend copies the changed providers' lines of a year (pipelines/benchmarks/trend_copy.py), unless
# PRAKTIJKVARIATIE_INCREMENTAL_MEMORY_LIMIT says otherwise; never above the run's own limit. Such a build
# reads the ten-million-line tables for a few per cent of their rows. Under the run's limit DuckDB keeps every block
# it reads, so a nightly run's core.claim_lines touched ~1 GB of memory it had not touched before (~230,000 page
# faults); under this limit it evicts blocks it has read and reuses their memory. A build that needs more than this
# limit is done again under the run's own (docs/performance-history.md, twenty-first round).
DEFAULT_INCREMENTAL_MEMORY_LIMIT = "512MB"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)
# the units DuckDB takes for a memory size (a unit is required)
_UNITS = {"b": 1, "byte": 1, "bytes": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def memory_bytes(size: str) -> int:
    """The bytes of a DuckDB memory size such as ``512MB``, ``2GB`` or ``1.5GiB``, read as DuckDB reads it (KB, MB,
    GB or K, M, G: powers of 1000; KiB, MiB, GiB: of 1024)."""
    match = _SIZE.match(size)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a memory size such as 512MB or 2GB: {size!r}")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


@dataclass(frozen=True)
class Warehouse:
    data_dir: Path
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    threads: int | None = None
    incremental_memory_limit: str = DEFAULT_INCREMENTAL_MEMORY_LIMIT

    def __post_init__(self) -> None:
        memory_bytes(self.incremental_memory_limit)  # a mistyped size fails when the run starts, not at night

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

    @property
    def landing_checksums_path(self) -> Path:
        """The landing files' checksums, remembered between runs (pipelines/ingest/checksums.py)."""
        return self.data_dir / "build" / "landing_checksums.json"

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the working copy for writing, holding the writer lock for as long as the connection lives.

        Inside :meth:`held_open`, in the thread that entered it, the connection is a cursor of the database held
        open there (a new connection to it, closed again here) instead."""
        held = _HELD.get(self.build_path)
        if held is not None and held.thread == threading.get_ident():
            cursor = held.database().cursor()
            try:
                yield cursor
            finally:
                cursor.close()
            return
        with _writer_lock(self.writer_lock_path):
            con = self._open_for_writing()
            try:
                yield con
            finally:
                con.close()

    def _open_for_writing(self) -> duckdb.DuckDBPyConnection:
        """A connection to the working copy, set up for the pipeline; the caller holds the writer lock."""
        self.build_path.parent.mkdir(parents=True, exist_ok=True)
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        if not self.build_path.exists() and self.published_path.exists():
            # a process that published stopped before it had made the next working copy
            _copy_atomically(self.published_path, self.build_path)
        con = _open_in_storage_version(self.build_path)
        try:
            con.execute(f"SET memory_limit = '{self.memory_limit}'")
            _MEMORY_LIMITS[_database_key(self.build_path)] = (
                (self.memory_limit, self.incremental_memory_limit)
                if _below(self.incremental_memory_limit, self.memory_limit) else None)
            con.execute(f"SET temp_directory = '{self.spill_dir.as_posix()}'")
            if self.threads:
                con.execute(f"SET threads = {int(self.threads)}")
            for schema in SCHEMAS:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        except BaseException:
            con.close()
            raise
        return con

    @contextlib.contextmanager
    def held_open(self) -> Iterator[None]:
        """Keep the working copy open for the steps of one run in this thread (the pipeline's resource enters
        this for each run; the in-process executor runs every step in that thread).

        Opening the 2 GB file and closing it again, which checkpoints it, cost each of a run's ~65 connections
        15-60 ms (~2.5 s of a nightly run, docs/performance-history.md). Inside this block the file is opened once, at
        the first :meth:`connect`, with the writer lock, and every :meth:`connect` of this thread gets a cursor
        of it. Other threads and processes wait for the writer lock as before, now until the run is done with
        the file: :meth:`publish` closes it (it renames the file), and so does the end of the block."""
        if self.build_path in _HELD:  # nested, or another thread's run: that one holds it (or waits for it)
            yield
            return
        held = _HeldDatabase(self)
        _HELD[self.build_path] = held
        try:
            yield
        finally:
            if _HELD.get(self.build_path) is held:
                del _HELD[self.build_path]
            held.close()

    def release_held(self) -> bool:
        """Checkpoint and close the working copy held open by :meth:`held_open`; later connections of the run open
        the file themselves. False when none was open."""
        held = _HELD.get(self.build_path)
        if held is None or held.thread != threading.get_ident():  # another thread's run: its writer lock decides
            return False
        del _HELD[self.build_path]
        return held.close(checkpoint=True)

    @property
    def writer_lock_path(self) -> Path:
        return self.build_path.parent / ".writer.lock"

    def publish(self) -> dict[str, float]:
        """Publish the working copy atomically; returns the seconds each part took.

        The finished working copy is renamed into place instead of copied: a copy reads and writes the whole file
        (~3 GB at ten million lines), which took 6-8 s of an incremental run on the benchmark machine
        (docs/performance-history.md). The next working copy is then copied from the published file in
        a background thread that holds the writer lock until it is done (:meth:`wait_for_working_copy`), while the
        run renders the dashboards from the published file. The previous published file gets a second name first,
        so that the rename does not wait for the file system to free its blocks; that thread removes it.
        """
        seconds = {}
        started = time.perf_counter()
        if not self.release_held():  # the file is renamed below: nothing of this process may keep it open
            with self.connect() as con:
                con.execute("CHECKPOINT")
        seconds["checkpoint"] = time.perf_counter() - started
        started = time.perf_counter()
        retired = self.published_path.with_name(f".{self.published_path.name}.retired")
        lock = acquire_lock(self.writer_lock_path)
        try:
            retired.unlink(missing_ok=True)  # left by a process that stopped before removing it
            if self.published_path.exists():
                with contextlib.suppress(OSError):  # a file system without hard links: the rename frees it
                    os.link(self.published_path, retired)
            if _open_in_this_process(self.build_path):
                # a connection left open would go on writing into the published file: publish a copy instead
                _copy_atomically(self.build_path, self.published_path)
            else:
                os.replace(self.build_path, self.published_path)
        except BaseException:
            release_lock(lock)
            raise
        seconds["rename"] = time.perf_counter() - started
        # the thread takes over the writer lock: no writer can open the working copy before it exists again
        copying = _WorkingCopy(self, lock, retired)
        copying.start()
        _WORKING_COPIES[self.build_path] = copying
        return seconds

    def wait_for_working_copy(self) -> tuple[float, float] | None:
        """Return when the working copy that the last :meth:`publish` in this process started is made: the seconds
        the copy took and the seconds waited for it here; None when no copy was under way."""
        copying = _WORKING_COPIES.pop(self.build_path, None)
        if copying is None:
            return None
        started = time.perf_counter()
        copying.join()
        return copying.seconds, time.perf_counter() - started


class _WorkingCopy(threading.Thread):
    """Copies the published file to the working copy, then releases the writer lock it was handed."""

    def __init__(self, warehouse: Warehouse, lock, retired: Path) -> None:
        super().__init__(name="praktijkvariatie-working-copy")
        self.warehouse, self.lock, self.retired = warehouse, lock, retired
        self.seconds = float("nan")  # how long the copy took, once it is made

    def run(self) -> None:
        started = time.perf_counter()
        try:
            _copy_atomically(self.warehouse.published_path, self.warehouse.build_path, unbuffered=True)
            self.retired.unlink(missing_ok=True)
            self.seconds = time.perf_counter() - started
        finally:
            release_lock(self.lock)


# working copy path -> the thread that is copying it from the published file (see Warehouse.publish)
_WORKING_COPIES: dict[Path, _WorkingCopy] = {}


class _HeldDatabase:
    """The working copy held open for a run by :meth:`Warehouse.held_open`: opened at the first use, with the
    writer lock, which it keeps until :meth:`close`."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.thread = threading.get_ident()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._lock = None

    def database(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            self._lock = acquire_lock(self.warehouse.writer_lock_path)
            try:
                self._connection = self.warehouse._open_for_writing()
            except BaseException:
                self.close()
                raise
        return self._connection

    def close(self, checkpoint: bool = False) -> bool:
        """Close the file if it was opened (True); DuckDB checkpoints it when its last connection closes, and
        ``checkpoint`` does so first, so that an error in it is raised here."""
        was_open = self._connection is not None
        try:
            if was_open:
                try:
                    if checkpoint:
                        self._connection.execute("CHECKPOINT")
                finally:
                    self._connection.close()
        finally:
            self._connection = None
            if self._lock is not None:
                release_lock(self._lock)
                self._lock = None
        return was_open


# working copy path -> the database a run in this process holds open (see Warehouse.held_open)
_HELD: dict[Path, _HeldDatabase] = {}


def _open_in_this_process(path: Path) -> bool:
    """Whether this process has ``path`` open (Linux: /proc/self/fd; elsewhere assumed so)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return True
    target = str(path.resolve())
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == target:
                return True
        except OSError:
            continue
    return False


def _copy_atomically(source: Path, target: Path, unbuffered: bool = False) -> None:
    """Copy ``source`` to ``target`` under a temporary name first, so ``target`` is never a partial file.

    ``unbuffered``: bypass the page cache (O_DIRECT) where the file system allows it. A buffered copy of a few
    gigabytes spends seconds of CPU filling fresh page-cache pages (on a virtual machine that hands free memory
    back to its host, up to ~3 s per GB), which the dashboards rendered meanwhile need; read and written directly
    the same copy waits on the disk instead (~0.4 s of CPU and ~4 s for 3 GB here)."""
    partial = target.with_name(f".{target.name}.copying")
    if not (unbuffered and _copy_direct(source, partial)):
        shutil.copyfile(source, partial)
    os.replace(partial, target)


def _copy_direct(source: Path, target: Path, block_size: int = 16 << 20, page: int = 4096) -> bool:
    """Copy with O_DIRECT reads and writes; False (and nothing written) where the system does not support it."""
    direct = getattr(os, "O_DIRECT", 0)
    if not direct:
        return False
    with contextlib.ExitStack() as stack:
        try:
            src = os.open(source, os.O_RDONLY | direct)
            stack.callback(os.close, src)
            dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | direct, 0o644)
            stack.callback(os.close, dst)
            buffer = stack.enter_context(mmap.mmap(-1, block_size))  # page-aligned, as direct I/O needs
            view = stack.enter_context(memoryview(buffer))
            while read := os.readv(src, [buffer]):
                whole_pages = -(-read // page) * page  # the last block: padded, then cut off below
                view[read:whole_pages] = bytes(whole_pages - read)
                os.writev(dst, [view[:whole_pages]])
            os.ftruncate(dst, os.fstat(src).st_size)
        except OSError:
            stack.close()
            target.unlink(missing_ok=True)
            return False
    return True


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block's statements as one transaction: committed when it ends, rolled back when it raises.

    The block's own error is what the caller sees. A COMMIT that fails (a write-write conflict, a full disk) has
    already ended the transaction; a ROLLBACK then would fail with "no transaction is active" and hide why."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.TransactionException):
            con.execute("ROLLBACK")
        raise


T = TypeVar("T")
# working copy (resolved path) -> the memory limits it was opened with: the run's own and the lower one for
# incremental builds (see with_incremental_memory_limit); None when the latter is not below the former
_MEMORY_LIMITS: dict[str, tuple[str, str] | None] = {}


def _database_key(path: Path | str) -> str:
    return str(Path(path).resolve())


@contextlib.contextmanager
def _lowered_memory_limit(con: duckdb.DuckDBPyConnection) -> Iterator[bool]:
    """Run the block under the incremental-build memory limit of the warehouse ``con`` writes to, when that is below
    the run's own (:data:`DEFAULT_INCREMENTAL_MEMORY_LIMIT`); the run's limit is set again when the block ends.
    Yields whether the limit was lowered: not for a database that :class:`Warehouse` did not open (tests that
    build tables on a connection of their own). When DuckDB holds more memory in use than the lower limit, it
    refuses the setting ("could not free up enough memory") yet reads it as changed: the block then runs as it is,
    counted as lowered, and the run's limit is set again all the same."""
    (path,) = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    limits = _MEMORY_LIMITS.get(_database_key(path)) if path else None
    lowered = limits is not None
    if lowered:
        with contextlib.suppress(duckdb.OutOfMemoryException):
            con.execute(f"SET memory_limit = '{limits[1]}'")
    try:
        yield lowered
    finally:
        if lowered:
            con.execute(f"SET memory_limit = '{limits[0]}'")


def with_incremental_memory_limit(con: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
    """``work()`` under :func:`_lowered_memory_limit`; when it runs out of memory there (more changed rows
    than the lower limit holds: a large re-delivery), ``work()`` again under the run's own limit. ``work`` must leave
    nothing behind when it fails: one transaction, or one statement."""
    lowered = False
    try:
        with _lowered_memory_limit(con) as lowered:
            return work()
    except duckdb.OutOfMemoryException:
        if not lowered:
            raise
    return work()


def _below(size: str, other: str) -> bool:
    """Whether memory size ``size`` is below ``other``; False when ``other`` is a size DuckDB takes in a form that
    :func:`memory_bytes` does not read."""
    try:
        return memory_bytes(size) < memory_bytes(other)
    except ValueError:
        return False


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
    handle = acquire_lock(path)
    try:
        yield
    finally:
        release_lock(handle)


def acquire_lock(path: Path, timeout: float = WRITER_LOCK_TIMEOUT_S):
    """An exclusive lock on ``path`` (an open file whose flock is held), waiting up to ``timeout`` seconds (0: not
    at all) before it raises TimeoutError.

    flock locks belong to the open file, so a second open in the same process waits too, and another thread may
    release the lock by closing the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise TimeoutError(f"another pipeline run holds the warehouse writer lock {path}") from None
            time.sleep(0.5)


def release_lock(handle) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
