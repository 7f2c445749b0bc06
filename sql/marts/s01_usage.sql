-- marts.s01_usage: use of zorglabel S01 (digital care), per provider and year.
--   consult_lines = non-reversed consult and groepsconsult lines; s01_lines = those with zorglabel S01.
--   share = s01_lines / consult_lines (null without consult lines).
--   meets_norm = s01_lines > threshold (default 0), from effective_from_year; null without consult lines.
-- A provider's rows depend only on its own lines (and the small tables of scope, norms and parameters), so a
-- run recomputes just the providers whose core.claim_lines rows it changed (quality.model_builds).
-- materialise: incremental by provider_agb of core.claim_lines
WITH counted AS (
    SELECT
        provider_agb,
        year,
        count(*) AS consult_lines,
        sum(CASE WHEN zorglabel = 'S01' THEN 1 ELSE 0 END) AS s01_lines
    FROM core.claim_lines
    WHERE counts_as_activity AND family IN ('consult', 'groepsconsult')
    GROUP BY provider_agb, year
),
measured AS (
    SELECT
        s.provider_agb,
        s.year,
        coalesce(c.consult_lines, 0) AS consult_lines,
        coalesce(c.s01_lines, 0) AS s01_lines
    FROM core.provider_years_in_scope AS s
    LEFT JOIN counted AS c ON c.provider_agb = s.provider_agb AND c.year = s.year
)
SELECT
    m.provider_agb,
    m.year,
    m.consult_lines,
    m.s01_lines,
    CASE WHEN m.consult_lines > 0 THEN CAST(m.s01_lines AS DOUBLE) / m.consult_lines END AS share,
    n.threshold,
    CASE WHEN NOT n.norm_applies OR m.consult_lines = 0 THEN NULL ELSE m.s01_lines > n.threshold END AS meets_norm
FROM measured AS m
JOIN core.benchmark_norms AS n
    ON n.benchmark = 's01_usage' AND n.provider_agb = m.provider_agb AND n.year = m.year
