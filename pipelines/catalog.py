"""The warehouse as a documented public interface: table and column comments, and the data dictionary.

Table comments come from the header comment of each SQL file (or the docstring-like description of the few
tables Python writes); column comments from ``sql/columns.yml`` (a table created from commented DDL, such as
the quality results, may carry its own). They are applied with ``COMMENT ON`` before
every publish, and the data dictionary is generated from the warehouse catalogue itself
(``duckdb_tables()``/``duckdb_columns()``), so it describes exactly what a data engineer will find.
"""

from __future__ import annotations

import html
from pathlib import Path

import duckdb
import yaml

from pipelines.contract import KINDS, stored_table, typed_value_column
from pipelines.paths import SQL_DIR
from pipelines.sql_models import models

PUBLISHED_SCHEMAS = ("reference", "raw", "staging", "core", "marts", "quality")
COLUMNS_FILE = SQL_DIR / "columns.yml"


def column_descriptions() -> dict[str, dict]:
    """``schema.table`` -> {"description": ..., "columns": {column: description}}.

    From sql/columns.yml, plus each benchmark's own ``columns`` in sql/marts/<name>.yml, plus the scorecard's
    per-benchmark columns, which follow from the registry.
    """
    from pipelines.benchmarks.registry import benchmarks
    from pipelines.benchmarks.trend_inputs import described as trend_inputs_described

    described = yaml.safe_load(COLUMNS_FILE.read_text(encoding="utf-8")) or {}
    scorecard = described.setdefault("marts.provider_scorecard", {}).setdefault("columns", {})
    for b in benchmarks():
        described.setdefault(b.table, {})["columns"] = b.columns
        scorecard[f"{b.name}_value"] = f"{b.title}: {b.value_column} from {b.table}"
        scorecard[f"{b.name}_meets_norm"] = f"{b.title}: meets_norm from {b.table} ({b.norm})"
    described.update(trend_inputs_described(benchmarks(), described))
    described.update(_stored_raw_described(described))
    return described


def _stored_raw_described(described: dict[str, dict]) -> dict[str, dict]:
    """Entries for raw.<kind>_stored, from those of the view raw.<kind> over it (sql/columns.yml)."""
    out = {}
    for kind in KINDS:
        view = described.get(f"raw.{kind.name}", {})
        typed = dict(kind.typed_columns)
        columns = {}
        for column, text in view.get("columns", {}).items():
            columns[column] = text
            if column in typed:
                columns[column] = f"{text} Null here when the file delivered it typed (then in {column}_value)."
        for column, sql_type in kind.typed_columns:
            columns[typed_value_column(column)] = (
                f"{column} as a Parquet file delivered it, in its contract type ({sql_type}); null when it was "
                f"delivered as text (then in {column}) or is empty.")
        out[stored_table(kind)] = {
            "description": (
                f"{stored_table(kind)}: how the rows of raw.{kind.name} are stored; raw.{kind.name} is a view over "
                "it that shows every value as text. A value that a Parquet file delivered in its contract type "
                "(a date, a number, a yes/no) is kept in that type in <column>_value, with <column> null; text "
                "values (CSV files, Parquet text columns) are in <column>. Staging types from both."
                + (" Contains per-client rows: do not export." if kind.name == "claims" else "")),
            "columns": columns,
        }
    return out


def table_descriptions() -> dict[str, str]:
    out = {}
    for schema in ("staging", "core", "marts", "quality"):
        for model in models(schema):
            out[model.table] = model.description.replace("\n", " ")
    for table, spec in column_descriptions().items():
        if spec.get("description"):
            out[table] = spec["description"].strip()
    return out


