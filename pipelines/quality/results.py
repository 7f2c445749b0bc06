"""Validation results in the warehouse: ``quality.expectation_results`` and ``quality.validation_results``.

``quality.expectation_results`` has one row per expectation per check run (the history analysts query):
run time, Dagster run id, check, asset, suite, table, expectation, column, severity, evaluated, success,
unexpected_count, element_count, a sample of the failing values as text, and the message. A check that could
not run at all (table missing, file locked, bad suite) leaves one row with ``expectation = '(suite)'`` and
``evaluated = false``.

``quality.validation_results`` keeps GX's own result JSON per check run, from which ``quality/data_docs``
builds the Data Docs of the run.

Samples never contain client keys: values of any column whose name mentions ``client`` are replaced by
``<redacted>`` here and in the stored GX JSON (the suites also avoid such samples in the first place).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

from pipelines.catalog import catalogue_comments, comment_if_different
from pipelines.warehouse import transaction

EXPECTATION_RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS quality.expectation_results (
    run_time         TIMESTAMP NOT NULL,  -- UTC, when the check ran
    run_id           VARCHAR NOT NULL,    -- Dagster run id
    check_name       VARCHAR NOT NULL,    -- Dagster asset check (= suite file name)
    asset_key        VARCHAR NOT NULL,    -- the asset the check sits on, e.g. raw/claims
    suite            VARCHAR NOT NULL,    -- GX suite name (marts.<benchmark> for the per-benchmark suite)
    table_name       VARCHAR NOT NULL,    -- the table or view validated
    expectation      VARCHAR NOT NULL,    -- GX expectation type, or '(suite)' when the check could not run
    column_name      VARCHAR,             -- 'a, b' for column pairs; NULL for table-level expectations
    kwargs           VARCHAR,             -- the expectation's arguments as JSON (value sets shortened)
    severity         VARCHAR NOT NULL,    -- fatal | error | warn
    why              VARCHAR,             -- what goes wrong in the numbers when it fails
    evaluated        BOOLEAN NOT NULL,    -- false: GX could not evaluate it; the result says nothing about the data
    success          BOOLEAN NOT NULL,
    count_only       BOOLEAN NOT NULL,    -- an expectation that counts and never fails (mostly = 0)
    unexpected_count BIGINT,
    element_count    BIGINT,
    observed_value   VARCHAR,
    sample           VARCHAR,             -- up to 20 failing values (bad keys/values), never client keys
    message          VARCHAR NOT NULL
)
"""

VALIDATION_RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS quality.validation_results (
    run_time    TIMESTAMP NOT NULL,  -- UTC, when the check ran
    run_id      VARCHAR NOT NULL,    -- Dagster run id
    check_name  VARCHAR NOT NULL,    -- Dagster asset check (= suite file name)
    asset_key   VARCHAR NOT NULL,    -- the asset the check sits on
    suite       VARCHAR NOT NULL,    -- GX suite name
    table_name  VARCHAR NOT NULL,    -- the table or view validated
    success     BOOLEAN,             -- true when every expectation passed
    result_json VARCHAR NOT NULL      -- GX ExpectationSuiteValidationResult as JSON (client samples redacted)
)
"""

TABLE_COMMENTS = {
    "expectation_results": "quality.expectation_results: one row per expectation per data-quality check run, "
                           "appended and kept across runs (see expectations/*.json and docs of the quality checks). "
                           "Samples never contain client keys.",
    "validation_results": "quality.validation_results: Great Expectations' own result JSON per check run, from "
                          "which quality/data_docs builds DATA_DIR/data_docs/.",
}

REDACTED = "<redacted>"
_SAMPLE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
                "unexpected_list", "unexpected_index_list", "unexpected_index_query")


def is_sensitive(column: str | None) -> bool:
    """True for columns whose values must never be shown (client keys and anything named like them)."""
    return bool(column) and "client" in column.lower()


def ensure_result_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the result tables when missing and comment them where their comments differ (every check records its
    run through here; commenting all ~30 columns each time cost ~0.03 s per check)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS quality")
    con.execute(EXPECTATION_RESULTS_DDL)
    con.execute(VALIDATION_RESULTS_DDL)
    relations, columns = catalogue_comments(con, "quality")
    for name, ddl in (("expectation_results", EXPECTATION_RESULTS_DDL),
                      ("validation_results", VALIDATION_RESULTS_DDL)):
        comment_if_different(con, f"TABLE quality.{name}", TABLE_COMMENTS[name], relations[("quality", name)][1])
        existing = dict(columns[("quality", name)])
        for column, text in _column_comments(ddl).items():
            comment_if_different(con, f"COLUMN quality.{name}.{column}", text, existing.get(column))


def _column_comments(ddl: str) -> dict[str, str]:
    """``column -> comment`` from the ``-- comment`` after each column in a CREATE TABLE statement."""
    comments = {}
    for line in ddl.splitlines():
        code, _, comment = line.partition("--")
        words = code.split()
        if comment.strip() and len(words) >= 2 and words[0].isidentifier():
            comments[words[0]] = comment.strip()
    return comments


def safe_sample(outcome: Any) -> list[str]:
    return [] if is_sensitive(outcome.column) else list(outcome.unexpected_sample)


def safe_message(outcome: Any) -> str:
    """The outcome's message without its sample when the column is sensitive."""
    message = outcome.message
    if is_sensitive(outcome.column) and "; sample:" in message:
        message = message.split("; sample:")[0] + f"; sample: {REDACTED}"
    return message


