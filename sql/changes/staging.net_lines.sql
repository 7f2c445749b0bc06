-- The staging.claim_lines rows that the staging.net_lines rows of the changed (provider_agb, client_key) pairs
-- (temp table changed_keys) depend on. core.claim_lines reads staging.net_lines narrowed to those pairs; the view
-- then nets only these lines instead of all of them (pipelines/incremental.py):
--   * the pairs' own lines;
--   * the debits their credits name (a credit is an orphan only when its debit is nowhere in the data);
--   * the credits that name their debits (a debit's credited amount counts every credit, of any client).
WITH pair_lines AS (
    SELECT claim_id, debit_credit, related_claim_id
    FROM staging.claim_lines
    WHERE (provider_agb, client_key) IN (SELECT provider_agb, client_key FROM changed_keys)
),
needed AS (
    SELECT claim_id FROM pair_lines
    UNION
    SELECT related_claim_id FROM pair_lines WHERE debit_credit = 'C' AND related_claim_id IS NOT NULL
    UNION
    SELECT c.claim_id
    FROM staging.claim_lines AS c
    WHERE c.debit_credit = 'C'
      AND c.related_claim_id IN (SELECT claim_id FROM pair_lines WHERE debit_credit = 'D')
)
SELECT l.*
FROM staging.claim_lines AS l
WHERE l.claim_id IN (SELECT claim_id FROM needed)
