"""Dagster asset checks built from the expectation suites: one check per suite (per benchmark for ``marts``).

Each check runs its suite with Great Expectations *inside DuckDB* (``gx_runner``) on the working copy of the
warehouse, through the check's own connection to it (GX's queries run on cursors of that connection, so the
file is opened once per check, and the writer lock the connection holds keeps other processes from writing
while GX reads), and records every outcome in ``quality.expectation_results`` (``results.py``).

Severity -> Dagster:
* a suite of ``fatal`` expectations is a **blocking** check: when one fails, the check fails with ERROR and
  Dagster skips every asset downstream of the checked asset (no valid claims at all, broken reference data);
* otherwise the check's severity is the worst failed expectation's: ``error`` -> ERROR (the run's exit code
  says so; downstream assets still run), ``warn`` -> WARN;
* an expectation that could not be evaluated, or a suite that could not run at all, fails the check with
  ERROR whatever its severity, and the metadata says so;
* ``count_only`` expectations (``mostly: 0``) never fail the check; their counts are in the metadata.

Suites about deliveries (``scope: this_run``: raw.claims, raw.contracts, quality.file_accounting, which keep every
file ever loaded) validate only the files this run loaded, through a view the check creates and drops: a bad
file fails the run that loads it, not every run after it (a rule on a value a Parquet file delivered typed is
evaluated once per distinct value there, ``typed_values.py``). Suites about the current state (staging, core, marts)
validate everything, so a problem stays reported until a corrected delivery replaces the bad line; those on
``staging.claim_lines`` (``changes_of``) validate only the rows of the claim_ids a run changed when that gives the
same outcome: their previous validation found no unexpected row (``narrowing.py``).

Checks carry a high ``dagster/priority`` so that each runs right after its asset, before later assets; with
``quality/data_docs`` (lowest priority) and ``published_warehouse`` depending on every checked asset, the
published warehouse and the Data Docs contain every check of the run.
"""

import time
from datetime import datetime, timezone

import dagster as dg

from pipelines.quality import typed_values
from pipelines.quality.results import record_check_run, safe_message
from pipelines.quality.suites import SuiteBinding, resolve_parameters, suite_bindings
from pipelines.resources import PipelineSettings

CHECK_PRIORITY = "10"  # dagster/priority of every check op: run right after the asset it checks
SEVERITY_RANK = {"fatal": 3, "error": 2, "warn": 1}
MAX_LISTED = 25  # failures listed in the check's markdown


def quality_checks() -> list[dg.AssetChecksDefinition]:
    """Every asset check the suites in ``expectations/`` define."""
    return [suite_check(binding) for binding in suite_bindings()]


def suite_check(binding: SuiteBinding) -> dg.AssetChecksDefinition:
    description = (binding.description + "\n\n" if binding.description else "") + (
        f"Suite `{binding.path.name}` on `{binding.table}`: {len(binding.expectations)} expectations."
        + (" Blocking: a failure stops every asset downstream." if binding.blocking else "")
    )

    @dg.asset_check(
        asset=dg.AssetKey(list(binding.asset_key)),
        name=binding.check_name,
        description=description,
        blocking=binding.blocking,
        additional_deps=[dg.AssetKey(list(k)) for k in binding.additional_deps],
        op_tags={"dagster/priority": CHECK_PRIORITY},
        metadata={"suite_file": f"expectations/{binding.path.name}", "table": binding.table,
                  "expectations": len(binding.expectations), "blocking": binding.blocking},
    )
    def _check(context: dg.AssetCheckExecutionContext, settings: PipelineSettings) -> dg.AssetCheckResult:
        record = context.instance.get_run_record_by_id(context.run.run_id)
        started = record.create_timestamp.astimezone(timezone.utc).replace(tzinfo=None) if record else None
        return run_suite_check(binding, settings, run_id=context.run.run_id, log=context.log, run_started=started)

    return _check


