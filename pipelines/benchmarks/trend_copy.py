"""The trend's copy of the lines a year's month ends read (pipelines/benchmarks/trends.py), in an in-memory table.

* Only the columns the SQL files read are copied, with the client and trajectory keys replaced by integers: their
  64-bit hash, after checking that it is one-to-one over the keys of the providers copied (else a number per
  distinct key), so every count and grouping is the same; no key leaves the scratch database. The copy is one pass
  that matches the trajectories active in the year by that hash too, with no join on the long text keys.
* The text columns whose values repeat (provider, prestatiecode, family, ...) are copied as ENUMs of their distinct
  values in sorted order (:func:`encode_repeating_text`): an ENUM compares, sorts and groups as its text does, but
  as the integers DuckDB stores it in. The month ends took a quarter less time at ten million lines.
"""

from __future__ import annotations

import re
from datetime import date

import duckdb

from pipelines.warehouse import with_incremental_memory_limit

# Keys replaced by integers in the scratch copy of core.claim_lines (text keys make grouping slower).
SURROGATE_KEYS = ("client_key", "trajectory_key")
# The integer of a key: DuckDB's 64-bit hash (a template for the SQL expression of the key column).
KEY_HASH = "hash({})"

# A text column is copied as an ENUM when a sample of core.claim_lines has at most one distinct value of it per
# this many rows (encode_repeating_text); the sample is 1% of DuckDB's vectors of 2,048 rows, with a fixed seed.
ROWS_PER_VALUE_TO_ENCODE = 20
ENCODING_SAMPLE = "USING SAMPLE 1 PERCENT (system, 1)"
# The condition that picks the lines of the providers passed as the list parameter $providers.
IN_PROVIDERS = "provider_agb IN (SELECT unnest(CAST($providers AS VARCHAR[])))"


def columns_read(con: duckdb.DuckDBPyConnection, table: str, sql_texts: list[str]) -> list[str]:
    """The columns of ``table`` whose names occur in any of the SQL texts (a superset of what they read)."""
    schema, name = table.split(".")
    text = "\n".join(sql_texts)
    return [column for (column,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "AND table_catalog = current_database() ORDER BY ordinal_position", [schema, name]).fetchall()
        if re.search(rf"\b{re.escape(column)}\b", text)]


def keys_hash_one_to_one(con: duckdb.DuckDBPyConnection, warehouse: str, providers: list[str] | None = None,
                         year: int | None = None) -> bool:
    """Whether ``KEY_HASH`` maps the distinct values of each surrogate key column of core.claim_lines (of the
    ``providers``' lines only, when given, and of the lines of ``year``, when given: those a copy takes) to distinct
    numbers (a 64-bit hash of a million keys almost always does: a collision has a chance in ~10^7). Reads the
    distinct keys once (~1 s at ten million lines, about half that for one year of two); on a collision the trend
    numbers the keys instead (exact, but ~4 s slower per year at ten million lines).

    The keys of one year's lines are all the keys a copy of that year has: the earlier lines it also takes belong to
    trajectories active in the year, and a trajectory key contains its client."""
    conditions, params = "", {}
    if providers is not None:
        conditions += f" AND {IN_PROVIDERS}"
        params["providers"] = providers
    if year is not None:
        conditions += " AND year = $year"
        params["year"] = year
    checks = [f"(SELECT count(*) = count(DISTINCT {KEY_HASH.format('k')}) FROM (SELECT DISTINCT {column} AS k "
              f'FROM "{warehouse}".core.claim_lines WHERE {column} IS NOT NULL{conditions}))'
              for column in SURROGATE_KEYS]
    return all(con.execute(f"SELECT {', '.join(checks)}", params).fetchone())


class KeyHashChecks:
    """:func:`keys_hash_one_to_one` for the providers and year of each copy, each checked once; a check over every
    provider's lines or every year's covers the copies of any of them. A full run's copies take one year's lines
    (the year of its month ends), a nightly run's the changed providers' lines only, whose keys are checked in a
    fraction of the ~1 s that every key takes."""

    def __init__(self, con: duckdb.DuckDBPyConnection, warehouse: str) -> None:
        self.con, self.warehouse = con, warehouse
        self.checked: dict[tuple[tuple[str, ...] | None, int | None], bool] = {}

    def __call__(self, providers: list[str] | None = None, year: int | None = None) -> bool:
        scope = (None if providers is None else tuple(providers), year)
        covering = {(None, None), (scope[0], None), (None, year), scope}
        if any(self.checked.get(wider) is True for wider in covering):
            return True
        if scope not in self.checked:
            self.checked[scope] = keys_hash_one_to_one(self.con, self.warehouse, providers, year)
        return self.checked[scope]


