-- marts.zvt_setting_mismatch: light care questions (ZVT in light_zvt) treated in clinical and
-- hoogspecialistische settings (reference setting in settings), per provider and year.
--   scope lines     = non-reversed lines whose prestatiecode's setting is in `settings`
--   mismatch lines  = scope lines whose line ZVT (own or carried forward) is in `light_zvt`
--   share           = clients_light_zvt / clients_in_scope (null without scope lines)
--   meets_norm      = mismatch_lines <= threshold (default 0); null without scope lines
-- A provider's rows depend only on its own lines (and the small tables of scope, norms and parameters), so a
-- run recomputes just the providers whose core.claim_lines rows it changed (quality.model_builds).
-- materialise: incremental by provider_agb of core.claim_lines
WITH light_zvt AS (
    SELECT CAST(value AS INTEGER) AS zvt
    FROM core.policy_parameters
    WHERE benchmark = 'zvt_setting_mismatch' AND parameter = 'light_zvt'
),
scope_settings AS (
    SELECT CAST(value AS INTEGER) AS setting
    FROM core.policy_parameters
    WHERE benchmark = 'zvt_setting_mismatch' AND parameter = 'settings'
),
scope_lines AS (
    SELECT
        l.provider_agb,
        l.year,
        l.client_key,
        l.net_amount,
        z.zvt IS NOT NULL AS is_mismatch
    FROM core.claim_lines AS l
    JOIN scope_settings AS s ON s.setting = l.setting
    LEFT JOIN light_zvt AS z ON z.zvt = l.line_zvt
    WHERE l.counts_as_activity
),
counted AS (
    SELECT
        provider_agb,
        year,
        count(*) AS scope_lines,
        count(DISTINCT client_key) AS clients_in_scope,
        count(DISTINCT CASE WHEN is_mismatch THEN client_key END) AS clients_light_zvt,
        sum(CASE WHEN is_mismatch THEN 1 ELSE 0 END) AS mismatch_lines,
        sum(CASE WHEN is_mismatch THEN net_amount ELSE 0 END) AS mismatch_amount
    FROM scope_lines
    GROUP BY provider_agb, year
),
measured AS (
    SELECT
        s.provider_agb,
        s.year,
        coalesce(c.scope_lines, 0) AS scope_lines,
        coalesce(c.clients_in_scope, 0) AS clients_in_scope,
        coalesce(c.clients_light_zvt, 0) AS clients_light_zvt,
        coalesce(c.mismatch_lines, 0) AS mismatch_lines,
        coalesce(c.mismatch_amount, 0) AS mismatch_amount
    FROM core.provider_years_in_scope AS s
    LEFT JOIN counted AS c ON c.provider_agb = s.provider_agb AND c.year = s.year
)
SELECT
    m.provider_agb,
    m.year,
    m.scope_lines,
    m.clients_in_scope,
    m.clients_light_zvt,
    m.mismatch_lines,
    m.mismatch_amount,
    CASE WHEN m.clients_in_scope > 0 THEN CAST(m.clients_light_zvt AS DOUBLE) / m.clients_in_scope END AS share,
    n.threshold,
    CASE WHEN NOT n.norm_applies OR m.scope_lines = 0 THEN NULL ELSE m.mismatch_lines <= n.threshold END
        AS meets_norm
FROM measured AS m
JOIN core.benchmark_norms AS n
    ON n.benchmark = 'zvt_setting_mismatch' AND n.provider_agb = m.provider_agb AND n.year = m.year
