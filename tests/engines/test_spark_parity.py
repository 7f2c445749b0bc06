"""The Spark engine runs the same SQL files as DuckDB and gets the same tables (docs/spark.md).

Fast tests: every SQL file translates; the HMAC and the value typing (TRY_CAST, division) give on Spark what they
give on DuckDB. Slow tests: one landing folder (a generated sample in Parquet and CSV, the hand-made extracts of
tests/benchmarks and tests/sql, and odd values and broken lines) through both engines, every table compared row by
row. One Spark session serves the whole module.
"""

from __future__ import annotations

import csv
import importlib
import math
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.contract import CLAIMS, CONTRACTS
from pipelines.ingest.pseudonymise import hmac_python

sqlglot = pytest.importorskip("sqlglot", reason="sqlglot is not installed (the 'spark' extra)")

from pipelines.benchmarks.registry import benchmarks  # noqa: E402
from pipelines.benchmarks.results import results_sql, scorecard_sql  # noqa: E402
from pipelines.engines.dialect import CONSTRUCTS, TranslationError, to_spark  # noqa: E402
from pipelines.engines.spark import java_available  # noqa: E402
from pipelines.sql_models import models  # noqa: E402

try:
    import pyspark  # noqa: F401

    SPARK_MISSING = None if java_available() else "no Java runtime (java on PATH or JAVA_HOME): Spark cannot start"
except ImportError:
    SPARK_MISSING = "pyspark is not installed (the 'spark' extra)"

needs_spark = pytest.mark.skipif(SPARK_MISSING is not None, reason=SPARK_MISSING or "")
KEY = "test-key-not-secret"  # tests/conftest.py sets the same key for the DuckDB pipeline
# Settings for tiny data: no code generation or adaptive planning (they cost more than they save here).
SMALL_DATA_CONF = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
}


@pytest.fixture(scope="module")
def spark():
    if SPARK_MISSING:
        pytest.skip(SPARK_MISSING)
    from pipelines.engines.spark import spark_session

    session = spark_session(conf=SMALL_DATA_CONF)
    for key, value in SMALL_DATA_CONF.items():
        session.conf.set(key, value)
    yield session
    session.stop()


# --- translation ------------------------------------------------------------------------------------------------

ALL_SQL = [pytest.param(m.sql, id=m.table) for schema in ("staging", "core", "marts") for m in models(schema)] + [
    pytest.param(results_sql(benchmarks()), id="marts.benchmark_results"),
    pytest.param(scorecard_sql(benchmarks()), id="marts.provider_scorecard"),
]
DUCKDB_ONLY = ("REGEXP_FULL_MATCH", "DATE_DIFF", "STRING_AGG", "DATEDIFF(DAY", "::", "TRY_STRPTIME", "EPOCH(",
               "MATERIALIZED (")


@pytest.mark.parametrize("sql", ALL_SQL)
def test_every_sql_file_translates_to_spark_sql(sql):
    spark_sql = to_spark(sql)
    assert sqlglot.parse_one(spark_sql, read="spark") is not None
    left = [name for name in DUCKDB_ONLY if name in spark_sql.upper()]
    assert not left, f"DuckDB-only construct(s) left in the Spark SQL: {left}"


def test_schema_prefix_renames_every_table_reference():
    spark_sql = to_spark(results_sql(benchmarks()), {"marts": "pv_marts", "core": "pv_core"})
    assert "pv_marts.cost_per_client" in spark_sql and "pv_core.run_parameters" in spark_sql
    assert " marts." not in spark_sql and " core." not in spark_sql


