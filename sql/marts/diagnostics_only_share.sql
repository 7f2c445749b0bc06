-- marts.diagnostics_only_share: share of diagnostics-only trajectories in the casemix, per provider and year.
--   A trajectory is in year Y's casemix when it has a non-reversed line in Y (core.trajectory_years). Its kind
--   is decided by all its lines up to the as-of date (core.trajectories): diagnostics-only (diagnostiek, no
--   treatment) or with treatment. A diagnostics-only trajectory whose last line is at most open_window_days before the as-of
--   date is still open: counted in open_trajectories, left out of numerator and denominator.
--   share = diagnostics_only_trajectories / trajectories, trajectories = diagnostics-only + with treatment.
--   meets_norm = share <= threshold.
WITH params AS (
    SELECT
        r.as_of,
        (SELECT CAST(value AS INTEGER) FROM core.policy_parameters
         WHERE benchmark = 'diagnostics_only_share' AND parameter = 'open_window_days') AS open_window_days
    FROM core.run_parameters AS r
),
casemix AS (
    SELECT provider_agb, year, trajectory_key
    FROM core.trajectory_years
),
classified AS (
    SELECT
        c.provider_agb,
        c.year,
        t.kind,
        t.kind = 'diagnostics_only' AND date_diff('day', t.last_service_date, p.as_of) <= p.open_window_days
            AS is_open
    FROM casemix AS c
    JOIN core.trajectories AS t ON t.trajectory_key = c.trajectory_key
    CROSS JOIN params AS p
),
counted AS (
    SELECT
        provider_agb,
        year,
        sum(CASE WHEN kind = 'diagnostics_only' AND NOT is_open THEN 1 ELSE 0 END) AS diagnostics_only_trajectories,
        sum(CASE WHEN kind = 'with_treatment' THEN 1 ELSE 0 END) AS with_treatment_trajectories,
        sum(CASE WHEN is_open THEN 1 ELSE 0 END) AS open_trajectories
    FROM classified
    GROUP BY provider_agb, year
),
measured AS (
    SELECT
        s.provider_agb,
        s.year,
        coalesce(c.diagnostics_only_trajectories, 0) AS diagnostics_only_trajectories,
        coalesce(c.with_treatment_trajectories, 0) AS with_treatment_trajectories,
        coalesce(c.diagnostics_only_trajectories, 0) + coalesce(c.with_treatment_trajectories, 0) AS trajectories,
        coalesce(c.open_trajectories, 0) AS open_trajectories
    FROM core.provider_years_in_scope AS s
    LEFT JOIN counted AS c ON c.provider_agb = s.provider_agb AND c.year = s.year
)
SELECT
    m.provider_agb,
    m.year,
    m.diagnostics_only_trajectories,
    m.with_treatment_trajectories,
    m.trajectories,
    m.open_trajectories,
    CASE WHEN m.trajectories > 0 THEN CAST(m.diagnostics_only_trajectories AS DOUBLE) / m.trajectories END AS share,
    n.threshold,
    CASE
        WHEN NOT n.norm_applies OR m.trajectories = 0 THEN NULL
        ELSE CAST(m.diagnostics_only_trajectories AS DOUBLE) / m.trajectories <= n.threshold
    END AS meets_norm
FROM measured AS m
JOIN core.benchmark_norms AS n
    ON n.benchmark = 'diagnostics_only_share' AND n.provider_agb = m.provider_agb AND n.year = m.year
