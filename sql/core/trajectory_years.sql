-- core.trajectory_years: one row per trajectory and year in which it has a non-reversed debit line (activity):
--   the casemix of a provider-year. activity_lines: its activity lines in that year up to the as-of date.
-- Marts that count trajectories per provider-year read these rows instead of grouping every claim line by its
-- trajectory_key again (core.trajectories has no year: a trajectory may be active in several).
-- A provider's client's rows depend only on that pair's lines: a run recomputes the pairs core.claim_lines
-- recomputed (pipelines/incremental.py).
-- materialise: incremental by provider_agb, client_key of core.claim_lines
SELECT
    -- the trajectory key contains its provider and client: grouping by the key and year alone is the same and quicker
    any_value(provider_agb) AS provider_agb,
    year,
    trajectory_key,
    any_value(client_key) AS client_key,
    count(*) AS activity_lines
FROM core.claim_lines
WHERE counts_as_activity AND trajectory_key IS NOT NULL
GROUP BY trajectory_key, year
