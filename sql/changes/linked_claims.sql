-- linked_claims: the claim_ids whose lines a run's new files can change (pipelines/incremental.py builds it as a
-- temp table after changed_claims, the claim_ids delivered in those files):
--   * the changed claim_ids themselves;
--   * the debit lines their credits name: a new credit changes the debit's net amount;
--   * the credits that name them: a new debit turns credits that named it from orphans into netting credits.
-- Every delivery counts, the superseded ones too: a re-delivered credit may name another debit than before.
SELECT claim_id FROM changed_claims
UNION
SELECT t.related_claim_id
FROM staging.claims_typed AS t
WHERE t.claim_id IN (SELECT claim_id FROM changed_claims) AND t.related_claim_id IS NOT NULL
UNION
SELECT t.claim_id
FROM staging.claims_typed AS t
WHERE t.related_claim_id IN (SELECT claim_id FROM changed_claims)
