"""Incremental builds: a nightly run brings the big claim-line tables up to date with the files it loaded,
instead of rewriting ten million rows that did not change.

An SQL file opts in with a line in its header comment that states what each of its rows depends on:

* ``-- materialise: incremental by load_id``: each row is computed from one raw row (``staging.claims_typed``).
  A run adds the rows of the loads the table does not have yet.
* ``-- materialise: incremental by <key columns> of <input>``: each row depends only on the rows of ``<input>``
  with the same key (``staging.claim_lines``: claim_id; ``core.claim_lines``: provider and client). A run
  deletes the rows of the keys that the new loads change and computes them again with the file's own SQL, its
  input narrowed to those keys. Which keys change is itself SQL: ``sql/changes/<schema>.<table>.sql`` selects
  them, reading the temp tables ``changed_claims`` (claim_ids of the rows of the new loads), ``linked_claims``
  (those and the claim_ids linked to them by credits: ``sql/changes/linked_claims.sql``) and ``previous_build``
  (``as_of`` of the run that last built the table). A table built by the same keys, or some of them, from another
  such table (``core.trajectories`` from ``core.claim_lines``; ``core.provider_years``, by provider alone) needs no
  changes file: the keys that change are the keys its input's changes file selects, and its as-of date is the one
  its input was built with. Only the changed keys' rows are inserted, so a model may also read a small input that
  is not narrowed (the contracts of every provider). When the input is a view over one table
  (``staging.net_lines``), ``sql/changes/<view>.sql`` may select the rows of that table the changed keys need, so
  that the view is computed from those rows only.

A model brought up to date keeps its changed keys and their new rows for the models built by its keys, or some of
them, from it, without a changes file of their own (``core.trajectories``, ``core.trajectory_years`` and
``core.provider_clients`` from ``core.claim_lines``; by provider alone ``core.provider_years`` and the benchmark marts
that declare it): when such a model was last built from the loads and as-of date its input was brought up to date
from, to those the input reflects now, its changes are those keys (by fewer keys: their distinct values), so it
does not work the changes out again (~0.3-0.5 s each at ten million lines); by the same keys its narrowed input is
the kept rows, so it does not scan the whole input for them either. The kept tables (``quality.kept_changes``) serve
the run that made them and are dropped before the warehouse is published.

Raw tables only grow, one load at a time, and a load's rows never change. What else the rows depend on is
summarised in a fingerprint: the SQL files, the contents of small inputs (e.g. ``reference.prestatiecodes``) and
the fingerprint of inputs that are themselves built incrementally (through views). The as-of date is not in the
fingerprint: the changes file says which keys a moved as-of date changes. A new fingerprint, a table that does
not exist yet, or a load that has left raw means a full rebuild. ``quality.model_builds`` records per table the
fingerprint, the loads it reflects (for a table built from another incremental table: the loads that one
reflects, so building them out of order never skips a load), the as-of date and how the last build went. It is
written in the same transaction as the rows, so a run that stops half-way leaves both as they were and a rerun
never counts a load twice.

A build that brings a table up to date runs under the warehouse's lower memory limit for such builds (512MB,
``with_incremental_memory_limit`` in pipelines/warehouse.py): it reads the big tables for a few per cent of their
rows, and DuckDB then reuses the memory of the blocks it read instead of keeping them all. One that runs out of
memory there has written nothing and is done again under the run's own limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from pathlib import Path

import duckdb

from pipelines.paths import SQL_DIR
from pipelines.sql_models import SqlModel, create, model_of, models, relation_kind
from pipelines.warehouse import transaction, with_incremental_memory_limit

MODEL_BUILDS_DDL = """
CREATE TABLE IF NOT EXISTS quality.model_builds (
    model        VARCHAR PRIMARY KEY,
    fingerprint  VARCHAR NOT NULL,
    loads        INTEGER[] NOT NULL,
    as_of        DATE,
    built_at     TIMESTAMP NOT NULL,
    how          VARCHAR NOT NULL,
    loads_added  INTEGER NOT NULL,
    rows_added   BIGINT NOT NULL
)
"""
REBUILT = "rebuilt"
ADDED = "added new loads"
# What a model brought up to date keeps for the models built by the same keys from it later in the run (their
# changed keys are its changed keys, their narrowed input its new rows): one row per model, and two tables each
# (_kept_tables). Dropped before the warehouse is published (drop_kept_changes).
KEPT_CHANGES_DDL = """
CREATE TABLE IF NOT EXISTS quality.kept_changes (
    model       VARCHAR PRIMARY KEY,
    fingerprint VARCHAR NOT NULL,
    from_loads  INTEGER[] NOT NULL,
    from_as_of  DATE,
    to_loads    INTEGER[] NOT NULL,
    to_as_of    DATE
)
"""
# Read for its as-of date only (handled by the changes file); its other columns change every run.
RUN_PARAMETERS = "core.run_parameters"
_BY_KEYS = re.compile(r"^(?P<keys>[a-z_]+(?:\s*,\s*[a-z_]+)*) of (?P<input>[a-z_]+\.[a-z_]+)$")


@dataclass(frozen=True)
class Build:
    fingerprint: str
    loads: list[int]
    as_of: date | None


@dataclass(frozen=True)
class ByKeys:
    keys: tuple[str, ...]
    input: str


def by_keys(model: SqlModel) -> ByKeys | None:
    """The key columns and narrowed input of an ``incremental by <keys> of <input>`` model."""
    match = _BY_KEYS.match(model.incremental_key or "")
    if not match:
        return None
    return ByKeys(tuple(k.strip() for k in match.group("keys").split(",")), match.group("input"))


def materialise_incremental(con: duckdb.DuckDBPyConnection, model: SqlModel, full_rebuild: bool = False) -> int:
    """Bring the model's table up to date (see the module docstring), or rebuild it when ``full_rebuild``;
    returns its row count."""
    con.execute(MODEL_BUILDS_DDL)
    builds = recorded_builds(con)
    fingerprint = _fingerprint(con, model, builds)
    loaded = _loads_reflected(con, model, builds)
    as_of = _as_of(con, model, builds)
    previous = builds.get(model.table)
    is_table = relation_kind(con, model) == "BASE TABLE"
    can_add = not full_rebuild and previous is not None and previous.fingerprint == fingerprint and is_table \
        and set(previous.loads) <= set(loaded) and (previous.as_of is not None or as_of is None)
    build = Build(fingerprint, loaded, as_of)
    if not can_add:
        with transaction(con):
            create(con, model, view=False)
            _forget_kept_changes(con, model.table)
            rows = con.execute(f"SELECT count(*) FROM {model.table}").fetchone()[0]
            record_build(con, model.table, build, REBUILT, len(loaded), rows)
        return rows
    new = [load_id for load_id in loaded if load_id not in set(previous.loads)]
    with_incremental_memory_limit(con, lambda: _add_loads(con, model, new, previous, build))
    return con.execute(f"SELECT count(*) FROM {model.table}").fetchone()[0]


def _add_loads(con: duckdb.DuckDBPyConnection, model: SqlModel, new: list[int], previous: Build, build: Build
               ) -> None:
    """Bring the table up to date with the loads ``new`` (and a moved as-of date) and record the build, in one
    transaction.

    The changed keys and the narrowed input are temp tables made before the transaction that writes: DuckDB counts
    the rows of a table created inside a transaction as none until it commits, and over such an input it built its
    hash joins on the wide lines instead of on the reference tables (a nightly file's core.claim_lines: ~270 MB
    more memory touched, docs/performance-history.md, twentieth round)."""
    with _narrowing(con, model, new, previous, build) as narrowed, transaction(con):
        added = _bring_up_to_date(con, model, new, narrowed, previous, build)
        record_build(con, model.table, build, ADDED, len(new), added)


@dataclass(frozen=True)
class Narrowed:
    """What :func:`_narrow` made for a model built by keys: ``changed`` is the filter on the changed keys (temp
    table ``changed_keys``), ``sql`` the model's SQL reading its narrowed input (temp table or view
    ``changed_input``)."""
    changed: str
    sql: str


@contextlib.contextmanager
def _narrowing(con: duckdb.DuckDBPyConnection, model: SqlModel, new: list[int], previous: Build, build: Build
               ) -> Iterator[Narrowed | None]:
    """:func:`_narrow` for the block, whose temp tables are dropped when it ends (other models of the run use the
    same names). When the block fails they are dropped quietly: its own error is what the caller sees."""
    try:
        yield _narrow(con, model, new, previous, build)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            _drop_narrowing(con)
        raise
    _drop_narrowing(con)


def _narrow(con: duckdb.DuckDBPyConnection, model: SqlModel, new: list[int], previous: Build, build: Build
            ) -> Narrowed | None:
    """For a model built by keys: the temp tables of the keys that the loads ``new`` (and a moved as-of date)
    change and of the model's input narrowed to those keys; None for a model built by load_id."""
    if model.incremental_key == "load_id":
        return None
    spec = by_keys(model)
    keys = ", ".join(spec.keys)
    # (keys) IN (SELECT ...): DuckDB runs it as a semi join; a correlated EXISTS here took 100 times longer
    changed = f"({', '.join(f't.{key}' for key in spec.keys)}) IN (SELECT {keys} FROM changed_keys)"
    kept = _kept_changes_for(con, model, previous, build)
    source = spec.input
    if kept is not None:  # the input kept its changed keys and their rows earlier in this run
        kept_keys, kept_rows = kept
        con.execute(f"CREATE OR REPLACE TEMP TABLE changed_keys AS SELECT DISTINCT {keys} FROM {kept_keys}")
        if by_keys(_same_keys_input(model)).keys == spec.keys:
            source = kept_rows  # by fewer keys it reads every input row of its changed keys, not the kept rows only
    else:
        create_changed_keys(con, model, new, previous.as_of)
    view_input = _view_input_narrowing(model) if source == spec.input else None
    if view_input is not None:  # the view computed from only the rows the changed keys need (see _view_input_narrowing)
        view, table, narrowing = view_input
        # A table, not a view: the model may read the view more than once (core.claim_lines reads staging.net_lines
        # twice), the view its table more than once (net_lines reads staging.claim_lines four times), and the
        # narrowing reads the big table three times. As a view, a nightly file of 12,000 existing clients of 40
        # providers took core.claim_lines 4.9 s at 10M lines.
        con.execute(f"CREATE OR REPLACE TEMP TABLE changed_view_input AS {narrowing}")
        view_sql = re.sub(rf"\b{re.escape(table)}\b", "changed_view_input", view.sql)
        con.execute(f"CREATE OR REPLACE TEMP VIEW changed_view AS {view_sql}")
        source = "changed_view"
    # The changed keys' rows of a narrowed view are computed once, into a table: the model may read its input more
    # than once (core.claim_lines reads staging.net_lines twice), and over a table DuckDB knows how many rows there
    # are. Over the view it guessed a handful and built its joins' hash tables on the 236,000 wide lines instead of
    # on the reference tables (core.claim_lines' rows of a nightly file: 1.4 s, now 0.5 s).
    kind = "TABLE" if source == "changed_view" else "VIEW"
    con.execute(f"CREATE OR REPLACE TEMP {kind} changed_input AS SELECT * FROM {source} AS t WHERE {changed}")
    narrowed = re.sub(rf"\b{re.escape(spec.input)}\b", "changed_input", model.sql)
    return Narrowed(changed, narrowed)


