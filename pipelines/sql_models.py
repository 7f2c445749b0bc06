"""SQL models: each file ``sql/<schema>/<table>.sql`` is one SELECT statement that defines one table.

The runner wraps it in ``CREATE OR REPLACE TABLE <schema>.<table> AS ...``; the files themselves stay plain
SELECTs so that a data engineer can run them by hand and another engine can run them too. A file whose leading
comment block has the line ``-- materialise: view`` becomes a view instead: for a step that is cheap to
compute but costly to store (writing ten million wide rows takes longer than recomputing them once). A file with
``-- materialise: incremental by ...`` is brought up to date with what newly loaded files change instead of being
rebuilt (pipelines/incremental.py). ``-- store uncompressed: <columns>`` stores those columns of the table
without DuckDB's string compression: for text that is unique on nearly every row (a claim_id, a trajectory key),
compressing takes about 1 s per ten million values and saves little, while the table is written in full by every
rebuild (docs/performance-history.md, twelfth round). A model's inputs are the ``schema.table`` names
it mentions, so adding a file is all it takes to add a table (and its asset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.paths import SQL_DIR
from pipelines.warehouse import SCHEMAS, transaction

_TABLE_REFERENCE = re.compile(r"\b(" + "|".join(SCHEMAS) + r")\.([a-z_][a-z0-9_]*)\b", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*")
_VIEW_MARKER = "materialise: view"
_INCREMENTAL_MARKER = re.compile(r"^materialise: incremental by (.+)$")
_UNCOMPRESSED_MARKER = re.compile(r"^store uncompressed: (.+)$")


@dataclass(frozen=True)
class SqlModel:
    schema: str
    name: str
    path: Path

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8").strip().rstrip(";")

    @property
    def description(self) -> str:
        """The leading comment block, which says what the table holds."""
        lines = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("--"):
                break
            lines.append(line[2:].strip())
        return "\n".join(lines)

    @property
    def is_view(self) -> bool:
        return any(line.strip() == _VIEW_MARKER for line in self.description.splitlines())

    def _marked(self, marker: re.Pattern) -> str | None:
        """What follows ``marker`` on a line of the file's header, or None."""
        for line in self.description.splitlines():
            match = marker.match(line.strip())
            if match:
                return match.group(1)
        return None

    @property
    def incremental_key(self) -> str | None:
        """What follows ``-- materialise: incremental by`` in the file's header (pipelines/incremental.py)."""
        return self._marked(_INCREMENTAL_MARKER)

    @property
    def uncompressed_columns(self) -> tuple[str, ...]:
        """The columns after ``-- store uncompressed:`` in the file's header (:func:`create`)."""
        columns = self._marked(_UNCOMPRESSED_MARKER)
        return tuple(c.strip() for c in columns.split(",")) if columns else ()

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(sorted(tables_read(self.path.read_text(encoding="utf-8")) - {self.table}))


def tables_read(sql: str) -> set[str]:
    """The ``schema.table`` names of the warehouse that ``sql`` names outside its comments."""
    code = _COMMENT.sub("", sql)
    return {f"{s.lower()}.{t.lower()}" for s, t in _TABLE_REFERENCE.findall(code)}


def models(schema: str, sql_dir: Path = SQL_DIR) -> list[SqlModel]:
    return [SqlModel(schema, p.stem, p) for p in sorted((sql_dir / schema).glob("*.sql"))]


def model_of(table: str, sql_dir: Path = SQL_DIR) -> SqlModel | None:
    """The model of ``schema.table`` (sql/<schema>/<table>.sql), or None when there is no such file."""
    schema, name = table.split(".")
    path = sql_dir / schema / f"{name}.sql"
    return SqlModel(schema, name, path) if path.is_file() else None


def in_dependency_order(items: list[SqlModel]) -> list[SqlModel]:
    """Models of one schema ordered so that each comes after the models it reads."""
    by_table = {m.table: m for m in items}
    ordered: list[SqlModel] = []
    visiting: set[str] = set()

    def visit(model: SqlModel) -> None:
        if model in ordered:
            return
        if model.table in visiting:
            raise ValueError(f"SQL models read each other in a cycle at {model.path}")
        visiting.add(model.table)
        for dep in model.inputs:
            if dep in by_table:
                visit(by_table[dep])
        visiting.discard(model.table)
        ordered.append(model)

    for model in items:
        visit(model)
    return ordered


def materialise(con: duckdb.DuckDBPyConnection, model: SqlModel, as_view: bool | None = None,
                full_rebuild: bool = False) -> int | None:
    """(Re)build the model's table or view (``as_view``: default from the file's marker), replacing a relation
    of the other kind left by an earlier build; an incremental model is brought up to date unless
    ``full_rebuild``. Returns the table's row count; None for a view (counting would compute it)."""
    view = model.is_view if as_view is None else as_view
    if model.incremental_key and not view:
        from pipelines.incremental import materialise_incremental

        return materialise_incremental(con, model, full_rebuild)
    if view or not model.uncompressed_columns:
        create(con, model, view)
    else:
        with transaction(con):  # create() then declares and fills the table in two statements
            create(con, model, view)
    if view:
        return None
    return con.execute(f"SELECT count(*) FROM {model.table}").fetchone()[0]


def relation_kind(con: duckdb.DuckDBPyConnection, model: SqlModel) -> str | None:
    """'VIEW' or 'BASE TABLE' for the model's relation in the current database; None when there is none."""
    found = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
        "AND table_catalog = current_database()", [model.schema, model.name]
    ).fetchone()
    return found[0] if found else None


def tables_with_column(con: duckdb.DuckDBPyConnection, column: str) -> set[str]:
    """The ``schema.table`` names of the current database's tables and views that have a column ``column``."""
    return {f"{schema}.{table}" for schema, table in con.execute(
        "SELECT table_schema, table_name FROM information_schema.columns "
        "WHERE column_name = ? AND table_catalog = current_database()", [column]).fetchall()}


def create(con: duckdb.DuckDBPyConnection, model: SqlModel, view: bool) -> None:
    """CREATE OR REPLACE the model's view or table from its SQL, dropping a relation of the other kind first."""
    existing = relation_kind(con, model)
    if existing and (existing == "VIEW") != view:
        con.execute(f"DROP {'VIEW' if existing == 'VIEW' else 'TABLE'} {model.table}")
    if view or not model.uncompressed_columns:
        con.execute(f"CREATE OR REPLACE {'VIEW' if view else 'TABLE'} {model.table} AS\n{model.sql}")
        return
    # CREATE TABLE ... AS cannot name a column's compression: declare the columns the SELECT yields, then fill them.
    # (Callers run this in a transaction, so readers never see the empty table.)
    declared = ", ".join(
        f'"{name}" {sql_type}' + (" USING COMPRESSION uncompressed" if name in model.uncompressed_columns else "")
        for name, sql_type, *_ in con.execute(f"DESCRIBE {model.sql}").fetchall())
    con.execute(f"CREATE OR REPLACE TABLE {model.table} ({declared})")
    con.execute(f"INSERT INTO {model.table}\n{model.sql}")


def remap_schemas(sql: str, mapping: dict[str, str]) -> str:
    """The same SQL reading (and writing) other schemas, e.g. ``{"core": "trend_core"}``.

    Used to run the unchanged model files against a different as-of date in scratch schemas; values are never
    pasted into SQL this way, only schema names from the code.
    """

    def swap(match: re.Match) -> str:
        schema, table = match.group(1), match.group(2)
        return f"{mapping.get(schema.lower(), schema)}.{table}"

    return _TABLE_REFERENCE.sub(swap, sql)
