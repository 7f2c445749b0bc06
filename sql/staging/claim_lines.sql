-- staging.claim_lines: one row per claim_id, debit and credit lines, usable rows only.
-- A claim_id delivered more than once keeps the copy from the most recently loaded file (then the last row in
-- that file); identical re-deliveries are thereby ignored, conflicting ones are listed in
-- staging.claim_conflicts. `amount` is allowed_amount when present, else declared_amount, negative for credits.
-- (Only re-delivered claim_ids are ranked: a window over every line would sort all of them.)
-- Which copy is used depends only on the deliveries of the same claim_id, so a run recomputes just the claim_ids
-- in the files it loaded (quality.model_builds).
-- materialise: incremental by claim_id of staging.claims_typed
-- (staging.claims_typed is read in three places rather than through one shared CTE: DuckDB would store a CTE
-- used twice, all ten million wide rows of it.)
WITH redelivered AS (
    SELECT claim_id, count(*) AS deliveries
    FROM staging.claims_typed
    WHERE reject_reason IS NULL
    GROUP BY claim_id
    HAVING count(*) > 1
),
ranked AS (
    SELECT
        u.load_id,
        u.source_row,
        r.deliveries,
        row_number() OVER (PARTITION BY u.claim_id ORDER BY u.load_id DESC, u.source_row DESC) AS delivery_rank
    FROM staging.claims_typed AS u
    JOIN redelivered AS r ON r.claim_id = u.claim_id
    WHERE u.reject_reason IS NULL
)
SELECT
    u.claim_id, u.related_claim_id, u.debit_credit, u.uzovi, u.provider_agb, u.practitioner_agb, u.client_key,
    u.birth_year, u.trajectory_id, u.trajectory_start_date, u.prestatiecode, u.service_date, u.zvt, u.zorglabel,
    u.privacy_flag, u.referral_type, u.referral_date, u.location_id, u.declared_amount, u.allowed_amount,
    u.submitted_date,
    CAST(CASE WHEN u.debit_credit = 'C' THEN -1 ELSE 1 END * coalesce(u.allowed_amount, u.declared_amount)
         AS DECIMAL(18, 2)) AS amount,
    coalesce(k.deliveries, 1) AS deliveries,
    u.load_id, u.file_name, u.source_row
FROM staging.claims_typed AS u
LEFT JOIN ranked AS k ON k.load_id = u.load_id AND k.source_row = u.source_row
WHERE u.reject_reason IS NULL AND coalesce(k.delivery_rank, 1) = 1
