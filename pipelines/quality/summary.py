"""``quality_summary(con)``: what the run loaded, rejected and quarantined, and which checks failed.

For the CLI report. ``con`` is any connection to the warehouse (read-only is enough). To report on the run
that just finished, open the working copy (``Warehouse.build_path``): a run that was blocked or failed
publishes nothing, so the published copy still shows the previous run.
"""

from __future__ import annotations

from typing import Any

import duckdb

from pipelines.reference import REFERENCE_TABLES

SEVERITY_ORDER = {"fatal": 0, "error": 1, "warn": 2}


def quality_summary(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> dict[str, Any]:
    """A plain dict (JSON-serialisable) describing the data quality of the warehouse.

    Keys:
      ``files_loaded``, ``files_quarantined``: landing files in raw.load_manifest by status (all runs);
      ``quarantined``: ``[{"file", "reason"}]``;
      ``rows_in_files``: data rows in the loaded files; ``rows_loaded``: rows that passed typing;
      ``rows_rejected``: rows left out (reading + typing); ``rows_rejected_by_reason``: ``{"column: reason": n}``,
      most frequent first; ``rows_superseded``: rows replaced by a later delivery of the same claim_id;
      ``unbalanced_files``: files whose rows do not add up (should always be empty);
      ``valid_claim_lines``: lines in staging.claim_lines;
      ``checks_run_id``: the run whose checks are reported (``run_id``, default the latest run with results);
      ``checks_run`` / ``checks_failed``: numbers of checks;
      ``failed_checks``: ``[{"check", "asset", "severity" (ERROR|WARN), "blocking", "failed_expectations",
      "messages"}]``, ERROR first;
      ``fatal``: messages of fatal problems (no valid claim lines, missing or empty reference tables, failed
      fatal expectations).
    """
    summary: dict[str, Any] = {}
    summary.update(_files(con))
    summary["rows_rejected_by_reason"] = _rejected_by_reason(con)
    summary["valid_claim_lines"] = _scalar(con, "SELECT count(*) FROM staging.claim_lines")
    summary.update(_checks(con, run_id))
    fatal = []
    if summary["valid_claim_lines"] == 0:
        fatal.append("no valid claim lines: every file was quarantined or every row rejected "
                     "(see quality.file_accounting and quality.rejected_rows)")
    for table in REFERENCE_TABLES:
        if not _scalar(con, f"SELECT count(*) FROM reference.{table}"):
            fatal.append(f"reference data: reference.{table} is missing or empty")
    for check in summary["failed_checks"]:
        if check["blocking"]:
            fatal.extend(check["messages"])
    summary["fatal"] = fatal
    return summary


def load_context_markdown(con: duckdb.DuckDBPyConnection, limit: int = 10) -> str:
    """What was loaded, quarantined and rejected, read straight from raw.load_manifest, raw.rejected_lines and
    staging.claims_typed (the inputs of staging.claim_lines, so never left over from an earlier run). Shown with
    a failed blocking check, whose downstream quality tables are not rebuilt."""
    manifest = {status: (files, rows) for status, files, rows in _rows(
        con, "SELECT status, count(*), coalesce(sum(rows_read), 0) FROM raw.load_manifest "
             "WHERE kind = 'claims' GROUP BY status")}
    files, rows_in_files = manifest.get("loaded", (0, 0))
    usable = _scalar(con, "SELECT count(*) FROM staging.claims_typed WHERE reject_reason IS NULL") or 0
    lines = [f"**Claims files:** {files} loaded with {rows_in_files} data rows, of which {usable} usable; "
             f"{manifest.get('quarantined', (0, 0))[0]} quarantined."]
    for file, reason in _rows(con, "SELECT file_name, reason FROM raw.load_manifest WHERE status = 'quarantined' "
                                   f"ORDER BY load_id LIMIT {int(limit)}"):
        lines.append(f"- quarantined {file}: {reason}")
    reasons = _rows(con, f"""
        SELECT why, count(*) AS n FROM (
            SELECT coalesce(reject_column, '(row)') || ': ' || trim(split_part(reject_reason, ':', 1)) AS why
            FROM staging.claims_typed WHERE reject_reason IS NOT NULL
            UNION ALL
            SELECT coalesce(l.column_name, '(row)') || ': ' || trim(split_part(l.reason, ':', 1))
            FROM raw.rejected_lines AS l JOIN raw.load_manifest AS m USING (load_id) WHERE m.kind = 'claims'
        ) GROUP BY why ORDER BY n DESC, why LIMIT {int(limit)}""")
    if reasons:
        lines.append("**Rejected claim rows by reason** (file, row and value: quality.rejected_rows):")
        lines += [f"- {n} x {why}" for why, n in reasons]
    return "\n".join(lines)


def _files(con) -> dict[str, Any]:
    try:
        rows = con.execute(
            "SELECT status, count(*), coalesce(sum(rows_in_file), 0), coalesce(sum(rows_loaded), 0), "
            "coalesce(sum(rows_rejected), 0), coalesce(sum(rows_superseded), 0) "
            "FROM quality.file_accounting GROUP BY status"
        ).fetchall()
        unbalanced = [f for (f,) in con.execute(
            "SELECT file_name FROM quality.file_accounting WHERE NOT balanced ORDER BY load_id").fetchall()]
    except duckdb.CatalogException:  # the quality tables were not built: count from raw and staging
        rows = _files_from_raw(con)
        unbalanced = []
    by_status = {r[0]: r for r in rows}
    loaded = by_status.get("loaded", ("loaded", 0, 0, 0, 0, 0))
    quarantined = _rows(con, "SELECT file_name, reason FROM raw.load_manifest WHERE status = 'quarantined' "
                             "ORDER BY load_id")
    return {
        "files_loaded": int(loaded[1]),
        "files_quarantined": len(quarantined),
        "quarantined": [{"file": f, "reason": r} for f, r in quarantined],
        "rows_in_files": int(loaded[2]),
        "rows_loaded": int(loaded[3]),
        "rows_rejected": int(loaded[4]),
        "rows_superseded": int(loaded[5]),
        "unbalanced_files": unbalanced,
    }


def _files_from_raw(con) -> list[tuple]:
    try:
        rows = con.execute(
            "SELECT status, count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), "
            "coalesce(sum(lines_rejected), 0), 0 FROM raw.load_manifest GROUP BY status"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    typing = _scalar(con, "SELECT count(*) FROM staging.rejected_rows WHERE stage = 'typing'")
    return [(s, n, in_file, raw - typing if s == "loaded" else raw, rejected + (typing if s == "loaded" else 0), 0)
            for s, n, in_file, raw, rejected, _ in rows]


def _rejected_by_reason(con) -> dict[str, int]:
    for table in ("quality.rejected_rows", "staging.rejected_rows"):
        try:
            rows = con.execute(
                f"SELECT coalesce(column_name, '(row)') || ': ' || "
                f"CASE WHEN reason LIKE '%:%' THEN trim(split_part(reason, ':', 1)) ELSE reason END AS why, "
                f"count(*) AS n FROM {table} GROUP BY why ORDER BY n DESC, why"
            ).fetchall()
        except duckdb.CatalogException:
            continue
        return {why: int(n) for why, n in rows}
    return {}


def _checks(con, run_id: str | None) -> dict[str, Any]:
    empty = {"checks_run_id": None, "checks_run": 0, "checks_failed": 0, "failed_checks": []}
    try:
        if run_id is None:
            found = con.execute(
                "SELECT run_id FROM quality.expectation_results ORDER BY run_time DESC LIMIT 1").fetchone()
            if not found:
                return empty
            run_id = found[0]
        rows = con.execute(
            """
            SELECT check_name, asset_key, severity, evaluated, success, count_only, message
            FROM quality.expectation_results
            WHERE run_id = ?
            ORDER BY asset_key, check_name, run_time
            """,
            [run_id],
        ).fetchall()
    except duckdb.CatalogException:
        return empty
    checks: dict[tuple[str, str], dict] = {}
    for check, asset, severity, evaluated, success, count_only, message in rows:
        entry = checks.setdefault((asset, check), {"check": check, "asset": asset, "problems": []})
        if not evaluated or (not success and not count_only):
            entry["problems"].append((severity, evaluated, message))
    failed = []
    for entry in checks.values():
        problems = entry.pop("problems")
        if not problems:
            continue
        error = any(not ev or sev in ("fatal", "error") for sev, ev, _ in problems)
        problems.sort(key=lambda p: (p[1], SEVERITY_ORDER.get(p[0], 9)))
        failed.append({
            **entry,
            "severity": "ERROR" if error else "WARN",
            "blocking": any(sev == "fatal" for sev, _, _ in problems),
            "failed_expectations": len(problems),
            "messages": [m for _, _, m in problems],
        })
    failed.sort(key=lambda c: (c["severity"] != "ERROR", c["asset"], c["check"]))
    return {"checks_run_id": run_id, "checks_run": len(checks), "checks_failed": len(failed),
            "failed_checks": failed}


def _scalar(con, sql: str) -> int | None:
    try:
        (value,) = con.execute(sql).fetchone()
    except duckdb.CatalogException:
        return None
    return int(value) if value is not None else None


def _rows(con, sql: str) -> list[tuple]:
    try:
        return con.execute(sql).fetchall()
    except duckdb.CatalogException:
        return []
