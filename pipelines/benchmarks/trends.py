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
  lines that did not change. At the later month ends it keeps the rows of the benchmarks declared ``per_provider``
  (registry.py) for the providers those files do not change, and computes them again from the changed providers'
  lines alone (:class:`MonthEndPlan`). The other benchmarks (those that compare providers) are computed for every
  provider: from the provider-level core tables they read, the changed providers' computed from their lines and
  the others' kept at each month end (pipelines/benchmarks/trend_inputs.py), or, if they read lines or clients,
  from every provider's lines with only the core models they read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from itertools import groupby

import duckdb

from pipelines.benchmarks.registry import Benchmark
from pipelines.benchmarks.results import results_sql
from pipelines.benchmarks.scratch import rebuild, results_sql_in_scratch, scratch_databases
from pipelines.benchmarks.trend_copy import (IN_PROVIDERS, KeyHashChecks, columns_read, copy_year_lines,
                                            encode_repeating_text)
from pipelines.benchmarks.trend_inputs import (as_stored, ends_kept, keep, keep_only, kept_inputs, merge_kept,
                                              store_kept)
from pipelines.incremental import (MODEL_BUILDS_DDL, REBUILT, Build, changes_sql_for, create_changed_claims,
                                   drop_changed_claims, input_fingerprint, loads_reflected_by, record_build,
                                   recorded_builds)
from pipelines.sql_models import SqlModel, in_dependency_order, models, tables_read, tables_with_column

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


def scratch_core_models() -> list[SqlModel]:
    """The core models a month end rebuilds (all but ``TAKEN_AS_IS``), in dependency order."""
    return [m for m in in_dependency_order(models("core")) if m.name not in TAKEN_AS_IS]


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
    with_year = tables_with_column(con, "year")
    return {m.table for m in sql_models if m.table not in with_year}


def _reading_across_years(scratch_sql: str) -> str:
    return re.sub(r"\bscratch_core\.claim_lines\b", ACROSS_YEARS_INPUT, scratch_sql)


@dataclass(frozen=True)
class MonthEndPlan:
    """What a build does at each month end before the as-of date (whose rows are the run's published results)."""
    kept: list[date] = field(default_factory=list)        # every row kept from the previous build
    per_provider: list[date] = field(default_factory=list)  # per-provider benchmarks keep the unchanged providers
    changed_providers: list[str] = field(default_factory=list)  # ... whose rows are computed again
    full: list[date] = field(default_factory=list)        # computed again for every benchmark and provider

    @property
    def reuses_rows(self) -> bool:
        """Whether the build keeps rows of the previous one."""
        return bool(self.kept or self.per_provider)


