-- staging.net_lines: the money and activity lines after credits are netted.
--   * one row per debit line: credited_amount = sum of the credit lines that name it in related_claim_id;
--     it is reversed when those credits add up to at least its amount. A reversed line counts for nothing
--     (no activity, net_amount 0); otherwise net_amount = amount - credited_amount.
--   * one row per credit line whose debit line is not in the data (line_type 'orphan_credit'): it still lowers
--     the cost of its service_date's year (net_amount = its negative amount).
-- A view: core.claim_lines is its only reader, and storing ten million rows again cost more than netting them
-- in the two passes that read it.
-- materialise: view
WITH credits AS (
    SELECT related_claim_id AS claim_id, CAST(-sum(amount) AS DECIMAL(18, 2)) AS credited_amount, count(*) AS credit_lines
    FROM staging.claim_lines
    WHERE debit_credit = 'C' AND related_claim_id IS NOT NULL
    GROUP BY related_claim_id
),
debits AS (
    SELECT
        d.*,
        coalesce(c.credited_amount, CAST(0 AS DECIMAL(18, 2))) AS credited_amount,
        coalesce(c.credit_lines, 0) AS credit_lines,
        coalesce(c.credited_amount, 0) >= d.amount AS is_reversed
    FROM staging.claim_lines AS d
    LEFT JOIN credits AS c ON c.claim_id = d.claim_id
    WHERE d.debit_credit = 'D'
)
SELECT
    claim_id, 'debit' AS line_type, provider_agb, practitioner_agb, client_key, birth_year, trajectory_id,
    trajectory_start_date, prestatiecode, service_date, zvt, zorglabel, privacy_flag, referral_type,
    referral_date, location_id, submitted_date,
    amount, credited_amount, credit_lines, is_reversed,
    CAST(CASE WHEN is_reversed THEN 0 ELSE amount - credited_amount END AS DECIMAL(18, 2)) AS net_amount
FROM debits
UNION ALL
SELECT
    c.claim_id, 'orphan_credit' AS line_type, c.provider_agb, c.practitioner_agb, c.client_key, c.birth_year,
    c.trajectory_id, c.trajectory_start_date, c.prestatiecode, c.service_date, c.zvt, c.zorglabel,
    c.privacy_flag, c.referral_type, c.referral_date, c.location_id, c.submitted_date,
    c.amount, CAST(0 AS DECIMAL(18, 2)) AS credited_amount, 0 AS credit_lines, FALSE AS is_reversed,
    c.amount AS net_amount
FROM staging.claim_lines AS c
LEFT JOIN staging.claim_lines AS d ON d.claim_id = c.related_claim_id AND d.debit_credit = 'D'
WHERE c.debit_credit = 'C' AND d.claim_id IS NULL
