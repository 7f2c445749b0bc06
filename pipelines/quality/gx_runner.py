"""Run Great Expectations suites *inside DuckDB*, without copying data into pandas.

Public API
----------
``load_suite(path_or_mapping) -> ExpectationSuite``
    Load a suite from a GX JSON file (or from the already parsed JSON object). Raises ``ValueError`` naming the file when the JSON is
    malformed, when an expectation type is unknown or its kwargs are invalid (GX itself would
    silently drop such an expectation), or when ``meta.severity`` is not one of
    ``fatal``/``error``/``warn``.

``validate_table(duckdb_path, table, suite_path, *, expectation_parameters=None, run_name=None)``
    Validate one table or view (``"staging.claim_lines"`` or ``"claim_lines"``) of a DuckDB *file*
    against one suite, returning ``list[ExpectationOutcome]``. ``expectation_parameters`` fills
    GX's ``{"$PARAMETER": name}`` placeholders in the suite (e.g. a value set read from a
    reference table at run time); ``run_name`` names GX's run (shown in Data Docs). Every expectation is compiled by GX to SQL and runs inside DuckDB
    (GX's SQLAlchemy execution engine + the ``duckdb-engine`` dialect). The file is opened
    **read-only** and every connection is closed again before the function returns, so the
    caller can reopen the file for writing straight afterwards.

``run_validation(..., connection=None) -> TableValidation``
    Same as ``validate_table`` but also returns GX's own ``ExpectationSuiteValidationResult``
    (needed for ``build_data_docs``). With ``connection``, an open DuckDB connection to the file (the
    pipeline's checks pass their own read-write one), GX runs on cursors of that connection instead of
    opening the file read-only.

``build_data_docs(results, out_dir) -> Path``
    Write GX's static HTML Data Docs for the given validation results into ``out_dir`` and
    return the path of ``index.html``. NOTE: GX's templates load Bootstrap, jQuery,
    bootstrap-table and Font Awesome from public CDNs; offline the pages show all content but
    unstyled (see ``build_data_docs``).

Two kinds of "not ok" are kept apart: ``success=False, evaluated=True`` means *the data* failed
the expectation; ``evaluated=False`` means GX raised internally (wrong column name, SQL error,
unsupported metric, ...) and the result says nothing about the data. Callers must treat
``evaluated=False`` as an error of the pipeline/suite, whatever the severity.

Why DuckDB needs five small adjustments, and a sixth that saves time (checked against great-expectations 1.24.1,
SQLAlchemy 2.1.9, duckdb 1.5.6, duckdb-engine 0.17.0). All six are applied *per execution
engine instance* in ``_duckdb_execution_engine``; nothing global in GX is modified, so the module
is safe to call repeatedly (several tables, several suites) in one process:

1. One persistent connection. GX executes each metric query in
   ``with engine.connect() as conn: result = conn.execute(q)`` and calls ``fetchall()`` *after*
   the block has closed the connection. Closing issues a ROLLBACK on the DuckDB connection, and
   any statement on a DuckDB connection discards its pending result set, so ``fetchall()``
   gets no rows: every bundled metric fails with ``MetricResolutionError: list index out of
   range`` and the expectation silently reports ``success=False`` (a ``StaticPool`` with
   ``pool_reset_on_return=None`` does not help). GX keeps one connection open only for a
   hard-coded list of dialects
   (``_PERSISTED_CONNECTION_DIALECTS``: sqlite, mssql, bigquery, databricks). We do the same
   for our engine instance by shadowing its ``get_connection`` with one that always yields a
   single connection we own (and close at the end). All GX queries go through
   ``get_connection``/``execute_query``.
2. ``search_path``. With SQLAlchemy 2.1 the PostgreSQL-based reflection that duckdb-engine
   inherits fails on DuckDB (``pg_catalog.pg_collation`` does not exist), so GX falls back to
   ``SELECT * FROM <table> LIMIT 1`` to learn the column names, and that fallback drops the
   schema. Setting DuckDB's ``search_path`` to the table's schema on every connection of our
   engine makes the unqualified name resolve to the right table. The main queries stay
   schema-qualified.
3. Regex. ``get_dialect_regex_expression`` knows no DuckDB, so every ``*_match_regex``
   expectation raises "Regex is not supported for dialect duckdb". GX recognises a dialect as
   Dremio by ``hasattr(dialect, "DremioDialect")`` and then emits
   ``REGEXP_MATCHES(column, pattern)``, which is exactly DuckDB's partial-match (``re.search``
   semantics, RE2 syntax) regex function. We set that marker attribute on *our engine's*
   dialect instance only. It also makes GX accept LIKE patterns (same hasattr test), which DuckDB
   supports natively.
4. Column metadata. For the column types every validation needs, GX asks the SQLAlchemy inspector for the
   table's primary key and columns. duckdb-engine answers both through its PostgreSQL catalogue emulation: a
   few queries for the primary key, and a column query that fails (point 2) before GX falls back to
   ``SELECT * ... LIMIT 1``. That cost ~0.03 s per question, ~0.065 s per validation (30% of validating a
   small mart). Our engine's inspector answers the primary key from DuckDB's own ``duckdb_constraints()``
   and the columns with GX's own fallback directly: the same metadata, without the failing detour.
5. Whole-value regexes. ``REGEXP_MATCHES(column, '^...$')`` is written ``regexp_full_match(column, '^...$')``,
   which gives the same answer for a pattern anchored at both ends and, on a dictionary-encoded column, is
   evaluated once per distinct value instead of once per row (``pipelines/quality/duckdb_regex.py``). Our engine's
   dialect instance gets a subclass of its statement compiler; other engines are untouched.
6. Typed values (``typed_values``, for the landing suites only). ``raw.claims`` shows a value a Parquet file
   delivered typed as its text, and GX's counting query would cast and test it on every row; on the view a
   ``scope: this_run`` check makes (``pipelines/quality/typed_values.py``), a condition on one such column is
   evaluated once per distinct value. Another subclass of the statement compiler, on this engine's dialect
   instance only, with the view's typed columns on that instance for the time of the validation.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from pipelines.quality.duckdb_regex import compiler_with_full_matches
from pipelines.quality.suites import parameter_names
from pipelines.quality.typed_values import DIALECT_ATTRIBUTE as TYPED_VALUES_ATTRIBUTE
from pipelines.quality.typed_values import compiler_with_typed_values


# Imported by GX at module level (``from scipy import stats``) for expectations this project does not use (KL
# divergence, KS tests), and only called inside them: loaded when first used instead (~0.8 s of the ~2.8 s that
# importing GX takes). (altair, imported there too, cannot wait: ``import altair`` itself runs a lazy module.)
DEFERRED_BY_GX = ("scipy.stats",)


def _import_great_expectations() -> None:
    """Import GX, without its Spark support and with the modules in ``DEFERRED_BY_GX`` loaded lazily, also in a
    process whose ``__main__`` is not a script (e.g. a pytest-xdist worker).

    GX imports pyspark when it is installed (the ``spark`` extra), for Spark datasources this project does not use:
    validations run in DuckDB. Unless pyspark is imported already, GX is told it is not installed (``None`` in
    ``sys.modules`` for the time of the import), which saves ~1 s of every run's start. When it is imported
    already, pyspark's ``sql.connect`` may take a ``__main__`` without ``__spec__`` and ``__file__`` for a doctest
    run and call ``sys.exit(0)`` when its optional gRPC dependencies are missing (pyspark 4.x); ``sys.ps1`` (an
    interactive session) turns that test off, and GX then meets the ordinary ImportError it handles.
    """
    hide_pyspark = "pyspark" not in sys.modules
    if hide_pyspark:
        sys.modules["pyspark"] = None  # type: ignore[assignment]
    for name in DEFERRED_BY_GX:
        _defer_import(name)
    main = sys.modules.get("__main__")
    embedded = (
        main is not None
        and getattr(main, "__spec__", None) is None
        and not hasattr(main, "__file__")
        and not hasattr(sys, "ps1")
    )
    if embedded:
        sys.ps1 = ""  # type: ignore[attr-defined]
    try:
        import great_expectations  # noqa: F401
    finally:
        if embedded:
            del sys.ps1
        if hide_pyspark and sys.modules.get("pyspark", False) is None:
            del sys.modules["pyspark"]


def _defer_import(name: str) -> None:
    """Put a lazy module ``name`` in ``sys.modules`` (Python's ``importlib.util.LazyLoader``): importing it costs
    nothing, and its code runs at the first use of one of its attributes. Nothing happens when it is imported
    already or not installed."""
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)  # imports the parent package (``scipy``: a few milliseconds)
    except ImportError:  # the parent package is not installed
        return
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


_import_great_expectations()

import great_expectations as gx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.expectation_configuration import (  # noqa: E402
    ExpectationConfiguration,
)

logger = logging.getLogger(__name__)

__all__ = [
    "SEVERITIES",
    "ExpectationOutcome",
    "TableValidation",
    "build_data_docs",
    "load_suite",
    "run_validation",
    "validate_table",
]

#: Allowed values of an expectation's ``meta.severity``; default is ``DEFAULT_SEVERITY``.
SEVERITIES = ("fatal", "error", "warn")
DEFAULT_SEVERITY = "warn"
#: Number of failing values GX samples per expectation (``partial_unexpected_count``).
SAMPLE_SIZE = 20

#: The versions the DuckDB adjustments below were checked against (see module docstring).
CHECKED_WITH = {"great_expectations": "1.24.1", "sqlalchemy": "2.1.9", "duckdb_engine": "0.17.0"}
if not gx.__version__.startswith("1.24."):
    logger.warning(
        "gx_runner's DuckDB adjustments were checked with great-expectations %s, not %s",
        CHECKED_WITH["great_expectations"],
        gx.__version__,
    )

_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
_COUNTS_ONLY = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# kwargs that describe the domain or GX plumbing, not what is expected
_NOT_SHOWN_KWARGS = {"batch_id", "column", "column_A", "column_B", "result_format"}


@dataclass
class ExpectationOutcome:
    """The outcome of one expectation on one table, flattened from GX's result."""

    suite: str
    expectation: str  #: expectation type, e.g. ``expect_column_values_to_be_unique``
    column: str | None  #: the column; ``"a, b"`` for column-pair / multi-column expectations
    kwargs: dict
    success: bool
    evaluated: bool  #: False if GX raised internally: the result says nothing about the data
    unexpected_count: int | None
    element_count: int | None
    unexpected_sample: list  #: up to SAMPLE_SIZE failing values, as str
    severity: str  #: from the expectation's ``meta.severity``: fatal | error | warn
    message: str  #: readable one-liner: what, where, how many rows failed, sample
    table: str = ""
    observed_value: Any = None  #: for aggregate/table expectations (e.g. the row count)

    @property
    def failed(self) -> bool:
        """True when the data failed the expectation (evaluated, but not successful)."""
        return self.evaluated and not self.success


@dataclass
class TableValidation:
    """Everything one ``run_validation`` call produced."""

    table: str
    suite: str
    outcomes: list[ExpectationOutcome]
    gx_result: ExpectationSuiteValidationResult = field(repr=False)


# --------------------------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------------------------


def load_suite(path: Path | Mapping[str, Any]) -> ExpectationSuite:
    """Load an ExpectationSuite from a GX JSON file, refusing anything GX would drop.

    The JSON is GX's own format: ``{"name": ..., "expectations": [{"type": ..., "kwargs":
    {...}, "meta": {"severity": "error"}}, ...]}``. ``name`` defaults to the file's stem.
    ``ExpectationSuite(**json)`` logs and *drops* an expectation whose type is unknown or whose
    kwargs are invalid; here that raises ``ValueError`` naming the file and the expectation.
    ``path`` may also be the parsed JSON object itself (a suite rendered at run time); errors
    then name the suite.
    """
    if isinstance(path, Mapping):
        data = json.loads(json.dumps(path))  # a deep copy: GX and the checks below may modify it
        if not data.get("name"):
            raise ValueError("an expectation suite given as a mapping needs a 'name'")
        path = Path(f"<suite {data['name']}>")
    else:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read expectation suite JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expectation suite JSON must be an object")
    data.setdefault("name", path.stem)
    expectations = data.get("expectations", [])
    if not isinstance(expectations, list) or not all(isinstance(e, dict) for e in expectations):
        raise ValueError(f"{path}: 'expectations' must be a list of objects")

    problems: list[str] = []
    for i, exp in enumerate(expectations):
        label = f"expectations[{i}] ({exp.get('type', '<no type>')})"
        try:
            ExpectationConfiguration(**exp).to_domain_obj()
        except Exception as exc:  # unknown type, bad kwargs, unknown keys
            problems.append(f"{label}: {getattr(exc, 'message', None) or exc}")
            continue
        severity = (exp.get("meta") or {}).get("severity", DEFAULT_SEVERITY)
        if severity not in SEVERITIES:
            problems.append(f"{label}: meta.severity {severity!r} is not one of {SEVERITIES}")
    if problems:
        raise ValueError(f"{path}: invalid expectation suite:\n  " + "\n  ".join(problems))

    suite = ExpectationSuite(**data)
    # Belt and braces: GX drops (and only logs) expectations it cannot build.
    if len(suite.expectations) != len(expectations):
        raise ValueError(
            f"{path}: GX loaded {len(suite.expectations)} of {len(expectations)} expectations"
        )
    return suite


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_table(
    duckdb_path: Path,
    table: str,
    suite_path: Path | Mapping[str, Any],
    *,
    expectation_parameters: Mapping[str, Any] | None = None,
    run_name: str | None = None,
) -> list[ExpectationOutcome]:
    """Validate ``table`` (e.g. ``"staging.claim_lines"``) in a DuckDB file against a suite.

    Runs inside DuckDB; opens the file read-only and closes it again before returning. Raises
    ``ValueError`` for a bad suite file, a bad table name or a table that does not exist.
    Returns one ``ExpectationOutcome`` per expectation, in suite order. A ``$PARAMETER`` that
    ``expectation_parameters`` does not fill raises ``ValueError`` before anything runs (GX
    itself would abort the whole validation); parameter names are plain identifiers.
    """
    return run_validation(
        duckdb_path, table, suite_path, expectation_parameters=expectation_parameters, run_name=run_name
    ).outcomes


def run_validation(
    duckdb_path: Path,
    table: str,
    suite_path: Path | Mapping[str, Any],
    *,
    expectation_parameters: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    connection: Any = None,
    typed_values: Mapping[str, Any] | None = None,
) -> TableValidation:
    """Like ``validate_table``, but also returns GX's raw validation result.

    ``connection``: an open DuckDB connection to ``duckdb_path`` to validate on instead of opening the file
    read-only. GX's queries then run on cursors of it (new connections to the same database, closed again
    before this returns), so a caller that has the file open for writing need not close it first, and GX does
    not open the file again for each of its connection tests (see ``_datasource_kwargs``).

    ``typed_values``: the typed columns of a view made by :func:`pipelines.quality.typed_values.prepare`, whose
    rules GX's counting query then evaluates once per distinct typed value (module docstring, point 6)."""
    if importlib.util.find_spec("duckdb_engine") is None:
        raise ImportError(
            "validate_table needs the SQLAlchemy dialect for DuckDB: the 'duckdb-engine' "
            "package (import name duckdb_engine) is not installed"
        )
    duckdb_path = Path(duckdb_path).resolve()
    if not duckdb_path.is_file():
        raise FileNotFoundError(f"DuckDB file not found: {duckdb_path}")
    if any(ch in str(duckdb_path) for ch in "?#$"):
        # '?'/'#' would end the SQLAlchemy URL's path, '$' triggers GX config substitution
        raise ValueError(f"unsupported character in DuckDB path: {duckdb_path}")
    schema, table_name = _split_table(table)
    suite = load_suite(suite_path if isinstance(suite_path, Mapping) else Path(suite_path))
    suite_name = suite.name
    wanted = {name for exp in suite.expectations for name in parameter_names(exp.configuration.kwargs)}
    missing = sorted(wanted - set(expectation_parameters or {}))
    if missing:
        raise ValueError(f"suite {suite_name}: no value given for $PARAMETER {', '.join(missing)}")

    # Pass 1 counts unexpected rows only (no samples: a "first 20 failing values" query per expectation scans
    # the whole table when there are none, which is the normal case). Pass 2 fetches the samples for the
    # expectations that found rows, and its results replace theirs.
    gx_result, results = _validate_once(duckdb_path, table, schema, table_name, suite, expectation_parameters,
                                        run_name, _COUNTS_ONLY, connection, typed_values)
    with_rows = [i for i, r in enumerate(results) if ((r.result or {}).get("unexpected_count") or 0) > 0]
    if with_rows and len(results) == len(suite.expectations):
        sampled_suite = ExpectationSuite(name=suite_name,
                                         expectations=[copy.copy(suite.expectations[i]) for i in with_rows])
        _, sampled = _validate_once(duckdb_path, table, schema, table_name, sampled_suite, expectation_parameters,
                                    run_name, _RESULT_FORMAT, connection, typed_values)
        if len(sampled) == len(with_rows):
            for i, evr in zip(with_rows, sampled, strict=True):
                results[i] = evr
            gx_result.results = results
    outcomes = [_outcome(suite_name, table, r) for r in results]
    if len(outcomes) != len(suite.expectations):
        raise RuntimeError(
            f"GX returned {len(outcomes)} results for {len(suite.expectations)} expectations "
            f"of suite {suite_name} on {table}"
        )
    return TableValidation(table=table, suite=suite_name, outcomes=outcomes, gx_result=gx_result)


def _validate_once(duckdb_path: Path, table: str, schema: str | None, table_name: str, suite: ExpectationSuite,
                   expectation_parameters: Mapping[str, Any] | None, run_name: str | None,
                   result_format: dict, connection: Any = None, typed_values: Mapping[str, Any] | None = None
                   ) -> tuple[ExpectationSuiteValidationResult, list]:
    """One GX validation of ``suite`` on the table; GX's result and its expectation results in suite order."""
    suite_name = suite.name
    context = _ephemeral_context()
    try:
        datasource = context.data_sources.add_sql(
            name="duckdb",
            connection_string=f"duckdb:///{duckdb_path}",
            kwargs=_datasource_kwargs(connection),
        )
    except Exception as exc:  # GX's TestConnectionError
        how = "through the connection given" if connection is not None else \
            "read-only (is a connection writing it still open?)"
        raise RuntimeError(f"cannot open {duckdb_path} {how}: {exc}") from exc
    try:
        with warnings.catch_warnings():
            # schema_name is deprecated in favour of a schema in the connection config, which
            # neither duckdb-engine nor the generic SQLDatasource offers.
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                asset = datasource.add_table_asset(
                    name=table, table_name=table_name, schema_name=schema
                )
            except Exception as exc:  # GX's TestConnectionError: table missing
                raise ValueError(f"{duckdb_path}: cannot read table {table}: {exc}") from exc
        batch_definition = asset.add_batch_definition_whole_table("whole_table")
        suite = context.suites.add(suite)
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(
                name=f"{suite_name} @ {table}", data=batch_definition, suite=suite
            )
        )
        from great_expectations.core.run_identifier import RunIdentifier

        run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
        with _duckdb_execution_engine(datasource, schema, typed_values) as held:
            gx_result = validation.run(
                result_format=result_format,
                expectation_parameters=dict(expectation_parameters or {}),
                run_id=run_id,
            )
            if held.uses == 0:
                raise RuntimeError(
                    "GX did not run its queries on the patched DuckDB execution engine; "
                    "the great-expectations version may have changed how it connects"
                )
    finally:
        datasource.get_engine().dispose()  # the engine GX uses for its connection tests

    # GX groups results by domain; put them back in suite order (ids are set by suites.add).
    order = {exp.id: i for i, exp in enumerate(suite.expectations) if exp.id is not None}
    results = list(gx_result.results)
    if len(order) == len(suite.expectations):
        results.sort(key=lambda r: order.get(r.expectation_config.id, len(order)))
    return gx_result, results


