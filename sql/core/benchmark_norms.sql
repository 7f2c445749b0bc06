-- core.benchmark_norms: for every benchmark in the policy profile and every provider-year, the threshold and
-- whether the norm applies: the provider's contract type is in the benchmark's provider_types and the year is
-- on or after its effective_from_year. Marts report meets_norm = null where the norm does not apply.
WITH benchmarks AS (
    SELECT
        benchmark,
        max(CASE WHEN parameter = 'threshold' THEN CAST(value AS DOUBLE) END) AS threshold,
        max(CASE WHEN parameter = 'effective_from_year' THEN CAST(value AS INTEGER) END) AS effective_from_year
    FROM core.policy_parameters
    GROUP BY benchmark
),
provider_types AS (
    SELECT benchmark, value AS provider_type
    FROM core.policy_parameters
    WHERE parameter = 'provider_types'
)
SELECT
    b.benchmark,
    y.provider_agb,
    y.year,
    y.provider_type,
    b.threshold,
    b.effective_from_year,
    (t.provider_type IS NOT NULL AND y.year >= b.effective_from_year) AS norm_applies
FROM benchmarks AS b
CROSS JOIN core.provider_years AS y
LEFT JOIN provider_types AS t ON t.benchmark = b.benchmark AND t.provider_type = y.provider_type
