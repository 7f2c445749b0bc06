-- quality.claim_lines_integrity (view, built and dropped by the staging_claim_lines_integrity check): the columns
-- of staging.claim_lines that the fatal suite checks, plus unknown_prestatiecode: the line's prestatiecode when it
-- is not in reference.prestatiecodes, else NULL. An anti-join here is ~200x faster in DuckDB than GX's
-- "NOT IN (<every code>)", and it reads only tables upstream of the blocking check.
SELECT
    l.claim_id,
    l.debit_credit,
    l.provider_agb,
    l.client_key,
    l.prestatiecode,
    l.service_date,
    l.declared_amount,
    l.amount,
    CASE WHEN p.prestatiecode IS NULL THEN l.prestatiecode END AS unknown_prestatiecode
FROM staging.claim_lines AS l
LEFT JOIN reference.prestatiecodes AS p ON p.prestatiecode = l.prestatiecode
