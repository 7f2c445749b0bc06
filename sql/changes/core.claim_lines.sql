-- The providers' clients whose core.claim_lines rows a run computes again (pipelines/incremental.py). Trajectory
-- numbering and ZVT carry-forward look only at one provider's lines of one client, so recomputing all lines of
-- these (provider_agb, client_key) pairs gives what a full rebuild gives:
--   * every pair that a delivery of a linked claim_id belongs to (sql/changes/linked_claims.sql), in any of its
--     versions: a re-delivery may move a line to another client, and a credit may name a debit of another client;
--   * every pair with a line between the previous and the current as-of date (it enters or leaves).
SELECT t.provider_agb, t.client_key
FROM staging.claims_typed AS t
WHERE t.claim_id IN (SELECT claim_id FROM linked_claims)
UNION
SELECT l.provider_agb, l.client_key
FROM staging.claim_lines AS l
CROSS JOIN core.run_parameters AS p
CROSS JOIN previous_build AS b
WHERE l.service_date > least(p.as_of, b.as_of) AND l.service_date <= greatest(p.as_of, b.as_of)
