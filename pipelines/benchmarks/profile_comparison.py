"""``marts.profile_comparison``: every benchmark under every policy profile, for comparing insurers' norms.

A run publishes its marts under one profile (``--policy``). This table recomputes the benchmark marts under each
profile in ``profiles/`` from the same core tables, with the unchanged SQL files run in in-memory scratch
databases (as for the trends): only the core tables that read the policy parameters are rebuilt, the others are
read as they are. The dashboards' scorecard uses it to filter by policy profile.

A nightly run keeps the rows of the benchmarks whose marts are built by provider from ``core.claim_lines``
(``-- materialise: incremental by provider_agb of core.claim_lines``: a provider's rows depend on its own lines
only) for the providers whose lines it did not change, and computes them for the changed providers alone, from
their rows of the core tables. That needs the previous build to have been made from the same SQL, profiles and
inputs (a fingerprint in ``quality.model_builds``) and ``core.claim_lines`` to have been brought up to date in this
run from the loads and as-of date of that build (its kept changes say which providers changed); otherwise every
row is computed again.
"""

from __future__ import annotations

import hashlib
import re

import duckdb

from pipelines.benchmarks.profiles import Profile
from pipelines.benchmarks.registry import Benchmark
from pipelines.benchmarks.scratch import rebuild, results_sql_in_scratch, scratch_databases
from pipelines.incremental import (MODEL_BUILDS_DDL, REBUILT, Build, ByKeys, by_keys, input_fingerprint,
                                   kept_changes_between, loads_reflected_by, record_build, recorded_builds)
from pipelines.sql_models import in_dependency_order, models, tables_with_column

TABLE = "marts.profile_comparison"
# A mart built by this is computed per provider from that provider's lines: its rows are kept for the others.
BY_PROVIDER = ByKeys(("provider_agb",), "core.claim_lines")

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
                             profiles: list[Profile], full_rebuild: bool = False) -> int:
    """Every benchmark under every profile. A benchmark is computed once per distinct set of its parameters: a
    profile with the same parameters for it as the run's takes the published rows, one with the same as a profile
    computed before takes that profile's rows (most profiles differ in a few benchmarks only). Rows of benchmarks
    computed per provider are kept from the previous build for the providers this run did not change (module
    docstring)."""
    con.execute(MODEL_BUILDS_DDL)
    rebuilt, kept = policy_dependent_models()
    (run_policy, as_of) = con.execute("SELECT policy, as_of FROM core.run_parameters").fetchone()
    by_provider = tuple(b for b in items if by_keys(b.model) == BY_PROVIDER)
    builds = recorded_builds(con)
    build = Build(_fingerprint(con, items, profiles, run_policy, rebuilt, by_provider, builds),
                  loads_reflected_by("core.claim_lines", builds, con), as_of)
    previous = builds.get(TABLE)
    changed = _changed_providers(con, previous, build) if by_provider and not full_rebuild else None
    kept_rows = _recreate_keeping(con, run_policy, by_provider, changed)
    # (benchmark, its parameters) -> the policy whose rows already hold it ("" = marts.benchmark_results)
    computed = {(name, parameters): "" for name, parameters in parameter_sets(con.execute(
        "SELECT benchmark, parameter, value FROM core.policy_parameters").fetchall()).items()}
    reusable = {b.name for b in items if reads_only_its_own_parameters(b)}
    with scratch_databases(con) as warehouse:
        with_provider = tables_with_column(con, "provider_agb")
        inputs = sorted({m.name for m in kept} | {"claim_lines", "run_parameters"})
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
            per_provider = tuple(b for b in todo if b in by_provider) if changed is not None else ()
            for_all = tuple(b for b in todo if b not in per_provider)
            for part, providers in ((for_all, None), (per_provider, changed)):
                if part and providers != []:
                    _inputs(con, warehouse, inputs, with_provider, providers)
                    _compute(con, profile.name, rebuilt, part)
            if per_provider:
                con.execute("INSERT INTO marts.profile_comparison SELECT * FROM profile_comparison_kept "
                            "WHERE policy = $policy AND benchmark IN (SELECT unnest(CAST($benchmarks AS VARCHAR[])))",
                            {"policy": profile.name, "benchmarks": [b.name for b in per_provider]})
            for b in todo:
                computed.setdefault((b.name, parameters.get(b.name)), profile.name)
    con.execute("DROP TABLE IF EXISTS profile_comparison_kept")
    rows = con.execute("SELECT count(*) FROM marts.profile_comparison").fetchone()[0]
    how = REBUILT if changed is None else (
        f"kept {len(by_provider)} benchmarks but for {len(changed)} changed provider{'' if len(changed) == 1 else 's'}")
    new_loads = len(build.loads) if changed is None else len(set(build.loads) - set(previous.loads))
    record_build(con, TABLE, build, how, new_loads, rows - kept_rows)
    return rows