def encode_repeating_text(con: duckdb.DuckDBPyConnection, warehouse: str, columns: list[str]) -> dict[str, str]:
    """An ENUM type in the scratch core for each text column of core.claim_lines among ``columns`` (but the
    surrogate keys) whose values repeat; returns the type of each such column, for :func:`copy_year_lines`.

    The type's values are the column's distinct values in core.claim_lines, in sorted order, so that the copy
    compares, sorts and groups as the text does (in ``=``, ``<``, ``IN``, ``min``, ``arg_max``, also against a
    text constant that is not among them), while DuckDB works on integers. Whether the values repeat is judged on a
    sample (``ENCODING_SAMPLE``, a few hundredths of a second at ten million lines): at most one distinct value per
    ``ROWS_PER_VALUE_TO_ENCODE`` rows. A claim_id is not encoded (each value once: its type would be as long as the
    table); the choice only decides speed, as every value of an encoded column is in its type."""
    source = f'"{warehouse}".core.claim_lines'
    text = {column for (column,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? AND table_schema = 'core' "
        "AND table_name = 'claim_lines' AND data_type = 'VARCHAR'", [warehouse]).fetchall()}
    candidates = [c for c in columns if c in text and c not in SURROGATE_KEYS]
    if not candidates:
        return {}
    sampled, *distinct = con.execute(
        f"SELECT count(*), {', '.join(f'count(DISTINCT {c})' for c in candidates)} "
        f"FROM (SELECT {', '.join(candidates)} FROM {source} {ENCODING_SAMPLE})").fetchone()
    types = {}
    for column, values in zip(candidates, distinct):
        if values * ROWS_PER_VALUE_TO_ENCODE <= sampled:
            types[column] = f"scratch_core.trend_{column}"
            con.execute(f"CREATE TYPE {types[column]} AS ENUM "
                        f"(SELECT DISTINCT {column} FROM {source} WHERE {column} IS NOT NULL ORDER BY 1)")
    return types


def copy_year_lines(con: duckdb.DuckDBPyConnection, warehouse: str, columns: list[str], year: int,
                    last_end: date, hashed_keys: bool | KeyHashChecks = True, encoded: dict[str, str] | None = None,
                    providers: list[str] | None = None) -> None:
    """scratch_core.trend_lines: the lines year ``year``'s results up to ``last_end`` depend on (see above), of
    the ``providers`` only when given, with integer surrogate keys: ``KEY_HASH`` of the key when ``hashed_keys``
    (the caller checked that it is one-to-one: :func:`keys_hash_one_to_one`; or :class:`KeyHashChecks` checks it
    for these providers), else a number per distinct key; the ``encoded`` columns as their ENUM type
    (:func:`encode_repeating_text`)."""
    encoded = encoded or {}
    if isinstance(hashed_keys, KeyHashChecks):
        hashed_keys = hashed_keys(providers, year)
    if not hashed_keys:
        _copy_year_lines_numbered(con, warehouse, columns, year, last_end, encoded, providers)
        return

    def surrogate(column: str) -> str:  # NULL stays NULL (a line without a trajectory)
        return f"CASE WHEN {column} IS NOT NULL THEN {KEY_HASH.format(column)} END"

    selected = [f"{surrogate(c)} AS {c}" if c in SURROGATE_KEYS else _as_copied(c, encoded) for c in columns]
    # One pass, no join on the text keys: the active trajectories are matched on their hash as well.
    _pick_year_lines(con, "TABLE scratch_core.trend_lines", warehouse, selected, surrogate("trajectory_key"), year,
                     last_end, providers)


def _pick_year_lines(con: duckdb.DuckDBPyConnection, target: str, warehouse: str, selected: list[str],
                     trajectory: str, year: int, last_end: date, providers: list[str] | None) -> None:
    """CREATE ``target`` with the ``selected`` expressions of the lines year ``year``'s results up to ``last_end``
    depend on: the year's lines, and the earlier activity lines whose ``trajectory`` (an expression of the
    trajectory key) is that of an activity line of the year; of the ``providers`` only, when given."""
    source = f'"{warehouse}".core.claim_lines'
    params = {"year": year, "last_end": last_end}
    of_providers = ""
    if providers is not None:
        of_providers = f"AND {IN_PROVIDERS}"
        params["providers"] = providers
    sql = f"""CREATE OR REPLACE {target} AS
        SELECT {", ".join(selected)} FROM {source}
        WHERE service_date <= $last_end {of_providers}
          AND (year = $year OR (counts_as_activity AND year < $year AND {trajectory} IN (
              SELECT {trajectory} FROM {source}
              WHERE counts_as_activity AND year = $year AND service_date <= $last_end {of_providers})))"""
    if providers is None:
        con.execute(sql, params)
    else:  # the changed providers' lines, read from every block of the year: as an incremental build reads its input
        with_incremental_memory_limit(con, lambda: con.execute(sql, params))


def _as_copied(column: str, encoded: dict[str, str], table: str = "") -> str:
    """The expression that copies ``column`` (of ``table``, an alias or ''): cast to its ENUM when it is encoded."""
    value = f"{table}.{column}" if table else column
    return f"CAST({value} AS {encoded[column]}) AS {column}" if column in encoded else value


def _copy_year_lines_numbered(con: duckdb.DuckDBPyConnection, warehouse: str, columns: list[str], year: int,
                              last_end: date, encoded: dict[str, str], providers: list[str] | None) -> None:
    _pick_year_lines(con, "TEMP TABLE trend_picked", warehouse, columns, "trajectory_key", year, last_end, providers)
    selected = []
    joins = []
    for column in columns:
        if column in SURROGATE_KEYS:
            con.execute(f"CREATE OR REPLACE TEMP TABLE trend_{column}s AS SELECT {column}, row_number() OVER () "
                        f"AS number FROM (SELECT DISTINCT {column} FROM trend_picked WHERE {column} IS NOT NULL)")
            joins.append(f"LEFT JOIN trend_{column}s AS k_{column} ON k_{column}.{column} = l.{column}")
            selected.append(f"k_{column}.number AS {column}")
        else:
            selected.append(_as_copied(column, encoded, "l"))
    con.execute(f"CREATE OR REPLACE TABLE scratch_core.trend_lines AS SELECT {', '.join(selected)} "
                f"FROM trend_picked AS l {' '.join(joins)}")
    for table in ("trend_picked", *(f"trend_{c}s" for c in SURROGATE_KEYS if c in columns)):
        con.execute(f"DROP TABLE {table}")
