-- core.provider_clients: one row per provider, year and client with a non-reversed line there that year.
--   cost: sum of the net amounts of all the client's lines at the provider in the year (credits included).
--   stratum: the line ZVT of the client's latest non-reversed line there in the year that has one (greatest
--   service_date, then claim_id), as text; 'unknown' when none has one (e.g. a privacy statement).
-- One aggregation pass; arg_max is DuckDB's name for max_by (Spark), see docs/spark.md.
-- A provider's client's rows depend only on that pair's lines: a run recomputes the pairs core.claim_lines
-- recomputed (pipelines/incremental.py).
-- materialise: incremental by provider_agb, client_key of core.claim_lines
WITH per_client AS (
    SELECT
        provider_agb,
        year,
        client_key,
        bool_or(counts_as_activity) AS has_activity,
        arg_max(line_zvt, struct_pack(service_date := service_date, claim_id := claim_id))
            FILTER (WHERE counts_as_activity AND line_zvt IS NOT NULL) AS latest_zvt,
        sum(net_amount) AS cost
    FROM core.claim_lines
    GROUP BY provider_agb, year, client_key
)
SELECT
    provider_agb,
    year,
    client_key,
    coalesce(CAST(latest_zvt AS VARCHAR), 'unknown') AS stratum,
    cost
FROM per_client
WHERE has_activity
