"""Dagster's SQLite event log with its connections kept open (``dagster.yaml``: ``event_log_storage``).

Dagster writes every event of a run to SQLite in ``DAGSTER_HOME/history/runs/`` (a file per run and ``index.db``
for the events that later runs look up), ~300 events in a nightly run. Its ``SqliteEventLogStorage`` opens a new
SQLAlchemy engine and connection for every read and write and closes them again; closing the last connection to a
SQLite file in WAL mode copies the write-ahead log into the file and deletes it. That close made a write cost 4-7 ms
instead of ~1 ms on a two-core machine, ~2-6 s of a nightly run (docs/performance-history.md, twenty-second round).

:class:`PooledSqliteEventLogStorage` is that storage with one engine per file, kept open, so that a write is a
transaction on a connection that is already there. SQLite checkpoints the log itself when it passes 1,000 pages.
Two things depend on the files, and are kept as they were:

* The UI follows a running run's log by watching its file (``<run_id>.db``) for changes, and the file changes only
  when the log is copied into it. A transaction that wrote to a run's file is therefore followed by a passive
  checkpoint (it copies what it can without waiting for readers), ~0.5 ms.
* Files are opened in this process only: a process forked with open connections does not use them (SQLite
  connections must not cross a fork); it opens its own.

Everything else (the schema, its migrations, the queries, the lock that serialises this process's use of the
storage) is Dagster's own: this class replaces how a connection is obtained (``_connect``), nothing more. The
tests run a job on it and read its events back (tests/test_event_log.py).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as db
from dagster import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

#: How many files' engines one process keeps open: the index and the runs being written or looked at. The UI
#: reads many runs' files; the least recently used engine beyond this is closed.
OPEN_FILES = 8


def default_base_dir() -> str:
    """Where Dagster keeps a SQLite instance's event log: ``DAGSTER_HOME/history/runs``."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError("PooledSqliteEventLogStorage without base_dir needs DAGSTER_HOME (its dagster.yaml's folder)")
    return str(Path(home) / "history" / "runs")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with one engine per file, its connection kept open between reads and writes.
    ``base_dir`` defaults to ``DAGSTER_HOME/history/runs``, Dagster's own place for it, so that a ``dagster.yaml``
    does not name its folder and a copied instance folder keeps working."""

    def __init__(self, base_dir: str | None = None, inst_data=None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir or default_base_dir(), inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteEventLogStorage:
        return cls(base_dir=config_value.get("base_dir"), inst_data=inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            if shard not in self._initialized_dbs:  # as Dagster does it: creates the file's tables when it is new
                once = self._create_engine(shard, poolclass=NullPool)
                try:
                    self._initdb(once)
                finally:
                    once.dispose()
                self._initialized_dbs.add(shard)
            engine = self._engine(shard)
            with engine.connect() as conn:
                raw = conn.connection.driver_connection
                changes_before = raw.total_changes
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD_NAME and raw.total_changes != changes_before:
                    # the UI's watcher of this run's log looks for changes to the run's file (module docstring)
                    raw.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            if self._engines_pid != os.getpid():  # a forked process: the parent's connections are not ours
                for engine in self._engines.values():
                    engine.dispose(close=False)
                self._engines.clear()
                self._engines_pid = os.getpid()
            engine = self._engines.get(shard)
            if engine is None:
                engine = self._create_engine(shard, pool_size=1, max_overflow=0)
                self._engines[shard] = engine
                while len(self._engines) > OPEN_FILES:
                    self._engines.popitem(last=False)[1].dispose()
            self._engines.move_to_end(shard)
            return engine

    def _create_engine(self, shard: str, **pool) -> Engine:
        """An engine for the shard's file, with Dagster's busy timeout; ``pool``: SQLAlchemy's pool arguments."""
        return db.create_engine(self.conn_string_for_shard(shard),
                                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}, **pool)

    def close_files(self) -> None:
        """Close every open file (SQLite copies each one's log into it)."""
        with self._db_lock, self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self.close_files()  # Dagster deletes the runs' files
        super().wipe()

    def dispose(self) -> None:
        self.close_files()
        super().dispose()
