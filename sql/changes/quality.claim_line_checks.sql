-- The claim lines whose quality.claim_line_checks row a run computes again (pipelines/incremental.py): the linked
-- claim_ids (sql/changes/linked_claims.sql: a line changed, or a credit's debit line arrived), the lines between
-- the previous and the current as-of date (after_as_of), and the debit line every one of those credits names, so
-- that the recomputed rows see it (credit_without_debit). A change in staging.contracts rebuilds the table.
WITH picked AS (
    SELECT claim_id FROM linked_claims
    UNION
    SELECT l.claim_id
    FROM staging.claim_lines AS l
    CROSS JOIN core.run_parameters AS p
    CROSS JOIN previous_build AS b
    WHERE l.service_date > least(p.as_of, b.as_of) AND l.service_date <= greatest(p.as_of, b.as_of)
)
SELECT claim_id FROM picked
UNION
SELECT l.related_claim_id
FROM staging.claim_lines AS l
WHERE l.claim_id IN (SELECT claim_id FROM picked) AND l.related_claim_id IS NOT NULL
