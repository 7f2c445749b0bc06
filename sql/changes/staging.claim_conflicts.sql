-- The claim_ids whose staging.claim_conflicts row a run computes again (pipelines/incremental.py): every claim_id
-- delivered in a file the table does not reflect yet. A new delivery may add a version, or make a claim_id
-- re-delivered in the first place; the deliveries count changes too.
SELECT claim_id FROM changed_claims
