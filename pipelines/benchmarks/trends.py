"""``marts.benchmark_trends``: every benchmark's year-to-date value at each month end, for trend charts.

For a month end M the benchmarks are exactly what a run with ``--as-of M`` would publish: the core and mart
SQL files run unchanged in scratch databases (pipelines/benchmarks/scratch.py) over ``core.claim_lines`` up to
M. That is valid because nothing in core.claim_lines depends on later lines (trajectory numbering and ZVT
carry-forward look only backwards; netting is as-of independent). Only M's year is kept, so the scratch run
reads only the lines that year's results depend on: the year's lines up to M, and the earlier activity lines
of trajectories active in the year up to M (a trajectory's kind and last date count in that year's casemix).
Every benchmark is per provider and year, so the earlier years' partial rows it also produces are dropped. The trend covers the last ``months`` month
ends up to the as-of date (the as-of date itself stands for its month).
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from pipelines.benchmarks.registry import Benchmark
from pipelines.benchmarks.scratch import rebuild, results_sql_in_scratch, scratch_databases
from pipelines.sql_models import in_dependency_order, models

# Core tables the trend takes as they are (claim_lines filtered to the month end) instead of rebuilding.
TAKEN_AS_IS = {"claim_lines", "run_parameters", "policy_parameters"}

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


def build_trends(con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...], months: int) -> int:
    (as_of,) = con.execute("SELECT as_of FROM core.run_parameters").fetchone()
    con.execute(TRENDS_DDL)
    core_models = [m for m in in_dependency_order(models("core")) if m.name not in TAKEN_AS_IS]
    with scratch_databases(con) as warehouse:
        con.execute("CREATE TABLE scratch_core.policy_parameters AS SELECT * FROM core.policy_parameters")
        for period_end in month_ends(as_of, months):
            if period_end == as_of:
                # at the as-of date itself the trend is what this run publishes: no need to recompute it
                con.execute(
                    """INSERT INTO marts.benchmark_trends
                    SELECT benchmark, provider_agb, year, $month, CAST($period_end AS DATE), numerator, denominator,
                           value, threshold, meets_norm, volume
                    FROM marts.benchmark_results WHERE year = $year""",
                    {"month": period_end.month, "period_end": period_end, "year": period_end.year},
                )
                continue
            con.execute(
                "CREATE OR REPLACE TABLE scratch_core.run_parameters AS "
                "SELECT CAST($period_end AS DATE) AS as_of, policy, computed_at, dagster_run_id "
                "FROM core.run_parameters",
                {"period_end": period_end},
            )
            # Only the lines that year's results can depend on: that year's lines up to the month end, and the
            # earlier activity lines of trajectories active in it (their kind and last date count in the casemix).
            con.execute(
                f"""CREATE OR REPLACE TABLE scratch_core.trend_trajectories AS
                SELECT DISTINCT trajectory_key FROM "{warehouse}".core.claim_lines
                WHERE counts_as_activity AND year = $year AND service_date <= $period_end""",
                {"year": period_end.year, "period_end": period_end},
            )
            con.execute(
                f'CREATE OR REPLACE VIEW scratch_core.claim_lines AS SELECT l.* FROM "{warehouse}".core.claim_lines '
                "AS l, scratch_core.run_parameters AS p WHERE l.service_date <= p.as_of "
                "AND (l.year = CAST(EXTRACT(year FROM p.as_of) AS INTEGER) OR (l.counts_as_activity AND "
                "l.trajectory_key IN (SELECT trajectory_key FROM scratch_core.trend_trajectories)))"
            )
            rebuild(con, core_models, items)
            con.execute(
                f"""INSERT INTO marts.benchmark_trends
                SELECT benchmark, provider_agb, year, $month, CAST($period_end AS DATE), numerator, denominator,
                       value, threshold, meets_norm, volume
                FROM ({results_sql_in_scratch(items)}) AS r
                WHERE r.year = $year""",
                {"month": period_end.month, "period_end": period_end, "year": period_end.year},
            )
    return con.execute("SELECT count(*) FROM marts.benchmark_trends").fetchone()[0]
