-- staging.rejected_rows: every input row that could not be used, with where it came from and why.
-- Lines the reader could not split into columns (raw.rejected_lines) and rows whose values could not be typed.
SELECT 'claims' AS kind, file_name, source_row, reject_column AS column_name, reject_reason AS reason,
       'typing' AS stage, load_id
FROM staging.claims_typed
WHERE reject_reason IS NOT NULL
UNION ALL
SELECT 'contracts' AS kind, file_name, source_row, reject_column AS column_name, reject_reason AS reason,
       'typing' AS stage, load_id
FROM staging.contracts_typed
WHERE reject_reason IS NOT NULL
UNION ALL
SELECT m.kind, l.file_name, l.source_row, l.column_name, l.reason, 'reading' AS stage, l.load_id
FROM raw.rejected_lines AS l
JOIN raw.load_manifest AS m ON m.load_id = l.load_id
