-- marts.group_treatment_share: share of treatment time delivered in groups, per provider and year.
--   group_minutes     = 30 x non-reversed groepsconsult lines (one line per patient per 30-minute block)
--   treatment_minutes = group_minutes + duration_min of non-reversed behandeling consults
--   share             = group_minutes / treatment_minutes (null when treatment_minutes = 0)
--   share_amount      = net amount of group lines / net amount of group + behandeling lines
--   meets_norm        = share >= threshold (or > threshold when threshold_inclusive is false)
-- A provider's rows depend only on its own lines (and the small tables of scope, norms and parameters), so a
-- run recomputes just the providers whose core.claim_lines rows it changed (quality.model_builds).
-- materialise: incremental by provider_agb of core.claim_lines
WITH activity AS (
    SELECT
        provider_agb,
        year,
        sum(CASE WHEN family = 'groepsconsult' THEN 1 ELSE 0 END) AS group_lines,
        sum(CASE WHEN family = 'consult' AND activity = 'behandeling' THEN 1 ELSE 0 END) AS behandeling_lines,
        sum(CASE WHEN family = 'groepsconsult' THEN 30 ELSE 0 END) AS group_minutes,
        sum(CASE WHEN family = 'consult' AND activity = 'behandeling' THEN duration_min ELSE 0 END)
            AS behandeling_minutes,
        sum(CASE WHEN family = 'groepsconsult' THEN net_amount ELSE 0 END) AS group_amount,
        sum(CASE WHEN family = 'consult' AND activity = 'behandeling' THEN net_amount ELSE 0 END)
            AS behandeling_amount
    FROM core.claim_lines
    WHERE counts_as_activity
    GROUP BY provider_agb, year
),
inclusive AS (
    SELECT max(CASE WHEN value = 'true' THEN 1 ELSE 0 END) = 1 AS threshold_inclusive
    FROM core.policy_parameters
    WHERE benchmark = 'group_treatment_share' AND parameter = 'threshold_inclusive'
),
measured AS (
    SELECT
        s.provider_agb,
        s.year,
        coalesce(a.group_lines, 0) AS group_lines,
        coalesce(a.group_lines, 0) + coalesce(a.behandeling_lines, 0) AS treatment_lines,
        coalesce(a.group_minutes, 0) AS group_minutes,
        coalesce(a.group_minutes, 0) + coalesce(a.behandeling_minutes, 0) AS treatment_minutes,
        coalesce(a.group_amount, 0) AS group_amount,
        coalesce(a.group_amount, 0) + coalesce(a.behandeling_amount, 0) AS treatment_amount
    FROM core.provider_years_in_scope AS s
    LEFT JOIN activity AS a ON a.provider_agb = s.provider_agb AND a.year = s.year
)
SELECT
    m.provider_agb,
    m.year,
    m.group_lines,
    m.treatment_lines,
    m.group_minutes,
    m.treatment_minutes,
    CASE WHEN m.treatment_minutes > 0 THEN CAST(m.group_minutes AS DOUBLE) / m.treatment_minutes END AS share,
    CASE WHEN m.treatment_amount <> 0 THEN CAST(m.group_amount AS DOUBLE) / CAST(m.treatment_amount AS DOUBLE)
    END AS share_amount,
    n.threshold,
    CASE
        WHEN NOT n.norm_applies OR m.treatment_minutes = 0 THEN NULL
        WHEN i.threshold_inclusive THEN CAST(m.group_minutes AS DOUBLE) / m.treatment_minutes >= n.threshold
        ELSE CAST(m.group_minutes AS DOUBLE) / m.treatment_minutes > n.threshold
    END AS meets_norm
FROM measured AS m
CROSS JOIN inclusive AS i
JOIN core.benchmark_norms AS n
    ON n.benchmark = 'group_treatment_share' AND n.provider_agb = m.provider_agb AND n.year = m.year
