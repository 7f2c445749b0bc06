-- marts.cost_per_client: average cost per unique client, corrected for the provider's ZVT mix.
--   clients      = distinct clients with a non-reversed line at the provider in the year
--   total_cost   = sum of the net amounts of all the provider's lines in the year (credits included):
--                  core.provider_years.net_amount
--   stratum      = per client: ZVT of its latest non-reversed line there that year with a ZVT, else 'unknown'
--   peer mean m_z = cost of the clients in stratum z / number of those clients, over all providers in the year
--   expected_cost_per_client = sum over z of clients_pz x m_z / clients
--   cost_index   = observed_cost_per_client / expected_cost_per_client
--   adjusted_cost_per_client = cost_index x (cost of all clients / all clients in the year)
--   meets_norm   = cost_index <= threshold (default 1.0)
-- It reads no line and no client: the clients of a provider-year per stratum and their cost are
-- core.provider_strata, so the trend computes it at a month end from a few rows per provider.
WITH peer_strata AS (
    SELECT year, stratum, sum(cost) / sum(clients) AS peer_mean
    FROM core.provider_strata
    GROUP BY year, stratum
),
peer_year AS (
    SELECT year, sum(cost) / sum(clients) AS peer_cost_per_client
    FROM core.provider_strata
    GROUP BY year
),
expected AS (
    SELECT
        s.provider_agb,
        s.year,
        CAST(sum(s.clients) AS BIGINT) AS clients,
        sum(CASE WHEN s.stratum = 'unknown' THEN s.clients ELSE 0 END) AS unknown_stratum_clients,
        sum(s.clients * p.peer_mean) / sum(s.clients) AS expected_cost_per_client
    FROM core.provider_strata AS s
    JOIN peer_strata AS p ON p.year = s.year AND p.stratum = s.stratum
    GROUP BY s.provider_agb, s.year
),
measured AS (
    SELECT
        s.provider_agb,
        s.year,
        e.clients,
        e.unknown_stratum_clients,
        c.net_amount AS total_cost,
        CAST(c.net_amount AS DOUBLE) / e.clients AS observed_cost_per_client,
        CAST(e.expected_cost_per_client AS DOUBLE) AS expected_cost_per_client,
        CAST(y.peer_cost_per_client AS DOUBLE) AS peer_cost_per_client
    FROM core.provider_years_in_scope AS s
    JOIN expected AS e ON e.provider_agb = s.provider_agb AND e.year = s.year
    JOIN core.provider_years AS c ON c.provider_agb = s.provider_agb AND c.year = s.year
    JOIN peer_year AS y ON y.year = s.year
)
SELECT
    m.provider_agb,
    m.year,
    m.clients,
    m.unknown_stratum_clients,
    m.total_cost,
    m.observed_cost_per_client,
    m.expected_cost_per_client,
    CASE WHEN m.expected_cost_per_client <> 0 THEN m.observed_cost_per_client / m.expected_cost_per_client
    END AS cost_index,
    CASE WHEN m.expected_cost_per_client <> 0
        THEN m.observed_cost_per_client / m.expected_cost_per_client * m.peer_cost_per_client
    END AS adjusted_cost_per_client,
    n.threshold,
    CASE
        WHEN NOT n.norm_applies OR m.expected_cost_per_client = 0 THEN NULL
        ELSE m.observed_cost_per_client / m.expected_cost_per_client <= n.threshold
    END AS meets_norm
FROM measured AS m
JOIN core.benchmark_norms AS n
    ON n.benchmark = 'cost_per_client' AND n.provider_agb = m.provider_agb AND n.year = m.year