def published_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
        f"AND schema_name IN ({', '.join('?' for _ in PUBLISHED_SCHEMAS)}) AND NOT temporary "
        "UNION SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = current_database() "
        f"AND schema_name IN ({', '.join('?' for _ in PUBLISHED_SCHEMAS)}) AND NOT internal "
        "ORDER BY 1, 2",
        [*PUBLISHED_SCHEMAS, *PUBLISHED_SCHEMAS],
    ).fetchall()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def apply_comments(con: duckdb.DuckDBPyConnection) -> list[str]:
    """COMMENT ON every published table and column that has a description. Returns columns without one.

    Only comments that differ are written: a table brought up to date keeps its comments from the run that built it,
    and writing all ~450 again cost ~0.4 s of every run."""
    tables = table_descriptions()
    columns = column_descriptions()
    relations, column_comments = catalogue_comments(con)
    undocumented = []
    for schema, table in published_tables(con):
        name = f"{schema}.{table}"
        kind, comment = relations[(schema, table)]
        if name in tables:
            comment_if_different(con, f"{kind} {name}", tables[name], comment)
        described = (columns.get(name) or {}).get("columns") or {}
        for column, existing in column_comments.get((schema, table), []):
            if column in described:
                comment_if_different(con, f'COLUMN {name}."{column}"', str(described[column]).strip(), existing)
            elif not existing:  # tables created from commented DDL (quality results) document themselves
                undocumented.append(f"{name}.{column}")
    return undocumented


def catalogue_comments(con: duckdb.DuckDBPyConnection, schema: str | None = None
                       ) -> tuple[dict[tuple[str, str], tuple[str, str | None]],
                                  dict[tuple[str, str], list[tuple[str, str | None]]]]:
    """The comments in the warehouse's catalogue (of ``schema``, or all): (schema, table) -> (TABLE or VIEW, its
    comment), and (schema, table) -> [(column, its comment)] in column order."""
    where = "database_name = current_database()" + (" AND schema_name = $schema" if schema else "")
    params = {"schema": schema} if schema else {}
    relations = {(s, t): (kind, comment) for s, t, kind, comment in con.execute(
        f"SELECT schema_name, table_name, 'TABLE', comment FROM duckdb_tables() WHERE {where} "
        f"UNION ALL SELECT schema_name, view_name, 'VIEW', comment FROM duckdb_views() WHERE {where} AND NOT internal",
        params).fetchall()}
    columns: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    for s, t, column, comment in con.execute(
            f"SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() WHERE {where} "
            "ORDER BY schema_name, table_name, column_index", params).fetchall():
        columns.setdefault((s, t), []).append((column, comment))
    return relations, columns


def comment_if_different(con: duckdb.DuckDBPyConnection, target: str, wanted: str, existing: str | None) -> None:
    """COMMENT ON ``target`` (``TABLE x.y``, ``VIEW x.y``, ``COLUMN x.y."c"``) unless it has that comment already."""
    if (existing or "") != wanted:
        con.execute(f"COMMENT ON {target} IS {_literal(wanted)}")


def dictionary_markdown(con: duckdb.DuckDBPyConnection) -> str:
    """The data dictionary, read back from the catalogue."""
    version = duckdb.__version__
    lines = ["# Warehouse data dictionary", "",
             f"Generated from the warehouse catalogue. Open the file with a DuckDB {version.rsplit('.', 1)[0]}.x "
             f"client (written by DuckDB {version}), read-only.", ""]
    for schema, table in published_tables(con):
        (comment,) = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
            "UNION ALL SELECT comment FROM duckdb_views() WHERE schema_name = ? AND view_name = ? LIMIT 1",
            [schema, table, schema, table]).fetchone() or ("",)
        lines += [f"## {schema}.{table}", "", (comment or "").strip(), "", "| column | type | description |",
                  "|---|---|---|"]
        for column, data_type, col_comment in con.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
            "ORDER BY column_index", [schema, table]
        ).fetchall():
            lines.append(f"| `{column}` | {data_type} | {(col_comment or '').replace('|', '/').strip()} |")
        lines.append("")
    return "\n".join(lines)


def dictionary_html(markdown_text: str) -> str:
    """A plain, offline HTML rendering of the dictionary (headings and tables only)."""
    body = []
    in_table = False
    for line in markdown_text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [html.escape(c.strip().strip("`")) for c in line.strip("|").split("|")]
            if not in_table:
                body.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in cells) + "</tr>")
                in_table = True
            else:
                body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            continue
        if line.startswith("|---"):
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("## "):
            body.append(f"<h2 id='{html.escape(line[3:])}'>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        body.append("</table>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eee}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Warehouse data dictionary</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def write_dictionary(con: duckdb.DuckDBPyConnection, data_dir: Path) -> Path:
    target = data_dir / "data_dictionary.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(dictionary_html(dictionary_markdown(con)), encoding="utf-8")
    tmp.replace(target)
    return target
