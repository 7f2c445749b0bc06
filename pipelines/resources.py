"""The one Dagster resource: where the landing files and the data directory are, and the run's choices.

Values come from the CLI (``praktijkvariatie run``) or, for ``dagster dev`` and the daemon, from environment
variables (see :func:`settings_from_env`), so the UI, the schedule and the CLI run the same assets.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg

from pipelines.warehouse import DEFAULT_INCREMENTAL_MEMORY_LIMIT, DEFAULT_MEMORY_LIMIT, Warehouse

ENV_PREFIX = "PRAKTIJKVARIATIE_"


class PipelineSettings(dg.ConfigurableResource):
    landing_dir: str
    data_dir: str
    policy: str = "default"
    as_of: str = ""  # YYYY-MM-DD; empty: the latest service_date among the loaded claims
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    incremental_memory_limit: str = DEFAULT_INCREMENTAL_MEMORY_LIMIT  # while a build adds new files (<= memory_limit)
    threads: int = 0  # 0: DuckDB's default (all cores)
    min_cell_size: int = 10  # published client counts below this are suppressed
    trend_months: int = 12  # month ends in marts.benchmark_trends (a trailing year)
    full_rebuild: bool = False  # rebuild the incrementally built tables from raw instead of bringing them up to date

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(Path(self.data_dir), memory_limit=self.memory_limit, threads=self.threads or None,
                         incremental_memory_limit=self.incremental_memory_limit)

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[PipelineSettings]:
        # A run's steps (the in-process executor runs them one after another in this thread) share one open
        # working copy instead of opening and closing the file each (Warehouse.held_open).
        with self.warehouse.held_open():
            yield self

    @property
    def as_of_date(self) -> date | None:
        if not self.as_of:
            return None
        try:
            return date.fromisoformat(self.as_of)
        except ValueError:
            raise ValueError(f"as_of must be a date YYYY-MM-DD, got {self.as_of!r}") from None


def settings_from_env() -> PipelineSettings:
    data_dir = os.environ.get(f"{ENV_PREFIX}DATA_DIR", "data")
    return PipelineSettings(
        landing_dir=os.environ.get(f"{ENV_PREFIX}LANDING", str(Path(data_dir) / "landing")),
        data_dir=data_dir,
        policy=os.environ.get(f"{ENV_PREFIX}POLICY", "default"),
        as_of=os.environ.get(f"{ENV_PREFIX}AS_OF", ""),
        memory_limit=os.environ.get(f"{ENV_PREFIX}MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT),
        incremental_memory_limit=os.environ.get(f"{ENV_PREFIX}INCREMENTAL_MEMORY_LIMIT",
                                                DEFAULT_INCREMENTAL_MEMORY_LIMIT),
        threads=int(os.environ.get(f"{ENV_PREFIX}THREADS", "0")),
        min_cell_size=int(os.environ.get(f"{ENV_PREFIX}MIN_CELL_SIZE", "10")),
        trend_months=int(os.environ.get(f"{ENV_PREFIX}TREND_MONTHS", "12")),
        full_rebuild=os.environ.get(f"{ENV_PREFIX}FULL_REBUILD", "").lower() in ("1", "true", "yes"),
    )
