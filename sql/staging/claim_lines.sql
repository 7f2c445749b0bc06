-- staging.claim_lines: one row per claim_id, debit and credit lines, usable rows only.
-- A claim_id delivered more than once keeps the copy from the most recently loaded file (then the last row in
-- that file); identical re-deliveries are thereby ignored, conflicting ones are listed in
-- staging.claim_conflicts. `amount` is allowed_amount when present, else declared_amount, negative for credits.
WITH usable AS (
    SELECT *
    FROM staging.claims_typed
    WHERE reject_reason IS NULL
),
ranked AS (
    SELECT
        u.*,
        row_number() OVER (PARTITION BY claim_id ORDER BY load_id DESC, source_row DESC) AS delivery_rank,
        count(*) OVER (PARTITION BY claim_id) AS deliveries
    FROM usable AS u
)
SELECT
    claim_id, related_claim_id, debit_credit, uzovi, provider_agb, practitioner_agb, client_key, birth_year,
    trajectory_id, trajectory_start_date, prestatiecode, service_date, zvt, zorglabel, privacy_flag,
    referral_type, referral_date, location_id, declared_amount, allowed_amount, submitted_date,
    CASE WHEN debit_credit = 'C' THEN -1 ELSE 1 END * coalesce(allowed_amount, declared_amount) AS amount,
    deliveries,
    load_id, file_name, source_row
FROM ranked
WHERE delivery_rank = 1