def run_suite_check(binding: SuiteBinding, settings: PipelineSettings, run_id: str, log=None,
                    run_started: datetime | None = None) -> dg.AssetCheckResult:
    """Validate ``binding`` against the working copy, record the outcomes, and turn them into a check result.

    ``run_started`` (UTC, naive) limits a ``scope: this_run`` suite to the files loaded since; None: all files.
    A suite with ``changes_of`` validates only the rows a run changed when that is exact (``narrowing.py``).
    """
    from pipelines.quality import narrowing
    from pipelines.quality.gx_runner import run_validation  # imports GX (seconds) only when a check runs

    warehouse = settings.warehouse
    run_time = datetime.now(timezone.utc).replace(tzinfo=None)
    started = time.monotonic()
    validation, error = None, None
    prepared, table, scope_note = None, binding.table, None
    covered, narrowed, typed = None, None, {}
    # One connection for the whole check: GX validates on cursors of it (gx_runner, ``connection``), so the
    # writer lock is held throughout and no other process writes while GX reads.
    with warehouse.connect() as con:
        try:
            parameters = resolve_parameters(con, binding.parameter_names)
            if binding.prepare == "view":
                prepared = binding.table
                prepare_view(con, binding.table)
            elif binding.scope == "this_run":
                prepared = table = f"quality.{binding.check_name}_this_run"
                scope_note, typed = this_run_view(con, binding, prepared, run_started)
            if binding.changes_of:
                covered = narrowing.coverage_now(con, binding, parameters)
                narrowed = None if settings.full_rebuild else narrowing.narrow(con, binding, covered)
                if narrowed is not None:
                    table, scope_note = narrowed.table, narrowed.note
            validation = run_validation(warehouse.build_path, table, binding.suite,
                                        expectation_parameters=parameters, run_name=run_id, connection=con,
                                        typed_values=typed)
        except Exception as exc:  # the suite could not run: that is an ERROR of the check, never a silent pass
            error = f"{type(exc).__name__}: {exc}"
            if log is not None:
                log.error(f"check {binding.check_name} on {binding.asset_path} could not run: {error}")
        outcomes = validation.outcomes if validation else []
        extra = {"scope": scope_note} if scope_note else {}
        result = check_result(binding, outcomes, error=error, seconds=time.monotonic() - started,
                              extra_metadata=extra)
        if binding.changes_of:
            narrowing.drop(con, binding)
        if prepared:
            typed_values.drop(con, binding.table, prepared)
            con.execute(f"DROP VIEW IF EXISTS {prepared}")
        record_check_run(con, run_id=run_id, run_time=run_time, binding=binding, outcomes=outcomes, error=error,
                         gx_result=validation.gx_result if validation else None)
        if binding.changes_of:
            narrowing.record(con, binding, covered, outcomes, error, run_id, run_time)
        if binding.blocking and not result.passed:
            # everything downstream is skipped, the file accounting included: say here what was loaded
            from pipelines.quality.summary import load_context_markdown

            context = load_context_markdown(con)
            result = check_result(binding, outcomes, error=error, seconds=time.monotonic() - started,
                                  extra_metadata={**extra, "loaded": dg.MetadataValue.md(context)})
    return result


def this_run_view(con, binding: SuiteBinding, view: str, run_started: datetime | None
                  ) -> tuple[str, dict[str, typed_values.TypedColumn]]:
    """Create ``view``: ``binding.table`` with only the rows of files loaded since ``run_started``. Returns a note
    for the check's metadata, and for a ``raw.<kind>`` view with typed columns those columns, whose rules the check
    evaluates once per distinct typed value (``typed_values.py``)."""
    if run_started is None:
        first = 0
    else:
        (first,) = con.execute("SELECT min(load_id) FROM raw.load_manifest WHERE loaded_at >= ?",
                               [run_started]).fetchone()
    condition = f"load_id >= {int(first)}" if first is not None else "FALSE"
    kind = typed_values.kind_of_raw_view(binding.table)
    typed = {}
    if kind is not None:
        typed = typed_values.prepare(con, kind, view, condition)
    else:
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {binding.table} WHERE {condition}")
    if first is None:
        return "no file was loaded by this run: nothing to check (earlier files: quality.file_accounting)", typed
    return f"rows of the files this run loaded (load_id >= {int(first)})", typed


def prepare_view(con, table: str) -> None:
    """Build the view ``table`` (``quality.<name>``, from sql/quality/<name>.sql) that a suite validates."""
    from pipelines.quality.assets import QUALITY_MODELS, build_quality_model, quality_models

    schema, name = table.split(".")
    model = next((m for m in quality_models() if m.table == table), None)
    if schema != "quality" or model is None or QUALITY_MODELS[name] != "CHECK_VIEW":
        raise ValueError(f"meta.prepare: {table} is not a CHECK_VIEW in sql/quality/")
    build_quality_model(con, model)