def _datasource_kwargs(connection: Any) -> dict[str, Any]:
    """SQLAlchemy ``create_engine`` arguments for every engine GX makes for the datasource.

    Without ``connection``: the file read-only, which guarantees we change nothing and lets other read-only
    processes open it at the same time; it fails while any process (this one included, with a read-write
    connection) holds the file open for writing. With ``connection``: each DBAPI connection is a cursor of it
    (DuckDB's ``cursor()``: a new connection to the same database, which sees what the caller committed),
    wrapped as duckdb-engine wraps its own; GX runs only queries on it."""
    if connection is None:
        return {"connect_args": {"read_only": True}}
    from duckdb_engine import ConnectionWrapper

    return {"creator": lambda: ConnectionWrapper(connection.cursor())}


def _split_table(table: str) -> tuple[str | None, str]:
    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise ValueError(f"table must be 'schema.table' or 'table' of plain identifiers: {table!r}")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _ephemeral_context():
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


class _HeldConnection:
    """The single SQLAlchemy connection an execution engine uses; counts uses."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.uses = 0

    @contextmanager
    def get_connection(self) -> Iterator[sa.Connection]:
        self.uses += 1
        yield self.connection  # deliberately not closed here: see module docstring, point 1


class _CatalogueInspector:
    """The SQLAlchemy inspector of our execution engine, answering what GX's column-type metric asks from DuckDB
    itself (module docstring, point 4); anything else goes to SQLAlchemy's inspector."""

    def __init__(self, inspector: Any, connection: sa.Connection, engine: sa.Engine) -> None:
        self._inspector = inspector
        self._connection = connection
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inspector, name)

    def get_pk_constraint(self, table_name: str, schema: str | None = None, **_kw: Any) -> dict[str, Any]:
        rows = self._connection.exec_driver_sql(
            "SELECT constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' "
            "AND table_name = ? AND schema_name = coalesce(?, current_schema())",
            (str(table_name), schema),
        ).fetchall()
        return {"constrained_columns": list(rows[0][0]) if rows else [], "name": None}

    def get_columns(self, table_name: str, schema: str | None = None, **_kw: Any) -> list[dict[str, Any]]:
        from great_expectations.expectations.metrics.util import column_reflection_fallback

        return column_reflection_fallback(selectable=table_name, dialect=self._engine.dialect,
                                          sqlalchemy_engine=self._engine, schema_name=schema)


