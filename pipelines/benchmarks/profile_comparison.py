"""``marts.profile_comparison``: every benchmark under every policy profile, for comparing insurers' norms.

A run publishes its marts under one profile (``--policy``). This table recomputes the benchmark marts under each
profile in ``profiles/`` from the same core tables, with the unchanged SQL files run in in-memory scratch
databases (as for the trends): only the core tables that read the policy parameters are rebuilt, the others are
read as they are. The dashboards' scorecard uses it to filter by policy profile.
"""

from __future__ import annotations

import re

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


def reads_only_its_own_parameters(benchmark: Benchmark) -> bool:
    """Whether the benchmark's SQL names no other benchmark's parameters (``benchmark = '<name>'``). Then its rows
    depend only on its own parameters: core.benchmark_norms, the one core table that reads the policy, computes
    each benchmark's norms from that benchmark's parameters alone."""
    return set(re.findall(r"benchmark\s*=\s*'([a-z0-9_]+)'", benchmark.model.sql)) <= {benchmark.name}


def parameter_sets(rows) -> dict[str, tuple]:
    """benchmark -> its (parameter, value) pairs, sorted: what its rows under a profile depend on."""
    found: dict[str, list] = {}
    for benchmark, parameter, value in rows:
        found.setdefault(benchmark, []).append((parameter, value))
    return {benchmark: tuple(sorted(pairs)) for benchmark, pairs in found.items()}


def build_profile_comparison(con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...],
                             profiles: list[Profile]) -> int:
    """Every benchmark under every profile. A benchmark is computed once per distinct set of its parameters: a
    profile with the same parameters for it as the run's takes the published rows, one with the same as a profile
    computed before takes that profile's rows (most profiles differ in a few benchmarks only)."""
    con.execute(DDL)
    rebuilt, kept = policy_dependent_models()
    (run_policy,) = con.execute("SELECT policy FROM core.run_parameters").fetchone()
    # (benchmark, its parameters) -> the policy whose rows already hold it ("" = marts.benchmark_results)
    computed = {(name, parameters): "" for name, parameters in parameter_sets(con.execute(
        "SELECT benchmark, parameter, value FROM core.policy_parameters").fetchall()).items()}
    reusable = {b.name for b in items if reads_only_its_own_parameters(b)}
    with scratch_databases(con) as warehouse:
        for table in sorted({m.name for m in kept} | {"claim_lines", "run_parameters"}):
            con.execute(f'CREATE VIEW scratch_core.{table} AS SELECT * FROM "{warehouse}".core.{table}')
        con.execute("CREATE TABLE scratch_core.policy_parameters (policy VARCHAR, benchmark VARCHAR, "
                    "parameter VARCHAR, value VARCHAR, source VARCHAR)")
        for profile in profiles:
            parameters = parameter_sets((b, p, v) for _, b, p, v, _ in profile.rows())
            sources = {b.name: computed.get((b.name, parameters.get(b.name))) for b in items}
            todo = tuple(b for b in items if sources[b.name] is None or b.name not in reusable)
            if profile.name == run_policy:  # the run's own profile is what this run publishes
                sources, todo = {b.name: "" for b in items}, ()
            for b in items:
                if b not in todo:
                    _copy_rows(con, profile.name, b.name, sources[b.name])
            if not todo:
                continue
            con.execute("DELETE FROM scratch_core.policy_parameters")
            con.executemany("INSERT INTO scratch_core.policy_parameters VALUES (?, ?, ?, ?, ?)", profile.rows())
            rebuild(con, rebuilt, todo)
            con.execute(
                f"""INSERT INTO marts.profile_comparison
                SELECT $policy, benchmark, provider_agb, year, provider_type, numerator, denominator, value,
                       threshold, meets_norm, volume
                FROM ({results_sql_in_scratch(todo)}) AS r""",
                {"policy": profile.name},
            )
            for b in todo:
                computed.setdefault((b.name, parameters.get(b.name)), profile.name)
    return con.execute("SELECT count(*) FROM marts.profile_comparison").fetchone()[0]


def _copy_rows(con: duckdb.DuckDBPyConnection, policy: str, benchmark: str, source: str) -> None:
    """A benchmark's rows under ``policy``, copied from the published results (``source`` "") or from the rows
    already computed for the policy ``source``."""
    columns = ("benchmark, provider_agb, year, provider_type, numerator, denominator, value, threshold, "
               "meets_norm, volume")
    where, params = "benchmark = $benchmark", {"policy": policy, "benchmark": benchmark}
    if source:
        where, params["source"] = where + " AND policy = $source", source
    table = "marts.profile_comparison" if source else "marts.benchmark_results"
    con.execute(f"INSERT INTO marts.profile_comparison SELECT $policy, {columns} FROM {table} WHERE {where}", params)