def test_rules_that_refuse_what_they_cannot_translate_faithfully():
    with pytest.raises(TranslationError, match="month"):
        to_spark("SELECT date_diff('month', a, b) FROM t")
    with pytest.raises(TranslationError, match="ORDER BY"):
        to_spark("SELECT string_agg(x, ', ') FROM t")
    with pytest.raises(TranslationError, match="DIV"):
        to_spark("SELECT a // b FROM t")
    division = to_spark("SELECT sum(amount) / count(*) FROM t", pretty=False)
    assert "CAST(SUM(amount) AS DOUBLE) / CAST(COUNT(*) AS DOUBLE)" in division
    assert "DATEDIFF(b, a)" in to_spark("SELECT date_diff('day', a, b) FROM t", pretty=False)
    hinted = to_spark("WITH a AS NOT MATERIALIZED (SELECT 1 AS x) SELECT * FROM a, a AS b", pretty=False)
    assert "MATERIALIZED" not in hinted.upper() and sqlglot.parse_one(hinted, read="spark") is not None
    assert {c.how for c in CONSTRUCTS} == {"sqlglot", "rewrite", "refused"}


def test_docs_list_every_translated_construct():
    text = (Path(__file__).resolve().parents[2] / "docs" / "spark.md").read_text(encoding="utf-8")
    missing = [c.name for c in CONSTRUCTS if f"| `{c.name}` |" not in text]
    assert not missing, f"docs/spark.md does not list: {missing}"


# --- values: HMAC, typing, division (one Spark query each, against DuckDB or Python) -------------------------

@needs_spark
def test_hmac_in_spark_matches_python(spark):
    from pyspark.sql import functions as F

    from pipelines.engines.spark import _hmac_column, hmac_sql

    values = ["123456782", "  padded  ", "é-ü-ß 😀", "x" * 300, "0"]
    for key in (KEY, "k" * 100, "sleutel-ë"):  # a key longer than the 64-byte block is hashed first
        frame = spark.createDataFrame([(v,) for v in values], "v STRING")
        got = frame.select("v", _hmac_column(F.col("v"), key).alias("a"),
                           F.expr(hmac_sql("v", key)).alias("b")).collect()
        for row in got:
            assert row.a == row.b == hmac_python(key, row.v), row.v
    # and the same client_key as DuckDB's loader (trimmed, NULL stays NULL) is checked by the parity run below


TYPING_SAMPLES = [
    # dates: DuckDB wants y-m-d (one separator kind, 1-2 digit month and day); the rest of the value is ignored
    "2025-01-05", "2025-1-5", "2025-01-05 10:00:00", "2025-01-05T08:00", "2025/01/05", "2025 1 5", "2025-01-05x",
    "2025", "2025-03", "05-01-2025", "2025-02-30", "2025-13-01", "20250105", "2025.01.05", "2025-01/05",
    "25-01-05", "02025-01-05", "2024-02-29", "2025-01-005", " 2025-01-05 ",
    # integers and amounts
    "1985", "1985.0", "1985.5", "-12.5", "+12", " 12 ", "1e3", "1.5e1", ".5", "5.", "007", "99999999999",
    "12.345", "12.355", "-0.005", "1,5", "abc", "", " ", "-", ".", "nan", "12.3e-1",
]


@needs_spark
def test_try_cast_and_regexp_full_match_type_like_duckdb(spark):
    sql = ("SELECT v, TRY_CAST(v AS DATE) AS d, TRY_CAST(v AS INTEGER) AS i, TRY_CAST(v AS DECIMAL(14, 2)) AS m, "
           "regexp_full_match(v, '-?([0-9]+|[0-9]{1,3}(\\.[0-9]{3})+)(,[0-9]+)?') AS nl FROM samples")
    con = duckdb.connect()
    con.execute("CREATE TABLE samples (v VARCHAR)")
    con.executemany("INSERT INTO samples VALUES (?)", [(v,) for v in TYPING_SAMPLES])
    expected = {r[0]: r[1:] for r in con.execute(sql).fetchall()}
    spark.createDataFrame([(v,) for v in TYPING_SAMPLES], "v STRING").createOrReplaceTempView("samples")
    got = {r[0]: tuple(r[1:]) for r in spark.sql(to_spark(sql)).collect()}
    different = {v: (expected[v], got[v]) for v in TYPING_SAMPLES if not _same_row(expected[v], got[v])}
    assert not different, f"DuckDB vs Spark: {different}"


