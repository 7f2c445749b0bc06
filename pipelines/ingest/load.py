"""Landing files -> raw: every extract loads completely or not at all, once, with a manifest row.

* A file already in ``raw.load_manifest`` with the same name and checksum is skipped, so reruns never
  double-count. Checksums are remembered by name, size and modification time (``checksums.py``), so a run reads
  only the files that are new or changed, not the whole landing folder.
* A file that cannot be read at all (empty, not UTF-8 text, no readable header, a required column missing) is
  copied to ``DATA_DIR/quarantine/`` with a reason file and recorded in the manifest as ``quarantined``. The
  landing folder itself is never changed: it is the insurer's record of what was delivered.
* Lines that the CSV reader cannot split into the header's columns are kept in ``raw.rejected_lines`` (file,
  line, column, reason); the rest of the file loads. Typing rejects follow in staging.
* Every row is accounted for. The rows of a CSV are counted independently of DuckDB's reader (a byte scan of
  the file; a quote-aware scan when a quoted value spans lines), and a Parquet file's rows from its metadata.
  ``rows_read`` in the manifest is that count, and rows stored + lines rejected must equal it, else the file is
  quarantined. A quoted value that is never closed would make the reader swallow every later line into one
  rejected value: such a file is quarantined with the line of the open quote, instead of losing those lines.
* ``source_row`` / ``raw.rejected_lines.source_row`` is the physical line number on which the row starts (the
  header is line 1), also after blank lines and quoted values that span lines.
* Every column is kept exactly as received, except ``client_id``, which is replaced by its keyed hash
  (``client_key``) in the same statement that reads it. ``raw.<kind>`` shows every value as text; it is a view over
  ``raw.<kind>_stored``, which keeps a value that a Parquet file delivers in its contract type (a DATE service
  date, a DECIMAL amount) in that type, in ``<column>_value``, instead of turning it into text: writing ten million
  lines' dates and amounts as text cost the load ~3 s (docs/performance-history.md, eleventh round).
  Text values (CSV files, Parquet text columns) are trimmed, with empty as null.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from pipelines.contract import (CLAIMS, IDENTIFIER_COLUMN, KINDS, PSEUDONYM_COLUMN, ExtractKind, cast_cannot_fail,
                               kind_of, kept_typed, raw_columns, raw_text_view_sql, stored_table, typed_value_column)
from pipelines.ingest.checksums import ChecksumMemo, checksums
from pipelines.ingest.pseudonymise import CLIENT_KEY_HEX_DIGITS, hmac_parameters, hmac_sql, shorten_stored_client_keys
from pipelines.warehouse import transaction

SNIFF_BYTES = 64 * 1024

MANIFEST_DDL = """
CREATE TABLE IF NOT EXISTS raw.load_manifest (
    load_id           INTEGER PRIMARY KEY,
    file_name         VARCHAR NOT NULL,
    kind              VARCHAR,
    checksum_sha256   VARCHAR NOT NULL,
    size_bytes        BIGINT,
    status            VARCHAR NOT NULL,   -- loaded | quarantined
    rows_read         BIGINT,             -- data rows in the file (excluding the header)
    rows_loaded       BIGINT,             -- rows stored in raw
    lines_rejected    BIGINT,             -- rows the reader could not split into columns (raw.rejected_lines)
    delimiter         VARCHAR,
    decimal_separator VARCHAR,
    ignored_columns   VARCHAR,            -- columns in the file that the contract does not know
    reason            VARCHAR,            -- why a file was quarantined
    loaded_at         TIMESTAMP NOT NULL
)
"""

REJECTED_LINES_DDL = """
CREATE TABLE IF NOT EXISTS raw.rejected_lines (
    load_id     INTEGER NOT NULL,
    file_name   VARCHAR NOT NULL,
    source_row  BIGINT,     -- line number in the file (the header is line 1)
    column_name VARCHAR,
    reason      VARCHAR NOT NULL
)
"""


class ExtractError(Exception):
    """A whole file cannot be loaded. The message names the file and, where known, the row and column."""


@dataclass
class LoadSummary:
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    lines_rejected: int = 0


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(MANIFEST_DDL)
    con.execute(REJECTED_LINES_DDL)
    for kind in KINDS:
        _ensure_stored_table(con, kind)
        con.execute(f"CREATE OR REPLACE VIEW raw.{kind.name} AS {raw_text_view_sql(kind)}")


def _ensure_stored_table(con: duckdb.DuckDBPyConnection, kind: ExtractKind) -> None:
    """Create raw.<kind>_stored, or make it from the all-text raw.<kind> table of a warehouse loaded before values
    were kept typed (renamed, the typed value columns added, empty: its rows keep their text)."""
    stored = stored_table(kind)
    stored_name = stored.split(".", 1)[1]
    found = dict(con.execute("SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = "
                             "'raw' AND table_name IN (?, ?) AND table_catalog = current_database()",
                             [kind.name, stored_name]).fetchall())
    if stored_name not in found and found.get(kind.name) == "BASE TABLE":
        con.execute(f"ALTER TABLE raw.{kind.name} RENAME TO {stored_name}")
        for column, sql_type in kind.typed_columns:
            con.execute(f"ALTER TABLE {stored} ADD COLUMN {typed_value_column(column)} {sql_type}")
        return
    text = ", ".join(f"{c} VARCHAR" for c in raw_columns(kind))
    values = "".join(f", {typed_value_column(c)} {sql_type}" for c, sql_type in kind.typed_columns)
    con.execute(f"CREATE TABLE IF NOT EXISTS {stored} (load_id INTEGER NOT NULL, source_row BIGINT NOT NULL, "
                f"{text}{values})")


def load_landing(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    quarantine_dir: Path,
    pseudonym_key: str,
    progress: Callable[[str], None] = lambda _msg: None,
    checksum_memo: Path | None = None,
) -> LoadSummary:
    """Load every new extract in ``landing_dir`` in file-name order. ``checksum_memo``: a JSON file that
    remembers the landing files' checksums between runs (None: hash every file)."""
    ensure_raw_tables(con)
    converted = shorten_stored_client_keys(con)
    if converted:
        progress(f"client keys of {converted:,} raw rows shortened to their first {CLIENT_KEY_HEX_DIGITS} hex digits; "
                 "every table is rebuilt with them")
    summary = LoadSummary()
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist")
    files = sorted(p for p in landing_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    kinds = {p: kind_of(p.name) for p in files}
    summary.ignored = [p.name for p, kind in kinds.items() if kind is None]
    extracts = [p for p, kind in kinds.items() if kind is not None]
    known = ChecksumMemo(checksum_memo).checksums(extracts) if checksum_memo else checksums(extracts, {})
    for path in extracts:
        kind = kinds[path]
        checksum = known[path]
        already = con.execute(
            "SELECT status FROM raw.load_manifest WHERE file_name = ? AND checksum_sha256 = ?",
            [path.name, checksum],
        ).fetchone()
        if already:
            summary.skipped.append(path.name)
            continue
        progress(f"loading {path.name}")
        try:
            rows, rejected = _load_file(con, path, kind, checksum, pseudonym_key)
            summary.loaded.append(path.name)
            summary.rows_loaded += rows
            summary.lines_rejected += rejected
        except (ExtractError, duckdb.Error) as error:
            reason = str(error) if isinstance(error, ExtractError) else f"{path.name}: {error}"
            _quarantine(con, path, kind, checksum, reason, quarantine_dir)
            summary.quarantined[path.name] = reason
            progress(f"quarantined {path.name}: {reason}")
    return summary


def _load_file(
    con: duckdb.DuckDBPyConnection, path: Path, kind: ExtractKind, checksum: str, key: str
) -> tuple[int, int]:
    load_id = _next_load_id(con)
    if path.suffix.lower() == ".parquet":
        delimiter = None
        described = con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))",
                                [str(path)]).fetchall()
        header = [name for name, _ in described]
        _check_header(path, kind, header)
        present = set(header)
        parquet_types = dict(described)
        source = f"(SELECT *, file_row_number + 1 AS source_row FROM read_parquet($path, file_row_number = true))"
        rejected = 0
        (rows_in_file,) = con.execute("SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)",
                                      [str(path)]).fetchone()
    else:
        delimiter, header = _sniff_csv(path)
        _check_header(path, kind, header)
        present = set(header)
        rejected = _read_csv_into_landing(con, path, delimiter, header)
        source = "landing_rows"
        rows_in_file = None  # checked in _read_csv_into_landing
        parquet_types = {}
    # a typed Parquet value (date, number, boolean) turned into text has no spaces to trim and is never ''
    typed_in_file = {name for name, column_type in parquet_types.items() if column_type != "VARCHAR"}

    def text(column: str) -> str:
        return f"CAST(src.{column} AS VARCHAR)" if column in present else "CAST(NULL AS VARCHAR)"

    # a typed Parquet amount has no separator; one stored as text in the Parquet file is sniffed as in a CSV
    decimal_separator = _sniff_decimal_separator(
        con, source, [c for c in kind.decimal_columns if c in present and c not in typed_in_file],
        {} if source == "landing_rows" else {"path": str(path)})
    kept = {column: contract_type for column, contract_type in kind.typed_columns
            if kept_typed(parquet_types.get(column, "VARCHAR"), contract_type)}
    values = [f"TRY_CAST(src.{column} AS {contract_type})" if column in kept else f"CAST(NULL AS {contract_type})"
              for column, contract_type in kind.typed_columns]
    selected = []
    keyed = ""
    for column in kind.columns:
        if column in kept and cast_cannot_fail(parquet_types[column], kept[column]):
            selected.append(f"CAST(NULL AS VARCHAR) AS {column}")  # the value is in its typed column
        elif column in kept:  # the text only when the value does not fit the contract type (staging rejects it)
            selected.append(f"CASE WHEN TRY_CAST(src.{column} AS {kept[column]}) IS NULL THEN {text(column)} END "
                            f"AS {column}")
        elif column == IDENTIFIER_COLUMN:
            # Each distinct client_id is hashed once (a client has many lines) and joined back on the value as
            # read, so that only the distinct values are trimmed (trimming every line's in the join took ~0.5 s of
            # a five-million-line file); an empty or blank client_id stays NULL (rejected in staging), it is never
            # hashed as ''. (client_id is required: _check_header has made sure the file has it.)
            client_id = f"NULLIF(trim({text(column)}), '')"
            distinct_ids = f"(SELECT DISTINCT {column} FROM {source}) AS src"
            keyed = (f" LEFT JOIN (SELECT raw_id, {hmac_sql('id')} AS client_key FROM "
                     f"(SELECT src.{column} AS raw_id, {client_id} AS id FROM {distinct_ids}) WHERE id IS NOT NULL) "
                     f"AS keys ON keys.raw_id = src.{column}")
            selected.append(f"keys.client_key AS {PSEUDONYM_COLUMN}")
        elif column in typed_in_file:
            selected.append(f"{text(column)} AS {column}")
        else:
            selected.append(f"NULLIF(trim({text(column)}), '') AS {column}")
    # Reading and sniffing happened above, outside the transaction; the file's rows, its rejected lines and
    # its manifest row are written together or not at all.
    params = {"load_id": load_id}
    if kind.name == CLAIMS.name:
        params.update(hmac_parameters(key))
    if source != "landing_rows":
        params["path"] = str(path)
    with transaction(con):
        con.execute(
            f"INSERT INTO {stored_table(kind)} SELECT $load_id, src.source_row, {', '.join(selected + values)} "
            f"FROM {source} AS src{keyed}",
            params,
        )
        rows = con.execute(f"SELECT count(*) FROM {stored_table(kind)} WHERE load_id = ?", [load_id]).fetchone()[0]
        if rows_in_file is not None and rows != rows_in_file:
            raise ExtractError(f"{path.name}: the file has {rows_in_file} rows but {rows} were read; "
                               "nothing was loaded")
        ignored = sorted(set(header) - set(kind.columns))
        con.execute(
            "INSERT INTO raw.load_manifest VALUES (?, ?, ?, ?, ?, 'loaded', ?, ?, ?, ?, ?, ?, NULL, ?)",
            [load_id, path.name, kind.name, checksum, path.stat().st_size, rows + rejected, rows, rejected,
             delimiter, decimal_separator, ", ".join(ignored) or None, _now()],
        )
        if rejected:
            con.execute(
                "INSERT INTO raw.rejected_lines SELECT ?, ?, line, column_name, "
                "error_type || ': ' || error_message FROM landing_rejects ORDER BY line",
                [load_id, path.name],
            )
    return rows, rejected


