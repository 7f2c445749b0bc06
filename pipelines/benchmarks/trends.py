"""``marts.benchmark_trends``: every benchmark's year-to-date value at each month end, for trend charts.

For a month end M the benchmarks are exactly what a run with ``--as-of M`` would publish: the core and mart
SQL files run unchanged in scratch databases (pipelines/benchmarks/scratch.py) over ``core.claim_lines`` up to
M. That is valid because nothing in core.claim_lines depends on later lines (trajectory numbering and ZVT
carry-forward look only backwards; netting is as-of independent). The trend covers the last ``months`` month
ends up to the as-of date (the as-of date itself stands for its month, and is this run's published results).

What keeps it fast (a month end costs a few seconds at ten million lines, not a full rebuild):

* Only M's year is kept, and every benchmark is per provider and year, so the scratch run needs only the lines
  that year's results depend on: the year's lines up to M, and the earlier activity lines of trajectories active
  in the year (a trajectory's kind and last date count in its casemix). Earlier years' partial rows that the
  scratch run also produces are dropped.
* Those lines are copied once per year into an in-memory table (pipelines/benchmarks/trend_copy.py) with only the
  columns the SQL files read, integer client and trajectory keys, and the text columns whose values repeat as
  ENUMs. Each month end then reads that table up to M.
* Only the models whose rows span years read the earlier lines; a model whose table has a ``year`` column (per
  provider and year, as every mart and most core tables) reads the year's lines alone, as its year-M rows come
  from them. The earlier lines of active trajectories are ~45% of what a January month end would read otherwise;
  ``core.trajectories`` (a trajectory has no year) is the model that needs them.
* A nightly run keeps the rows of the month ends before the earliest service date its new files change
  (sql/changes/marts.benchmark_trends.sql), when the SQL, the policy parameters, the reference tables and the way
  core.claim_lines was built are unchanged (a fingerprint in quality.model_builds): such a month end reads only
  lines that did not change.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from itertools import groupby

import duckdb

from pipelines.benchmarks.registry import Benchmark
from pipelines.incremental import (MODEL_BUILDS_DDL, REBUILT, Build, changes_sql_for, create_changed_claims,
                                   drop_changed_claims, input_fingerprint, loads_reflected_by, record_build,
                                   recorded_builds)
from pipelines.benchmarks.scratch import rebuild, results_sql_in_scratch, scratch_databases
from pipelines.benchmarks.trend_copy import columns_read, copy_year_lines, encode_repeating_text, keys_hash_one_to_one
from pipelines.sql_models import SqlModel, in_dependency_order, models

# Core tables the trend takes as they are (claim_lines filtered to the month end) instead of rebuilding.
TAKEN_AS_IS = {"claim_lines", "run_parameters", "policy_parameters"}
# What the models whose rows span years read in a month end's scratch run (see the module docstring).
ACROSS_YEARS_INPUT = "scratch_core.claim_lines_across_years"

TRENDS_TABLE = "marts.benchmark_trends"
TRENDS_DDL = """
CREATE OR REPLACE TABLE marts.benchmark_trends (
    benchmark VARCHAR, provider_agb VARCHAR, year INTEGER, month INTEGER, period_end DATE,
    numerator DOUBLE, denominator DOUBLE, value DOUBLE, threshold DOUBLE, meets_norm BOOLEAN, volume DOUBLE
)
"""


def month_ends(as_of: date, months: int) -> list[date]:
    """The last ``months`` month ends up to ``as_of``, oldest first; the as-of month ends at the as-of date."""
    ends = [as_of]
    cursor = as_of.replace(day=1) - timedelta(days=1)
    while len(ends) < months:
        ends.append(cursor)
        cursor = cursor.replace(day=1) - timedelta(days=1)
    return sorted(ends)


def spanning_years(con: duckdb.DuckDBPyConnection, sql_models: list[SqlModel]) -> set[str]:
    """The models whose rows span years: their table in the warehouse has no ``year`` column (or is not built
    yet, to be safe). They read every line the trend picked; the others read the month end's year alone."""
    with_year = {f"{schema}.{table}" for schema, table in con.execute(
        "SELECT table_schema, table_name FROM information_schema.columns "
        "WHERE column_name = 'year' AND table_catalog = current_database()").fetchall()}
    return {m.table for m in sql_models if m.table not in with_year}


def _reading_across_years(scratch_sql: str) -> str:
    return re.sub(r"\bscratch_core\.claim_lines\b", ACROSS_YEARS_INPUT, scratch_sql)


