-- quality.rejected_rows (view): every input row that could not be used, with the file it came from, the row
-- (source_row: the line the row starts on in the file; the header is line 1), the column and the reason.
--   stage 'reading': the CSV reader could not split the line into the header's columns (raw.rejected_lines);
--   stage 'typing': a value could not be typed or a required value is missing (staging.claims_typed,
--   staging.contracts_typed). reason_kind is the reason without the offending value, for counting.
-- Whole files that could not be read are not here: see quality.file_accounting (status 'quarantined') and the
-- copy with its reason file in DATA_DIR/quarantine/.
SELECT
    kind,
    file_name,
    source_row,
    column_name,
    reason,
    CASE WHEN reason LIKE '%:%' THEN trim(split_part(reason, ':', 1)) ELSE reason END AS reason_kind,
    stage,
    load_id
FROM staging.rejected_rows