def _drop_narrowing(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temp tables and views of :func:`_narrow`."""
    made = dict(con.execute("SELECT table_name, table_type FROM information_schema.tables "
                            "WHERE table_catalog = 'temp'").fetchall())
    for name in ("changed_input", "changed_view", "changed_view_input", "changed_keys"):  # readers first
        if name in made:
            con.execute(f"DROP {'VIEW' if made[name] == 'VIEW' else 'TABLE'} temp.main.{name}")


def _bring_up_to_date(con: duckdb.DuckDBPyConnection, model: SqlModel, new: list[int], narrowed: Narrowed | None,
                      previous: Build, build: Build) -> int:
    """Write what the loads ``new`` (and a moved as-of date) change, from the narrowed input of a model built by
    keys; returns the rows inserted."""
    if narrowed is None:  # built by load_id
        if not new:
            return 0
        # a constant list, so that the filter reaches the scan of raw (which then skips the other loads)
        return con.execute(f"INSERT INTO {model.table} SELECT * FROM (\n{model.sql}\n) AS built "
                           f"WHERE built.load_id IN ({', '.join(map(str, new))})").fetchone()[0]
    con.execute(f"DELETE FROM {model.table} AS t WHERE {narrowed.changed}")
    # only the changed keys' rows: a model may also take rows from an input that is not narrowed (the contracts of
    # every provider in core.provider_years), and those of the other keys are in the table already
    new_rows = f"SELECT * FROM (\n{narrowed.sql}\n) AS t WHERE {narrowed.changed}"
    if not _keeps_changes(model):
        return con.execute(f"INSERT INTO {model.table} {new_rows}").fetchone()[0]
    # the rows are kept for the models built from this one later in the run: written once, into the kept table
    _, rows_table = _kept_tables(model.table)
    con.execute(f"CREATE OR REPLACE TABLE {rows_table} AS {new_rows}")
    added = con.execute(f"INSERT INTO {model.table} SELECT * FROM {rows_table}").fetchone()[0]
    _keep_changes(con, model.table, previous, build)
    return added


def create_changed_keys(con: duckdb.DuckDBPyConnection, model: SqlModel, new: list[int], previous_as_of) -> None:
    """Temp table ``changed_keys``: the distinct keys of ``model`` (built by keys) that the loads ``new``, and an
    as-of date moved on from ``previous_as_of``, change (:func:`changes_sql`)."""
    create_changed_claims(con, new, model.path.parents[1])
    con.execute("CREATE OR REPLACE TEMP TABLE previous_build AS SELECT CAST(? AS DATE) AS as_of", [previous_as_of])
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE changed_keys AS SELECT DISTINCT {', '.join(by_keys(model).keys)} "
                    f"FROM (\n{changes_sql(model)}\n) AS changed")
    finally:
        con.execute("DROP TABLE previous_build")
        drop_changed_claims(con)


def _kept_tables(table: str) -> tuple[str, str]:
    """The tables in which ``table`` keeps its changed keys and their new rows (see KEPT_CHANGES_DDL)."""
    name = table.replace(".", "__")
    return f"quality.kept_changes__{name}__keys", f"quality.kept_changes__{name}__rows"


def _takes_kept_changes(model: SqlModel) -> str | None:
    """The input whose kept changes ``model`` takes: one built incrementally by ``model``'s keys or more, when
    ``model`` has no changes file of its own. Its changed keys are then the distinct values of its own keys in
    the input's kept keys; its narrowed input is the input's kept rows when the keys are the same, else the
    input's rows of those keys (``core.provider_years`` by provider from ``core.claim_lines`` by provider and
    client: every line of the changed providers). None otherwise."""
    upstream = _same_keys_input(model)
    own_changes = model.path.parents[1] / "changes" / f"{model.table}.sql"
    if upstream is None or own_changes.exists():
        return None
    return upstream.table


def _keeps_changes(model: SqlModel) -> bool:
    """Whether another model takes ``model``'s kept changes (:func:`_takes_kept_changes`)."""
    sql_dir = model.path.parents[1]
    return any(_takes_kept_changes(other) == model.table
               for schema in ("staging", "core", "quality", "marts") if (sql_dir / schema).is_dir()
               for other in models(schema, sql_dir) if by_keys(other) is not None)


