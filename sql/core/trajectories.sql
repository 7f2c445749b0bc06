-- core.trajectories: one row per trajectory with its activity up to the as-of date.
--   diagnostiek: non-reversed diagnostiek consults; treatment: non-reversed behandeling consults,
--   groepsconsults and verblijfsdagen. kind = 'diagnostics_only' (diagnostiek, no treatment),
--   'with_treatment' (any treatment), or 'other' (neither, e.g. only toeslagen).
-- A provider's client's rows depend only on that pair's lines: a run recomputes the pairs core.claim_lines
-- recomputed (pipelines/incremental.py).
-- materialise: incremental by provider_agb, client_key of core.claim_lines
SELECT
    trajectory_key,
    -- the trajectory key contains its provider and client: grouping by the key alone is the same and quicker
    any_value(provider_agb) AS provider_agb,
    any_value(client_key) AS client_key,
    min(service_date) AS first_service_date,
    max(service_date) AS last_service_date,
    count(*) AS activity_lines,
    sum(CASE WHEN family = 'consult' AND activity = 'diagnostiek' THEN 1 ELSE 0 END) AS diagnostiek_lines,
    sum(CASE WHEN (family = 'consult' AND activity = 'behandeling') OR family IN ('groepsconsult', 'verblijfsdag')
             THEN 1 ELSE 0 END) AS treatment_lines,
    CASE
        WHEN sum(CASE WHEN (family = 'consult' AND activity = 'behandeling')
                           OR family IN ('groepsconsult', 'verblijfsdag') THEN 1 ELSE 0 END) > 0 THEN 'with_treatment'
        WHEN sum(CASE WHEN family = 'consult' AND activity = 'diagnostiek' THEN 1 ELSE 0 END) > 0
            THEN 'diagnostics_only'
        ELSE 'other'
    END AS kind
FROM core.claim_lines
WHERE counts_as_activity
GROUP BY trajectory_key