def _read_csv_into_landing(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str, header: list[str]) -> int:
    """Read a CSV as text into the temp table ``landing_rows`` with the line each row starts on.

    The dialect is given in full (delimiter, quote, the header's column names, all text), so DuckDB does not
    sniff: a sniffer that meets one odd row in its sample would give up on the whole file. DuckDB's reader keeps
    lines it cannot split in a rejects table (with their line numbers) and goes on. Good rows keep file order;
    their line numbers are the record lines of the file (see ``_scan_lines``) minus the rejected ones. Returns
    the number of rejected lines; raises ExtractError when the rows read and rejected do not add up to the
    rows in the file.
    """
    con.execute("DROP TABLE IF EXISTS landing_rejects")
    con.execute("DROP TABLE IF EXISTS landing_scans")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE landing_read AS SELECT * FROM read_csv($path, delim = $delim, "
        "header = true, columns = $columns, auto_detect = false, quote = '\"', escape = '\"', "
        "store_rejects = true, rejects_table = 'landing_rejects', rejects_scan = 'landing_scans', "
        "null_padding = false, max_line_size = 10000000)",
        {"path": str(path), "delim": delimiter, "columns": {name: "VARCHAR" for name in header}},
    )
    good = con.execute("SELECT count(*) FROM landing_read").fetchone()[0]
    rejected = con.execute("SELECT count(DISTINCT line) FROM landing_rejects").fetchone()[0]

    scan = _scan_lines(path)
    if good + rejected != scan.records and scan.has_quotes:
        scan = _scan_records(path, delimiter)  # a quoted value spans lines: count records, not lines
    if good + rejected != scan.records:
        raise ExtractError(
            f"{path.name}: the file has {scan.records} data rows but the reader returned {good} rows and "
            f"{rejected} rejected lines; nothing was loaded"
        )
    con.execute("CREATE OR REPLACE TEMP TABLE landing_blank_lines AS SELECT unnest($lines::BIGINT[]) AS line",
                {"lines": scan.blank_lines})
    con.execute("CREATE OR REPLACE TEMP TABLE landing_continuation_lines AS "
                "SELECT unnest($lines::BIGINT[]) AS line", {"lines": scan.continuation_lines})
    # DuckDB numbers lines as the file's lines without the continuation lines of quoted values that span lines;
    # map its numbers to physical lines.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE landing_line_map AS
        SELECT row_number() OVER (ORDER BY line) AS reader_line, line
        FROM range(1, $last_line + 1) AS r(line)
        WHERE line NOT IN (SELECT line FROM landing_continuation_lines)
        """,
        {"last_line": scan.lines},
    )
    unterminated = con.execute(
        """
        SELECT m.line, m_next.line
        FROM landing_rejects AS j
        JOIN landing_line_map AS m ON m.reader_line = j.line
        LEFT JOIN landing_line_map AS m_next ON m_next.reader_line = j.line + 1
        WHERE j.error_type = 'UNQUOTED VALUE'
          AND coalesce(m_next.line, $last_line + 1) - m.line > 1
        ORDER BY m.line LIMIT 1
        """,
        {"last_line": scan.lines},
    ).fetchone()
    if unterminated:
        line, following = unterminated
        last = (following or scan.lines + 1) - 1
        swallowed = f"line {last}" if last == line + 1 else f"lines {line + 1}-{last}"
        raise ExtractError(
            f"{path.name}, row {line}: a quoted value is never closed (unterminated quote), so {swallowed} of the "
            "file cannot be read; close the quote and deliver the file again"
        )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE landing_rows AS
        WITH good_lines AS (
            SELECT line, row_number() OVER (ORDER BY line) AS ordinal
            FROM landing_line_map
            WHERE line > 1
              AND line NOT IN (SELECT line FROM landing_blank_lines)
              AND reader_line NOT IN (SELECT line FROM landing_rejects)
        )
        SELECT l.*, g.line AS source_row
        FROM (SELECT *, rowid - (SELECT min(rowid) FROM landing_read) + 1 AS ordinal FROM landing_read) AS l
        JOIN good_lines AS g USING (ordinal)
        """
    )
    (mapped,) = con.execute("SELECT count(*) FROM landing_rows").fetchone()
    if mapped != good:
        raise ExtractError(f"{path.name}: {good} rows were read but only {mapped} could be given a line number; "
                           "nothing was loaded")
    con.execute("DROP TABLE landing_read")
    # Rejected lines are reported once per line: the first problem the reader found on it, at its physical line.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE landing_rejects_first AS "
        "SELECT m.line, j.column_name, j.error_type, j.error_message FROM landing_rejects AS j "
        "JOIN landing_line_map AS m ON m.reader_line = j.line "
        "QUALIFY row_number() OVER (PARTITION BY j.line ORDER BY j.column_idx) = 1"
    )
    con.execute("DROP TABLE landing_rejects")
    con.execute("ALTER TABLE landing_rejects_first RENAME TO landing_rejects")
    return rejected


