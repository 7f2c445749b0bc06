"""Landing files -> raw: every extract loads completely or not at all, once, with a manifest row.

* A file already in ``raw.load_manifest`` with the same name and checksum is skipped, so reruns never
  double-count.
* A file that cannot be read at all (empty, not UTF-8 text, no readable header, a required column missing) is
  copied to ``DATA_DIR/quarantine/`` with a reason file and recorded in the manifest as ``quarantined``. The
  landing folder itself is never changed: it is the insurer's record of what was delivered.
* Lines that the CSV reader cannot split into the header's columns are kept in ``raw.rejected_lines`` (file,
  line, column, reason); the rest of the file loads. Typing rejects follow in staging.
* Every column is stored as text, exactly as received, except ``client_id``, which is replaced by its keyed
  hash (``client_key``) in the same statement that reads it.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from pipelines.contract import CLAIMS, IDENTIFIER_COLUMN, KINDS, PSEUDONYM_COLUMN, ExtractKind, kind_of, raw_columns
from pipelines.ingest.pseudonymise import hmac_pads, hmac_sql

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
        columns = ", ".join(f"{c} VARCHAR" for c in raw_columns(kind))
        con.execute(
            f"CREATE TABLE IF NOT EXISTS raw.{kind.name} (load_id INTEGER NOT NULL, source_row BIGINT NOT NULL, "
            f"{columns})"
        )


def load_landing(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    quarantine_dir: Path,
    pseudonym_key: str,
    progress: Callable[[str], None] = lambda _msg: None,
) -> LoadSummary:
    """Load every new extract in ``landing_dir`` in file-name order."""
    ensure_raw_tables(con)
    summary = LoadSummary()
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist")
    files = sorted(p for p in landing_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in files:
        kind = kind_of(path.name)
        if kind is None:
            summary.ignored.append(path.name)
            continue
        checksum = _sha256(path)
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
            _rollback_if_open(con)
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
        header = [name for (name,) in con.execute(
            "SELECT name FROM parquet_schema(?) WHERE name <> 'schema'", [str(path)]).fetchall()]
        _check_header(path, kind, header)
        present = set(header)
        source = f"(SELECT *, file_row_number + 1 AS source_row FROM read_parquet($path, file_row_number = true))"
        rejected = 0
    else:
        delimiter, header = _sniff_csv(path)
        _check_header(path, kind, header)
        present = set(header)
        rejected = _read_csv_into_landing(con, path, delimiter)
        source = "landing_rows"

    def text(column: str) -> str:
        return f"CAST({column} AS VARCHAR)" if column in present else "CAST(NULL AS VARCHAR)"

    decimal_separator = _sniff_decimal_separator(con, source, kind, present, path)
    selected = []
    for column in kind.columns:
        if column == IDENTIFIER_COLUMN:
            selected.append(f"{hmac_sql(f'trim({text(column)})')} AS {PSEUDONYM_COLUMN}")
        else:
            selected.append(f"NULLIF(trim({text(column)}), '') AS {column}")
    # Reading and sniffing happened above, outside the transaction; the file's rows, its rejected lines and
    # its manifest row are written together or not at all.
    con.execute("BEGIN TRANSACTION")
    params = {"load_id": load_id}
    if kind.name == CLAIMS.name:
        params.update(hmac_pads(key))
    if source != "landing_rows":
        params["path"] = str(path)
    con.execute(
        f"INSERT INTO raw.{kind.name} SELECT $load_id, source_row, {', '.join(selected)} FROM {source}",
        params,
    )
    rows = con.execute(f"SELECT count(*) FROM raw.{kind.name} WHERE load_id = ?", [load_id]).fetchone()[0]
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
    con.execute("COMMIT")
    return rows, rejected


def _read_csv_into_landing(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str) -> int:
    """Read a CSV as text into the temp table ``landing_rows`` with each row's line number.

    DuckDB's reader keeps lines it cannot split in a rejects table (with their line numbers) and goes on.
    Good rows keep file order; their line numbers are the file's line numbers minus the rejected ones.
    """
    con.execute("DROP TABLE IF EXISTS landing_rejects")
    con.execute("DROP TABLE IF EXISTS landing_scans")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE landing_read AS SELECT * FROM read_csv($path, delim = $delim, "
        "header = true, all_varchar = true, quote = '\"', escape = '\"', store_rejects = true, "
        "rejects_table = 'landing_rejects', rejects_scan = 'landing_scans', null_padding = false, "
        "max_line_size = 10000000)",
        {"path": str(path), "delim": delimiter},
    )
    good = con.execute("SELECT count(*) FROM landing_read").fetchone()[0]
    rejected = con.execute("SELECT count(DISTINCT line) FROM landing_rejects").fetchone()[0]
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE landing_rows AS
        WITH good_lines AS (
            SELECT line, row_number() OVER (ORDER BY line) AS ordinal
            FROM range(2, $last_line + 1) AS r(line)
            WHERE line NOT IN (SELECT line FROM landing_rejects)
        )
        SELECT l.*, g.line AS source_row
        FROM (SELECT *, rowid - (SELECT min(rowid) FROM landing_read) + 1 AS ordinal FROM landing_read) AS l
        JOIN good_lines AS g USING (ordinal)
        """,
        {"last_line": good + rejected + 1},
    )
    con.execute("DROP TABLE landing_read")
    # Rejected lines are reported once per line: the first problem the reader found on it.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE landing_rejects_first AS SELECT * FROM landing_rejects "
        "QUALIFY row_number() OVER (PARTITION BY line ORDER BY column_idx) = 1"
    )
    con.execute("DROP TABLE landing_rejects")
    con.execute("ALTER TABLE landing_rejects_first RENAME TO landing_rejects")
    return rejected


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
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    header = [name.strip().strip('"').strip().lower() for name in header_line.split(delimiter)]
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


def _sniff_decimal_separator(con, source: str, kind: ExtractKind, present: set[str], path: Path) -> str:
    """',' when an amount column uses a decimal comma (e.g. ``12,50`` or ``1.234,50``), else '.'."""
    columns = [c for c in kind.decimal_columns if c in present]
    if not columns or source != "landing_rows":
        return "."
    condition = " OR ".join(f"regexp_matches({c}, '^\\s*-?[0-9.]*,[0-9]+\\s*$')" for c in columns)
    (comma_rows,) = con.execute(f"SELECT count(*) FROM {source} WHERE {condition}").fetchone()
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


def _rollback_if_open(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction was open: the file failed while it was being read


def _next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM raw.load_manifest").fetchone()[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