def _inputs(con: duckdb.DuckDBPyConnection, warehouse: str, tables: list[str], with_provider: set[str],
            providers: list[str] | None) -> None:
    """The scratch core's views on the warehouse's core tables, of the ``providers`` only when given."""
    for table in tables:
        where = ""
        if providers is not None and f"core.{table}" in with_provider:
            where = " WHERE provider_agb IN (SELECT unnest(CAST(? AS VARCHAR[])))"
        sql = f'CREATE OR REPLACE VIEW scratch_core.{table} AS SELECT * FROM "{warehouse}".core.{table}{where}'
        if where:  # a view cannot take parameters: the list is written into it
            sql = sql.replace("?", "[" + ", ".join(_quoted(p) for p in providers) + "]")
        con.execute(sql)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _compute(con: duckdb.DuckDBPyConnection, policy: str, rebuilt: list, items: tuple[Benchmark, ...]) -> None:
    """Insert the ``items``' rows under ``policy`` (in scratch_core.policy_parameters), from the scratch inputs."""
    rebuild(con, rebuilt, items)
    con.execute(
        f"""INSERT INTO marts.profile_comparison
        SELECT $policy, benchmark, provider_agb, year, provider_type, numerator, denominator, value,
               threshold, meets_norm, volume
        FROM ({results_sql_in_scratch(items)}) AS r""",
        {"policy": policy},
    )


def _fingerprint(con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...], profiles: list[Profile],
                 run_policy: str, rebuilt: list, by_provider: tuple[Benchmark, ...], builds: dict[str, Build]) -> str:
    """What the kept rows depend on besides the changed providers' lines: the SQL, every profile's parameters, the
    run's policy, and the core tables the per-provider benchmarks read (their own fingerprint when built
    incrementally, else their contents)."""
    rebuilt_tables = {m.table for m in rebuilt} | {"core.policy_parameters"}
    inputs = sorted({t for m in [*rebuilt, *(b.model for b in by_provider)] for t in m.inputs} - rebuilt_tables)
    parts = [results_sql_in_scratch(items), run_policy, *(m.sql for m in rebuilt), *(b.model.sql for b in items),
             *(repr(profile.rows()) for profile in profiles), *(input_fingerprint(con, t, builds) for t in inputs)]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _changed_providers(con: duckdb.DuckDBPyConnection, previous: Build | None, build: Build) -> list[str] | None:
    """The providers whose lines changed since the ``previous`` build, from core.claim_lines' kept changes; None
    when the previous build's rows cannot be kept (another fingerprint, or no kept changes from its loads and
    as-of date)."""
    if previous is None or previous.fingerprint != build.fingerprint:
        return None
    kept = kept_changes_between(con, "core.claim_lines", previous, build)
    if kept is None:
        return None
    return [provider for (provider,) in con.execute(
        f"SELECT DISTINCT provider_agb FROM {kept[0]} ORDER BY provider_agb").fetchall()]


def _recreate_keeping(con: duckdb.DuckDBPyConnection, run_policy: str, by_provider: tuple[Benchmark, ...],
                      changed: list[str] | None) -> int:
    """An empty marts.profile_comparison, with the rows it keeps (of the per-provider benchmarks under the other
    profiles, for the providers not ``changed``) set aside in the temp table profile_comparison_kept; returns
    their number."""
    if changed is not None:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE profile_comparison_kept AS SELECT * FROM marts.profile_comparison
            WHERE policy <> $policy AND benchmark IN (SELECT unnest(CAST($benchmarks AS VARCHAR[])))
              AND provider_agb NOT IN (SELECT unnest(CAST($changed AS VARCHAR[])))""",
            {"policy": run_policy, "benchmarks": [b.name for b in by_provider], "changed": changed})
    # until this build is recorded at the end, a run that stops half-way leaves no record to keep rows from
    con.execute("DELETE FROM quality.model_builds WHERE model = ?", [TABLE])
    con.execute(DDL)
    if changed is None:
        return 0
    return con.execute("SELECT count(*) FROM profile_comparison_kept").fetchone()[0]


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
