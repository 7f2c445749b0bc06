"""The expectation suites in ``expectations/*.json`` and what each one validates.

A suite file is Great Expectations' own suite JSON (``{"name", "meta", "expectations"}``), loadable with
``gx_runner.load_suite``. Two kinds of ``meta`` make it runnable without any code per suite:

Suite ``meta`` (where it runs):
    ``table``            the table or view validated, ``schema.table`` (``marts.{name}`` for a ``for_each`` suite)
    ``asset``            the Dagster asset the check sits on, ``"raw/claims"``
    ``additional_deps``  other assets the check reads (e.g. the ``quality/...`` view it validates)
    ``for_each``         ``"benchmark"``: one check per benchmark of ``pipelines.benchmarks.registry``, on
                         ``marts/<name>``; ``{name}``, ``{value_column}``, ``{numerator_column}``,
                         ``{denominator_column}``, ``{threshold_column}``, ``{volume_column}``, ``{unit}`` and
                         ``{direction}`` in the suite are replaced by the benchmark's values
    ``description``      shown on the check in the Dagster UI
    ``prepare``          ``"view"``: the check builds ``table`` from ``sql/quality/<name>.sql`` just before it
                         validates it and drops it afterwards (for blocking checks, which cannot wait for an asset
                         downstream of the asset they check)
    ``scope``            ``"this_run"``: validate only the rows of the files this run loaded (``table`` needs a
                         ``load_id``). For tables about deliveries, which keep every file ever loaded (raw.*,
                         quality.file_accounting): a bad file fails the run that loads it, not every later run.
                         Default ``"all"``: the current state (staging, core, marts), which a corrected
                         re-delivery fixes.
    ``changes_of``       an incrementally built table (``"staging.claim_lines"``) whose rows ``table`` shows one to
                         one, by that table's key: when the previous validation found no unexpected row at all, a
                         run validates only the rows of the keys its new loads changed
                         (``pipelines/quality/narrowing.py``). Only row-wise expectations and "at least one row"
                         are allowed in such a suite.

Expectation ``meta``:
    ``severity``   ``fatal`` | ``error`` | ``warn`` (required). A suite whose expectations are fatal is a *blocking*
                   check: it stops everything downstream of its asset. A suite must not mix fatal with other
                   severities (a blocking check would then also block on an ordinary error).
    ``why``        one sentence: what goes wrong in the numbers when the expectation fails (required)
    ``when``       ``for_each`` only: ``{"unit": ["share"]}`` applies the expectation only to matching benchmarks
    ``except_benchmarks``  ``for_each`` only: benchmarks the rule does not hold for by definition
    ``count_only`` the expectation has ``mostly: 0``: it never fails, it counts (shown with the check)

Values known only at run time are GX suite parameters, ``{"$PARAMETER": name}`` (filled by
:func:`resolve_parameters`):
    ``ref__<table>__<column>``  the distinct values of ``reference.<table>.<column>`` (e.g. every prestatiecode)
    ``benchmark_count``         the number of benchmarks in the registry
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.paths import EXPECTATIONS_DIR

SEVERITIES = ("fatal", "error", "warn")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_TABLE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_REFERENCE_PARAMETER = re.compile(r"^ref__([a-z_][a-z0-9_]*?)__([a-z_][a-z0-9_]*)$")
BENCHMARK_FIELDS = ("name", "value_column", "numerator_column", "denominator_column", "threshold_column",
                    "volume_column", "unit", "direction")


class SuiteError(ValueError):
    """A suite file that cannot be turned into a check; the message names the file."""


@dataclass(frozen=True)
class SuiteBinding:
    """One suite bound to one table and one asset: what one Dagster asset check runs."""

    check_name: str  #: the suite file's stem; unique per asset
    suite_name: str  #: GX suite name, ``marts.group_treatment_share`` for a per-benchmark suite
    path: Path
    table: str
    asset_key: tuple[str, ...]
    additional_deps: tuple[tuple[str, ...], ...]
    blocking: bool
    description: str
    suite: dict = field(compare=False, repr=False)  #: the rendered GX suite JSON
    prepare: str | None = None  #: ``"view"``: the check builds its table first (see the module docstring)
    scope: str = "all"  #: ``"this_run"``: only the rows of files loaded by the run (see the module docstring)
    changes_of: str | None = None  #: validate only the changed rows of this incremental table when exact

    @property
    def expectations(self) -> list[dict]:
        return self.suite["expectations"]

    @property
    def parameter_names(self) -> list[str]:
        return sorted(set(parameter_names(self.expectations)))

    @property
    def asset_path(self) -> str:
        return "/".join(self.asset_key)


def suite_files(expectations_dir: Path = EXPECTATIONS_DIR) -> list[Path]:
    return sorted(Path(expectations_dir).glob("*.json"))


def suite_bindings(expectations_dir: Path = EXPECTATIONS_DIR, benchmarks: Sequence[Any] | None = None
                   ) -> list[SuiteBinding]:
    """Every check the suites define, in file order (a ``for_each`` suite gives one per benchmark)."""
    if benchmarks is None:
        from pipelines.benchmarks.registry import benchmarks as registry

        benchmarks = registry()
    bindings: list[SuiteBinding] = []
    for path in suite_files(expectations_dir):
        bindings.extend(bindings_for_file(path, benchmarks))
    seen: dict[tuple[tuple[str, ...], str], Path] = {}
    for b in bindings:
        key = (b.asset_key, b.check_name)
        if key in seen:
            raise SuiteError(f"{b.path}: check {b.check_name} on {b.asset_path} is also defined by {seen[key]}")
        seen[key] = b.path
    return bindings


def bindings_for_file(path: Path, benchmarks: Sequence[Any] = ()) -> list[SuiteBinding]:
    data = _read(path)
    meta = data.get("meta") or {}
    for_each = meta.get("for_each")
    if for_each is None:
        return [_binding(path, data, context={})]
    if for_each != "benchmark":
        raise SuiteError(f"{path}: meta.for_each must be 'benchmark', not {for_each!r}")
    return [_binding(path, data, context=benchmark_context(b)) for b in benchmarks]


def benchmark_context(benchmark: Any) -> dict[str, str]:
    return {name: str(getattr(benchmark, name)) for name in BENCHMARK_FIELDS}


def _read(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read suite JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteError(f"{path}: a suite is an object with a list of expectations")
    return data


def _binding(path: Path, data: dict, context: Mapping[str, str]) -> SuiteBinding:
    meta = dict(data.get("meta") or {})
    stem = path.stem
    expectations = []
    for i, exp in enumerate(data["expectations"]):
        exp_meta = exp.get("meta") or {}
        label = f"{path}: expectations[{i}] ({exp.get('type')})"
        if exp_meta.get("severity") not in SEVERITIES:
            raise SuiteError(f"{label}: meta.severity must be one of {SEVERITIES}")
        if not str(exp_meta.get("why") or "").strip():
            raise SuiteError(f"{label}: meta.why must say what goes wrong when it fails")
        if exp_meta.get("count_only") and (exp.get("kwargs") or {}).get("mostly") != 0:
            raise SuiteError(f"{label}: a count_only expectation needs mostly: 0")
        if context and not _applies(exp_meta, context):
            continue
        expectations.append(_render(copy.deepcopy(exp), context, label))
    severities = {e["meta"]["severity"] for e in expectations}
    if "fatal" in severities and severities != {"fatal"}:
        raise SuiteError(f"{path}: a suite with fatal expectations is a blocking check and must contain only fatal "
                         "expectations; move the others to a suite of their own")
    if meta.get("prepare") not in (None, "view"):
        raise SuiteError(f"{path}: meta.prepare must be 'view' when given")
    if meta.get("scope", "all") not in ("all", "this_run"):
        raise SuiteError(f"{path}: meta.scope must be 'all' or 'this_run'")
    if meta.get("scope") == "this_run" and meta.get("prepare"):
        raise SuiteError(f"{path}: meta.scope 'this_run' and meta.prepare cannot be combined")
    changes_of = meta.get("changes_of")
    if changes_of is not None:
        if not _TABLE.match(str(changes_of)) or meta.get("scope", "all") != "all" or context:
            raise SuiteError(f"{path}: meta.changes_of must name a 'schema.table', for a suite of scope 'all' "
                             "without for_each")
        keys = _incremental_keys(str(changes_of))
        if keys is None:
            raise SuiteError(f"{path}: meta.changes_of {changes_of} is not a table built incrementally by keys "
                             "(-- materialise: incremental by <keys> of <input>)")
        for i, exp in enumerate(expectations):
            if not _row_wise(exp, keys):
                raise SuiteError(f"{path}: expectations[{i}] ({exp.get('type')}) is not row-wise: a suite with "
                                 "meta.changes_of may hold only row-wise expectations (uniqueness only of "
                                 f"{', '.join(keys)}) and a row count of at least 0 or 1 (the rows a run did not "
                                 "change are not validated again)")
    table = _render(meta.get("table", ""), context, f"{path}: meta.table")
    if not _TABLE.match(table):
        raise SuiteError(f"{path}: meta.table must be 'schema.table', not {table!r}")
    asset = _render(meta.get("asset") or table.replace(".", "/"), context, f"{path}: meta.asset")
    deps = tuple(tuple(_render(d, context, f"{path}: meta.additional_deps").split("/"))
                 for d in meta.get("additional_deps", []))
    suite_name = f"{stem}.{context['name']}" if context else stem
    suite = {"name": suite_name, "meta": {**meta, "table": table, "asset": asset}, "expectations": expectations}
    return SuiteBinding(
        check_name=stem,
        suite_name=suite_name,
        path=Path(path),
        table=table,
        asset_key=tuple(asset.split("/")),
        additional_deps=deps,
        blocking=severities == {"fatal"},
        description=str(meta.get("description", "")),
        suite=suite,
        prepare=meta.get("prepare"),
        scope=meta.get("scope", "all"),
        changes_of=changes_of,
    )


def _incremental_keys(table: str) -> tuple[str, ...] | None:
    """The key columns ``table`` is built incrementally by (None when it is not)."""
    from pipelines.incremental import by_keys
    from pipelines.sql_models import model_of

    model = model_of(table)
    spec = by_keys(model) if model is not None else None
    return spec.keys if spec is not None else None


def _row_wise(expectation: Mapping[str, Any], keys: Sequence[str]) -> bool:
    """Whether an expectation's unexpected rows in a table are those in each part of any split of its rows by
    ``keys``: column and column-pair value expectations, uniqueness of a key column (its duplicates share the key),
    and "at least one row" (see pipelines/quality/narrowing.py)."""
    kind = str(expectation.get("type", ""))
    kwargs = expectation.get("kwargs") or {}
    if kind == "expect_table_row_count_to_be_between":
        return kwargs.get("max_value") is None and (kwargs.get("min_value") or 0) <= 1
    if kind == "expect_column_values_to_be_unique":
        return kwargs.get("column") in keys and kwargs.get("mostly", 1) == 1
    return kind.startswith(("expect_column_values_to_", "expect_column_pair_values_")) \
        and kwargs.get("mostly", 1) == 1


def _applies(exp_meta: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    if context.get("name") in (exp_meta.get("except_benchmarks") or []):
        return False
    for key, allowed in (exp_meta.get("when") or {}).items():
        if context.get(key) not in allowed:
            return False
    return True


def _render(value: Any, context: Mapping[str, str], label: str) -> Any:
    """Replace ``{field}`` placeholders in every string of ``value`` by the benchmark's values."""
    if isinstance(value, str):
        def swap(match: re.Match) -> str:
            key = match.group(1)
            if key not in context:
                if not context:
                    return match.group(0)  # a plain suite: nothing to fill
                raise SuiteError(f"{label}: unknown placeholder {{{key}}}")
            return context[key]

        return _PLACEHOLDER.sub(swap, value)
    if isinstance(value, list):
        return [_render(v, context, label) for v in value]
    if isinstance(value, dict):
        return {k: (v if k in ("meta",) else _render(v, context, label)) for k, v in value.items()}
    return value


def parameter_names(value: Any) -> Iterable[str]:
    """The names of GX ``{"$PARAMETER": name}`` placeholders anywhere in ``value``."""
    if isinstance(value, Mapping):
        if "$PARAMETER" in value:
            yield str(value["$PARAMETER"])
        else:
            for item in value.values():
                yield from parameter_names(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from parameter_names(item)


def resolve_parameters(con: Any, names: Iterable[str]) -> dict[str, Any]:
    """Values for a suite's ``$PARAMETER`` placeholders, read from the warehouse (``con``) and the registry."""
    values: dict[str, Any] = {}
    for name in names:
        reference = _REFERENCE_PARAMETER.match(name)
        if reference:
            table, column = reference.groups()
            rows = con.execute(
                f"SELECT DISTINCT {column} FROM reference.{table} WHERE {column} IS NOT NULL ORDER BY 1"
            ).fetchall()
            values[name] = [r[0] for r in rows]
        elif name == "benchmark_count":
            from pipelines.benchmarks.registry import benchmarks

            values[name] = len(benchmarks())
        else:
            raise SuiteError(f"unknown suite parameter {name!r} (known: ref__<table>__<column>, benchmark_count)")
    return values
