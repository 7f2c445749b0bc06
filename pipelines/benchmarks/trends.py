"""``marts.benchmark_trends``: every benchmark's year-to-date value at each month end, for trend charts.

For a month end M the benchmarks are exactly what a run with ``--as-of M`` would publish: the core and mart
SQL files run unchanged in scratch databases (pipelines/benchmarks/scratch.py) over ``core.claim_lines`` up to
M. That is valid because nothing in core.claim_lines depends on later lines (trajectory numbering and ZVT
carry-forward look only backwards; netting is as-of independent). The trend covers the last ``months`` month
ends up to the as-of date (the as-of date itself stands for its month, and is this run's published results).

What keeps it fast (a month end costs a few seconds at ten million lines, not a full rebuild):

* Only M's year is kept, and every benchmark is per provider and year, so the scratch run needs only the lines
  that year's results depend on: the year's lines up to M, and the earlier activity lines of trajectories active
  in the year (a trajectory's kind and last date count in its casemix). Earlier years' partial rows that the
  scratch run also produces are dropped.
* Those lines are copied once per year into an in-memory table with only the columns the SQL files read, and
  with the client and trajectory keys replaced by integers: their 64-bit hash, after checking that it is
  one-to-one over core.claim_lines (else a number per distinct key), so every count and grouping is the same;
  no key leaves the scratch database. The copy is one pass that matches the active trajectories by that hash
  too, with no join on the long text keys. Each month end then reads that table up to M.
* The text columns whose values repeat (provider, prestatiecode, family, ...) are copied as ENUMs of their distinct
  values in sorted order (:func:`encode_repeating_text`): an ENUM compares, sorts and groups as its text does, but
  as the integers DuckDB stores it in. The month ends took a quarter less time at ten million lines.
* Only the models whose rows span years read the earlier lines; a model whose table has a ``year`` column (per
  provider and year, as every mart and most core tables) reads the year's lines alone, as its year-M rows come
  from them. The earlier lines of active trajectories are ~45% of what a January month end would read otherwise;
  ``core.trajectories`` (a trajectory has no year) is the model that needs them.
* A nightly run keeps the rows of the month ends before the earliest service date its new files change
  (sql/changes/marts.benchmark_trends.sql), when the SQL, the policy parameters, the reference tables and the way
  core.claim_lines was built are unchanged (a fingerprint in quality.model_builds): such a month end reads only
  lines that did not change.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from itertools import groupby

import duckdb

from pipelines.benchmarks.registry import Benchmark
from pipelines.incremental import (MODEL_BUILDS_DDL, REBUILT, Build, changes_sql_for, create_changed_claims,
                                   drop_changed_claims, input_fingerprint, loads_reflected_by, record_build,
                                   recorded_builds)
from pipelines.benchmarks.scratch import rebuild, results_sql_in_scratch, scratch_databases
from pipelines.sql_models import SqlModel, in_dependency_order, models

# Core tables the trend takes as they are (claim_lines filtered to the month end) instead of rebuilding.
TAKEN_AS_IS = {"claim_lines", "run_parameters", "policy_parameters"}
# Keys replaced by integers in the scratch copy of core.claim_lines (text keys make grouping slower).
SURROGATE_KEYS = ("client_key", "trajectory_key")
# The integer of a key: DuckDB's 64-bit hash (a template for the SQL expression of the key column).
KEY_HASH = "hash({})"

# A text column is copied as an ENUM when a sample of core.claim_lines has at most one distinct value of it per
# this many rows (encode_repeating_text); the sample is 1% of DuckDB's vectors of 2,048 rows, with a fixed seed.
ROWS_PER_VALUE_TO_ENCODE = 20
ENCODING_SAMPLE = "USING SAMPLE 1 PERCENT (system, 1)"

# What the models whose rows span years read in a month end's scratch run (see the module docstring).
ACROSS_YEARS_INPUT = "scratch_core.claim_lines_across_years"

TRENDS_TABLE = "marts.benchmark_trends"
TRENDS_DDL = """
CREATE OR REPLACE TABLE marts.benchmark_trends (
    benchmark VARCHAR, provider_agb VARCHAR, year INTEGER, month INTEGER, period_end DATE,
    numerator DOUBLE, denominator DOUBLE, value DOUBLE, threshold DOUBLE, meets_norm BOOLEAN, volume DOUBLE
)
"""


def month_ends(as_of: date, months: int) -> list[date]:
    """The last ``months`` month ends up to ``as_of``, oldest first; the as-of month ends at the as-of date."""
    ends = [as_of]
    cursor = as_of.replace(day=1) - timedelta(days=1)
    while len(ends) < months:
        ends.append(cursor)
        cursor = cursor.replace(day=1) - timedelta(days=1)
    return sorted(ends)


def columns_read(con: duckdb.DuckDBPyConnection, table: str, sql_texts: list[str]) -> list[str]:
    """The columns of ``table`` whose names occur in any of the SQL texts (a superset of what they read)."""
    schema, name = table.split(".")
    text = "\n".join(sql_texts)
    return [column for (column,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "AND table_catalog = current_database() ORDER BY ordinal_position", [schema, name]).fetchall()
        if re.search(rf"\b{re.escape(column)}\b", text)]


def spanning_years(con: duckdb.DuckDBPyConnection, sql_models: list[SqlModel]) -> set[str]:
    """The models whose rows span years: their table in the warehouse has no ``year`` column (or is not built
    yet, to be safe). They read every line the trend picked; the others read the month end's year alone."""
    with_year = {f"{schema}.{table}" for schema, table in con.execute(
        "SELECT table_schema, table_name FROM information_schema.columns "
        "WHERE column_name = 'year' AND table_catalog = current_database()").fetchall()}
    return {m.table for m in sql_models if m.table not in with_year}


