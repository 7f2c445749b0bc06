"""Recomputing the benchmarks under other assumptions (an earlier as-of date, another policy profile).

The unchanged SQL files run against in-memory scratch databases named like the schemas they stand in for
(``scratch_core``, ``scratch_marts``), so ``scratch_core.x`` resolves to them and nothing is written to the
warehouse file. Callers fill the scratch core with the tables they change and views on the rest, then call
:func:`rebuild` and read :func:`results_sql_in_scratch`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import duckdb

from pipelines.benchmarks.registry import Benchmark
from pipelines.benchmarks.results import results_sql
from pipelines.sql_models import SqlModel, remap_schemas

SCRATCH = {"core": "scratch_core", "marts": "scratch_marts"}


@contextlib.contextmanager
def scratch_databases(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """Attach the scratch databases for the duration; yields the warehouse's own database name."""
    (warehouse,) = con.execute("SELECT current_database()").fetchone()
    for name in SCRATCH.values():
        con.execute(f"ATTACH ':memory:' AS {name}")
    try:
        yield warehouse
    finally:
        for name in SCRATCH.values():
            con.execute(f"DETACH {name}")


def rebuild(con: duckdb.DuckDBPyConnection, core_models: list[SqlModel], items: tuple[Benchmark, ...],
            rewrite: Callable[[SqlModel, str], str] = lambda _model, sql: sql) -> None:
    """Rebuild the given core models (in dependency order) and every benchmark mart in the scratch databases.

    ``rewrite(model, sql)`` may point a model's scratch SQL at other scratch inputs (the trend does)."""
    for model in core_models:
        sql = rewrite(model, remap_schemas(model.sql, SCRATCH))
        con.execute(f"CREATE OR REPLACE TABLE {SCRATCH['core']}.{model.name} AS\n{sql}")
    for benchmark in items:
        sql = rewrite(benchmark.model, remap_schemas(benchmark.model.sql, SCRATCH))
        con.execute(f"CREATE OR REPLACE TABLE {SCRATCH['marts']}.{benchmark.name} AS\n{sql}")


def results_sql_in_scratch(items: tuple[Benchmark, ...]) -> str:
    """The long results (as in marts.benchmark_results) of the scratch marts."""
    return remap_schemas(results_sql(items), SCRATCH)
