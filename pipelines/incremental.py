"""Incremental builds: a nightly run brings the big staging tables up to date with the files it loaded, instead of
rewriting ten million rows that did not change.

An SQL file opts in with a line in its header comment, which states what each of its rows depends on:

* ``-- materialise: incremental by load_id``: each row is computed from one raw row (``staging.claims_typed``).
  A run adds the rows of the loads the table does not have yet.
* ``-- materialise: incremental by claim_id``: each row depends only on input rows with the same claim_id
  (``staging.claim_lines``: the deliveries of a claim_id decide which copy is used). A run deletes the rows of
  every claim_id that occurs in a new load and computes them again from all their deliveries: the file's own
  SQL, with its input narrowed to those claim_ids.

Raw tables only grow, one load at a time, and a load's rows never change; what else the rows depend on is
summarised in a fingerprint: the SQL text, the contents of small inputs (e.g. ``reference.prestatiecodes``) and
the fingerprint of an input that is itself built incrementally. A new fingerprint, a table that does not exist
yet, or a load that has left raw means a full rebuild. ``quality.model_builds`` records per table the
fingerprint, the loads it reflects and how the last build went; it is written in the same transaction as the
rows, so a run that stops half-way leaves both as they were and a rerun never adds a load twice.
"""

from __future__ import annotations

import hashlib
import re

import duckdb

from pipelines.sql_models import SqlModel

MODEL_BUILDS_DDL = """
CREATE TABLE IF NOT EXISTS quality.model_builds (
    model        VARCHAR PRIMARY KEY,
    fingerprint  VARCHAR NOT NULL,
    loads        INTEGER[] NOT NULL,
    built_at     TIMESTAMP NOT NULL,
    how          VARCHAR NOT NULL,
    loads_added  INTEGER NOT NULL,
    rows_added   BIGINT NOT NULL
)
"""
REBUILT = "rebuilt"
ADDED = "added new loads"


def materialise_incremental(con: duckdb.DuckDBPyConnection, model: SqlModel) -> int:
    """Bring the model's table up to date (see the module docstring); returns its row count."""
    con.execute(MODEL_BUILDS_DDL)
    builds = _recorded_builds(con)
    fingerprint = _fingerprint(con, model, builds)
    loaded = _loads_of(con, model, builds)
    previous = builds.get(model.table)
    is_table = _is_table(con, model)
    can_add = previous is not None and previous[0] == fingerprint and is_table and set(previous[1]) <= set(loaded)
    con.execute("BEGIN TRANSACTION")
    try:
        if can_add:
            new = [load_id for load_id in loaded if load_id not in set(previous[1])]
            added = _add_loads(con, model, new, builds) if new else 0
            how, loads_added = ADDED, len(new)
        else:
            if not is_table:
                con.execute(f"DROP VIEW IF EXISTS {model.table}")  # left by a build as a view
            con.execute(f"CREATE OR REPLACE TABLE {model.table} AS\n{model.sql}")
            added = con.execute(f"SELECT count(*) FROM {model.table}").fetchone()[0]
            how, loads_added = REBUILT, len(loaded)
        con.execute("DELETE FROM quality.model_builds WHERE model = ?", [model.table])
        con.execute("INSERT INTO quality.model_builds VALUES (?, ?, CAST(? AS INTEGER[]), now()::TIMESTAMP, ?, ?, ?)",
                    [model.table, fingerprint, loaded, how, loads_added, added])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return con.execute(f"SELECT count(*) FROM {model.table}").fetchone()[0]


def _add_loads(con: duckdb.DuckDBPyConnection, model: SqlModel, new: list[int],
               builds: dict[str, tuple[str, list[int]]]) -> int:
    """Write what the loads ``new`` change; returns the rows inserted."""
    listed = ", ".join(map(str, new))
    if model.incremental_key == "load_id":
        # a constant list, so that the filter reaches the scan of raw (which then skips the other loads)
        return con.execute(f"INSERT INTO {model.table} SELECT * FROM (\n{model.sql}\n) AS built "
                           f"WHERE built.load_id IN ({listed})").fetchone()[0]
    source = _incremental_input(model, builds)
    con.execute(f"CREATE OR REPLACE TEMP TABLE changed_keys AS SELECT DISTINCT claim_id FROM {source} "
                f"WHERE load_id IN ({listed})")
    con.execute(f"CREATE OR REPLACE TEMP VIEW changed_input AS SELECT * FROM {source} "
                "WHERE claim_id IN (SELECT claim_id FROM changed_keys)")
    narrowed = re.sub(rf"\b{re.escape(source)}\b", "changed_input", model.sql)
    con.execute(f"DELETE FROM {model.table} WHERE claim_id IN (SELECT claim_id FROM changed_keys)")
    added = con.execute(f"INSERT INTO {model.table} SELECT * FROM (\n{narrowed}\n) AS built").fetchone()[0]
    con.execute("DROP VIEW changed_input")
    con.execute("DROP TABLE changed_keys")
    return added


def _incremental_input(model: SqlModel, builds: dict[str, tuple[str, list[int]]]) -> str:
    """The input a claim_id-incremental model narrows: its one input that is itself built incrementally."""
    sources = [table for table in model.inputs if table in builds]
    if len(sources) != 1:
        raise ValueError(f"{model.path}: 'incremental by claim_id' needs exactly one input that is built "
                         f"incrementally (by load_id), found {sources or 'none'}")
    return sources[0]


def _loads_of(con: duckdb.DuckDBPyConnection, model: SqlModel, builds: dict[str, tuple[str, list[int]]]) -> list[int]:
    """The loads the model's rows come from: loaded files of the raw tables it reads (directly or through its
    incremental input)."""
    if model.incremental_key == "claim_id":
        return sorted(builds[_incremental_input(model, builds)][1])
    kinds = [t.split(".")[1] for t in model.inputs if t.startswith("raw.") and t != "raw.load_manifest"]
    return [load_id for (load_id,) in con.execute(
        "SELECT load_id FROM raw.load_manifest WHERE status = 'loaded' AND rows_loaded > 0 "
        "AND list_contains(?, kind) ORDER BY load_id", [kinds]).fetchall()]


def _recorded_builds(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, list[int]]]:
    return {model: (fingerprint, list(loads)) for model, fingerprint, loads in
            con.execute("SELECT model, fingerprint, loads FROM quality.model_builds").fetchall()}


def _is_table(con: duckdb.DuckDBPyConnection, model: SqlModel) -> bool:
    return con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = ? "
        "AND table_name = ?", [model.schema, model.name]).fetchone()[0] > 0


def _fingerprint(con: duckdb.DuckDBPyConnection, model: SqlModel, builds: dict[str, tuple[str, list[int]]]) -> str:
    """A digest of the model's SQL and of everything it reads except the raw rows of its loads."""
    parts = [model.sql]
    for table in model.inputs:
        if table.startswith("raw."):
            continue
        if table in builds:  # an incremental input: its own fingerprint (its loads are followed separately)
            parts.append(f"{table}: {builds[table][0]}")
            continue
        columns = con.execute(f"SELECT string_agg(column_name || ' ' || column_type, ', ') FROM "
                              f"(DESCRIBE {table})").fetchone()[0]
        (rows, digest) = con.execute(f"SELECT count(*), sum(hash(t)) FROM {table} AS t").fetchone()
        parts.append(f"{table}({columns}): {rows} rows, {digest}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()
