"""``marts.benchmark_trends``: every benchmark's year-to-date value at each month end, for trend charts.

For a month end M the benchmarks are exactly what a run with ``--as-of M`` would publish: the core and mart
SQL files run unchanged in scratch schemas (``trend_core``, ``trend_marts``) over ``core.claim_lines`` up to
M. That is valid because nothing in core.claim_lines depends on later lines (trajectory numbering and ZVT
carry-forward look only backwards; netting is as-of independent). The trend covers the last ``months`` month
ends up to the as-of date (the as-of date itself stands for its month).
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from pipelines.benchmarks.registry import Benchmark
from pipelines.benchmarks.results import results_sql
from pipelines.sql_models import in_dependency_order, models, remap_schemas

SCRATCH = {"core": "trend_core", "marts": "trend_marts"}
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
    # Scratch tables live in in-memory databases named like the schemas they replace, so `trend_core.x`
    # resolves to them and nothing is written to the warehouse file.
    for name in SCRATCH.values():
        con.execute(f"ATTACH ':memory:' AS {name}")
    (warehouse,) = con.execute("SELECT current_database()").fetchone()
    try:
        con.execute("CREATE TABLE trend_core.policy_parameters AS SELECT * FROM core.policy_parameters")
        for period_end in month_ends(as_of, months):
            con.execute(
                "CREATE OR REPLACE TABLE trend_core.run_parameters AS "
                "SELECT CAST($period_end AS DATE) AS as_of, policy, computed_at, dagster_run_id "
                "FROM core.run_parameters",
                {"period_end": period_end},
            )
            con.execute(
                f'CREATE OR REPLACE VIEW trend_core.claim_lines AS SELECT l.* FROM "{warehouse}".core.claim_lines AS l, '
                "trend_core.run_parameters AS p WHERE l.service_date <= p.as_of"
            )
            for model in core_models:
                con.execute(f"CREATE OR REPLACE TABLE trend_core.{model.name} AS\n"
                            f"{remap_schemas(model.sql, SCRATCH)}")
            for benchmark in items:
                con.execute(f"CREATE OR REPLACE TABLE trend_marts.{benchmark.name} AS\n"
                            f"{remap_schemas(benchmark.model.sql, SCRATCH)}")
            con.execute(
                f"""INSERT INTO marts.benchmark_trends
                SELECT benchmark, provider_agb, year, $month, CAST($period_end AS DATE), numerator, denominator,
                       value, threshold, meets_norm, volume
                FROM ({remap_schemas(results_sql(items), SCRATCH)}) AS r
                WHERE r.year = $year""",
                {"month": period_end.month, "period_end": period_end, "year": period_end.year},
            )
    finally:
        for name in SCRATCH.values():
            con.execute(f"DETACH {name}")
    return con.execute("SELECT count(*) FROM marts.benchmark_trends").fetchone()[0]