@dataclass
class LineScan:
    lines: int  # physical lines, the header included (a last line without a line break counts)
    records: int  # data rows: lines that start a row, without the header and blank lines
    blank_lines: list[int]  # empty lines, which the reader skips
    continuation_lines: list[int] = field(default_factory=list)  # lines inside a quoted value that spans lines
    has_quotes: bool = False


def _scan_lines(path: Path, block_size: int = 1 << 24) -> LineScan:
    """Count lines and find the empty ones with a byte scan (fast; not aware of quotes)."""
    lines = 0
    blank: list[int] = []
    has_quotes = False
    carry = b""
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            data = carry + block
            cut = data.rfind(b"\n") + 1
            body, carry = data[:cut], data[cut:]
            has_quotes = has_quotes or b'"' in body
            blank.extend(lines + number for number in _blank_lines(body))
            lines += body.count(b"\n")
    if carry:
        lines += 1
        has_quotes = has_quotes or b'"' in carry
        if carry == b"\r":
            blank.append(lines)
    blank = [b for b in blank if b > 1]
    return LineScan(lines=lines, records=max(lines - 1 - len(blank), 0), blank_lines=blank, has_quotes=has_quotes)


def _blank_lines(body: bytes) -> list[int]:
    """Numbers (1-based, within ``body``) of the empty lines of ``body``, a run of whole lines."""
    starts = {0} if body.startswith((b"\n", b"\r\n")) else set()
    for pattern in (b"\n\n", b"\n\r\n"):
        position = body.find(pattern)
        while position != -1:
            starts.add(position + 1)
            position = body.find(pattern, position + 1)
    numbers, counted, previous = [], 0, 0
    for start in sorted(starts):
        counted += body.count(b"\n", previous, start)
        previous = start
        numbers.append(counted + 1)
    return numbers