@needs_spark
def test_division_is_floating_point_like_duckdb(spark):
    sql = ("SELECT CAST(a AS DECIMAL(14, 2)) / b AS decimal_by_int, sum(CAST(a AS DECIMAL(14, 2))) / count(*) AS "
           "mean, a / b AS double_by_int, 7 / 2 AS int_by_int, a / 0 AS by_zero, -a / 0 AS minus_by_zero, "
           "0 / b * 0 / 0 AS nan FROM numbers GROUP BY a, b")
    rows = [(100.0, 3), (1.0, 7), (2.675, 1)]
    con = duckdb.connect()
    con.execute("CREATE TABLE numbers (a DOUBLE, b INTEGER)")
    con.executemany("INSERT INTO numbers VALUES (?, ?)", rows)
    expected = sorted(con.execute(sql).fetchall())
    spark.createDataFrame(rows, "a DOUBLE, b INT").createOrReplaceTempView("numbers")
    got = sorted(tuple(r) for r in spark.sql(to_spark(sql)).collect())
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert _same_row(e, g), (e, g)


# --- the whole pipeline on both engines ---------------------------------------------------------------------

def _fixtures() -> list[tuple[str, list[dict], list[dict]]]:
    """The hand-made extracts of tests/benchmarks and tests/sql: (name, claims, contracts)."""
    out = []
    for name in ("cost_per_client", "diagnostics_only_share", "group_treatment_share", "s01_usage", "turnover_cap",
                 "zvt_setting_mismatch"):
        module = importlib.import_module(f"tests.benchmarks.test_{name}")
        out.append((name, module.CLAIMS, list(module.CONTRACTS)))
    cleaning = importlib.import_module("tests.sql.test_cleaning_rules")
    out.append(("cleaning_1", cleaning.FIRST_FILE, []))
    out.append(("cleaning_2", cleaning.SECOND_FILE, []))
    return out


def _own_ids(rows: list[dict], number: int) -> list[dict]:
    """One extract's providers, claims and clients renamed so that extracts do not collide in one landing."""
    out = []
    for row in rows:
        row = dict(row)
        row["provider_agb"] = f"9{number}" + str(row["provider_agb"])[2:]
        for column in ("claim_id", "related_claim_id", "client_id"):
            if row.get(column):
                row[column] = f"x{number}-{row[column]}"
        out.append(row)
    return out


BASE = {"claim_id": "E", "debit_credit": "D", "provider_agb": "99000001", "client_id": "edge",
        "trajectory_id": "T", "prestatiecode": "CO0627", "service_date": "2025-05-01", "declared_amount": "100.00"}
ODD_VALUES = [  # (column, value): each on its own claim line
    *[("service_date", v) for v in ("2025-1-5", "2025-01-05 10:00:00", "2025/01/05", "2025 1 5", "2025-01-05T08:00",
                                    "2025-01-05x", "2025", "2025-03", "05-01-2025", "2025-02-30", "20250105",
                                    "2025.01.05")],
    *[("birth_year", v) for v in ("1985.0", "1985.5", "+1985", "1e3", "abc")],
    *[("zvt", v) for v in ("3.0", "2.5", "99", "-1", " 4")],
    *[("privacy_flag", v) for v in ("J", "nee", "Yes", "maybe")],
    *[("debit_credit", v) for v in ("d", "X")],
    *[("prestatiecode", v) for v in ("co0627", "XX0000")],
    *[("declared_amount", v) for v in ("12.345", "1e2", "-5", "+7.5", ".5", "abc")],
    *[("allowed_amount", v) for v in ("abc", "0", "80")],
    *[("referral_date", v) for v in ("2025-13-01", "2025-01-01")],
    *[("location_id", v) for v in ("loc, A", 'loc "B"', "two\nlines")],
    ("client_id", "   "),
]


