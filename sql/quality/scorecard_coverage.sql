-- quality.scorecard_coverage (view): every provider and year with claim lines up to the as-of date
-- (staging.claim_lines, core.run_parameters) and whether marts.provider_scorecard has a row for it.
-- missing_from_scorecard is 'provider_agb/year' when the scorecard has no row, else NULL.
WITH claimed AS (
    SELECT l.provider_agb, CAST(year(l.service_date) AS INTEGER) AS year, count(*) AS claim_lines
    FROM staging.claim_lines AS l
    CROSS JOIN core.run_parameters AS p
    WHERE l.service_date <= p.as_of
    GROUP BY ALL
)
SELECT
    c.provider_agb,
    c.year,
    c.claim_lines,
    s.provider_agb IS NOT NULL AS in_scorecard,
    CASE WHEN s.provider_agb IS NULL THEN c.provider_agb || '/' || CAST(c.year AS VARCHAR) END
        AS missing_from_scorecard
FROM claimed AS c
LEFT JOIN marts.provider_scorecard AS s ON s.provider_agb = c.provider_agb AND s.year = c.year