def _keep_changes(con: duckdb.DuckDBPyConnection, table: str, previous: Build, build: Build) -> None:
    """Keep ``changed_keys`` of ``table``'s update from ``previous`` to ``build`` beside its rows (which
    :func:`_bring_up_to_date` wrote into the kept rows table), and record what they are changes between."""
    keys_table, _ = _kept_tables(table)
    con.execute(KEPT_CHANGES_DDL)
    con.execute(f"CREATE OR REPLACE TABLE {keys_table} AS SELECT * FROM changed_keys")
    con.execute("DELETE FROM quality.kept_changes WHERE model = ?", [table])
    con.execute("INSERT INTO quality.kept_changes VALUES (?, ?, CAST(? AS INTEGER[]), ?, CAST(? AS INTEGER[]), ?)",
                [table, build.fingerprint, sorted(previous.loads), previous.as_of, sorted(build.loads),
                 build.as_of])


def _forget_kept_changes(con: duckdb.DuckDBPyConnection, table: str) -> None:
    if _has_kept_changes(con):
        con.execute("DELETE FROM quality.kept_changes WHERE model = ?", [table])
    for kept in _kept_tables(table):
        con.execute(f"DROP TABLE IF EXISTS {kept}")


def _has_kept_changes(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                            "AND schema_name = 'quality' AND table_name = 'kept_changes'").fetchone()[0])


