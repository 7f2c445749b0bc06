-- core.provider_strata: one row per provider, year and ZVT stratum: how many of the provider's clients that year
-- are in the stratum (core.provider_clients) and what they cost together. The cost per client compares providers
-- on these (sql/marts/cost_per_client.sql): the peer price of a stratum is the cost of its clients at all
-- providers divided by their number.
-- A provider's rows depend only on its own clients, and there are a few per provider-year, so the trend keeps them
-- at each month end and computes the cost per client of a nightly run from them (pipelines/benchmarks/trends.py).
SELECT
    provider_agb,
    year,
    stratum,
    count(*) AS clients,
    sum(cost) AS cost
FROM core.provider_clients
GROUP BY provider_agb, year, stratum