def _write_odd_files(landing: Path) -> None:
    """Odd values (each once), and lines the reader cannot split: a decimal-point and a decimal-comma file."""
    columns = list(CLAIMS.columns)
    # "\n" line ends throughout: DuckDB's reader refuses (quarantines) a file that mixes "\r\n" and "\n"
    with (landing / "claims_zz_odd_point.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for number, (column, value) in enumerate(ODD_VALUES):
            writer.writerow({**BASE, "claim_id": f"odd{number}", column: value})
    with (landing / "claims_zz_odd_point.csv").open("ab") as handle:
        handle.write(b"short,D,99000001\n")  # too few columns
        handle.write(b"\n")  # a blank line
        handle.write(("long," + ",".join(["x"] * len(columns)) + "\n").encode())  # too many columns
        handle.write(b"bad1,,D,,99000001,,caf\xe9,,T,,CO0627,2025-05-02,,,,,,,100.00,,\n")  # not UTF-8
        handle.write(b"last,,D,,99000001,,edge,,T,,CO0627,2025-05-03,,,,,,,100.00,,\n")
    amounts = ("1.234,50", "12,5", "12.5", "1.234", "-0,01", " 7,25 ", "1.2345,00")
    rows = [{**BASE, "claim_id": f"nl{i}", "declared_amount": a, "allowed_amount": a if i % 2 else None}
            for i, a in enumerate(amounts)]
    with (landing / "claims_zz_odd_comma.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter=";", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (landing / "contracts_zz_odd.csv").write_text(
        "provider_agb,year,provider_name,provider_type,omzetmaximum,\n"  # a trailing delimiter: unnamed column
        "99000001,2025,Odd,Instelling,50000,\n99000001,2026.0,Odd,instelling,,\n"
        "99000002,2025,Odd 2,bogus,10,\n99000003,twenty,Odd 3,instelling,-1,\n", encoding="utf-8")
    (landing / "contracts_zz_broken.csv").write_text("provider_agb;year\n1;2025\n", encoding="utf-8")  # quarantined
    (landing / "readme.txt").write_text("not an extract\n", encoding="utf-8")  # ignored


def _landing(folder: Path) -> Path:
    from sample_data.generate import generate
    from tests.builders import write_csv

    landing = folder / "landing"
    landing.mkdir(parents=True)
    sample = generate(folder / "sample", providers=6, clients=150, years=(2025, 2026), seed=3, fmt="both")
    for relative in ("parquet/claims_2025.parquet", "parquet/claims_2026.parquet",  # Parquet, typed columns
                     "csv/claims_2026_redelivery.csv", "csv/contracts.csv"):  # ';' and decimal comma
        shutil.copy(sample.out_dir / relative, landing / Path(relative).name)
    for number, (name, claims, contracts) in enumerate(_fixtures(), start=1):
        write_csv(landing / f"claims_x_{name}.csv", _own_ids(claims, number), CLAIMS.columns,
                  delimiter=";" if name == "cleaning_2" else ",")
        if contracts:
            write_csv(landing / f"contracts_x_{name}.csv", _own_ids(contracts, number), CONTRACTS.columns)
    _write_odd_files(landing)
    return landing


RUNS = {
    # the latest service date as as-of date
    "default": {"policy": "default", "as_of": "", "trend_months": 1},
    # another profile, an as-of date in a year (lines after it left out, open trajectories, turnover projection),
    # and two trend months: one recomputed at the previous month end
    "cz_mid_2025": {"policy": "cz", "as_of": "2025-06-15", "trend_months": 2},
}
# The second run also takes Spark's other paths: landing and output folders as file:// URIs (the code path of
# object storage: listing, headers and checksums read through Spark, not Python), and temporary views instead of
# databases and tables in the catalog.
OBJECT_STORE_AND_VIEWS = {"cz_mid_2025"}
# columns that say when or by which run a table was made
VOLATILE = {"raw.load_manifest": {"loaded_at"}, "core.run_parameters": {"computed_at", "dagster_run_id"}}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    return _landing(tmp_path_factory.mktemp("parity"))


@pytest.mark.slow
@needs_spark
@pytest.mark.parametrize("run", list(RUNS))
def test_spark_gives_the_tables_duckdb_gives(run, landing, spark, tmp_path):
    from pipelines.engines.spark import run_spark
    from tests.builders import materialize

    options = RUNS[run]
    materialize(landing, tmp_path / "duckdb", **options)
    source, target, catalog = landing, tmp_path / "spark", "databases"
    if run in OBJECT_STORE_AND_VIEWS:
        source, target, catalog = landing.resolve().as_uri(), target.resolve().as_uri(), "views"
    written = run_spark(source, target, pseudonym_key=KEY, spark=spark, progress=lambda _m: None, catalog=catalog,
                        **options)
    con = duckdb.connect(str(tmp_path / "duckdb" / "warehouse.duckdb"), read_only=True)
    try:
        duckdb_tables = {f"{s}.{t}" for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE schema_name IN ('reference', 'raw', 'staging', 'core', 'marts') "
            "UNION SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE schema_name IN ('reference', 'raw', 'staging', 'core', 'marts')").fetchall()}
        assert duckdb_tables == set(written), "both engines build the same tables (a view in DuckDB is one here)"
        marts = {t for t in written if t.startswith("marts.")}
        assert {f"marts.{b.name}" for b in benchmarks()} | {"marts.benchmark_results", "marts.provider_scorecard",
                                                             "marts.benchmark_trends", "marts.profile_comparison"} == marts
        differences = {}
        for table in sorted(written):
            problems = _compare(con, spark.read.parquet(str(written[table])), table)
            if problems:
                differences[table] = problems[:5]
        assert not differences, f"Spark differs from DuckDB: {differences}"
        # the fixture reaches the edge cases it is there for
        (quarantined, rejected_lines, rejected_rows, conflicts, lines) = con.execute(
            "SELECT (SELECT count(*) FROM raw.load_manifest WHERE status = 'quarantined'), "
            "(SELECT count(*) FROM raw.rejected_lines), (SELECT count(*) FROM staging.rejected_rows), "
            "(SELECT count(*) FROM staging.claim_conflicts), (SELECT count(*) FROM core.claim_lines)").fetchone()
        assert quarantined == 1 and rejected_lines == 3 and rejected_rows > 20 and conflicts > 0 and lines > 500
    finally:
        con.close()


