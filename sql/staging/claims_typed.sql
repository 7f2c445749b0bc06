-- staging.claims_typed: every row of raw.claims with its values typed, and the first problem that stops the
-- row from being used (reject_column, reject_reason; both null for a usable row).
--   * a value that a Parquet file delivered in its contract type (a DATE, a DECIMAL amount) is taken as it is
--     (raw.claims_stored.<column>_value); text values (CSV files, Parquet text columns) are typed as follows;
--   * dates are ISO 8601 (YYYY-MM-DD); amounts use the decimal separator sniffed for the file at load
--     (raw.load_manifest.decimal_separator; with a decimal comma, '.' is only accepted as a thousands separator
--     in groups of three digits, so '12.5' in a decimal-comma file is rejected instead of read as 125);
--   * privacy_flag accepts true/false, 1/0, J/N, ja/nee, y/n;
--   * an optional value that is present but cannot be typed rejects the row, as does a missing required value,
--     debit_credit other than D/C, a negative amount or a prestatiecode that is not in reference.prestatiecodes;
--   * an optional code outside its valid set (zvt 9, an unknown zorglabel) does not reject the row: the landing
--     quality suite warns about it and the value is treated as empty in core.
-- Each row is typed from its own raw row, so a run adds the rows of the files it loaded (quality.model_builds)
-- instead of typing every file again; it retypes everything when this file or reference.prestatiecodes changes.
-- materialise: incremental by load_id
WITH source AS (
    SELECT
        r.*,
        m.file_name,
        coalesce(m.decimal_separator, '.') AS decimal_separator,
        r.declared_amount AS declared_amount_text,
        r.allowed_amount AS allowed_amount_text,
        CASE WHEN coalesce(m.decimal_separator, '.') <> ',' THEN r.declared_amount
             WHEN regexp_full_match(r.declared_amount, '-?([0-9]+|[0-9]{1,3}(\.[0-9]{3})+)(,[0-9]+)?')
                 THEN replace(replace(r.declared_amount, '.', ''), ',', '.')
        END AS declared_amount_number,
        CASE WHEN coalesce(m.decimal_separator, '.') <> ',' THEN r.allowed_amount
             WHEN regexp_full_match(r.allowed_amount, '-?([0-9]+|[0-9]{1,3}(\.[0-9]{3})+)(,[0-9]+)?')
                 THEN replace(replace(r.allowed_amount, '.', ''), ',', '.')
        END AS allowed_amount_number
    FROM raw.claims_stored AS r
    JOIN raw.load_manifest AS m ON m.load_id = r.load_id
),
typed AS (
    SELECT
        load_id,
        source_row,
        file_name,
        CASE WHEN decimal_separator = ',' THEN ' (the file uses a decimal comma)' ELSE '' END AS amount_hint,
        claim_id,
        related_claim_id,
        upper(debit_credit) AS debit_credit,
        uzovi,
        provider_agb,
        practitioner_agb,
        client_key,
        coalesce(birth_year_value, TRY_CAST(birth_year AS INTEGER)) AS birth_year,
        trajectory_id,
        coalesce(trajectory_start_date_value, TRY_CAST(trajectory_start_date AS DATE)) AS trajectory_start_date,
        upper(prestatiecode) AS prestatiecode,
        coalesce(service_date_value, TRY_CAST(service_date AS DATE)) AS service_date,
        coalesce(zvt_value, TRY_CAST(zvt AS INTEGER)) AS zvt,
        upper(zorglabel) AS zorglabel,
        coalesce(privacy_flag_value,
                 CASE WHEN lower(privacy_flag) IN ('true', 't', '1', 'j', 'ja', 'y', 'yes') THEN TRUE
                      WHEN lower(privacy_flag) IN ('false', 'f', '0', 'n', 'nee', 'no') THEN FALSE
                 END) AS privacy_flag,
        referral_type,
        coalesce(referral_date_value, TRY_CAST(referral_date AS DATE)) AS referral_date,
        location_id,
        coalesce(declared_amount_value, TRY_CAST(declared_amount_number AS DECIMAL(14, 2))) AS declared_amount,
        coalesce(allowed_amount_value, TRY_CAST(allowed_amount_number AS DECIMAL(14, 2))) AS allowed_amount,
        coalesce(submitted_date_value, TRY_CAST(submitted_date AS DATE)) AS submitted_date,
        -- the raw text, kept only to say why a row was rejected (null for a value the file delivered typed)
        birth_year AS birth_year_text,
        trajectory_start_date AS trajectory_start_date_text,
        service_date AS service_date_text,
        zvt AS zvt_text,
        privacy_flag AS privacy_flag_text,
        referral_date AS referral_date_text,
        declared_amount_text,
        allowed_amount_text,
        submitted_date AS submitted_date_text
    FROM source
),
checked AS (
    SELECT
        t.*,
        CASE
            WHEN t.claim_id IS NULL THEN 'claim_id'
            WHEN t.debit_credit IS NULL THEN 'debit_credit'
            WHEN t.debit_credit NOT IN ('D', 'C') THEN 'debit_credit'
            WHEN t.provider_agb IS NULL THEN 'provider_agb'
            WHEN t.client_key IS NULL THEN 'client_id'
            WHEN t.prestatiecode IS NULL THEN 'prestatiecode'
            WHEN p.prestatiecode IS NULL THEN 'prestatiecode'
            WHEN t.service_date IS NULL THEN 'service_date'
            WHEN t.declared_amount IS NULL THEN 'declared_amount'
            WHEN t.declared_amount < 0 THEN 'declared_amount'
            WHEN t.allowed_amount_text IS NOT NULL AND t.allowed_amount IS NULL THEN 'allowed_amount'
            WHEN t.allowed_amount < 0 THEN 'allowed_amount'
            WHEN t.birth_year_text IS NOT NULL AND t.birth_year IS NULL THEN 'birth_year'
            WHEN t.trajectory_start_date_text IS NOT NULL AND t.trajectory_start_date IS NULL
                THEN 'trajectory_start_date'
            WHEN t.zvt_text IS NOT NULL AND t.zvt IS NULL THEN 'zvt'
            WHEN t.privacy_flag_text IS NOT NULL AND t.privacy_flag IS NULL THEN 'privacy_flag'
            WHEN t.referral_date_text IS NOT NULL AND t.referral_date IS NULL THEN 'referral_date'
            WHEN t.submitted_date_text IS NOT NULL AND t.submitted_date IS NULL THEN 'submitted_date'
        END AS reject_column,
        CASE
            WHEN t.claim_id IS NULL THEN 'required value is empty'
            WHEN t.debit_credit IS NULL THEN 'required value is empty'
            WHEN t.debit_credit NOT IN ('D', 'C') THEN 'not D or C: ' || t.debit_credit
            WHEN t.provider_agb IS NULL THEN 'required value is empty'
            WHEN t.client_key IS NULL THEN 'required value is empty'
            WHEN t.prestatiecode IS NULL THEN 'required value is empty'
            WHEN p.prestatiecode IS NULL THEN 'unknown prestatiecode: ' || t.prestatiecode
            WHEN t.service_date IS NULL AND t.service_date_text IS NULL THEN 'required value is empty'
            WHEN t.service_date IS NULL THEN 'not a date (YYYY-MM-DD): ' || t.service_date_text
            WHEN t.declared_amount IS NULL AND t.declared_amount_text IS NULL THEN 'required value is empty'
            WHEN t.declared_amount IS NULL
                THEN 'not an amount' || t.amount_hint || ': ' || t.declared_amount_text
            WHEN t.declared_amount < 0 THEN 'negative amount (the sign comes from debit_credit): '
                || coalesce(t.declared_amount_text, CAST(t.declared_amount AS VARCHAR))
            WHEN t.allowed_amount_text IS NOT NULL AND t.allowed_amount IS NULL
                THEN 'not an amount' || t.amount_hint || ': ' || t.allowed_amount_text
            WHEN t.allowed_amount < 0 THEN 'negative amount (the sign comes from debit_credit): '
                || coalesce(t.allowed_amount_text, CAST(t.allowed_amount AS VARCHAR))
            WHEN t.birth_year_text IS NOT NULL AND t.birth_year IS NULL THEN 'not a year: ' || t.birth_year_text
            WHEN t.trajectory_start_date_text IS NOT NULL AND t.trajectory_start_date IS NULL
                THEN 'not a date (YYYY-MM-DD): ' || t.trajectory_start_date_text
            WHEN t.zvt_text IS NOT NULL AND t.zvt IS NULL THEN 'not a number: ' || t.zvt_text
            WHEN t.privacy_flag_text IS NOT NULL AND t.privacy_flag IS NULL
                THEN 'not a yes/no value: ' || t.privacy_flag_text
            WHEN t.referral_date_text IS NOT NULL AND t.referral_date IS NULL
                THEN 'not a date (YYYY-MM-DD): ' || t.referral_date_text
            WHEN t.submitted_date_text IS NOT NULL AND t.submitted_date IS NULL
                THEN 'not a date (YYYY-MM-DD): ' || t.submitted_date_text
        END AS reject_reason
    FROM typed AS t
    LEFT JOIN reference.prestatiecodes AS p ON p.prestatiecode = t.prestatiecode
)
SELECT
    load_id, source_row, file_name, claim_id, related_claim_id, debit_credit, uzovi, provider_agb,
    practitioner_agb, client_key, birth_year, trajectory_id, trajectory_start_date, prestatiecode, service_date,
    zvt, zorglabel, privacy_flag, referral_type, referral_date, location_id, declared_amount, allowed_amount,
    submitted_date, reject_column, reject_reason
FROM checked
