-- The earliest service date a run's new files change (pipelines/benchmarks/trends.py). A trend month end before
-- it is computed from lines that did not change (a month end reads only lines up to it, and nothing in
-- core.claim_lines depends on later lines except netting, which linked_claims covers), so its rows are kept from
-- the previous run. NULL when nothing changed.
SELECT min(t.service_date) AS earliest_change
FROM staging.claims_typed AS t
WHERE t.claim_id IN (SELECT claim_id FROM linked_claims)