def build_trends(con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...], months: int,
                 full_rebuild: bool = False) -> int:
    (as_of,) = con.execute("SELECT as_of FROM core.run_parameters").fetchone()
    con.execute(MODEL_BUILDS_DDL)
    core_models = scratch_core_models()
    sql_texts = [m.sql for m in core_models] + [b.model.sql for b in items] + [results_sql_in_scratch(items)]
    ends = month_ends(as_of, months)
    builds = recorded_builds(con)
    # the loads core.claim_lines reflects (not the manifest's: core may not have taken in the newest load yet)
    build = Build(_fingerprint(con, core_models, items, sql_texts, builds),
                  loads_reflected_by("core.claim_lines", builds, con), as_of)
    previous = builds.get(TRENDS_TABLE)
    earlier = [end for end in ends if end != as_of]
    plan = MonthEndPlan(full=earlier) if full_rebuild else _plan(con, build, previous, earlier)
    per_provider = [b.name for b in items if b.per_provider]
    if not per_provider:  # nothing to keep per provider: the month ends are computed again for all
        plan = MonthEndPlan(kept=plan.kept, full=sorted(plan.full + plan.per_provider))
    kept_rows = _recreate_keeping(con, plan, per_provider)
    inputs = kept_inputs(con, items, {m.table for m in core_models})
    keep_only(con, inputs, plan.kept + plan.per_provider)
    kept_inputs_at = MonthEndInputs(inputs, ends_kept(con, inputs) & set(plan.per_provider), as_stored(con, inputs))
    columns = columns_read(con, "core.claim_lines", sql_texts)
    # at the as-of date itself the trend is what this run publishes: no need to recompute it
    con.execute(
        """INSERT INTO marts.benchmark_trends
        SELECT benchmark, provider_agb, year, $month, CAST($as_of AS DATE), numerator, denominator,
               value, threshold, meets_norm, volume
        FROM marts.benchmark_results WHERE year = $year""",
        {"month": as_of.month, "as_of": as_of, "year": as_of.year},
    )
    recomputed = sorted(plan.full + plan.per_provider)
    month_end = _MonthEnd.for_benchmarks(con, items)
    with scratch_databases(con) as warehouse:
        con.execute("CREATE TABLE scratch_core.policy_parameters AS SELECT * FROM core.policy_parameters")
        hashed_keys = KeyHashChecks(con, warehouse)
        encoded = encode_repeating_text(con, warehouse, columns) if recomputed else {}
        for year, year_ends in groupby(recomputed, key=lambda end: end.year):
            copy = partial(copy_year_lines, con, warehouse, year=year, hashed_keys=hashed_keys, encoded=encoded)
            _recompute_year(con, month_end, copy, list(year_ends), plan, items, kept_inputs_at)
        store_kept(con, inputs)
    rows = con.execute("SELECT count(*) FROM marts.benchmark_trends").fetchone()[0]
    new_loads = len(set(build.loads) - set(previous.loads)) if plan.reuses_rows else len(build.loads)
    record_build(con, TRENDS_TABLE, build, _how(plan), new_loads, rows - kept_rows)
    return rows


@dataclass(frozen=True)
class MonthEndInputs:
    """The core tables whose month-end rows the trend keeps for the benchmarks that compare providers, and the month
    ends at which those benchmarks are computed from them (pipelines/benchmarks/trend_inputs.py)."""
    tables: list[str]
    ends: set[date]
    as_stored: dict[str, str]  # table -> the SELECT list that keeps its scratch rows (trend_inputs.as_stored)


def _recompute_year(con: duckdb.DuckDBPyConnection, month_end: _MonthEnd, copy: Callable[..., None],
                    year_ends: list[date], plan: MonthEndPlan, items: tuple[Benchmark, ...],
                    kept: MonthEndInputs) -> None:
    """Insert the rows the ``plan`` computes again at the month ends of one year; ``copy(columns, last_end=...,
    providers=...)`` makes that year's scratch_core.trend_lines (trend_copy.copy_year_lines)."""
    per_provider = tuple(b for b in items if b.per_provider)
    comparing = tuple(b for b in items if not b.per_provider)
    # every provider's lines: the month ends computed again in full, and the benchmarks that compare providers
    # at the others where no kept inputs serve them
    for_all = [(end, items if end in plan.full else comparing) for end in year_ends
               if end in plan.full or (comparing and end not in kept.ends)]
    if for_all:
        read = items if any(end in plan.full for end in year_ends) else comparing
        copy(month_end.columns_read(con, read), last_end=max(end for end, _ in for_all))
        for end, end_items in for_all:
            month_end.compute(con, end, end_items, kept_inputs=kept)
    # the changed providers' lines: the per-provider benchmarks at the month ends that keep the others, and the
    # benchmarks that compare providers where kept inputs serve them
    per_provider_ends = [end for end in year_ends if end in plan.per_provider]
    from_kept = [end for end in per_provider_ends if end in kept.ends]
    if per_provider_ends and (plan.changed_providers or from_kept):
        copy(month_end.columns_read(con, items if from_kept else per_provider), last_end=max(per_provider_ends),
             providers=plan.changed_providers)
        for end in per_provider_ends:
            if end in kept.ends:
                month_end.compute(con, end, per_provider, plan.changed_providers, comparing, kept)
            else:
                month_end.compute(con, end, per_provider, plan.changed_providers)
    month_end.drop_inputs(con)