def _set_search_path(dbapi_connection: Any, _record: Any, *, schema: str) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"SET search_path = '{schema}'")  # schema checked by _IDENTIFIER


@contextmanager
def _duckdb_execution_engine(datasource: Any, schema: str | None, typed_values: Mapping[str, Any] | None = None
                             ) -> Iterator[_HeldConnection]:
    """Make the datasource's GX execution engine work on DuckDB; undo and close afterwards.

    See the module docstring for why each step is needed (GX 1.24.1).
    """
    execution_engine = datasource.get_execution_engine()  # cached per datasource by GX
    engine: sa.Engine = execution_engine.engine
    if engine.dialect.name != "duckdb":
        raise RuntimeError(f"expected the duckdb SQLAlchemy dialect, got {engine.dialect.name}")
    # 2. search_path on every DBAPI connection this engine opens (dispose first, so that no
    #    connection opened before the listener existed can be handed out).
    if schema is not None:
        sa.event.listen(engine, "connect", partial(_set_search_path, schema=schema))
    engine.dispose()
    # 3. regex: GX emits REGEXP_MATCHES(col, pattern) for dialects with this marker.
    engine.dialect.DremioDialect = True  # type: ignore[attr-defined]
    # 5. whole-value patterns as regexp_full_match, on this dialect instance only.
    engine.dialect.statement_compiler = compiler_with_full_matches(type(engine.dialect).statement_compiler)
    # 6. conditions on a typed column of a raw view evaluated once per distinct value, on this instance only.
    if typed_values:
        engine.dialect.statement_compiler = compiler_with_typed_values(engine.dialect.statement_compiler)
        setattr(engine.dialect, TYPED_VALUES_ATTRIBUTE, dict(typed_values))
    # 1. one persistent connection, shadowing the method on this instance only.
    held = _HeldConnection(engine.connect())
    execution_engine.get_connection = held.get_connection
    # 4. column metadata from DuckDB's catalogue and GX's fallback, on this instance only.
    inspector = _CatalogueInspector(execution_engine.get_inspector(), held.connection, engine)
    execution_engine.get_inspector = lambda: inspector
    try:
        yield held
    finally:
        del execution_engine.get_connection
        del execution_engine.get_inspector
        if typed_values:
            delattr(engine.dialect, TYPED_VALUES_ATTRIBUTE)
        held.connection.close()
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Turning GX results into outcomes
# --------------------------------------------------------------------------------------------