def _kept_changes_for(con: duckdb.DuckDBPyConnection, model: SqlModel, previous: Build, build: Build
                      ) -> tuple[str, str] | None:
    """The kept keys and rows table of ``model``'s input when they are its changes now: the input was brought up to
    date from the loads and as-of date ``model`` was last built with to those it is built with now, and the
    model has no changes file of its own and the input's keys or some of them."""
    upstream = _takes_kept_changes(model)
    return None if upstream is None else kept_changes_between(con, upstream, previous, build)


def kept_changes_between(con: duckdb.DuckDBPyConnection, table: str, previous: Build, build: Build
                         ) -> tuple[str, str] | None:
    """The kept keys and rows tables of ``table`` when it was brought up to date in this run from the loads and
    as-of date of ``previous`` to those of ``build``, and not built again since; None otherwise."""
    if not _has_kept_changes(con):
        return None
    row = con.execute("SELECT fingerprint, from_loads, from_as_of, to_loads, to_as_of FROM quality.kept_changes "
                      "WHERE model = ?", [table]).fetchone()
    current = recorded_builds(con).get(table)
    if row is None or current is None:
        return None
    fingerprint, from_loads, from_as_of, to_loads, to_as_of = row
    if (fingerprint, sorted(to_loads), to_as_of) != (current.fingerprint, sorted(current.loads), current.as_of):
        return None  # the input was built again since
    if (sorted(from_loads), from_as_of, sorted(to_loads), to_as_of) != (
            sorted(previous.loads), previous.as_of, sorted(build.loads), build.as_of):
        return None
    return _kept_tables(table)


