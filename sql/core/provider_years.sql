-- core.provider_years: one row per provider and year that has claims up to the as-of date or a contract.
-- provider_type and omzetmaximum come from the contract; 'onbekend' (unknown) when there is no contract row.
-- A provider's rows depend only on its own lines and contracts, so a run recomputes just the providers whose
-- core.claim_lines rows it changed (quality.model_builds); a changed contract rebuilds the table.
-- materialise: incremental by provider_agb of core.claim_lines
WITH activity AS (
    SELECT
        provider_agb,
        year,
        sum(CASE WHEN counts_as_activity THEN 1 ELSE 0 END) AS activity_lines,
        count(DISTINCT CASE WHEN counts_as_activity THEN client_key END) AS clients,
        sum(net_amount) AS net_amount
    FROM core.claim_lines
    GROUP BY provider_agb, year
),
years AS (
    SELECT provider_agb, year FROM activity
    UNION
    SELECT provider_agb, year FROM staging.contracts
)
SELECT
    y.provider_agb,
    y.year,
    c.provider_name,
    coalesce(c.provider_type, 'onbekend') AS provider_type,
    c.omzetmaximum,
    coalesce(a.activity_lines, 0) AS activity_lines,
    coalesce(a.clients, 0) AS clients,
    coalesce(a.net_amount, 0) AS net_amount
FROM years AS y
LEFT JOIN activity AS a USING (provider_agb, year)
LEFT JOIN staging.contracts AS c USING (provider_agb, year)
