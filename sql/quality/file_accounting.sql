-- quality.file_accounting (table): one row per landing file in raw.load_manifest, with every row accounted for.
--   rows_in_file: data rows in the file, counted independently of the CSV reader at load (Parquet: metadata);
--     NULL for a quarantined file, which is kept whole in DATA_DIR/quarantine/.
--   rows_rejected = rows_rejected_reading (raw.rejected_lines) + rows_rejected_typing (staging.*_typed);
--   rows_loaded = rows that passed typing = rows_used (the delivery used in staging.claim_lines /
--     staging.contracts) + rows_superseded (the same claim_id, or provider and year, delivered again later);
--   balanced: rows_in_file = rows_loaded + rows_rejected, and raw holds exactly the rows the manifest says.
--   quarantined_file / file_with_rejected_rows: the file name when that applies, else NULL (for the checks).
WITH raw_rows AS (
    SELECT load_id, count(*) AS rows_in_raw FROM raw.claims GROUP BY load_id
    UNION ALL
    SELECT load_id, count(*) AS rows_in_raw FROM raw.contracts GROUP BY load_id
),
typed AS (
    SELECT load_id, count(*) FILTER (WHERE reject_reason IS NOT NULL) AS rows_rejected_typing,
           count(*) FILTER (WHERE reject_reason IS NULL) AS rows_loaded
    FROM staging.claims_typed
    GROUP BY load_id
    UNION ALL
    SELECT load_id, count(*) FILTER (WHERE reject_reason IS NOT NULL) AS rows_rejected_typing,
           count(*) FILTER (WHERE reject_reason IS NULL) AS rows_loaded
    FROM staging.contracts_typed
    GROUP BY load_id
),
used AS (
    SELECT load_id, count(*) AS rows_used FROM staging.claim_lines GROUP BY load_id
    UNION ALL
    -- staging.contracts keeps the latest delivery per provider and year (same ranking as sql/staging/contracts.sql)
    SELECT load_id, count(*) AS rows_used
    FROM (
        SELECT load_id,
               row_number() OVER (PARTITION BY provider_agb, year ORDER BY load_id DESC, source_row DESC) AS rank
        FROM staging.contracts_typed
        WHERE reject_reason IS NULL
    ) AS ranked
    WHERE rank = 1
    GROUP BY load_id
),
counted AS (
    SELECT
        m.load_id,
        m.file_name,
        m.kind,
        m.status,
        m.loaded_at,
        m.checksum_sha256,
        CASE WHEN m.status = 'loaded' THEN m.rows_read END AS rows_in_file,
        m.rows_loaded AS rows_in_raw_manifest,
        coalesce(r.rows_in_raw, 0) AS rows_in_raw,
        coalesce(m.lines_rejected, 0) AS rows_rejected_reading,
        coalesce(t.rows_rejected_typing, 0) AS rows_rejected_typing,
        coalesce(t.rows_loaded, 0) AS rows_loaded,
        coalesce(u.rows_used, 0) AS rows_used,
        m.reason AS quarantine_reason
    FROM raw.load_manifest AS m
    LEFT JOIN raw_rows AS r ON r.load_id = m.load_id
    LEFT JOIN typed AS t ON t.load_id = m.load_id
    LEFT JOIN used AS u ON u.load_id = m.load_id
)
SELECT
    load_id,
    file_name,
    kind,
    status,
    loaded_at,
    rows_in_file,
    rows_loaded,
    rows_rejected_reading + rows_rejected_typing AS rows_rejected,
    rows_rejected_reading,
    rows_rejected_typing,
    rows_used,
    rows_loaded - rows_used AS rows_superseded,
    rows_in_raw,
    CASE WHEN status = 'loaded' THEN
        rows_in_file = rows_loaded + rows_rejected_reading + rows_rejected_typing
        AND rows_in_raw = rows_in_raw_manifest
        AND rows_in_raw = rows_loaded + rows_rejected_typing
    END AS balanced,
    CASE WHEN status = 'quarantined' THEN file_name END AS quarantined_file,
    CASE WHEN rows_rejected_reading + rows_rejected_typing > 0 THEN file_name END AS file_with_rejected_rows,
    quarantine_reason,
    checksum_sha256
FROM counted