# --- comparing -------------------------------------------------------------------------------------------------

def _compare(con: duckdb.DuckDBPyConnection, frame, table: str) -> list[str]:
    cursor = con.execute(f"SELECT * FROM {table}")
    columns = [d[0] for d in cursor.description]
    if columns != frame.columns:
        return [f"columns: DuckDB {columns}, Spark {frame.columns}"]
    keep = [i for i, c in enumerate(columns) if c not in VOLATILE.get(table, ())]
    order = _sort_key(columns, table)
    expected = sorted((tuple(r[i] for i in keep) for r in cursor.fetchall()), key=order)
    got = sorted((tuple(r[i] for i in keep) for r in frame.collect()), key=order)
    names = [columns[i] for i in keep]
    problems = [] if len(expected) == len(got) else [f"{len(expected)} rows in DuckDB, {len(got)} in Spark"]
    for e, g in zip(expected, got):
        for name, a, b in zip(names, e, g):
            if not _same(a, b):
                problems.append(f"{name}: DuckDB {a!r}, Spark {b!r} in row {e[:4]}")
    return problems


def _sort_key(columns: list[str], table: str):
    """Marts by provider_agb and year first (then the other columns), other tables by all columns."""
    first = [c for c in ("provider_agb", "year", "benchmark") if c in columns] if table.startswith("marts.") else []
    order = first + [c for c in columns if c not in first and c not in VOLATILE.get(table, ())]
    kept = [c for c in columns if c not in VOLATILE.get(table, ())]
    positions = [kept.index(c) for c in order]

    def key(row):
        return tuple((row[p] is None, _text(row[p])) for p in positions)

    return key


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.9g}"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value == value else "nan"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _same(a, b) -> bool:
    """Equal to rounding: floats to a relative 1e-9, decimals exactly (whatever their scale)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a) == Decimal(b)
    return a == b


def _same_row(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
