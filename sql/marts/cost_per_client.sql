-- marts.cost_per_client: average cost per unique client, corrected for the provider's ZVT mix.
--   clients      = distinct clients with a non-reversed line at the provider in the year
--   total_cost   = sum of the net amounts of all the provider's lines in the year (credits included)
--   stratum      = per client: ZVT of its latest non-reversed line there that year with a ZVT, else 'unknown'
--   peer mean m_z = cost of the clients in stratum z / number of those clients, over all providers in the year
--   expected_cost_per_client = sum over z of clients_pz x m_z / clients
--   cost_index   = observed_cost_per_client / expected_cost_per_client
--   adjusted_cost_per_client = cost_index x (cost of all clients / all clients in the year)
--   meets_norm   = cost_index <= threshold (default 1.0)
WITH peer_strata AS (
    SELECT year, stratum, sum(cost) / count(*) AS peer_mean
    FROM core.provider_clients
    GROUP BY year, stratum
),
peer_year AS (
    SELECT year, sum(cost) / count(*) AS peer_cost_per_client
    FROM core.provider_clients
    GROUP BY year
),
expected AS (
    SELECT
        c.provider_agb,
        c.year,
        count(*) AS clients,
        sum(CASE WHEN c.stratum = 'unknown' THEN 1 ELSE 0 END) AS unknown_stratum_clients,
        sum(p.peer_mean) / count(*) AS expected_cost_per_client
    FROM core.provider_clients AS c
    JOIN peer_strata AS p ON p.year = c.year AND p.stratum = c.stratum
    GROUP BY c.provider_agb, c.year
),
cost AS (
    SELECT provider_agb, year, sum(net_amount) AS total_cost
    FROM core.claim_lines
    GROUP BY provider_agb, year
),
measured AS (
    SELECT
        s.provider_agb,
        s.year,
        e.clients,
        e.unknown_stratum_clients,
        c.total_cost,
        CAST(c.total_cost AS DOUBLE) / e.clients AS observed_cost_per_client,
        CAST(e.expected_cost_per_client AS DOUBLE) AS expected_cost_per_client,
        CAST(y.peer_cost_per_client AS DOUBLE) AS peer_cost_per_client
    FROM core.provider_years_in_scope AS s
    JOIN expected AS e ON e.provider_agb = s.provider_agb AND e.year = s.year
    JOIN cost AS c ON c.provider_agb = s.provider_agb AND c.year = s.year
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