def drop_kept_changes(con: duckdb.DuckDBPyConnection) -> None:
    """Drop every model's kept changes (before publishing: they serve the run that made them)."""
    if not _has_kept_changes(con):
        return
    for (table,) in con.execute("SELECT model FROM quality.kept_changes").fetchall():
        for kept in _kept_tables(table):
            con.execute(f"DROP TABLE IF EXISTS {kept}")
    con.execute("DROP TABLE quality.kept_changes")


def _view_input_narrowing(model: SqlModel) -> tuple[SqlModel, str, str] | None:
    """For a model whose narrowed input is a view over one table: the view, that table, and the SELECT of the
    rows of that table the changed keys' rows of the view depend on (sql/changes/<view>.sql, reading the temp
    table ``changed_keys``), when that file exists. Without it the view is computed over all its input and then
    narrowed, which is correct but reads everything."""
    spec = by_keys(model)
    view = _model_of(spec.input, model.path.parents[1]) if spec else None
    path = model.path.parents[1] / "changes" / f"{spec.input}.sql" if spec else None
    if view is None or not view.is_view or not path.exists():
        return None
    if len(view.inputs) != 1:
        raise ValueError(f"{path} narrows the input of {view.table}, which must read exactly one table "
                         f"(it reads {', '.join(view.inputs)})")
    return view, view.inputs[0], path.read_text(encoding="utf-8").strip().rstrip(";")


