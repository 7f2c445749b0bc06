-- core.provider_years_in_scope: the provider-years the activity benchmarks report on: a non-reversed line in
-- the year, and the year not after the as-of date's year.
SELECT y.provider_agb, y.year, y.provider_type, y.provider_name
FROM core.provider_years AS y
CROSS JOIN core.run_parameters AS p
WHERE y.activity_lines > 0
  AND y.year <= CAST(EXTRACT(year FROM p.as_of) AS INTEGER)