def _scan_records(path: Path, delimiter: str) -> LineScan:
    """Count rows with Python's CSV parser, which knows quoted values can span lines (slower; used only then)."""
    blank: list[int] = []
    continuation: list[int] = []
    records = 0
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quotechar='"', doublequote=True)
        previous = 0
        for row in reader:
            start = previous + 1
            if reader.line_num > start:
                continuation.extend(range(start + 1, reader.line_num + 1))
            if start > 1:
                if row:
                    records += 1
                else:
                    blank.append(start)
            previous = reader.line_num
    return LineScan(lines=previous, records=records, blank_lines=blank, continuation_lines=continuation,
                    has_quotes=True)


def _sniff_csv(path: Path) -> tuple[str, list[str]]:
    head = path.open("rb").read(SNIFF_BYTES)
    if not head.strip():
        raise ExtractError(f"{path.name}: the file is empty (no header row)")
    if b"\0" in head:
        raise ExtractError(f"{path.name}: not a text CSV file (binary content in the first bytes)")
    first_line = head.splitlines()[0]
    if first_line.startswith(b"\xef\xbb\xbf"):
        first_line = first_line[3:]
    try:
        header_line = first_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ExtractError(
            f"{path.name}, row 1 (header): not UTF-8 text at byte {error.start}; save the extract as UTF-8"
        ) from None
    if ";" not in header_line and "," not in header_line:
        other = next((name for char, name in (("\t", "tab"), ("|", "'|'")) if char in header_line), None)
        raise ExtractError(
            f"{path.name}, row 1 (header): no ',' or ';' delimiter"
            + (f" (the header is separated by {other})" if other else "")
            + "; extracts must use ',' or ';' between columns"
        )
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    header = [name.strip().strip('"').strip().lower() for name in header_line.split(delimiter)]
    # an unnamed column (e.g. a trailing delimiter) still needs a name to be read; it is ignored later
    header = [name or f"unnamed_column_{i + 1}" for i, name in enumerate(header)]
    return delimiter, header


