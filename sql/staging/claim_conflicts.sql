-- staging.claim_conflicts: claim_ids delivered more than once with different content. The copy from the most
-- recently loaded file is used (staging.claim_lines); this table says which files disagreed.
-- (Only re-delivered claim_ids are compared, as staging.claim_lines counted them in `deliveries`: building the
-- content text for every line, or counting every claim_id again, would cost far more.)
-- A claim_id's row depends only on its own deliveries, so a run compares again just the claim_ids in the files it
-- loaded (quality.model_builds); staging.claim_lines is read up to date.
-- materialise: incremental by claim_id of staging.claims_typed
WITH usable AS (
    SELECT *
    FROM staging.claims_typed
    WHERE reject_reason IS NULL
),
redelivered AS (
    SELECT claim_id
    FROM staging.claim_lines
    WHERE deliveries > 1
),
deliveries AS (
    SELECT
        u.claim_id, u.load_id, u.file_name, u.source_row,
        concat_ws('|', coalesce(u.related_claim_id, ''), u.debit_credit, coalesce(u.uzovi, ''), u.provider_agb,
            coalesce(u.practitioner_agb, ''), u.client_key, coalesce(CAST(u.birth_year AS VARCHAR), ''),
            coalesce(u.trajectory_id, ''), coalesce(CAST(u.trajectory_start_date AS VARCHAR), ''), u.prestatiecode,
            CAST(u.service_date AS VARCHAR), coalesce(CAST(u.zvt AS VARCHAR), ''), coalesce(u.zorglabel, ''),
            coalesce(CAST(u.privacy_flag AS VARCHAR), ''), coalesce(u.referral_type, ''),
            coalesce(CAST(u.referral_date AS VARCHAR), ''), coalesce(u.location_id, ''),
            CAST(u.declared_amount AS VARCHAR), coalesce(CAST(u.allowed_amount AS VARCHAR), ''),
            coalesce(CAST(u.submitted_date AS VARCHAR), '')) AS content
    FROM usable AS u
    JOIN redelivered AS r ON r.claim_id = u.claim_id
),
per_claim AS (
    SELECT claim_id, count(*) AS deliveries, count(DISTINCT content) AS versions, max(load_id) AS max_load_id
    FROM deliveries
    GROUP BY claim_id
    HAVING count(DISTINCT content) > 1
)
SELECT
    p.claim_id,
    p.deliveries,
    p.versions,
    max(CASE WHEN d.load_id = p.max_load_id THEN d.file_name END) AS used_file,
    string_agg(DISTINCT d.file_name, ', ' ORDER BY d.file_name) AS files
FROM per_claim AS p
JOIN deliveries AS d ON d.claim_id = p.claim_id
GROUP BY p.claim_id, p.deliveries, p.versions
