"""Assets of the benchmark layer: run and policy parameters, one mart per benchmark, the generic results
table and scorecard. All benchmark assets come from the registry; none is written by hand."""


from datetime import datetime, timezone

import dagster as dg

from pipelines.benchmarks.profiles import load_profile, publish_profile
from pipelines.benchmarks.registry import Benchmark, benchmarks, required_parameters
from pipelines.benchmarks.results import results_sql, scorecard_sql
from pipelines.resources import PipelineSettings
from pipelines.transform.assets import asset_key


class NoValidClaimsError(Exception):
    """Nothing to compute: no claim line survived loading and typing."""


@dg.asset(key=["core", "run_parameters"], deps=[asset_key("staging.claim_lines")], group_name="core",
          kinds={"duckdb"},
          description="core.run_parameters: the as-of date and policy profile this build was computed with.")
def run_parameters(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
    with settings.warehouse.connect() as con:
        (latest, lines) = con.execute("SELECT max(service_date), count(*) FROM staging.claim_lines").fetchone()
        if not lines:
            raise NoValidClaimsError("no valid claim lines were loaded: check raw.load_manifest and "
                                     "staging.rejected_rows")
        as_of = settings.as_of_date or latest
        con.execute(
            "CREATE OR REPLACE TABLE core.run_parameters AS SELECT CAST(? AS DATE) AS as_of, "
            "CAST(? AS VARCHAR) AS policy, CAST(? AS TIMESTAMP) AS computed_at, CAST(? AS VARCHAR) AS dagster_run_id",
            [as_of, settings.policy, datetime.now(timezone.utc).replace(tzinfo=None), context.run_id],
        )
    return dg.MaterializeResult(metadata={"as_of": str(as_of), "policy": settings.policy,
                                          "as_of_source": "configured" if settings.as_of else "latest service_date"})


@dg.asset(key=["core", "policy_parameters"], group_name="core", kinds={"duckdb"},
          description="core.policy_parameters: every benchmark parameter of the chosen policy profile, "
                      "with the policy text it comes from.")
def policy_parameters(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
    profile = load_profile(settings.policy, required=required_parameters(benchmarks()))
    with settings.warehouse.connect() as con:
        rows = publish_profile(con, profile)
    return dg.MaterializeResult(metadata={"policy": profile.name, "title": profile.title, "rows": rows,
                                          "profile_file": str(profile.path)})


def benchmark_asset(benchmark: Benchmark) -> dg.AssetsDefinition:
    model = benchmark.model

    @dg.asset(
        key=asset_key(benchmark.table),
        deps=[asset_key(t) for t in model.inputs],
        group_name="marts",
        description=f"{benchmark.title}: {benchmark.definition}\n\nNorm: {benchmark.norm}\n\n"
                    f"Policy: {benchmark.policy_source}",
        kinds={"duckdb", "sql"},
        metadata={"sql_file": f"sql/marts/{model.path.name}", "unit": benchmark.unit,
                  "direction": benchmark.direction, "policy_source": benchmark.policy_source},
    )
    def _build(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
        from pipelines.sql_models import materialise

        with settings.warehouse.connect() as con:
            rows = materialise(con, model)
            evaluated, missed, mean_value = con.execute(
                f"SELECT count(meets_norm), count(*) FILTER (WHERE NOT meets_norm), avg({benchmark.value_column}) "
                f"FROM {benchmark.table}"
            ).fetchone()
        return dg.MaterializeResult(metadata={
            "rows": rows, "norm_evaluated": evaluated, "norm_missed": missed,
            "mean_value": float(mean_value) if mean_value is not None else None,
        })

    return _build


@dg.asset(key=["marts", "benchmark_results"], deps=[asset_key(b.table) for b in benchmarks()],
          group_name="marts", kinds={"duckdb", "sql"},
          description="marts.benchmark_results: every benchmark in one long table (benchmark, provider, year, "
                      "numerator, denominator, value, threshold, meets_norm) for generic reporting.")
def benchmark_results(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
    sql = results_sql(benchmarks())
    with settings.warehouse.connect() as con:
        con.execute(f"CREATE OR REPLACE TABLE marts.benchmark_results AS\n{sql}")
        (rows,) = con.execute("SELECT count(*) FROM marts.benchmark_results").fetchone()
    return dg.MaterializeResult(metadata={"rows": rows, "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```")})


@dg.asset(key=["marts", "provider_scorecard"], deps=[asset_key("marts.benchmark_results")],
          group_name="marts", kinds={"duckdb", "sql"},
          description="marts.provider_scorecard: per provider and year, every benchmark's value and whether it "
                      "meets the norm, with norms_missed.")
def provider_scorecard(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
    sql = scorecard_sql(benchmarks())
    with settings.warehouse.connect() as con:
        con.execute(f"CREATE OR REPLACE TABLE marts.provider_scorecard AS\n{sql}")
        rows, missing_any = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE norms_missed > 0) FROM marts.provider_scorecard"
        ).fetchone()
    return dg.MaterializeResult(metadata={"rows": rows, "provider_years_missing_a_norm": missing_any,
                                          "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```")})


@dg.asset(key=["marts", "benchmark_trends"], deps=[asset_key("marts.benchmark_results")],
          group_name="marts", kinds={"duckdb", "sql"},
          description="marts.benchmark_trends: every benchmark's year-to-date value at each month end up to the "
                      "as-of date (what a run with that month end as as-of date would publish).")
def benchmark_trends(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
    from pipelines.benchmarks.trends import build_trends

    with settings.warehouse.connect() as con:
        rows = build_trends(con, benchmarks(), months=settings.trend_months, full_rebuild=settings.full_rebuild)
    return dg.MaterializeResult(metadata={"rows": rows, "months": settings.trend_months})


@dg.asset(key=["marts", "profile_comparison"], deps=[asset_key("marts.benchmark_results")],
          group_name="marts", kinds={"duckdb", "sql"},
          description="marts.profile_comparison: every benchmark for every provider-year under every policy "
                      "profile in profiles/, so analysts can compare insurers' norms side by side.")
def profile_comparison(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
    from pipelines.benchmarks.profile_comparison import build_profile_comparison
    from pipelines.benchmarks.profiles import available_profiles

    required = required_parameters(benchmarks())
    profiles = [load_profile(name, required=required) for name in available_profiles()]
    with settings.warehouse.connect() as con:
        rows = build_profile_comparison(con, benchmarks(), profiles, full_rebuild=settings.full_rebuild)
    return dg.MaterializeResult(metadata={"rows": rows, "profiles": ", ".join(p.name for p in profiles)})


def benchmark_assets() -> list[dg.AssetsDefinition]:
    return [run_parameters, policy_parameters, *(benchmark_asset(b) for b in benchmarks()),
            benchmark_results, provider_scorecard, benchmark_trends, profile_comparison]
