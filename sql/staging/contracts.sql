-- staging.contracts: one row per provider and contract year; a later file's row replaces an earlier one.
WITH ranked AS (
    SELECT
        c.*,
        row_number() OVER (PARTITION BY provider_agb, year ORDER BY load_id DESC, source_row DESC) AS delivery_rank
    FROM staging.contracts_typed AS c
    WHERE reject_reason IS NULL
)
SELECT provider_agb, year, provider_name, provider_type, omzetmaximum, file_name
FROM ranked
WHERE delivery_rank = 1