def _exception_message(evr: Any) -> str | None:
    """The error message if GX raised while evaluating, else None.

    ``exception_info`` is either one ``{"raised_exception": ..., "exception_message": ...}``
    or a dict of such dicts keyed by metric id.
    """
    info = evr.exception_info or {}
    if "raised_exception" in info:
        entries = [info]
    else:
        entries = [v for v in info.values() if isinstance(v, dict)]
    messages = [
        str(e.get("exception_message") or "unknown error")
        for e in entries
        if e.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) if messages else None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _outcome(suite_name: str, table: str, evr: Any) -> ExpectationOutcome:
    config = evr.expectation_config
    etype = config.type
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
    meta = config.meta or {}
    severity = meta.get("severity", DEFAULT_SEVERITY)

    if "column" in kwargs:
        column: str | None = kwargs["column"]
    elif "column_A" in kwargs:
        column = f"{kwargs['column_A']}, {kwargs['column_B']}"
    elif "column_list" in kwargs and not etype.startswith("expect_table_"):
        column = ", ".join(map(str, kwargs["column_list"]))  # multi-column domain
    else:
        column = None  # table-level: a column_list there is what is expected, shown below
    hidden = _NOT_SHOWN_KWARGS | ({"column_list"} if column and "column_list" in kwargs else set())

    result = evr.result or {}
    error = _exception_message(evr)
    evaluated = error is None
    unexpected_count = result.get("unexpected_count")
    element_count = result.get("element_count")
    observed = result.get("observed_value")
    sample = [str(v) for v in (result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]]

    where = f"{table}.{column}" if column else table
    shown = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items() if k not in hidden)
    head = f"[{severity}] {etype}({shown}) on {where}"
    if not evaluated:
        message = f"{head}: could not be evaluated: {error}"
    else:
        verdict = "passed" if evr.success else "FAILED"
        details = []
        if unexpected_count is not None:
            of = f" of {element_count}" if element_count is not None else ""
            details.append(f"{unexpected_count}{of} rows unexpected")
            pct = result.get("unexpected_percent")
            if pct is not None:
                details[-1] += f" ({pct:.4g}%)"
            if kwargs.get("mostly") is not None:
                details.append(f"mostly={kwargs['mostly']}")
        if observed is not None:
            details.append(f"observed {_short(observed)}")
        if sample and not evr.success:
            details.append(f"sample: {', '.join(sample[:5])}{' ...' if len(sample) > 5 else ''}")
        message = f"{head}: {verdict}" + (f": {'; '.join(details)}" if details else "")

    return ExpectationOutcome(
        suite=suite_name,
        expectation=etype,
        column=column,
        kwargs=kwargs,
        success=bool(evr.success) and evaluated,
        evaluated=evaluated,
        unexpected_count=unexpected_count,
        element_count=element_count,
        unexpected_sample=sample,
        severity=severity,
        message=message,
        table=table,
        observed_value=observed,
    )