def record_check_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    run_time: datetime,
    binding: Any,
    outcomes: Sequence[Any],
    error: str | None = None,
    gx_result: Any = None,
) -> None:
    """Replace this run's rows for this check with ``outcomes`` (and the GX JSON for Data Docs)."""
    ensure_result_tables(con)
    asset = binding.asset_path
    with transaction(con):
        for table in ("expectation_results", "validation_results"):
            con.execute(
                f"DELETE FROM quality.{table} WHERE run_id = ? AND check_name = ? AND asset_key = ?",
                [run_id, binding.check_name, asset],
            )
        rows = []
        metas = _expectation_metas(binding, outcomes)
        for outcome, meta in zip(outcomes, metas, strict=True):
            sample = safe_sample(outcome)
            rows.append([
                run_time, run_id, binding.check_name, asset, binding.suite_name, binding.table,
                outcome.expectation, outcome.column, _kwargs_json(outcome.kwargs), outcome.severity,
                meta.get("why"), outcome.evaluated, outcome.success, bool(meta.get("count_only")),
                outcome.unexpected_count, outcome.element_count,
                None if outcome.observed_value is None else _text(outcome.observed_value),
                ", ".join(sample) if sample else None, safe_message(outcome),
            ])
        if error is not None:
            rows.append([
                run_time, run_id, binding.check_name, asset, binding.suite_name, binding.table, "(suite)", None,
                None, "error", "The suite could not run, so nothing in it was checked.", False, False, False,
                None, None, None, None, f"[error] suite {binding.suite_name} on {binding.table} could not be "
                                        f"evaluated: {error}",
            ])
        if rows:
            con.executemany(
                "INSERT INTO quality.expectation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)",
                rows,
            )
        if gx_result is not None:
            con.execute(
                "INSERT INTO quality.validation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [run_time, run_id, binding.check_name, asset, binding.suite_name, binding.table,
                 bool(gx_result.success), json.dumps(redacted_result_json(gx_result))],
            )


def redacted_result_json(gx_result: Any) -> dict:
    """GX's validation result as JSON, with samples of sensitive columns replaced."""
    data = gx_result.to_json_dict()
    for result in data.get("results", []):
        kwargs = (result.get("expectation_config") or {}).get("kwargs") or {}
        columns = [kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B"), *(kwargs.get("column_list")
                                                                                           or [])]
        if any(is_sensitive(c) for c in columns if isinstance(c, str)):
            body = result.get("result") or {}
            for key in _SAMPLE_KEYS:
                if key in body:
                    body[key] = _redact(body[key])
    return data


def _redact(value: Any) -> Any:
    """Replace every non-null value, keeping GX's structure (lists, ``{"value", "count"}`` dicts) intact."""
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, dict):
        return {k: (v if k == "count" else _redact(v)) for k, v in value.items()}
    return None if value is None else REDACTED


def _expectation_metas(binding: Any, outcomes: Sequence[Any]) -> list[dict]:
    """The suite meta of each outcome (outcomes come back in suite order, one per expectation)."""
    metas = [dict(e.get("meta") or {}) for e in binding.expectations]
    if len(metas) != len(outcomes):
        return [{} for _ in outcomes]
    return metas


def _kwargs_json(kwargs: dict) -> str:
    shown = {}
    for key, value in kwargs.items():
        if key in ("result_format", "batch_id"):
            continue
        if isinstance(value, list) and len(value) > 25:
            value = [*value[:25], f"... {len(value) - 25} more"]
        shown[key] = value
    return json.dumps(shown, default=str)


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 2000 else text[:1997] + "..."


def load_validation_results(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> tuple[str | None, list]:
    """GX validation results of ``run_id`` (default: the latest run that has any), for Data Docs."""
    try:
        if run_id is None:
            found = con.execute(
                "SELECT run_id FROM quality.validation_results ORDER BY run_time DESC LIMIT 1"
            ).fetchone()
            run_id = found[0] if found else None
        if run_id is None:
            return None, []
        rows = con.execute(
            "SELECT result_json FROM quality.validation_results WHERE run_id = ? ORDER BY asset_key, check_name",
            [run_id],
        ).fetchall()
    except duckdb.CatalogException:
        return None, []
    if not rows:
        return run_id, []
    from pipelines.quality import gx_runner  # noqa: F401  (imports GX safely first, see gx_runner)
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema

    schema = ExpectationSuiteValidationResultSchema()
    return run_id, [schema.load(json.loads(text)) for (text,) in rows]
