-- core.provider_clients: one row per provider, year and client with a non-reversed line there that year.
--   cost: sum of the net amounts of all the client's lines at the provider in the year (credits included).
--   stratum: the line ZVT of the client's latest non-reversed line there in the year that has one (greatest
--   service_date, then claim_id), as text; 'unknown' when none has one (e.g. a privacy statement).
WITH activity AS (
    SELECT provider_agb, year, client_key
    FROM core.claim_lines
    WHERE counts_as_activity
    GROUP BY provider_agb, year, client_key
),
latest_zvt AS (
    SELECT provider_agb, year, client_key, line_zvt
    FROM (
        SELECT
            provider_agb, year, client_key, line_zvt,
            row_number() OVER (PARTITION BY provider_agb, year, client_key
                               ORDER BY service_date DESC, claim_id DESC) AS recency
        FROM core.claim_lines
        WHERE counts_as_activity AND line_zvt IS NOT NULL
    ) AS ranked
    WHERE recency = 1
),
cost AS (
    SELECT provider_agb, year, client_key, sum(net_amount) AS cost
    FROM core.claim_lines
    GROUP BY provider_agb, year, client_key
)
SELECT
    a.provider_agb,
    a.year,
    a.client_key,
    coalesce(CAST(z.line_zvt AS VARCHAR), 'unknown') AS stratum,
    coalesce(c.cost, 0) AS cost
FROM activity AS a
LEFT JOIN latest_zvt AS z USING (provider_agb, year, client_key)
LEFT JOIN cost AS c USING (provider_agb, year, client_key)