def _reading_across_years(scratch_sql: str) -> str:
    return re.sub(r"\bscratch_core\.claim_lines\b", ACROSS_YEARS_INPUT, scratch_sql)


def keys_hash_one_to_one(con: duckdb.DuckDBPyConnection, warehouse: str) -> bool:
    """Whether ``KEY_HASH`` maps the distinct values of each surrogate key column of core.claim_lines to distinct
    numbers (a 64-bit hash of a million keys almost always does: a collision has a chance in ~10^7). Reads the
    distinct keys once (~1 s at ten million lines); on a collision the trend numbers the keys instead (exact, but
    ~4 s slower per year at ten million lines)."""
    checks = [f"(SELECT count(*) = count(DISTINCT {KEY_HASH.format('k')}) FROM (SELECT DISTINCT {column} AS k "
              f'FROM "{warehouse}".core.claim_lines WHERE {column} IS NOT NULL))' for column in SURROGATE_KEYS]
    return all(con.execute(f"SELECT {', '.join(checks)}").fetchone())


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
                    last_end: date, hashed_keys: bool = True, encoded: dict[str, str] | None = None) -> None:
    """scratch_core.trend_lines: the lines year ``year``'s results up to ``last_end`` depend on (see above), with
    integer surrogate keys: ``KEY_HASH`` of the key when ``hashed_keys`` (the caller checked that it is one-to-one:
    :func:`keys_hash_one_to_one`), else a number per distinct key; the ``encoded`` columns as their ENUM type
    (:func:`encode_repeating_text`)."""
    encoded = encoded or {}
    if not hashed_keys:
        _copy_year_lines_numbered(con, warehouse, columns, year, last_end, encoded)
        return

    def surrogate(column: str) -> str:  # NULL stays NULL (a line without a trajectory)
        return f"CASE WHEN {column} IS NOT NULL THEN {KEY_HASH.format(column)} END"

    selected = [f"{surrogate(c)} AS {c}" if c in SURROGATE_KEYS else _as_copied(c, encoded) for c in columns]
    # One pass, no join on the text keys: the active trajectories are matched on their hash as well.
    _pick_year_lines(con, "TABLE scratch_core.trend_lines", warehouse, selected, surrogate("trajectory_key"), year,
                     last_end)