def _check_header(path: Path, kind: ExtractKind, header: list[str]) -> None:
    missing = [c for c in kind.required if c not in header]
    if missing:
        raise ExtractError(
            f"{path.name}, row 1 (header): required column(s) missing: {', '.join(missing)} "
            f"(found: {', '.join(header) or 'nothing'})"
        )
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise ExtractError(f"{path.name}, row 1 (header): column(s) appear twice: {', '.join(duplicated)}")


def _sniff_decimal_separator(con, source: str, text_columns: list[str], params: dict) -> str:
    """',' when an amount column held as text uses a decimal comma (e.g. ``12,50`` or ``1.234,50``), else '.'."""
    if not text_columns:
        return "."
    condition = " OR ".join(f"regexp_matches({c}, '^\\s*-?[0-9.]*,[0-9]+\\s*$')" for c in text_columns)
    (comma_rows,) = con.execute(f"SELECT count(*) FROM {source} WHERE {condition}", params).fetchone()
    return "," if comma_rows else "."


def _quarantine(con, path: Path, kind: ExtractKind | None, checksum: str, reason: str, quarantine_dir: Path) -> None:
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = quarantine_dir / f"{stamp}_{path.name}"
    shutil.copy2(path, target)
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
    con.execute(
        "INSERT INTO raw.load_manifest VALUES (?, ?, ?, ?, ?, 'quarantined', NULL, 0, 0, NULL, NULL, NULL, ?, ?)",
        [_next_load_id(con), path.name, kind.name if kind else None, checksum, path.stat().st_size, reason, _now()],
    )


def _next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM raw.load_manifest").fetchone()[0]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
