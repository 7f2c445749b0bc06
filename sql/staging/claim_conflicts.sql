-- staging.claim_conflicts: claim_ids delivered more than once with different content. The copy from the most
-- recently loaded file is used (staging.claim_lines); this table says which files disagreed.
WITH usable AS (
    SELECT
        claim_id, load_id, file_name, source_row,
        concat_ws('|', coalesce(related_claim_id, ''), debit_credit, coalesce(uzovi, ''), provider_agb,
            coalesce(practitioner_agb, ''), client_key, coalesce(CAST(birth_year AS VARCHAR), ''),
            coalesce(trajectory_id, ''), coalesce(CAST(trajectory_start_date AS VARCHAR), ''), prestatiecode,
            CAST(service_date AS VARCHAR), coalesce(CAST(zvt AS VARCHAR), ''), coalesce(zorglabel, ''),
            coalesce(CAST(privacy_flag AS VARCHAR), ''), coalesce(referral_type, ''),
            coalesce(CAST(referral_date AS VARCHAR), ''), coalesce(location_id, ''),
            CAST(declared_amount AS VARCHAR), coalesce(CAST(allowed_amount AS VARCHAR), ''),
            coalesce(CAST(submitted_date AS VARCHAR), '')) AS content
    FROM staging.claims_typed
    WHERE reject_reason IS NULL
),
per_claim AS (
    SELECT claim_id, count(*) AS deliveries, count(DISTINCT content) AS versions
    FROM usable
    GROUP BY claim_id
    HAVING count(DISTINCT content) > 1
)
SELECT
    p.claim_id,
    p.deliveries,
    p.versions,
    max(CASE WHEN u.load_id = w.max_load_id THEN u.file_name END) AS used_file,
    string_agg(DISTINCT u.file_name, ', ' ORDER BY u.file_name) AS files
FROM per_claim AS p
JOIN usable AS u ON u.claim_id = p.claim_id
JOIN (SELECT claim_id, max(load_id) AS max_load_id FROM usable GROUP BY claim_id) AS w ON w.claim_id = p.claim_id
GROUP BY p.claim_id, p.deliveries, p.versions