def _pick_year_lines(con: duckdb.DuckDBPyConnection, target: str, warehouse: str, selected: list[str],
                     trajectory: str, year: int, last_end: date) -> None:
    """CREATE ``target`` with the ``selected`` expressions of the lines year ``year``'s results up to ``last_end``
    depend on: the year's lines, and the earlier activity lines whose ``trajectory`` (an expression of the
    trajectory key) is that of an activity line of the year."""
    source = f'"{warehouse}".core.claim_lines'
    con.execute(
        f"""CREATE OR REPLACE {target} AS
        SELECT {", ".join(selected)} FROM {source}
        WHERE service_date <= $last_end
          AND (year = $year OR (counts_as_activity AND year < $year AND {trajectory} IN (
              SELECT {trajectory} FROM {source}
              WHERE counts_as_activity AND year = $year AND service_date <= $last_end)))""",
        {"year": year, "last_end": last_end},
    )


def _as_copied(column: str, encoded: dict[str, str], table: str = "") -> str:
    """The expression that copies ``column`` (of ``table``, an alias or ''): cast to its ENUM when it is encoded."""
    value = f"{table}.{column}" if table else column
    return f"CAST({value} AS {encoded[column]}) AS {column}" if column in encoded else value


def _copy_year_lines_numbered(con: duckdb.DuckDBPyConnection, warehouse: str, columns: list[str], year: int,
                              last_end: date, encoded: dict[str, str]) -> None:
    _pick_year_lines(con, "TEMP TABLE trend_picked", warehouse, columns, "trajectory_key", year, last_end)
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


def build_trends(con: duckdb.DuckDBPyConnection, items: tuple[Benchmark, ...], months: int,
                 full_rebuild: bool = False) -> int:
    (as_of,) = con.execute("SELECT as_of FROM core.run_parameters").fetchone()
    con.execute(MODEL_BUILDS_DDL)
    core_models: list[SqlModel] = [m for m in in_dependency_order(models("core")) if m.name not in TAKEN_AS_IS]
    sql_texts = [m.sql for m in core_models] + [b.model.sql for b in items] + [results_sql_in_scratch(items)]
    ends = month_ends(as_of, months)
    builds = recorded_builds(con)
    # the loads core.claim_lines reflects (not the manifest's: core may not have taken in the newest load yet)
    build = Build(_fingerprint(con, core_models, items, sql_texts, builds),
                  loads_reflected_by("core.claim_lines", builds, con), as_of)
    previous = builds.get(TRENDS_TABLE)
    kept = [] if full_rebuild else _reusable_month_ends(con, build, previous, ends)
    kept_rows = _recreate_keeping(con, kept)
    columns = columns_read(con, "core.claim_lines", sql_texts)
    # at the as-of date itself the trend is what this run publishes: no need to recompute it
    con.execute(
        """INSERT INTO marts.benchmark_trends
        SELECT benchmark, provider_agb, year, $month, CAST($as_of AS DATE), numerator, denominator,
               value, threshold, meets_norm, volume
        FROM marts.benchmark_results WHERE year = $year""",
        {"month": as_of.month, "as_of": as_of, "year": as_of.year},
    )
    earlier = [end for end in ends if end != as_of and end not in kept]
    across_years = spanning_years(con, [*core_models, *(b.model for b in items)])
    with scratch_databases(con) as warehouse:
        con.execute("CREATE TABLE scratch_core.policy_parameters AS SELECT * FROM core.policy_parameters")
        hashed_keys = bool(earlier) and keys_hash_one_to_one(con, warehouse)
        encoded = encode_repeating_text(con, warehouse, columns) if earlier else {}
        for year, year_ends in groupby(earlier, key=lambda end: end.year):
            year_ends = list(year_ends)
            copy_year_lines(con, warehouse, columns, year, max(year_ends), hashed_keys, encoded)
            for period_end in year_ends:
                con.execute(
                    "CREATE OR REPLACE TABLE scratch_core.run_parameters AS "
                    "SELECT CAST($period_end AS DATE) AS as_of, policy, computed_at, dagster_run_id "
                    "FROM core.run_parameters",
                    {"period_end": period_end},
                )
                con.execute(f"CREATE OR REPLACE VIEW {ACROSS_YEARS_INPUT} AS SELECT l.* "
                            "FROM scratch_core.trend_lines AS l, scratch_core.run_parameters AS p "
                            "WHERE l.service_date <= p.as_of")
                con.execute(f"CREATE OR REPLACE VIEW scratch_core.claim_lines AS SELECT * FROM {ACROSS_YEARS_INPUT} "
                            f"WHERE year = {year}")
                rebuild(con, core_models, items, rewrite=lambda model, sql: (
                    _reading_across_years(sql) if model.table in across_years else sql))
                con.execute(
                    f"""INSERT INTO marts.benchmark_trends
                    SELECT benchmark, provider_agb, year, $month, CAST($period_end AS DATE), numerator,
                           denominator, value, threshold, meets_norm, volume
                    FROM ({results_sql_in_scratch(items)}) AS r
                    WHERE r.year = $year""",
                    {"month": period_end.month, "period_end": period_end, "year": year},
                )
            con.execute("DROP VIEW scratch_core.claim_lines")
            con.execute(f"DROP VIEW {ACROSS_YEARS_INPUT}")
            con.execute("DROP TABLE scratch_core.trend_lines")
    rows = con.execute("SELECT count(*) FROM marts.benchmark_trends").fetchone()[0]
    new_loads = len(set(build.loads) - set(previous.loads)) if kept else len(build.loads)
    record_build(con, TRENDS_TABLE, build, f"kept {len(kept)} month ends" if kept else REBUILT, new_loads,
                 rows - kept_rows)
    return rows