def check_result(binding: SuiteBinding, outcomes: list, error: str | None = None, seconds: float | None = None,
                 extra_metadata: dict | None = None) -> dg.AssetCheckResult:
    """The Dagster result of one suite run (see the module docstring for the severity rules)."""
    metas = [e.get("meta") or {} for e in binding.expectations]
    if len(metas) != len(outcomes):
        metas = [{} for _ in outcomes]
    counted = [(o, m) for o, m in zip(outcomes, metas) if m.get("count_only")]
    unevaluated = [o for o in outcomes if not o.evaluated]
    failed = sorted((o for o, m in zip(outcomes, metas) if o.failed and not m.get("count_only")),
                    key=lambda o: -SEVERITY_RANK.get(o.severity, 0))
    why = {id(o): m.get("why") for o, m in zip(outcomes, metas)}

    if error is not None or unevaluated:
        severity = dg.AssetCheckSeverity.ERROR
    elif any(o.severity in ("fatal", "error") for o in failed):
        severity = dg.AssetCheckSeverity.ERROR
    else:
        severity = dg.AssetCheckSeverity.WARN
    passed = error is None and not unevaluated and not failed

    lines = []
    if error is not None:
        lines.append(f"**The suite could not run: nothing was checked.** `{error}`")
    if unevaluated:
        lines.append(f"**{len(unevaluated)} expectation(s) could not be evaluated** (an error of the suite or the "
                     "pipeline, not of the data):")
        lines += [f"- {_md(safe_message(o))}" for o in unevaluated[:MAX_LISTED]]
    if failed:
        lines.append(f"**{len(failed)} of {len(outcomes)} expectations failed:**")
        for o in failed[:MAX_LISTED]:
            lines.append(f"- {_md(safe_message(o))}" + (f"  \n  _{_md(why[id(o)])}_" if why.get(id(o)) else ""))
        if len(failed) > MAX_LISTED:
            lines.append(f"- ... and {len(failed) - MAX_LISTED} more (quality.expectation_results)")
    if counted:
        lines.append("**Counted (never fails):**")
        lines += [f"- {o.unexpected_count or 0} rows: {_md(why[id(o)] or o.expectation)}" for o, _ in counted]
    if passed and not counted:
        lines.append(f"All {len(outcomes)} expectations passed.")

    worst = failed[0].severity if failed else None
    if error is not None:
        summary = "could not run"
    elif unevaluated:
        summary = f"{len(unevaluated)} expectation(s) could not be evaluated"
    elif failed:
        summary = f"{len(failed)} of {len(outcomes)} expectations failed (worst: {worst})"
    else:
        summary = f"all {len(outcomes)} expectations passed"
    metadata = {
        "summary": summary,
        "details": dg.MetadataValue.md("\n".join(lines)),
        "table": binding.table,
        "suite_file": f"expectations/{binding.path.name}",
        "expectations": len(outcomes),
        "failed_expectations": len(failed),
        "unevaluated_expectations": len(unevaluated) + (1 if error is not None else 0),
        "unexpected_rows": int(sum(o.unexpected_count or 0 for o in failed)),
    }
    for o, _ in counted:
        metadata[f"count_{o.column or o.expectation}"] = int(o.unexpected_count or 0)
    if seconds is not None:
        metadata["seconds"] = round(seconds, 2)
    metadata.update(extra_metadata or {})
    return dg.AssetCheckResult(passed=passed, severity=severity, metadata=metadata,
                               description=f"{binding.suite_name} on {binding.table}: {summary}")


def _md(text: str) -> str:
    """Plain text safe inside a markdown list item (no HTML, no accidental emphasis)."""
    return (str(text).replace("\\", "\\\\").replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")
            .replace("_", "\\_").replace("`", "'").replace("\n", " "))


def checked_asset_keys() -> list[dg.AssetKey]:
    """Every asset some suite checks, and the assets the checks read besides (for ordering ``data_docs``)."""
    keys: dict[tuple[str, ...], None] = {}
    for binding in suite_bindings():
        keys[binding.asset_key] = None
        for dep in binding.additional_deps:
            keys[dep] = None
    return [dg.AssetKey(list(k)) for k in keys]
