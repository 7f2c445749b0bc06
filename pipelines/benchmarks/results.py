"""Generic tables over all benchmarks, generated from the registry.

* ``marts.benchmark_results``: one long-format row per benchmark, provider and year (numerator, denominator,
  value, threshold, meets_norm), for generic reports and dashboards.
* ``marts.provider_scorecard``: one row per provider and year (every provider-year with claims or a contract,
  up to the as-of year) with every benchmark's value and meets_norm,
  and ``norms_missed`` (count of meets_norm = false) and ``norms_evaluated`` (count of meets_norm not null).

The SQL is generated because its shape follows the list of benchmarks; :func:`results_sql` and
:func:`scorecard_sql` return exactly what runs, and docs/warehouse.md shows it.
"""

from __future__ import annotations

from pipelines.benchmarks.registry import Benchmark


def results_sql(items: list[Benchmark] | tuple[Benchmark, ...]) -> str:
    parts = [
        f"""SELECT
    '{b.name}' AS benchmark,
    m.provider_agb,
    m.year,
    CAST(m.{b.numerator_column} AS DOUBLE) AS numerator,
    CAST(m.{b.denominator_column} AS DOUBLE) AS denominator,
    CAST(m.{b.value_column} AS DOUBLE) AS value,
    CAST(m.{b.threshold_column} AS DOUBLE) AS threshold,
    m.meets_norm,
    CAST(m.{b.volume_column} AS DOUBLE) AS volume
FROM {b.table} AS m"""
        for b in items
    ]
    union = "\nUNION ALL\n".join(parts)
    return f"""WITH results AS (
{union}
)
SELECT
    r.benchmark,
    r.provider_agb,
    r.year,
    y.provider_type,
    r.numerator,
    r.denominator,
    r.value,
    r.threshold,
    r.meets_norm,
    r.volume,
    p.policy,
    p.as_of
FROM results AS r
JOIN core.provider_years AS y ON y.provider_agb = r.provider_agb AND y.year = r.year
CROSS JOIN core.run_parameters AS p"""


def scorecard_sql(items: list[Benchmark] | tuple[Benchmark, ...]) -> str:
    columns = []
    for b in items:
        columns.append(f"    max(CASE WHEN r.benchmark = '{b.name}' THEN r.value END) AS {b.name}_value")
        columns.append(f"    bool_or(CASE WHEN r.benchmark = '{b.name}' THEN r.meets_norm END) AS {b.name}_meets_norm")
    per_benchmark = ",\n".join(columns)
    return f"""SELECT
    y.provider_agb,
    y.year,
    y.provider_name,
    y.provider_type,
{per_benchmark},
    count(r.meets_norm) AS norms_evaluated,
    sum(CASE WHEN r.meets_norm = FALSE THEN 1 ELSE 0 END) AS norms_missed,
    p.policy,
    p.as_of
FROM core.provider_years AS y
CROSS JOIN core.run_parameters AS p
LEFT JOIN marts.benchmark_results AS r ON r.provider_agb = y.provider_agb AND r.year = y.year
WHERE y.year <= CAST(EXTRACT(year FROM p.as_of) AS INTEGER)
GROUP BY y.provider_agb, y.year, y.provider_name, y.provider_type, p.policy, p.as_of"""
