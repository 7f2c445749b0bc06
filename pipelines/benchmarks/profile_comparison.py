"""``marts.profile_comparison``: every benchmark under every policy profile, for comparing insurers' norms.

A run publishes its marts under one profile (``--policy``). This table recomputes the benchmark marts under each
profile in ``profiles/`` from the same core tables, with the unchanged SQL files run in in-memory scratch
databases (as for the trends): only the core tables that read the policy parameters are rebuilt, the others are
read as they are. The dashboards' scorecard uses it to filter by policy profile.
"""

from __future__ import annotations

import duckdb

from pipelines.benchmarks.profiles import Profile
from pipelines.benchmarks.registry import Benchmark
from pipelines.benchmarks.scratch import rebuild, results_sql_in_scratch, scratch_databases
from pipelines.sql_models import in_dependency_order, models

DDL = """
CREATE OR REPLACE TABLE marts.profile_comparison (
    policy VARCHAR, benchmark VARCHAR, provider_agb VARCHAR, year INTEGER, provider_type VARCHAR,
    numerator DOUBLE, denominator DOUBLE, value DOUBLE, threshold DOUBLE, meets_norm BOOLEAN, volume DOUBLE
)
"""


def policy_dependent_models() -> tuple[list, list]:
    """Core models that read the policy parameters (directly or through another such model), and the rest."""
    ordered = in_dependency_order(models("core"))
    dependent: set[str] = {"core.policy_parameters"}
    rebuilt, kept = [], []
    for model in ordered:
        if dependent & set(model.inputs):
            dependent.add(model.table)
            rebuilt.append(model)
        else:
            kept.append(model)
    return rebuilt, kept


def build_profile_comparison(con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...],
                             profiles: list[Profile]) -> int:
    con.execute(DDL)
    rebuilt, kept = policy_dependent_models()
    with scratch_databases(con) as warehouse:
        for table in sorted({m.name for m in kept} | {"claim_lines", "run_parameters"}):
            con.execute(f'CREATE VIEW scratch_core.{table} AS SELECT * FROM "{warehouse}".core.{table}')
        con.execute("CREATE TABLE scratch_core.policy_parameters (policy VARCHAR, benchmark VARCHAR, "
                    "parameter VARCHAR, value VARCHAR, source VARCHAR)")
        (run_policy,) = con.execute("SELECT policy FROM core.run_parameters").fetchone()
        for profile in profiles:
            if profile.name == run_policy:
                # the run's own profile is what this run publishes: no need to recompute it
                con.execute(
                    """INSERT INTO marts.profile_comparison
                    SELECT policy, benchmark, provider_agb, year, provider_type, numerator, denominator, value,
                           threshold, meets_norm, volume
                    FROM marts.benchmark_results"""
                )
                continue
            con.execute("DELETE FROM scratch_core.policy_parameters")
            con.executemany("INSERT INTO scratch_core.policy_parameters VALUES (?, ?, ?, ?, ?)", profile.rows())
            rebuild(con, rebuilt, items)
            con.execute(
                f"""INSERT INTO marts.profile_comparison
                SELECT $policy, benchmark, provider_agb, year, provider_type, numerator, denominator, value,
                       threshold, meets_norm, volume
                FROM ({results_sql_in_scratch(items)}) AS r""",
                {"policy": profile.name},
            )
    return con.execute("SELECT count(*) FROM marts.profile_comparison").fetchone()[0]
