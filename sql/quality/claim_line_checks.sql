-- quality.claim_line_checks (table): one row per line of staging.claim_lines with the findings that need more
-- than one table. Each finding column is NULL when all is well and otherwise names what is wrong:
--   credit_without_debit: a credit line whose related_claim_id is no debit line in the data ('(empty)' when it
--     names none). It still lowers its year's cost (staging.net_lines, line_type orphan_credit).
--   year_without_contract: 'provider_agb/year' of a line whose provider has no contract row for that year.
--   outside_contract_years: the service year of a line outside the years the contracts cover.
--   after_as_of: the service_date of a line after the run's as-of date (core.run_parameters). Such lines are left
--     out of core and marts; expected when a past as-of date is analysed, so they are counted, not failed.
-- No client key is selected: samples of these columns end up in quality.expectation_results and Data Docs.
-- A run recomputes only the lines its new files or a moved as-of date change (sql/changes/quality.claim_line_checks.sql).
-- materialise: incremental by claim_id of staging.claim_lines
-- store uncompressed: claim_id
WITH debits AS (
    -- the debit lines that credits name: only those can answer a credit's related_claim_id, and holding these few
    -- instead of every debit line's claim_id took the table's build at ten million lines ~1.4 s less
    SELECT DISTINCT claim_id
    FROM staging.claim_lines
    WHERE debit_credit = 'D'
      AND claim_id IN (SELECT related_claim_id FROM staging.claim_lines WHERE debit_credit = 'C')
),
contract_years AS (
    SELECT min(year) AS first_year, max(year) AS last_year FROM staging.contracts
),
provider_years AS (
    SELECT DISTINCT provider_agb, year FROM staging.contracts
)
SELECT
    l.claim_id,
    l.file_name,
    l.source_row,
    l.debit_credit,
    l.provider_agb,
    l.service_date,
    CASE WHEN l.debit_credit = 'C' AND d.claim_id IS NULL THEN coalesce(l.related_claim_id, '(empty)') END
        AS credit_without_debit,
    CASE WHEN c.provider_agb IS NULL THEN l.provider_agb || '/' || CAST(year(l.service_date) AS VARCHAR) END
        AS year_without_contract,
    CASE WHEN cy.first_year IS NULL OR year(l.service_date) NOT BETWEEN cy.first_year AND cy.last_year
        THEN CAST(year(l.service_date) AS INTEGER) END AS outside_contract_years,
    CASE WHEN l.service_date > p.as_of THEN l.service_date END AS after_as_of
FROM staging.claim_lines AS l
CROSS JOIN core.run_parameters AS p
CROSS JOIN contract_years AS cy
LEFT JOIN debits AS d ON d.claim_id = l.related_claim_id
LEFT JOIN provider_years AS c ON c.provider_agb = l.provider_agb AND c.year = year(l.service_date)
