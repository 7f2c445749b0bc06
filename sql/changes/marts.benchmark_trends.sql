-- The providers whose lines a run's new files change, each with the earliest service date they change there
-- (pipelines/benchmarks/trends.py). A trend month end before a provider's date is computed from that provider's
-- lines as they were (a month end reads only lines up to it, and nothing in core.claim_lines depends on later
-- lines except netting, which linked_claims covers): a month end before every provider's date keeps all its rows
-- from the previous run, a later one the rows of the benchmarks computed per provider for the providers not listed.
-- Every delivery of a linked claim counts, the superseded ones too: a re-delivery may move a line to another
-- provider. A row with no provider (a line rejected in staging) reaches no benchmark, but its date still counts.
SELECT t.provider_agb, min(t.service_date) AS earliest_change
FROM staging.claims_typed AS t
WHERE t.claim_id IN (SELECT claim_id FROM linked_claims)
GROUP BY t.provider_agb