def _recreate_keeping(con: duckdb.DuckDBPyConnection, kept: list[date]) -> int:
    """An empty marts.benchmark_trends but for the rows of the ``kept`` month ends; returns their number."""
    if kept:
        con.execute("CREATE OR REPLACE TEMP TABLE trends_kept AS SELECT * FROM marts.benchmark_trends "
                    "WHERE period_end IN (SELECT unnest(CAST(? AS DATE[])))", [kept])
    # until this build is recorded at the end, a run that stops half-way leaves no record to reuse rows from
    con.execute("DELETE FROM quality.model_builds WHERE model = ?", [TRENDS_TABLE])
    con.execute(TRENDS_DDL)
    if kept:
        con.execute("INSERT INTO marts.benchmark_trends SELECT * FROM trends_kept")
        con.execute("DROP TABLE trends_kept")
    return con.execute("SELECT count(*) FROM marts.benchmark_trends").fetchone()[0]


def _fingerprint(con: duckdb.DuckDBPyConnection, core_models: list[SqlModel], items: tuple[Benchmark, ...],
                 sql_texts: list[str], builds: dict[str, Build]) -> str:
    """What every month end's values depend on besides the lines: the SQL, the policy parameters, the reference
    tables, and how core.claim_lines was built (its SQL and inputs)."""
    computed = {m.table for m in core_models} | {b.table for b in items} | {f"core.{t}" for t in TAKEN_AS_IS}
    inputs = sorted({t for m in [*core_models, *(b.model for b in items)] for t in m.inputs} - computed)
    parts = [*sql_texts, *(input_fingerprint(con, t, builds) for t in [*inputs, "core.policy_parameters"]),
             input_fingerprint(con, "core.claim_lines", builds)]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _reusable_month_ends(con: duckdb.DuckDBPyConnection, build: Build, previous: Build | None,
                         ends: list[date]) -> list[date]:
    """Month ends whose rows the previous run computed from the same SQL, policy and reference tables, and that
    lie before the earliest service date the files loaded since then change (sql/changes/marts.benchmark_trends.sql)."""
    if previous is None or previous.fingerprint != build.fingerprint or not set(previous.loads) <= set(build.loads):
        return []
    create_changed_claims(con, [load_id for load_id in build.loads if load_id not in set(previous.loads)])
    (earliest_change,) = con.execute(changes_sql_for(TRENDS_TABLE)).fetchone()
    drop_changed_claims(con)
    computed = {end for (end,) in con.execute("SELECT DISTINCT period_end FROM marts.benchmark_trends").fetchall()}
    return [end for end in ends if end in computed and end != build.as_of
            and (earliest_change is None or end < earliest_change)]