def record_build(con: duckdb.DuckDBPyConnection, table: str, build: Build, how: str, loads_added: int,
                 rows_added: int) -> None:
    """Replace the table's row in quality.model_builds (which the caller has created)."""
    con.execute("DELETE FROM quality.model_builds WHERE model = ?", [table])
    con.execute("INSERT INTO quality.model_builds VALUES (?, ?, CAST(? AS INTEGER[]), ?, now()::TIMESTAMP, ?, ?, ?)",
                [table, build.fingerprint, build.loads, build.as_of, how, loads_added, rows_added])


def create_changed_claims(con: duckdb.DuckDBPyConnection, new: list[int], sql_dir: Path = SQL_DIR) -> None:
    """Temp tables ``changed_claims`` (the claim_ids of the rows of the loads ``new``) and ``linked_claims``
    (sql/changes/linked_claims.sql)."""
    listed = ", ".join(map(str, new)) or "NULL"
    con.execute(f"CREATE OR REPLACE TEMP TABLE changed_claims AS SELECT DISTINCT claim_id FROM staging.claims_typed "
                f"WHERE load_id IN ({listed}) AND claim_id IS NOT NULL")
    con.execute(f"CREATE OR REPLACE TEMP TABLE linked_claims AS {_linked_claims_sql(sql_dir)}")


def _linked_claims_sql(sql_dir: Path) -> str:
    return (sql_dir / "changes" / "linked_claims.sql").read_text(encoding="utf-8").strip().rstrip(";")


