-- marts.turnover_cap: realised turnover against the contract's omzetmaximum, per provider and year.
-- Only provider-years with an omzetmaximum, up to the as-of date's year.
--   realised_amount  = sum of net amounts with service_date in the year and on or before the as-of date
--   utilisation      = realised_amount / omzetmaximum
--   elapsed_fraction = days from 1 January to the as-of date (inclusive) / days in the year, at most 1
--   projected_amount = realised_amount / elapsed_fraction
--   status           = 'exceeded' (utilisation >= threshold, default 1.0), else 'early_warning'
--                      (utilisation >= warning_level, default 0.70), else 'projected_overrun'
--                      (projected_amount > omzetmaximum), else 'ok'
--   first_warning_date = first service date on which the cumulative realised amount reached the warning level
--   meets_norm       = status = 'ok'
WITH params AS (
    SELECT
        r.as_of,
        (SELECT CAST(value AS DOUBLE) FROM core.policy_parameters
         WHERE benchmark = 'turnover_cap' AND parameter = 'warning_level') AS warning_level
    FROM core.run_parameters AS r
),
capped AS (
    SELECT y.provider_agb, y.year, y.omzetmaximum
    FROM core.provider_years AS y
    CROSS JOIN params AS p
    WHERE y.omzetmaximum IS NOT NULL AND y.omzetmaximum > 0
      AND y.year <= CAST(EXTRACT(year FROM p.as_of) AS INTEGER)
),
daily AS (
    SELECT provider_agb, year, service_date, sum(net_amount) AS amount
    FROM core.claim_lines
    GROUP BY provider_agb, year, service_date
),
cumulative AS (
    SELECT
        provider_agb, year, service_date,
        sum(amount) OVER (PARTITION BY provider_agb, year ORDER BY service_date
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cumulative_amount
    FROM daily
),
first_warning AS (
    SELECT c.provider_agb, c.year, min(d.service_date) AS first_warning_date
    FROM capped AS c
    CROSS JOIN params AS p
    JOIN cumulative AS d ON d.provider_agb = c.provider_agb AND d.year = c.year
    WHERE d.cumulative_amount >= p.warning_level * c.omzetmaximum
    GROUP BY c.provider_agb, c.year
),
measured AS (
    SELECT
        c.provider_agb,
        c.year,
        c.omzetmaximum,
        coalesce((SELECT sum(d.amount) FROM daily AS d WHERE d.provider_agb = c.provider_agb AND d.year = c.year), 0)
            AS realised_amount,
        CASE
            WHEN c.year < CAST(EXTRACT(year FROM p.as_of) AS INTEGER) THEN 1.0
            ELSE CAST(date_diff('day', make_date(c.year, 1, 1), p.as_of) + 1 AS DOUBLE)
                 / date_diff('day', make_date(c.year, 1, 1), make_date(c.year + 1, 1, 1))
        END AS elapsed_fraction,
        p.warning_level
    FROM capped AS c
    CROSS JOIN params AS p
),
statused AS (
    SELECT
        m.*,
        CAST(m.realised_amount AS DOUBLE) / CAST(m.omzetmaximum AS DOUBLE) AS utilisation,
        CAST(m.realised_amount AS DOUBLE) / m.elapsed_fraction AS projected_amount,
        n.threshold,
        n.norm_applies
    FROM measured AS m
    JOIN core.benchmark_norms AS n
        ON n.benchmark = 'turnover_cap' AND n.provider_agb = m.provider_agb AND n.year = m.year
),
with_status AS (
SELECT
    s.provider_agb,
    s.year,
    s.realised_amount,
    s.omzetmaximum,
    s.utilisation,
    s.elapsed_fraction,
    s.projected_amount,
    s.projected_amount / CAST(s.omzetmaximum AS DOUBLE) AS projected_utilisation,
    CASE
        WHEN s.utilisation >= s.threshold THEN 'exceeded'
        WHEN s.utilisation >= s.warning_level THEN 'early_warning'
        WHEN s.projected_amount > s.omzetmaximum THEN 'projected_overrun'
        ELSE 'ok'
    END AS status,
    f.first_warning_date,
    s.warning_level,
    s.threshold,
    s.norm_applies
FROM statused AS s
LEFT JOIN first_warning AS f ON f.provider_agb = s.provider_agb AND f.year = s.year
)
SELECT
    provider_agb, year, realised_amount, omzetmaximum, utilisation, elapsed_fraction, projected_amount,
    projected_utilisation, status, first_warning_date, warning_level, threshold,
    CASE WHEN norm_applies THEN status = 'ok' END AS meets_norm
FROM with_status
