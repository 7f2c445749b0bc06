"""The month-end inputs the trend keeps for the benchmarks that compare providers.

A benchmark that compares providers (not ``per_provider``; the cost per client, whose peer prices use every
provider) has to be computed again, for every provider, at each month end a nightly run's files change. When it
reads only core tables with a few rows per provider (no line, no client: core.provider_strata,
core.provider_years, ...), the trend keeps those tables' rows at each month end it computed, in
``quality.trend_inputs_<table>`` with a ``period_end`` column. At a month end a nightly run changes, each such
table is then the kept rows of the providers its files do not change and the changed providers' rows computed from
their own lines, and the benchmark runs over that. This gives the rows a run with that as-of date would: every
core table is per provider (core compares no providers; the marts do), and the kept rows were computed from the
same SQL, policy and reference tables (the trend's fingerprint) and from lines that did not change.
"""

from __future__ import annotations

from datetime import date

import duckdb

from pipelines.benchmarks.registry import Benchmark
from pipelines.benchmarks.results import results_sql
from pipelines.benchmarks.scratch import SCRATCH
from pipelines.benchmarks.trend_copy import IN_PROVIDERS
from pipelines.sql_models import tables_read, tables_with_column

SCHEMA = "quality"
PREFIX = "trend_inputs_"
# Set by the trend at each month end in the scratch run, not per provider: read there, never kept.
PER_MONTH_END = {"core.run_parameters", "core.policy_parameters"}


def state_table(core_table: str) -> str:
    """Where the month-end rows of ``core_table`` are kept."""
    return f"{SCHEMA}.{PREFIX}{core_table.split('.', 1)[1]}"


def read_by_comparing(items: tuple[Benchmark, ...]) -> list[str]:
    """The core and mart tables the benchmarks that compare providers read (in their SQL and their long results),
    but for their own marts and the tables the trend sets at each month end."""
    comparing = tuple(b for b in items if not b.per_provider)
    if not comparing:
        return []
    read = {t for b in comparing for t in b.model.inputs} | tables_read(results_sql(comparing))
    layered = {t for t in read if t.split(".", 1)[0] in ("core", "marts")}
    return sorted(layered - PER_MONTH_END - {b.table for b in comparing})


def kept_inputs(con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...], rebuilt: set[str]) -> list[str]:
    """The tables :func:`read_by_comparing`, when every one can be kept per month end: the trend's scratch run
    computes it (it is in ``rebuilt``) and it has a ``provider_agb`` column. Empty when one cannot (the lines
    themselves, a table without providers, another benchmark's mart): those benchmarks are then computed from every
    provider's lines."""
    tables = read_by_comparing(items)
    with_providers = tables_with_column(con, "provider_agb")
    if any(t not in rebuilt or t not in with_providers for t in tables):
        return []
    return tables


def described(items: tuple[Benchmark, ...], columns: dict[str, dict]) -> dict[str, dict]:
    """Catalogue entries (pipelines/catalog.py) of the tables that may keep the inputs of ``items``, from those of
    the core tables they keep (``columns``: table -> {"columns": {column: description}})."""
    out = {}
    for table in read_by_comparing(items):
        out[state_table(table)] = {
            "description": f"{table} at each month end of marts.benchmark_trends before the as-of date, as the "
                           "trend computed it there: a nightly run computes the benchmarks that compare providers "
                           "from these rows and the changed providers' own (pipelines/benchmarks/trend_inputs.py). "
                           "Build state; query the trend itself.",
            "columns": {"period_end": f"The month end (marts.benchmark_trends.period_end). Key together with the "
                                      f"key of {table}.",
                        **columns.get(table, {}).get("columns", {})},
        }
    return out


def ends_kept(con: duckdb.DuckDBPyConnection, tables: list[str]) -> set[date]:
    """The month ends whose rows every one of ``tables`` has kept."""
    ends: set[date] | None = None
    for table in tables:
        if not _exists(con, state_table(table)):
            return set()
        kept = {end for (end,) in con.execute(f"SELECT DISTINCT period_end FROM {state_table(table)}").fetchall()}
        ends = kept if ends is None else ends & kept
    return ends or set()


