-- core.claim_lines: the netted lines (staging.net_lines) with service_date on or before the as-of date, with
-- their prestatiecode attributes, year and month, trajectory and line ZVT. The unit every benchmark counts.
--   * trajectory_key: provider + client key + trajectory_id. Non-reversed debit lines without a trajectory_id
--     are grouped per provider and client in date order; a gap of more than 365 days starts a new trajectory,
--     numbered '#1', '#2', ... A delivered trajectory_id that itself starts with '#' gets one more '#' in front
--     ('#1' becomes '##1'), so that it is never taken for one of those numbers.
--   * line_zvt: the line's own ZVT; if empty, the ZVT of the trajectory's latest non-reversed debit line with a
--     ZVT on or before the line's date (latest = greatest service_date, then claim_id); else null (unknown).
--     A code outside reference.zorgvraagtypen counts as empty.
--   * counts_as_activity: a non-reversed debit line. Reversed lines and orphan credits carry money only.
-- Every rule above looks only at one provider's lines of one client, so a run recomputes just the pairs that its
-- new files (or a moved as-of date) change: sql/changes/core.claim_lines.sql, quality.model_builds.
-- materialise: incremental by provider_agb, client_key of staging.net_lines
-- store uncompressed: claim_id, trajectory_key
-- (`lines` and `keyed` are read more than once and marked NOT MATERIALIZED: DuckDB would otherwise store every row
-- of them, ~1 GB at ten million lines even for the narrow reads, and computing them again from staging.net_lines
-- costs less than that memory.
-- For the same reason a trajectory whose ZVT sources agree gets its ZVT in the final SELECT, from zvt_sources,
-- instead of in a list of carried ZVTs per line. The rules group and join a trajectory's lines by its parts
-- (provider_agb, client_key, trajectory_part); the 52-character trajectory_key is built once, for the output, and
-- only the lines that need their trajectory's ZVT sources look them up. docs/performance.md)
WITH params AS (
    SELECT as_of FROM core.run_parameters
),
lines AS NOT MATERIALIZED (
    -- every netted line up to the as-of date, with its ZVT if that is a valid one, its trajectory_id as the key's part
    -- (delivered_part) and whether it counts as activity
    -- (each read below takes only the columns it needs; the windows sort narrow rows)
    SELECT
        n.*,
        CASE WHEN z.zvt IS NOT NULL THEN n.zvt END AS valid_zvt,
        CASE WHEN n.trajectory_id LIKE '#%' THEN '#' || n.trajectory_id ELSE n.trajectory_id END AS delivered_part,
        n.line_type = 'debit' AND NOT n.is_reversed AS counts_as_activity
    FROM staging.net_lines AS n
    CROSS JOIN params AS p
    LEFT JOIN reference.zorgvraagtypen AS z ON z.zvt = n.zvt
    WHERE n.service_date <= p.as_of
),
untracked AS (
    -- activity lines without a trajectory_id: a new trajectory after a gap of more than 365 days
    SELECT
        claim_id,
        provider_agb,
        client_key,
        service_date,
        CASE
            WHEN lag(service_date) OVER (PARTITION BY provider_agb, client_key ORDER BY service_date, claim_id)
                IS NULL THEN 1
            WHEN date_diff('day',
                    lag(service_date) OVER (PARTITION BY provider_agb, client_key ORDER BY service_date, claim_id),
                    service_date) > 365 THEN 1
            ELSE 0
        END AS starts_trajectory
    FROM lines
    WHERE counts_as_activity AND trajectory_id IS NULL
),
untracked_numbered AS (
    -- the trajectory_part of an untracked line: '#' and its trajectory's number
    SELECT
        claim_id,
        '#' || CAST(sum(starts_trajectory) OVER (
            PARTITION BY provider_agb, client_key ORDER BY service_date, claim_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS VARCHAR) AS trajectory_part
    FROM untracked
),
keyed AS NOT MATERIALIZED (
    -- the trajectory of each line as its parts (trajectory_key is provider_agb|client_key|trajectory_part)
    SELECT
        l.claim_id,
        l.service_date,
        l.valid_zvt,
        l.counts_as_activity,
        l.provider_agb,
        l.client_key,
        coalesce(l.delivered_part, u.trajectory_part) AS trajectory_part
    FROM lines AS l
    LEFT JOIN untracked_numbered AS u ON u.claim_id = l.claim_id
),
zvt_sources AS (
    -- per trajectory, the ZVTs its activity lines give: the first date one is given, and whether it changes
    SELECT
        provider_agb,
        client_key,
        trajectory_part,
        min(service_date) AS first_source_date,
        min(valid_zvt) AS first_zvt,
        min(valid_zvt) <> max(valid_zvt) AS zvt_changes
    FROM keyed
    WHERE counts_as_activity AND valid_zvt IS NOT NULL AND trajectory_part IS NOT NULL
    GROUP BY provider_agb, client_key, trajectory_part
),
changing_carried AS (
    -- lines without a valid ZVT of their own in a trajectory whose ZVT changes: the ZVT in force on their date, that
    -- of the latest source (activity line with a valid ZVT) on or before it (latest = greatest service_date, then
    -- claim_id). One pass over the trajectory's lines in date order; on each date the sources come first, in
    -- claim_id order, so the last source seen is the latest on or before the date (then greatest claim_id).
    -- (A trajectory whose sources all give one ZVT needs no pass: the final SELECT takes that ZVT from
    -- zvt_sources, from the first source's date on.)
    SELECT claim_id, carried_zvt
    FROM (
        SELECT
            k.claim_id,
            k.valid_zvt,
            last_value(CASE WHEN k.counts_as_activity THEN k.valid_zvt END IGNORE NULLS) OVER (
                PARTITION BY k.provider_agb, k.client_key, k.trajectory_part
                ORDER BY k.service_date, CASE WHEN k.counts_as_activity AND k.valid_zvt IS NOT NULL THEN 0 ELSE 1 END,
                         k.claim_id
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS carried_zvt
        FROM keyed AS k
        JOIN zvt_sources AS s
            ON s.provider_agb = k.provider_agb AND s.client_key = k.client_key AND s.trajectory_part = k.trajectory_part
        WHERE s.zvt_changes
    ) AS ordered
    WHERE valid_zvt IS NULL AND carried_zvt IS NOT NULL
),
line_additions AS (
    -- per line, what the rules above add (the trajectory_part of an untracked line, a carried ZVT): joined on once
    SELECT coalesce(u.claim_id, c.claim_id) AS claim_id, u.trajectory_part, c.carried_zvt
    FROM untracked_numbered AS u
    FULL JOIN changing_carried AS c ON c.claim_id = u.claim_id
),
keyed_lines AS (
    -- every line up to the as-of date with its trajectory_part, valid ZVT and the carried ZVT of a changing trajectory
    SELECT
        l.*,
        coalesce(l.delivered_part, x.trajectory_part) AS trajectory_part,
        x.carried_zvt
    FROM lines AS l
    LEFT JOIN line_additions AS x ON x.claim_id = l.claim_id
)
SELECT
    n.claim_id,
    n.line_type,
    n.provider_agb,
    n.practitioner_agb,
    n.client_key,
    n.provider_agb || '|' || n.client_key || '|' || n.trajectory_part AS trajectory_key,
    n.prestatiecode,
    pc.family,
    pc.activity,
    pc.setting,
    pc.beroepscategorie,
    pc.duration_min,
    pc.group_size,
    n.service_date,
    CAST(EXTRACT(year FROM n.service_date) AS INTEGER) AS year,
    CAST(EXTRACT(month FROM n.service_date) AS INTEGER) AS month,
    n.valid_zvt AS zvt,
    coalesce(
        n.valid_zvt,
        n.carried_zvt,
        CASE WHEN NOT s.zvt_changes AND n.service_date >= s.first_source_date THEN s.first_zvt END
    ) AS line_zvt,
    n.zorglabel,
    n.privacy_flag,
    n.referral_type,
    n.referral_date,
    n.location_id,
    n.amount,
    n.credited_amount,
    n.is_reversed,
    n.net_amount,
    n.counts_as_activity
FROM keyed_lines AS n
JOIN reference.prestatiecodes AS pc ON pc.prestatiecode = n.prestatiecode
LEFT JOIN zvt_sources AS s
    -- only a line without a ZVT of its own or carried needs its trajectory's sources: for the others the key is
    -- null, which matches nothing and costs no lookup (in the sample data ~90% of the lines carry their own ZVT)
    ON s.provider_agb = n.provider_agb
    AND s.client_key = CASE WHEN n.valid_zvt IS NULL AND n.carried_zvt IS NULL THEN n.client_key END
    AND s.trajectory_part = n.trajectory_part