# --------------------------------------------------------------------------------------------
# Data Docs
# --------------------------------------------------------------------------------------------


def build_data_docs(
    results: Iterable[TableValidation | ExpectationSuiteValidationResult], out_dir: Path
) -> Path:
    """Write GX's static HTML Data Docs for ``results`` into ``out_dir``; return index.html.

    ``results`` are ``TableValidation`` objects from ``run_validation`` (or GX's raw
    ``ExpectationSuiteValidationResult``). GX's own SiteBuilder writes the site into a
    filesystem store at ``out_dir`` (``index.html``, ``validations/...``, ``expectations/...``,
    ``static/``). Calling it again with the same ``out_dir`` adds pages; it does not remove old
    ones.

    Offline caveat (GX 1.24.1): the templates link Bootstrap 4, jQuery, bootstrap-table,
    Font Awesome, vega and popper from public CDNs and the logo from GX's S3 bucket. Without
    internet the validation and suite pages show all their content, unstyled; GX's index table
    is drawn by bootstrap-table from a JS array and stays empty. So this function adds a plain
    HTML list of the validation pages (status, suite, table, run time) at the top of the
    index, which needs no script.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    context = _ephemeral_context()
    site_name = "local_site"
    context.add_data_docs_site(
        site_name,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(out_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    pages: list[tuple[ValidationResultIdentifier, ExpectationSuiteValidationResult]] = []
    suite_names: set[str] = set()
    for item in results:
        result = item.gx_result if isinstance(item, TableValidation) else item
        run_id = result.meta.get("run_id")
        if not isinstance(run_id, RunIdentifier):
            run_id = RunIdentifier(**(run_id or {}))
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
            run_id=run_id,
            batch_identifier=result.batch_id or "batch",
        )
        context.validation_results_store.set(key, result)
        pages.append((key, result))
        # The suite page the validation page links to, rebuilt from the configurations.
        if result.suite_name not in suite_names:
            suite_names.add(result.suite_name)
            context.suites.add(
                ExpectationSuite(
                    name=result.suite_name,
                    expectations=[r.expectation_config for r in result.results],
                )
            )
    context.build_data_docs(site_names=[site_name])
    index = out_dir / "index.html"
    if not index.is_file():
        raise RuntimeError(f"GX did not write {index}")
    _add_static_index(context, site_name, index, pages)
    return index


def _add_static_index(context: Any, site_name: str, index: Path, pages: list) -> None:
    """Insert a script-free list of validation pages right after <body> of GX's index."""
    import html

    items = []
    for key, result in pages:
        urls = context.get_docs_sites_urls(resource_identifier=key, site_name=site_name)
        url = (urls[0].get("site_url") or "") if urls else ""
        target = Path(url.removeprefix("file://"))
        try:
            href = target.relative_to(index.parent).as_posix()
        except ValueError:
            continue
        stats = result.statistics or {}
        status = "passed" if result.success else "FAILED"
        asset = (result.meta.get("active_batch_definition") or {}).get("data_asset_name", "")
        run_time = f"{key.run_id.run_time:%Y-%m-%d %H:%M:%S %Z}" if key.run_id.run_time else ""
        items.append(
            f'<li><a href="{html.escape(href)}">{status}: {html.escape(result.suite_name)} on '
            f"{html.escape(str(asset))}</a> &mdash; {stats.get('successful_expectations', '?')}"
            f" of {stats.get('evaluated_expectations', '?')} expectations passed"
            f" &mdash; {html.escape(run_time)}</li>"
        )
    block = (
        '<section id="pv-static-index" style="margin:1em">'
        "<h2>Validation results</h2><ul>" + "".join(items) + "</ul></section>"
    )
    text = index.read_text(encoding="utf-8")
    text = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + block, text, count=1)
    index.write_text(text, encoding="utf-8")