def build_trends(con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...], months: int,
                 full_rebuild: bool = False) -> int:
    (as_of,) = con.execute("SELECT as_of FROM core.run_parameters").fetchone()
    con.execute(MODEL_BUILDS_DDL)
    core_models: list[SqlModel] = [m for m in in_dependency_order(models("core")) if m.name not in TAKEN_AS_IS]
    sql_texts = [m.sql for m in core_models] + [b.model.sql for b in items] + [results_sql_in_scratch(items)]
    ends = month_ends(as_of, months)
    builds = recorded_builds(con)
    # the loads core.claim_lines reflects (not the manifest's: core may not have taken in the newest load yet)
    build = Build(_fingerprint(con, core_models, items, sql_texts, builds),
                  loads_reflected_by("core.claim_lines", builds, con), as_of)
    previous = builds.get(TRENDS_TABLE)
    kept = [] if full_rebuild else _reusable_month_ends(con, build, previous, ends)
    kept_rows = _recreate_keeping(con, kept)
    columns = columns_read(con, "core.claim_lines", sql_texts)
    # at the as-of date itself the trend is what this run publishes: no need to recompute it
    con.execute(
        """INSERT INTO marts.benchmark_trends
        SELECT benchmark, provider_agb, year, $month, CAST($as_of AS DATE), numerator, denominator,
               value, threshold, meets_norm, volume
        FROM marts.benchmark_results WHERE year = $year""",
        {"month": as_of.month, "as_of": as_of, "year": as_of.year},
    )
    earlier = [end for end in ends if end != as_of and end not in kept]
    across_years = spanning_years(con, [*core_models, *(b.model for b in items)])
    with scratch_databases(con) as warehouse:
        con.execute("CREATE TABLE scratch_core.policy_parameters AS SELECT * FROM core.policy_parameters")
        hashed_keys = bool(earlier) and keys_hash_one_to_one(con, warehouse)
        encoded = encode_repeating_text(con, warehouse, columns) if earlier else {}
        for year, year_ends in groupby(earlier, key=lambda end: end.year):
            year_ends = list(year_ends)
            copy_year_lines(con, warehouse, columns, year, max(year_ends), hashed_keys, encoded)
            for period_end in year_ends:
                con.execute(
                    "CREATE OR REPLACE TABLE scratch_core.run_parameters AS "
                    "SELECT CAST($period_end AS DATE) AS as_of, policy, computed_at, dagster_run_id "
                    "FROM core.run_parameters",
                    {"period_end": period_end},
                )
                con.execute(f"CREATE OR REPLACE VIEW {ACROSS_YEARS_INPUT} AS SELECT l.* "
                            "FROM scratch_core.trend_lines AS l, scratch_core.run_parameters AS p "
                            "WHERE l.service_date <= p.as_of")
                con.execute(f"CREATE OR REPLACE VIEW scratch_core.claim_lines AS SELECT * FROM {ACROSS_YEARS_INPUT} "
                            f"WHERE year = {year}")
                rebuild(con, core_models, items, rewrite=lambda model, sql: (
                    _reading_across_years(sql) if model.table in across_years else sql))
                con.execute(
                    f"""INSERT INTO marts.benchmark_trends
                    SELECT benchmark, provider_agb, year, $month, CAST($period_end AS DATE), numerator,
                           denominator, value, threshold, meets_norm, volume
                    FROM ({results_sql_in_scratch(items)}) AS r
                    WHERE r.year = $year""",
                    {"month": period_end.month, "period_end": period_end, "year": year},
                )
            con.execute("DROP VIEW scratch_core.claim_lines")
            con.execute(f"DROP VIEW {ACROSS_YEARS_INPUT}")
            con.execute("DROP TABLE scratch_core.trend_lines")
    rows = con.execute("SELECT count(*) FROM marts.benchmark_trends").fetchone()[0]
    new_loads = len(set(build.loads) - set(previous.loads)) if kept else len(build.loads)
    record_build(con, TRENDS_TABLE, build, f"kept {len(kept)} month ends" if kept else REBUILT, new_loads,
                 rows - kept_rows)
    return rows


def _recreate_keeping(con: duckdb.DuckDBPyConnection, kept: list[date]) -> int:
    """An empty marts.benchmark_trends but for the rows of the ``kept`` month ends; returns their number."""
    if kept:
        con.execute("CREATE OR REPLACE TEMP TABLE trends_kept AS SELECT * FROM marts.benchmark_trends "
                    "WHERE period_end IN (SELECT unnest(CAST(? AS DATE[])))", [kept])
    # until this build is recorded at the end, a run that stops half-way leaves no record to reuse rows from
    con.execute("DELETE FROM quality.model_builds WHERE model = ?", [TRENDS_TABLE])
    con.execute(TRENDS_DDL)
    if kept:
        con.execute("INSERT INTO marts.benchmark_trends SELECT * FROM trends_kept")
        con.execute("DROP TABLE trends_kept")
    return con.execute("SELECT count(*) FROM marts.benchmark_trends").fetchone()[0]


def _fingerprint(con: duckdb.DuckDBPyConnection, core_models: list[SqlModel], items: tuple[Benchmark, ...],
                 sql_texts: list[str], builds: dict[str, Build]) -> str:
    """What every month end's values depend on besides the lines: the SQL, the policy parameters, the reference
    tables, and how core.claim_lines was built (its SQL and inputs)."""
    computed = {m.table for m in core_models} | {b.table for b in items} | {f"core.{t}" for t in TAKEN_AS_IS}
    inputs = sorted({t for m in [*core_models, *(b.model for b in items)] for t in m.inputs} - computed)
    parts = [*sql_texts, *(input_fingerprint(con, t, builds) for t in [*inputs, "core.policy_parameters"]),
             input_fingerprint(con, "core.claim_lines", builds)]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _reusable_month_ends(con: duckdb.DuckDBPyConnection, build: Build, previous: Build | None,
                         ends: list[date]) -> list[date]:
    """Month ends whose rows the previous run computed from the same SQL, policy and reference tables, and that
    lie before the earliest service date the files loaded since then change (sql/changes/marts.benchmark_trends.sql)."""
    if previous is None or previous.fingerprint != build.fingerprint or not set(previous.loads) <= set(build.loads):
        return []
    create_changed_claims(con, [load_id for load_id in build.loads if load_id not in set(previous.loads)])
    (earliest_change,) = con.execute(changes_sql_for(TRENDS_TABLE)).fetchone()
    drop_changed_claims(con)
    computed = {end for (end,) in con.execute("SELECT DISTINCT period_end FROM marts.benchmark_trends").fetchall()}
    return [end for end in ends if end in computed and end != build.as_of
            and (earliest_change is None or end < earliest_change)]

