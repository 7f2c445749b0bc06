-- The claim_ids whose staging.claim_lines row a run computes again (pipelines/incremental.py): every claim_id
-- delivered in a file the table does not reflect yet. Its latest delivery, and so the copy used, may be the new
-- one; the deliveries count changes too.
SELECT claim_id FROM changed_claims