class _MonthEnd:
    """A month end's scratch run over scratch_core.trend_lines (pipelines/benchmarks/trend_copy.py)."""

    def __init__(self, core_models: list[SqlModel], across_years: set[str]) -> None:
        self.core_models = core_models
        self.across_years = across_years

    @classmethod
    def for_benchmarks(cls, con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...]) -> _MonthEnd:
        """Month ends of the ``items`` with the core models the trend rebuilds (:func:`scratch_core_models`)."""
        core_models = scratch_core_models()
        return cls(core_models, spanning_years(con, [*core_models, *(b.model for b in items)]))

    def compute(self, con: duckdb.DuckDBPyConnection, period_end: date, items: tuple[Benchmark, ...],
                providers: list[str] | None = None, comparing: tuple[Benchmark, ...] = (),
                kept_inputs: MonthEndInputs | None = None) -> None:
        """Insert the rows of the ``items`` (of the ``providers`` only, when given) at ``period_end``, computed with
        the core models they read, and keep the month end's rows of the ``kept_inputs`` (trend_inputs.py). With
        ``comparing``: also the rows of those benchmarks that compare providers, for every provider, over the
        ``providers``' rows of the ``kept_inputs`` and the rows kept at ``period_end`` of the others."""
        con.execute(
            "CREATE OR REPLACE TABLE scratch_core.run_parameters AS "
            "SELECT CAST($period_end AS DATE) AS as_of, policy, computed_at, dagster_run_id "
            "FROM core.run_parameters",
            {"period_end": period_end},
        )
        # The month end as a constant, not a join with scratch_core.run_parameters: DuckDB plans a join on an
        # inequality as a nested loop and then expects a small fraction of the lines, and every model of the
        # month end is planned from that guess.
        con.execute(f"CREATE OR REPLACE VIEW {ACROSS_YEARS_INPUT} AS SELECT l.* "
                    f"FROM scratch_core.trend_lines AS l WHERE l.service_date <= DATE '{period_end.isoformat()}'")
        con.execute(f"CREATE OR REPLACE VIEW scratch_core.claim_lines AS SELECT * FROM {ACROSS_YEARS_INPUT} "
                    f"WHERE year = {period_end.year}")
        every = (*items, *comparing)

        def rewrite(model: SqlModel, sql: str) -> str:
            return _reading_across_years(sql) if model.table in self.across_years else sql

        rebuild(con, models_read(self.core_models, every), (), rewrite)
        if comparing:
            merge_kept(con, kept_inputs.tables, period_end, providers or [])
        rebuild(con, [], every, rewrite)
        _insert_results(con, period_end, items, providers)
        if comparing:
            _insert_results(con, period_end, comparing, None)
        if kept_inputs is not None:
            keep(con, kept_inputs.as_stored, period_end)

    def columns_read(self, con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...]) -> list[str]:
        """The columns of core.claim_lines that the ``items`` and the core models they read name."""
        sql = [m.sql for m in models_read(self.core_models, items)] + [b.model.sql for b in items]
        return columns_read(con, "core.claim_lines", [*sql, results_sql_in_scratch(items)])

    @staticmethod
    def drop_inputs(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("DROP VIEW IF EXISTS scratch_core.claim_lines")
        con.execute(f"DROP VIEW IF EXISTS {ACROSS_YEARS_INPUT}")
        con.execute("DROP TABLE IF EXISTS scratch_core.trend_lines")


def _insert_results(con: duckdb.DuckDBPyConnection, period_end: date, items: tuple[Benchmark, ...],
                    providers: list[str] | None) -> None:
    """Insert the scratch run's rows of the ``items`` at ``period_end`` (of the ``providers`` only, when given)."""
    if not items:
        return
    params = {"month": period_end.month, "period_end": period_end, "year": period_end.year}
    of_providers = ""
    if providers is not None:
        of_providers = f"AND r.{IN_PROVIDERS}"
        params["providers"] = providers
    con.execute(
        f"""INSERT INTO marts.benchmark_trends
        SELECT benchmark, provider_agb, year, $month, CAST($period_end AS DATE), numerator,
               denominator, value, threshold, meets_norm, volume
        FROM ({results_sql_in_scratch(items)}) AS r
        WHERE r.year = $year {of_providers}""",
        params,
    )


def models_read(core_models: list[SqlModel], items: tuple[Benchmark, ...]) -> list[SqlModel]:
    """The ``core_models`` the benchmarks and their long results read, directly or through other core models, in
    the given order."""
    by_table = {m.table: m for m in core_models}
    read: set[str] = set()
    todo = [*(table for b in items for table in b.model.inputs), *tables_read(results_sql(items))]
    while todo:
        table = todo.pop()
        if table in by_table and table not in read:
            read.add(table)
            todo.extend(by_table[table].inputs)
    return [m for m in core_models if m.table in read]


def _how(plan: MonthEndPlan) -> str:
    """How the build went, for quality.model_builds."""
    if not plan.reuses_rows:
        return REBUILT

    def counted(number: int, thing: str) -> str:
        return f"{number} {thing}{'' if number == 1 else 's'}"

    but_for = f"but for {counted(len(plan.changed_providers), 'changed provider')}"
    if not plan.per_provider:
        return f"kept {counted(len(plan.kept), 'month end')}"
    if not plan.kept:
        return f"kept {counted(len(plan.per_provider), 'month end')} {but_for}"
    return f"kept {counted(len(plan.kept), 'month end')}; {len(plan.per_provider)} more {but_for}"


def _recreate_keeping(con: duckdb.DuckDBPyConnection, plan: MonthEndPlan, per_provider: list[str]) -> int:
    """An empty marts.benchmark_trends but for the rows the ``plan`` keeps; returns their number."""
    if plan.reuses_rows:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE trends_kept AS SELECT * FROM marts.benchmark_trends
            WHERE period_end IN (SELECT unnest(CAST($kept AS DATE[])))
               OR (period_end IN (SELECT unnest(CAST($per_provider_ends AS DATE[])))
                   AND benchmark IN (SELECT unnest(CAST($per_provider AS VARCHAR[])))
                   AND provider_agb NOT IN (SELECT unnest(CAST($changed AS VARCHAR[]))))""",
            {"kept": plan.kept, "per_provider_ends": plan.per_provider, "per_provider": per_provider,
             "changed": plan.changed_providers},
        )
    # until this build is recorded at the end, a run that stops half-way leaves no record to reuse rows from
    con.execute("DELETE FROM quality.model_builds WHERE model = ?", [TRENDS_TABLE])
    con.execute(TRENDS_DDL)
    if plan.reuses_rows:
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


def _plan(con: duckdb.DuckDBPyConnection, build: Build, previous: Build | None, earlier: list[date]) -> MonthEndPlan:
    """Which of the ``earlier`` month ends keep rows of the previous build: those it computed from the same SQL,
    policy and reference tables. One before the earliest service date the files loaded since then change keeps
    every row; a later one the rows of the per-provider benchmarks for the providers those files do not change
    (sql/changes/marts.benchmark_trends.sql)."""
    if previous is None or previous.fingerprint != build.fingerprint or not set(previous.loads) <= set(build.loads):
        return MonthEndPlan(full=earlier)
    create_changed_claims(con, [load_id for load_id in build.loads if load_id not in set(previous.loads)])
    changes = con.execute(changes_sql_for(TRENDS_TABLE)).fetchall()
    drop_changed_claims(con)
    earliest_change = min((changed for _, changed in changes if changed is not None), default=None)
    computed = {end for (end,) in con.execute("SELECT DISTINCT period_end FROM marts.benchmark_trends").fetchall()}
    kept = [end for end in earlier if end in computed and (earliest_change is None or end < earliest_change)]
    return MonthEndPlan(kept=kept, per_provider=[end for end in earlier if end in computed and end not in kept],
                        changed_providers=sorted(provider for provider, _ in changes if provider is not None),
                        full=[end for end in earlier if end not in computed])