def drop_changed_claims(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("changed_claims", "linked_claims"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def changes_sql(model: SqlModel) -> str:
    """The keys a run computes again: sql/changes/<schema>.<table>.sql, or for a table built by the same keys (or
    some of them) from another incrementally built table, that table's (its rows of a key change only when the
    input's do; ``changed_keys`` takes the distinct values of the model's own keys from it)."""
    own = model.path.parents[1] / "changes" / f"{model.table}.sql"
    upstream = _same_keys_input(model)
    if not own.exists() and upstream is not None:
        if RUN_PARAMETERS in _all_inputs(model):  # its input's changes cannot say which rows a moved as-of changes
            raise ValueError(f"{model.path} is built incrementally from {upstream.table} and reads "
                             f"{RUN_PARAMETERS}: a moved as-of date may change rows of keys whose input did not "
                             f"change, so it needs sql/changes/{model.table}.sql or a full build")
        return changes_sql(upstream)
    return changes_sql_for(model.table, model.path.parents[1])


def _same_keys_input(model: SqlModel) -> SqlModel | None:
    """The model's narrowed input when that is itself built incrementally by the same keys or more (the input's
    changes then say which of the model's keys change: ``core.provider_years`` by provider from ``core.claim_lines``
    by provider and client)."""
    spec = by_keys(model)
    upstream = _model_of(spec.input, model.path.parents[1]) if spec else None
    if upstream is not None and by_keys(upstream) is not None and set(spec.keys) <= set(by_keys(upstream).keys):
        return upstream
    return None


def changes_sql_for(table: str, sql_dir: Path = SQL_DIR) -> str:
    """The text of sql/changes/<schema>.<table>.sql."""
    path = sql_dir / "changes" / f"{table}.sql"
    if not path.exists():
        raise FileNotFoundError(f"{table} is built incrementally, but {path} (the SELECT of what a run must "
                                "compute again) does not exist")
    return path.read_text(encoding="utf-8").strip().rstrip(";")


def _loads_reflected(con: duckdb.DuckDBPyConnection, model: SqlModel, builds: dict[str, Build]) -> list[int]:
    """The loads the model's rows will reflect: for a load_id model every claims file loaded so far; otherwise
    those its incrementally built input reflects (directly or through views), so that a table built before its
    input has taken in a new load does not count that load as done (e.g. one asset materialised from the UI)."""
    if model.incremental_key != "load_id":
        upstream = sorted(t for t in _all_inputs(model) if t in builds)
        if upstream:
            return loads_reflected_by(upstream[0], builds, con)
    return claim_loads(con)


def loads_reflected_by(table: str, builds: dict[str, Build], con: duckdb.DuckDBPyConnection) -> list[int]:
    """The loads an incrementally built table reflects (every claims load if it has no record yet)."""
    return sorted(builds[table].loads) if table in builds else claim_loads(con)


def claim_loads(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Every claims file loaded so far."""
    return [load_id for (load_id,) in con.execute(
        "SELECT load_id FROM raw.load_manifest WHERE status = 'loaded' AND rows_loaded > 0 AND kind = 'claims' "
        "ORDER BY load_id").fetchall()]


def _as_of(con: duckdb.DuckDBPyConnection, model: SqlModel, builds: dict[str, Build]):
    """The as-of date the model's rows reflect: the run's when it reads core.run_parameters, else the one its
    same-keys input was built with (None when neither)."""
    if RUN_PARAMETERS in _all_inputs(model):
        return con.execute(f"SELECT as_of FROM {RUN_PARAMETERS}").fetchone()[0]
    upstream = _same_keys_input(model)
    if upstream is not None and upstream.table in builds:
        return builds[upstream.table].as_of
    return None


def recorded_builds(con: duckdb.DuckDBPyConnection) -> dict[str, Build]:
    return {model: Build(fingerprint, list(loads), as_of) for model, fingerprint, loads, as_of in
            con.execute("SELECT model, fingerprint, loads, as_of FROM quality.model_builds").fetchall()}


def _model_of(table: str, sql_dir: Path = SQL_DIR) -> SqlModel | None:
    return model_of(table, sql_dir) if table.split(".")[0] in ("staging", "core") else None


def _all_inputs(model: SqlModel) -> set[str]:
    """The model's inputs, and through views the inputs of those views."""
    found: set[str] = set()
    for table in model.inputs:
        found.add(table)
        upstream = _model_of(table)
        if upstream is not None and upstream.is_view:
            found |= _all_inputs(upstream)
    return found


def _fingerprint(con: duckdb.DuckDBPyConnection, model: SqlModel, builds: dict[str, Build]) -> str:
    """A digest of the model's SQL and of everything it reads except the raw rows of its loads and the as-of date."""
    parts = [model.sql]
    if by_keys(model):
        parts += [changes_sql(model), _linked_claims_sql(model.path.parents[1])]
        view_input = _view_input_narrowing(model)
        if view_input is not None:
            parts.append(view_input[2])
    for table in model.inputs:
        parts.append(input_fingerprint(con, table, builds))
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def input_fingerprint(con: duckdb.DuckDBPyConnection, table: str, builds: dict[str, Build]) -> str:
    if table.startswith("raw.") or table == RUN_PARAMETERS:
        return table
    if table in builds:  # built incrementally: its own fingerprint (its loads are followed separately)
        return f"{table}: {builds[table].fingerprint}"
    upstream = _model_of(table)
    if upstream is not None and upstream.is_view:  # a view: its SQL and what it reads
        return "\n".join([f"{table}: {upstream.sql}",
                          *(input_fingerprint(con, t, builds) for t in upstream.inputs)])
    columns = con.execute(f"SELECT string_agg(column_name || ' ' || column_type, ', ') FROM "
                          f"(DESCRIBE {table})").fetchone()[0]
    (rows, digest) = con.execute(f"SELECT count(*), sum(hash(t)) FROM {table} AS t").fetchone()
    return f"{table}({columns}): {rows} rows, {digest}"
