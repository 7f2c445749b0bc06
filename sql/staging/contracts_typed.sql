-- staging.contracts_typed: every row of raw.contracts typed, with the first problem that stops it from being
-- used (reject_column, reject_reason). provider_type must be one of the three contract types. A year or
-- omzetmaximum that a Parquet file delivered typed is taken as it is (raw.contracts_stored.<column>_value).
WITH source AS (
    SELECT
        r.*,
        m.file_name,
        coalesce(m.decimal_separator, '.') AS decimal_separator,
        r.omzetmaximum AS omzetmaximum_text,
        -- with a decimal comma, '.' is only a thousands separator (groups of three digits): '12.5' is rejected
        CASE WHEN coalesce(m.decimal_separator, '.') <> ',' THEN r.omzetmaximum
             WHEN regexp_full_match(r.omzetmaximum, '-?([0-9]+|[0-9]{1,3}(\.[0-9]{3})+)(,[0-9]+)?')
                 THEN replace(replace(r.omzetmaximum, '.', ''), ',', '.')
        END AS omzetmaximum_number
    FROM raw.contracts_stored AS r
    JOIN raw.load_manifest AS m ON m.load_id = r.load_id
),
typed AS (
    SELECT
        load_id, source_row, file_name, decimal_separator, provider_agb,
        coalesce(year_value, TRY_CAST(year AS INTEGER)) AS year,
        year AS year_text,
        provider_name,
        lower(provider_type) AS provider_type,
        coalesce(omzetmaximum_value, TRY_CAST(omzetmaximum_number AS DECIMAL(16, 2))) AS omzetmaximum,
        omzetmaximum_text
    FROM source
)
SELECT
    load_id, source_row, file_name, provider_agb, year, provider_name, provider_type, omzetmaximum,
    CASE
        WHEN provider_agb IS NULL THEN 'provider_agb'
        WHEN year IS NULL THEN 'year'
        WHEN provider_type IS NULL
            OR provider_type NOT IN ('vrijgevestigde', 'instelling', 'geintegreerde_instelling') THEN 'provider_type'
        WHEN (omzetmaximum_text IS NOT NULL AND omzetmaximum IS NULL) OR omzetmaximum < 0 THEN 'omzetmaximum'
    END AS reject_column,
    CASE
        WHEN provider_agb IS NULL THEN 'required value is empty'
        WHEN year IS NULL AND year_text IS NULL THEN 'required value is empty'
        WHEN year IS NULL THEN 'not a year: ' || year_text
        WHEN provider_type IS NULL THEN 'required value is empty'
        WHEN provider_type NOT IN ('vrijgevestigde', 'instelling', 'geintegreerde_instelling')
            THEN 'not vrijgevestigde, instelling or geintegreerde_instelling: ' || provider_type
        WHEN (omzetmaximum_text IS NOT NULL AND omzetmaximum IS NULL) OR omzetmaximum < 0
            THEN 'not an amount >= 0' || CASE WHEN decimal_separator = ',' THEN ' (the file uses a decimal comma)'
                 ELSE '' END || ': ' || coalesce(omzetmaximum_text, CAST(omzetmaximum AS VARCHAR))
    END AS reject_reason
FROM typed