def keep_only(con: duckdb.DuckDBPyConnection, tables: list[str], ends: list[date]) -> None:
    """Forget every kept row but those of the month ends ``ends`` of ``tables``, and the tables no longer kept."""
    for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND starts_with(table_name, ?)", [SCHEMA, PREFIX]).fetchall():
        if f"{SCHEMA}.{name}" not in {state_table(t) for t in tables} or not ends:
            con.execute(f"DROP TABLE {SCHEMA}.{name}")
        else:
            con.execute(f"DELETE FROM {SCHEMA}.{name} WHERE period_end NOT IN "
                        "(SELECT unnest(CAST($ends AS DATE[])))", {"ends": ends})


def as_stored(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, str]:
    """Per table, the SELECT list that gives its scratch rows the warehouse's column types (the scratch run's may be
    ENUMs of the trend's copy), for :func:`keep`."""
    return {table: ", ".join(f"CAST({name} AS {column_type}) AS {name}" for name, column_type in _columns(con, table))
            for table in tables}


def keep(con: duckdb.DuckDBPyConnection, selected: dict[str, str], period_end: date) -> None:
    """Keep the rows at ``period_end`` of the tables of ``selected`` (:func:`as_stored`) from the month end's scratch
    run. They are gathered in the scratch database, and :func:`store_kept` writes them to the warehouse once: eleven
    small writes per table took up to 1 s."""
    for table, columns in selected.items():
        gathered = _gathered(table)
        if not _exists(con, gathered, database=SCRATCH["core"]):
            con.execute(f"CREATE TABLE {gathered} AS SELECT CAST(NULL AS DATE) AS period_end, {columns} "
                        f"FROM {_scratch(table)} WHERE false")
        con.execute(f"INSERT INTO {gathered} SELECT CAST($end AS DATE), {columns} FROM {_scratch(table)}",
                    {"end": period_end})


def store_kept(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """Write the rows :func:`keep` gathered to ``quality.trend_inputs_<table>``, replacing those of their month
    ends."""
    for table in tables:
        gathered, target = _gathered(table), state_table(table)
        if not _exists(con, gathered, database=SCRATCH["core"]):
            continue
        if not _exists(con, target):
            con.execute(f"CREATE TABLE {target} AS SELECT * FROM {gathered} WHERE false")
        con.execute(f"DELETE FROM {target} WHERE period_end IN (SELECT DISTINCT period_end FROM {gathered})")
        con.execute(f"INSERT INTO {target} SELECT * FROM {gathered}")
        con.execute(f"DROP TABLE {gathered}")


def merge_kept(con: duckdb.DuckDBPyConnection, tables: list[str], period_end: date, providers: list[str]) -> None:
    """Make each scratch table of ``tables`` its ``providers``' rows as computed plus the rows kept at
    ``period_end`` of every other provider."""
    for table in tables:
        names = ", ".join(name for name, _ in _columns(con, table))
        con.execute(
            f"""CREATE OR REPLACE TABLE {_scratch(table)} AS
            SELECT {names} FROM {_scratch(table)}
            WHERE {IN_PROVIDERS}
            UNION ALL
            SELECT {names} FROM {state_table(table)}
            WHERE period_end = $end AND NOT {IN_PROVIDERS}""",
            {"providers": providers, "end": period_end})


def _scratch(table: str) -> str:
    schema, name = table.split(".", 1)
    return f"{SCRATCH[schema]}.{name}"


def _gathered(table: str) -> str:
    return f"{SCRATCH['core']}.kept_{table.split('.', 1)[1]}"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".", 1)
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, name]).fetchall()


def _exists(con: duckdb.DuckDBPyConnection, table: str, database: str | None = None) -> bool:
    schema, name = table.split(".", 1)
    if database is not None:  # a table of an attached database: database.table, in its main schema
        schema = "main"
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = coalesce(?, current_database()) "
        "AND schema_name = ? AND table_name = ?", [database, schema, name]).fetchone()[0])
