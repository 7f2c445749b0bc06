"""Run the pipeline on Spark: the same SQL files, profiles and benchmark registry as the DuckDB assets.

    run_spark(landing_dir, out_dir, policy="default", as_of="", pseudonym_key=...) -> {"marts.x": path, ...}

1. reads the landing folder per the input contract into ``raw`` (text, or a Parquet value in its contract type in
   ``raw.<kind>_stored`` as the DuckDB loader keeps it, ``client_id`` replaced by its HMAC-SHA256 ``client_key`` in
   the statement that reads it, ``raw.load_manifest``, ``raw.rejected_lines``);
2. loads ``reference`` from ``reference/*.csv`` and ``core.policy_parameters`` from the profile;
3. runs every ``sql/staging``, ``sql/core`` and ``sql/marts`` file in dependency order, translated from DuckDB to
   Spark SQL by :mod:`pipelines.engines.dialect`, then ``marts.benchmark_results``, ``marts.provider_scorecard``
   (from :mod:`pipelines.benchmarks.results`) and ``marts.benchmark_trends``;
4. writes every table as Parquet to ``out_dir/<schema>/<table>/`` and registers it in the session catalog as
   ``<schema>.<table>`` (one Spark database per schema), so the SQL files run with their names unchanged.

Only DataFrame and SQL APIs are used (no RDDs, no Python UDFs, no JVM calls), so it runs on a local session, a
standalone cluster, Databricks (job or Databricks Connect) and Spark Connect alike; executors need neither this
package nor Python libraries. Local and remote (``s3a://``, ``abfss://``, ``dbfs:/``...) locations both work.
See docs/spark.md.

Differences from the DuckDB path by design: every run rebuilds ``raw`` from the whole landing folder (no
incremental loads, so no skip-by-checksum is needed: each file is read once per run); there is no working copy
and atomic publish: tables are overwritten in place, one after the other.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path, PurePosixPath

from pipelines.benchmarks.profiles import load_profile
from pipelines.benchmarks.registry import benchmarks, required_parameters
from pipelines.benchmarks.results import results_sql, scorecard_sql
from pipelines.benchmarks.scratch import SCRATCH
from pipelines.benchmarks.trends import TAKEN_AS_IS, month_ends
from pipelines.contract import (IDENTIFIER_COLUMN, KINDS, PSEUDONYM_COLUMN, ExtractKind, cast_cannot_fail, kind_of,
                               kept_typed, raw_columns, raw_text_view_sql, stored_table, typed_value_column)
from pipelines.engines.dialect import to_spark
from pipelines.ingest.pseudonymise import CLIENT_KEY_HEX_DIGITS, hmac_pads
from pipelines.paths import reference_dir
from pipelines.reference import KEYS, REFERENCE_TABLES, ReferenceDataError
from pipelines.sql_models import in_dependency_order, models

DEFAULT_MASTER = "local[2]"
SCHEMAS = ("reference", "raw", "staging", "core", "marts")
# Session settings the translated SQL relies on (see pipelines/engines/dialect.py); set on every session used.
SQL_CONF = {
    "spark.sql.ansi.enabled": "true",  # casts and overflows fail like DuckDB's instead of giving NULL
    "spark.sql.session.timeZone": "UTC",
    # dates before 1582 (a mistyped year '25') are written as they are, not rebased or refused
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
    # The HMAC's key pads (64 bytes = 128 hex digits, from which the key follows) are literals in the query plan:
    # keep them out of explain output, the Spark UI and event logs.
    "spark.sql.redaction.string.regex": "(?i)[0-9a-f]{128}",
}
_CORRUPT = "__praktijkvariatie_unparsed__"  # from_csv's column for lines it cannot split
_MAX_CHECKSUM_BYTES = (1 << 31) - 1024  # Spark's binaryFile reads a whole file into one value (< 2 GiB)

Progress = Callable[[str], None]


class SparkEngineError(RuntimeError):
    """The Spark run cannot go on (no Java, no pyspark, nothing usable in the landing folder...)."""


# --- the session ------------------------------------------------------------------------------------------------


def java_available() -> str | None:
    """Path of the ``java`` Spark would start (JAVA_HOME first), or None."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").is_file():
        return str(Path(home, "bin", "java"))
    return shutil.which("java")


def spark_session(master: str | None = None, app_name: str = "praktijkvariatie", conf: dict | None = None):
    """A SparkSession; a local one (``local[2]``, UI off, loopback only, in-memory catalog) unless a master is
    given or already configured (spark-submit, a Databricks job). An active session is reused."""
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise SparkEngineError("pyspark is not installed: install the 'spark' extra (uv sync --extra spark)") from error

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        _apply_sql_conf(active)
        return active
    configured = SparkConf().get("spark.master", None)
    master = master or configured or DEFAULT_MASTER
    builder = SparkSession.builder.appName(app_name).master(master)
    if master.startswith("local"):
        if java_available() is None:
            raise SparkEngineError("no Java runtime found (java on PATH or JAVA_HOME): Spark needs Java 17 or 21")
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, also for the block manager
        builder = (
            builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_log4j_file()}")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.default.parallelism", "2")
            .config("spark.sql.catalogImplementation", "in-memory")
            .config("spark.sql.warehouse.dir", _scratch_warehouse())
            .config("spark.driver.memory", _driver_memory())
        )
    for key, value in {**SQL_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        spark.sparkContext.setLogLevel("ERROR")
    except Exception:  # Spark Connect has no SparkContext  # noqa: BLE001
        pass
    _apply_sql_conf(spark)
    return spark


def _scratch_warehouse() -> str:
    """A local session's warehouse (only the trend scratch tables live there), removed when Python exits."""
    import atexit

    folder = tempfile.mkdtemp(prefix="praktijkvariatie-spark-warehouse-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _driver_memory() -> str:
    """A local session's memory: PRAKTIJKVARIATIE_MEMORY_LIMIT (as for DuckDB, e.g. '8GB'), else 2 GB."""
    text = os.environ.get("PRAKTIJKVARIATIE_MEMORY_LIMIT", "").strip().lower().replace(" ", "")
    for suffix, unit in (("gib", "g"), ("gb", "g"), ("g", "g"), ("mib", "m"), ("mb", "m"), ("m", "m")):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            return text[: -len(suffix)] + unit
    return "2g"


def _log4j_file() -> str:
    """A log4j2 configuration that keeps a local session's console to errors (Spark's default is chatty)."""
    path = Path(tempfile.gettempdir()) / "praktijkvariatie-spark-log4j2.properties"
    if not path.exists():
        path.write_text("rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = console\n"
                        "appender.console.type = Console\nappender.console.name = console\n"
                        "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
                        "appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n\n", encoding="utf-8")
    return str(path)


def _apply_sql_conf(spark) -> None:
    for key, value in SQL_CONF.items():
        try:
            spark.conf.set(key, value)
        except Exception:  # a static or locked setting on a managed cluster: the session default must do  # noqa: BLE001
            pass


# --- locations: local paths and URIs ----------------------------------------------------------------------------


def _is_local(location: str | Path) -> bool:
    text = str(location)
    return isinstance(location, Path) or "://" not in text and not text.startswith(("dbfs:", "file:"))


def _join(base: str | Path, *parts: str) -> str | Path:
    if _is_local(base):
        return Path(base).joinpath(*parts)
    return "/".join([str(base).rstrip("/"), *parts])


def _spark_path(location: str | Path) -> str:
    return str(Path(location).resolve()) if _is_local(location) else str(location)


@dataclass
class LandingFile:
    name: str
    location: str  # as Spark reads it
    kind: ExtractKind
    size: int | None = None
    checksum: str | None = None
    load_id: int = 0
    fmt: str = "csv"
    header: list[str] = field(default_factory=list)
    delimiter: str | None = None
    reason: str | None = None  # set when the file is quarantined
    multiline: bool = False  # a quoted value spans lines

    @property
    def quarantined(self) -> bool:
        return self.reason is not None


def _list_landing(spark, landing: str | Path) -> tuple[list[LandingFile], list[str]]:
    """Files directly in the landing folder, in name order, with their kind; and the names of ignored files."""
    entries: list[tuple[str, str, int | None]] = []
    if _is_local(landing):
        folder = Path(landing)
        if not folder.is_dir():
            raise FileNotFoundError(f"landing folder {folder} does not exist")
        for path in folder.iterdir():
            if path.is_file() and not path.name.startswith("."):
                entries.append((path.name, str(path.resolve()), path.stat().st_size))
    else:
        # binaryFile lists files (and their sizes) on any file system Spark can read, without reading them
        base = str(landing).rstrip("/")
        try:
            listing = spark.read.format("binaryFile").load(base + "/*").select("path", "length").collect()
        except Exception as error:  # noqa: BLE001 - Spark reports an empty or missing folder as an error
            if "PATH_NOT_FOUND" in str(error) or "does not exist" in str(error):
                raise FileNotFoundError(f"landing folder {landing} does not exist or is empty") from None
            raise
        for row in listing:
            parent, _, name = row.path.rstrip("/").rpartition("/")
            if parent.endswith(base.split(":", 1)[-1].lstrip("/")) and not name.startswith((".", "_")):
                entries.append((name, row.path, row.length))
    files, ignored = [], []
    for name, location, size in sorted(entries):
        kind = kind_of(name)
        if kind is None:
            ignored.append(name)
            continue
        files.append(LandingFile(name=name, location=location, kind=kind, size=size,
                                 fmt="parquet" if name.lower().endswith(".parquet") else "csv"))
    for load_id, item in enumerate(files, start=1):
        item.load_id = load_id
    return files, ignored


def _checksums(spark, files: list[LandingFile], local: bool) -> None:
    if local:
        for item in files:
            digest = hashlib.sha256()
            with open(item.location, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            item.checksum = digest.hexdigest()
        return
    readable = [f for f in files if f.size is not None and f.size < _MAX_CHECKSUM_BYTES]
    if not readable:
        return
    from pyspark.sql import functions as F

    rows = (spark.read.format("binaryFile").load([f.location for f in readable])
            .select("path", F.sha2("content", 256).alias("checksum")).collect())
    by_path = {r.path: r.checksum for r in rows}
    for item in readable:
        item.checksum = by_path.get(item.location)


# --- landing -> raw ---------------------------------------------------------------------------------------------


def _hmac_column(value, key: str):
    """The client key of a text column: HMAC-SHA256 (hex, truncated as in pipelines/ingest/pseudonymise.py), from
    Spark's sha2: the same value as Python's ``hmac``."""
    from pyspark.sql import functions as F

    pads = hmac_pads(key)
    inner = F.unhex(F.sha2(F.concat(F.unhex(F.lit(pads["hmac_ipad"])), F.encode(value, "UTF-8")), 256))
    return F.substring(F.sha2(F.concat(F.unhex(F.lit(pads["hmac_opad"])), inner), 256), 1, CLIENT_KEY_HEX_DIGITS)


def hmac_sql(expression: str, key: str) -> str:
    """The same HMAC as a Spark SQL expression (the key's pads as hex literals; the key itself never appears)."""
    pads = hmac_pads(key)
    return (f"substring(sha2(concat(unhex('{pads['hmac_opad']}'), unhex(sha2(concat(unhex('{pads['hmac_ipad']}'), "
            f"encode({expression}, 'UTF-8')), 256))), 256), 1, {CLIENT_KEY_HEX_DIGITS})")


def _raw_select(kind: ExtractKind, present: set[str], value_of, key: str,
                parquet_types: dict[str, str] | None = None) -> list:
    """The columns of raw.<kind>_stored, as the DuckDB loader writes them: text, trimmed, empty as NULL; client_id
    as its keyed hash; a value that a Parquet file (``parquet_types``: column -> type in DuckDB's names) delivers in
    its contract type in <column>_value instead (its text only when it does not fit that type)."""
    from pyspark.sql import functions as F

    types = parquet_types or {}
    kept = {column: sql_type for column, sql_type in kind.typed_columns
            if column in present and kept_typed(types.get(column, "VARCHAR"), sql_type)}

    def typed(column: str):
        return F.expr(f"try_cast(`{column}` AS {kept[column]})")

    out = []
    for column in kind.columns:
        text = F.nullif(F.trim(value_of(column).cast("string")), F.lit("")) if column in present \
            else F.lit(None).cast("string")
        if column in kept:
            text = F.lit(None).cast("string") if cast_cannot_fail(types[column], kept[column]) else \
                F.when(typed(column).isNull(), value_of(column).cast("string"))
        if column == IDENTIFIER_COLUMN:
            # an empty or blank client_id stays NULL (rejected in staging), it is never hashed as ''
            out.append(_hmac_column(text, key).alias(PSEUDONYM_COLUMN))
        else:
            out.append(text.alias(column))
    for column, sql_type in kind.typed_columns:
        value = typed(column) if column in kept else F.lit(None).cast(_spark_type(sql_type))
        out.append(value.alias(typed_value_column(column)))
    return out


def _spark_type(sql_type: str) -> str:
    return sql_type.replace(" ", "").lower()


def _duckdb_type_name(spark_type: str) -> str:
    """A Spark column type (simpleString) in DuckDB's name, for kept_typed."""
    names = {"date": "DATE", "boolean": "BOOLEAN", "tinyint": "TINYINT", "smallint": "SMALLINT", "int": "INTEGER",
             "bigint": "BIGINT", "string": "VARCHAR"}
    return names.get(spark_type, spark_type.upper())


def _numbered_lines(spark, files: list[LandingFile]):
    """Every physical line of the CSV files with its line number (the header is line 1).

    Spark reads a large file in blocks; within a block the lines keep their order and
    ``monotonically_increasing_id`` numbers them consecutively, so line = lines in the file's earlier blocks +
    position in the block + 1. A byte-order mark is dropped by the reader.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    lines = spark.read.text([f.location for f in files]).select(
        F.col("_metadata.file_name").alias("file_name"),
        F.col("_metadata.file_block_start").alias("block_start"),
        F.monotonically_increasing_id().alias("rid"),
        F.col("value"),
    )
    blocks = lines.groupBy("file_name", "block_start").agg(F.min("rid").alias("first_rid"), F.count("*").alias("n"))
    earlier = Window.partitionBy("file_name").orderBy("block_start").rowsBetween(Window.unboundedPreceding, -1)
    blocks = blocks.withColumn("lines_before", F.coalesce(F.sum("n").over(earlier), F.lit(0)))
    return lines.join(F.broadcast(blocks), ["file_name", "block_start"]).select(
        "file_name", (F.col("lines_before") + F.col("rid") - F.col("first_rid") + 1).alias("line"), "value",
    )


def _quote_count(column):
    from pyspark.sql import functions as F

    return F.length(column) - F.length(F.regexp_replace(column, '"', ""))


def _inspect_csv(spark, files: list[LandingFile], lines) -> None:
    """Header, delimiter and the whole-file checks of the DuckDB loader (same rules, same messages)."""
    from pyspark.sql import functions as F

    from pipelines.ingest.load import ExtractError, _check_header, _sniff_csv

    stats = {
        r.file_name: r for r in lines.groupBy("file_name").agg(
            F.max(F.when(F.col("line") == 1, F.hex("value"))).alias("header_hex"),
            F.sum(F.when(F.trim("value") != "", 1).otherwise(0)).alias("nonblank"),
            F.max(F.instr("value", "\u0000")).alias("nul"),
            F.sum(_quote_count(F.col("value")) % 2).alias("odd_quote_lines"),
        ).collect()
    }
    for item in files:
        stat = stats.get(item.name)
        try:
            if _is_local(item.location):
                item.delimiter, item.header = _sniff_csv(Path(item.location))
            else:
                item.delimiter, item.header = _sniff_header(item.name, stat)
            _check_header(PurePosixPath(item.name), item.kind, item.header)
        except ExtractError as error:
            item.reason = str(error)
            continue
        if stat is not None and stat.odd_quote_lines:
            item.multiline = True


def _sniff_header(name: str, stat) -> tuple[str, list[str]]:
    """``_sniff_csv`` of the DuckDB loader for a file Python cannot open (object storage): the header line as
    Spark read it."""
    from pipelines.ingest.load import ExtractError

    if stat is None or not stat.nonblank:
        raise ExtractError(f"{name}: the file is empty (no header row)")
    if stat.nul:
        raise ExtractError(f"{name}: not a text CSV file (binary content in the first bytes)")
    raw = bytes.fromhex(stat.header_hex)
    try:
        header_line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ExtractError(
            f"{name}, row 1 (header): not UTF-8 text at byte {error.start}; save the extract as UTF-8") from None
    if ";" not in header_line and "," not in header_line:
        raise ExtractError(f"{name}, row 1 (header): no ',' or ';' delimiter; extracts must use ',' or ';' "
                           "between columns")
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    header = [n.strip().strip('"').strip().lower() for n in header_line.split(delimiter)]
    return delimiter, [n or f"unnamed_column_{i + 1}" for i, n in enumerate(header)]


def _records(lines, files: list[LandingFile]):
    """The data records of the CSV files (file_name, line, value), each with the line it starts on; blank lines
    are skipped.

    A quoted value that spans lines (a line with an odd number of quotes opens or closes one) is joined back into
    one record, only in files that have such lines. A file that ends inside a quoted value is quarantined, with
    the DuckDB loader's reason.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    data = (F.col("line") > 1) & (F.col("value") != "")
    plain = [f.name for f in files if not f.multiline]
    multiline = {f.name: f for f in files if f.multiline}
    frames = [lines.filter(F.col("file_name").isin(plain) & data)] if plain else []
    if multiline:
        in_file = Window.partitionBy("file_name").orderBy("line")
        quotes = F.coalesce(F.sum(_quote_count(F.col("value"))).over(in_file.rowsBetween(Window.unboundedPreceding, -1)),
                            F.lit(0))
        marked = lines.filter(F.col("file_name").isin(list(multiline))).withColumn(
            "record_line", F.max(F.when(quotes % 2 == 0, F.col("line"))).over(
                in_file.rowsBetween(Window.unboundedPreceding, 0)))
        records = marked.groupBy("file_name", "record_line").agg(
            F.array_join(F.transform(F.array_sort(F.collect_list(F.struct("line", "value"))), lambda x: x["value"]),
                         "\n").alias("value"),
            F.sum(_quote_count(F.col("value"))).alias("quotes"),
            F.max("line").alias("last_line"),
        )
        for row in records.filter(F.col("quotes") % 2 == 1).groupBy("file_name").agg(
                F.min("record_line").alias("line"), F.max("last_line").alias("last")).collect():
            item, line, last = multiline[row.file_name], row.line, row.last
            swallowed = f"line {last}" if last == line + 1 else f"lines {line + 1}-{last}"
            item.reason = (f"{item.name}, row {line}: a quoted value is never closed (unterminated quote), so "
                           f"{swallowed} cannot be read as rows; close the quote and deliver the file again")
        usable = [name for name, item in multiline.items() if not item.quarantined]
        frames.append(records.filter(F.col("file_name").isin(usable)).select(
            "file_name", F.col("record_line").alias("line"), "value").filter(data))
    return _union(frames) if frames else None


def _parse_csv(records, group: list[LandingFile], key: str):
    """(rows, rejected) DataFrames of CSV files with the same kind, delimiter and header: raw rows, and lines
    that do not split into the header's columns (or are not UTF-8), with DuckDB's reasons."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    first = group[0]
    header, delimiter, kind = first.header, first.delimiter, first.kind
    load_ids = F.create_map(*[x for f in group for x in (F.lit(f.name), F.lit(f.load_id))])
    schema = StructType([StructField(c, StringType()) for c in header] + [StructField(_CORRUPT, StringType())])
    options = {"sep": delimiter, "quote": '"', "escape": '"', "mode": "PERMISSIVE",
               "columnNameOfCorruptRecord": _CORRUPT}
    parsed = records.filter(F.col("file_name").isin([f.name for f in group])).select(
        "file_name", "line", "value", F.from_csv("value", schema.simpleString(), options).alias("r"))
    utf8 = F.call_function("is_valid_utf8", F.col("value"))
    good = F.col(f"r.{_CORRUPT}").isNull() & utf8
    rows = parsed.filter(good).select(
        F.element_at(load_ids, F.col("file_name")).cast("int").alias("load_id"),
        F.col("line").cast("bigint").alias("source_row"),
        *_raw_select(kind, set(header), lambda c: F.col("r").getField(c), key),
    )
    # the line's fields, split at delimiters outside quotes: to say how many there were, as DuckDB does
    expected = len(header)
    names = F.array(*[F.lit(c) for c in header])
    outside_quotes = f'{delimiter}(?=(?:[^"]*"[^"]*")*[^"]*$)'
    found = F.size(F.split(F.col("value"), outside_quotes))
    # the field with the first invalid byte: fields before the first replacement character of the repaired line
    repaired = F.call_function("make_valid_utf8", F.col("value"))
    bad_field = F.size(F.split(F.substring(repaired, F.lit(1), F.instr(repaired, "\ufffd") - 1), outside_quotes))
    rejected = parsed.filter(~good).select(
        F.element_at(load_ids, F.col("file_name")).cast("int").alias("load_id"),
        "file_name",
        F.col("line").cast("bigint").alias("source_row"),
        F.when(~utf8, F.element_at(names, F.least(F.greatest(bad_field, F.lit(1)), F.lit(expected)).cast("int")))
        .when(found < expected, F.element_at(names, (found + 1).cast("int")))
        .alias("column_name"),
        F.when(~utf8, F.lit("INVALID ENCODING: Invalid unicode (byte sequence mismatch) detected. "
                            "This file is not utf-8 encoded."))
        .when(found < expected, F.format_string(
            "MISSING COLUMNS: Expected Number of Columns: %d Found: %d", F.lit(expected), found))
        .when(found > expected, F.format_string(
            "TOO MANY COLUMNS: Expected Number of Columns: %d Found: %d", F.lit(expected), found))
        .otherwise(F.lit("UNQUOTED VALUE: Value with unterminated quote found."))
        .alias("reason"),
    )
    return rows, rejected


def _parse_parquet(spark, item: LandingFile, key: str):
    from pyspark.sql import functions as F

    from pipelines.ingest.load import ExtractError, _check_header

    try:
        frame = spark.read.parquet(item.location)
        item.header = list(frame.columns)
        _check_header(PurePosixPath(item.name), item.kind, item.header)
    except ExtractError as error:
        item.reason = str(error)
        return None
    except Exception as error:  # noqa: BLE001 - an unreadable Parquet file is quarantined, as by DuckDB
        item.reason = f"{item.name}: {str(error).splitlines()[0]}"
        return None
    return frame.select(
        F.lit(item.load_id).cast("int").alias("load_id"),
        (F.col("_metadata.row_index") + 1).cast("bigint").alias("source_row"),
        *_raw_select(item.kind, set(item.header), lambda c: F.col(f"`{c}`"), key,
                     {field.name: _duckdb_type_name(field.dataType.simpleString()) for field in frame.schema}),
    )


def _empty(spark, ddl: str):
    return spark.createDataFrame([], ddl)


RAW_DDL = {
    "load_manifest": "load_id INT, file_name STRING, kind STRING, checksum_sha256 STRING, size_bytes BIGINT, "
                     "status STRING, rows_read BIGINT, rows_loaded BIGINT, lines_rejected BIGINT, delimiter STRING, "
                     "decimal_separator STRING, ignored_columns STRING, reason STRING, loaded_at TIMESTAMP_NTZ",
    "rejected_lines": "load_id INT, file_name STRING, source_row BIGINT, column_name STRING, reason STRING",
}


def _kind_ddl(kind: ExtractKind) -> str:
    """raw.<kind>_stored's columns."""
    return ("load_id INT, source_row BIGINT, " + ", ".join(f"{c} STRING" for c in raw_columns(kind))
            + "".join(f", {typed_value_column(c)} {_spark_type(t)}" for c, t in kind.typed_columns))


# --- the run ----------------------------------------------------------------------------------------------------


class _Tables:
    """Writes each table as Parquet under ``out_dir/<schema>/<table>`` and makes it readable by the SQL as
    ``schema.table``.

    ``catalog="databases"``: one Spark database per schema (``<prefix>staging`` ...), each table an external
    Parquet table in it; the SQL keeps its names. ``catalog="views"``: nothing is written to a catalog; each table
    is a temporary view ``<prefix><schema>_<table>`` and the SQL's ``schema.table`` names are rewritten to match
    (for sessions without the right to create databases or external tables, e.g. Unity Catalog with volumes).
    """

    def __init__(self, spark, out_dir: str | Path, prefix: str, catalog: str, progress: Progress):
        if catalog not in ("databases", "views"):
            raise ValueError(f"catalog must be 'databases' or 'views', not {catalog!r}")
        self.spark, self.out_dir, self.prefix, self.catalog, self.say = spark, out_dir, prefix, catalog, progress
        self.written: dict[str, str | Path] = {}
        self.scratch: list[str] = []
        if catalog == "databases":
            for schema in (*SCHEMAS, *SCRATCH.values()):
                spark.sql(f"CREATE DATABASE IF NOT EXISTS {self.db(schema)}")

    def db(self, schema: str) -> str:
        return f"{self.prefix}{schema}"

    def name(self, schema: str, table: str) -> str:
        """How SQL run by this class names the table."""
        return f"{self.db(schema)}.{table}" if self.catalog == "databases" else f"{self.db(schema)}_{table}"

    def mapping(self, scratch: dict[str, str] | None = None) -> dict[str, str]:
        return {s: self.db((scratch or {}).get(s, s)) for s in SCHEMAS}

    def sql(self, duckdb_sql: str, scratch: dict[str, str] | None = None):
        """A SQL file's SELECT, translated to Spark, reading this run's tables (or scratch schemas)."""
        return self.spark.sql(to_spark(duckdb_sql, self.mapping(scratch), flatten=self.catalog == "views"))

    def table(self, schema: str, table: str):
        return self.spark.table(self.name(schema, table))

    def save(self, table: str, frame) -> None:
        schema, name = table.split(".")
        location = _join(self.out_dir, schema, name)
        frame.write.mode("overwrite").parquet(_spark_path(location))
        qualified = self.name(schema, name)
        if self.catalog == "databases":
            self.spark.sql(f"DROP TABLE IF EXISTS {qualified}")
            self.spark.catalog.createTable(qualified, path=_spark_path(location), source="parquet",
                                           schema=frame.schema)
        else:
            self.spark.read.schema(frame.schema).parquet(_spark_path(location)).createOrReplaceTempView(qualified)
        self.written[table] = location
        if schema in ("raw", "marts"):
            self.say(f"{table}: {self.spark.table(qualified).count():,} rows")
        else:
            self.say(f"{table} written")

    def save_scratch(self, schema: str, name: str, frame) -> None:
        """A scratch table (scratch_core, scratch_marts), replaced at every month end, dropped by drop_scratch."""
        qualified = self.name(schema, name)
        if self.catalog == "databases":
            frame.write.mode("overwrite").saveAsTable(qualified)  # managed: DROP removes its files
        else:
            frame.localCheckpoint().createOrReplaceTempView(qualified)
        self.scratch.append(qualified)

    def drop_scratch(self) -> None:
        for qualified in dict.fromkeys(self.scratch):
            if self.catalog == "databases":
                self.spark.sql(f"DROP TABLE IF EXISTS {qualified}")
            else:
                self.spark.catalog.dropTempView(qualified)
        self.scratch.clear()


def run_spark(
    landing_dir: str | Path,
    out_dir: str | Path,
    policy: str = "default",
    as_of: str = "",
    *,
    pseudonym_key: str | None = None,
    progress: Progress = print,
    spark=None,
    master: str | None = None,
    trend_months: int = 12,
    schema_prefix: str = "",
    catalog: str = "databases",
    reference_folder: Path | None = None,
) -> dict[str, str | Path]:
    """Run the whole pipeline on Spark; returns ``{"schema.table": output location}`` (a Path for local output).

    ``spark``: a session to use (e.g. from Databricks Connect); else one is started (``master``, default
    ``local[2]`` unless spark-submit set one). ``schema_prefix`` names the Spark databases ``<prefix>raw`` ...
    (the SQL files are remapped), for shared metastores; ``catalog="views"`` registers temporary views instead of
    databases and tables (see ``_Tables``). ``pseudonym_key`` defaults to
    PRAKTIJKVARIATIE_PSEUDONYM_KEY (see pipelines/ingest/pseudonymise.py).
    """
    from pipelines.benchmarks.assets import NoValidClaimsError
    from pipelines.ingest.pseudonymise import pseudonym_key as configured_key

    key = pseudonym_key or configured_key()
    profile = load_profile(policy, required=required_parameters(benchmarks()))  # fail before reading anything
    as_of_date = date.fromisoformat(as_of) if as_of else None
    spark = spark or spark_session(master)
    _apply_sql_conf(spark)
    tables = _Tables(spark, out_dir, schema_prefix, catalog, progress)

    _load_reference(spark, tables, reference_folder or reference_dir())
    _load_landing(spark, tables, landing_dir, out_dir, key, progress)

    for model in in_dependency_order(models("staging")):
        tables.save(model.table, tables.sql(model.sql))

    latest, lines = tables.sql("SELECT max(service_date) AS latest, count(*) AS n FROM staging.claim_lines").first()
    if not lines:
        raise NoValidClaimsError("no valid claim lines were loaded: check raw.load_manifest and staging.rejected_rows")
    run_id = f"spark-{uuid.uuid4()}"
    tables.save("core.run_parameters", spark.createDataFrame(
        [(as_of_date or latest, policy, _now(), run_id)],
        "as_of DATE, policy STRING, computed_at TIMESTAMP_NTZ, dagster_run_id STRING"))
    tables.save("core.policy_parameters", spark.createDataFrame(
        profile.rows(), "policy STRING, benchmark STRING, parameter STRING, value STRING, source STRING"))
    for model in in_dependency_order(models("core")):
        tables.save(model.table, tables.sql(model.sql))
    items = benchmarks()
    for model in in_dependency_order([b.model for b in items]):
        tables.save(model.table, tables.sql(model.sql))
    tables.save("marts.benchmark_results", tables.sql(results_sql(items)))
    tables.save("marts.provider_scorecard", tables.sql(scorecard_sql(items)))
    if trend_months > 0:
        tables.save("marts.benchmark_trends", _trends(spark, tables, items, trend_months))
    tables.save("marts.profile_comparison", _profile_comparison(spark, tables, items))
    return dict(tables.written)


def _load_reference(spark, tables: _Tables, folder: Path) -> None:
    """reference/*.csv with their column types, read on the driver (they ship with the code)."""
    import csv

    for name, columns in REFERENCE_TABLES.items():
        path = Path(folder) / f"{name}.csv"
        if not path.is_file():
            raise ReferenceDataError(f"reference table {path} is missing")
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter=",", quotechar='"')
            next(reader, None)  # the header; the columns are REFERENCE_TABLES's, in order
            rows = []
            for number, record in enumerate(reader, start=2):
                if not record:
                    continue
                if len(record) != len(columns):
                    raise ReferenceDataError(f"reference table {path}, row {number}: {len(record)} values, "
                                             f"expected {len(columns)}")
                try:
                    rows.append(tuple(_typed(v, t) for v, t in zip(record, columns.values())))
                except (ValueError, ArithmeticError) as error:
                    raise ReferenceDataError(f"reference table {path}, row {number}: {error}") from error
        index = [list(columns).index(k) for k in KEYS[name]]
        keys = [tuple(r[i] for i in index) for r in rows]
        if not rows or len(set(keys)) != len(keys):
            raise ReferenceDataError(f"reference table {path}: {len(rows)} rows, {len(keys) - len(set(keys))} "
                                     f"duplicated keys ({', '.join(KEYS[name])})")
        ddl = ", ".join(f"{c} {_spark_type(t)}" for c, t in columns.items())
        tables.save(f"reference.{name}", spark.createDataFrame(rows, ddl))


def _spark_type(duckdb_type: str) -> str:
    upper = duckdb_type.upper()
    return {"VARCHAR": "STRING", "INTEGER": "INT"}.get(upper, upper)


def _typed(text: str, duckdb_type: str):
    """A reference CSV value as DuckDB's read_csv types it (an empty value is NULL)."""
    if text == "":
        return None
    upper = duckdb_type.upper()
    if upper == "INTEGER":
        return int(text.strip())
    if upper == "BOOLEAN":
        lowered = text.strip().lower()
        if lowered in ("true", "t", "1", "yes", "y"):
            return True
        if lowered in ("false", "f", "0", "no", "n"):
            return False
        raise ValueError(f"not a boolean: {text!r}")
    if upper.startswith("DECIMAL"):
        scale = int(upper.split(",")[1].rstrip(") "))
        return Decimal(text.strip()).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    return text


def _load_landing(spark, tables: _Tables, landing: str | Path, out_dir: str | Path, key: str,
                  progress: Progress) -> None:
    from pyspark.sql import functions as F

    files, ignored = _list_landing(spark, landing)
    for name in ignored:
        progress(f"ignored {name}: not a claims* or contracts* .csv/.parquet file")
    _checksums(spark, files, _is_local(landing))
    csv_files = [f for f in files if f.fmt == "csv"]
    lines = None
    if csv_files:
        lines = _numbered_lines(spark, csv_files).persist()
        _inspect_csv(spark, csv_files, lines)

    parts: dict[str, list] = {k.name: [] for k in KINDS}
    rejected_parts = []
    for item in files:
        if item.fmt == "parquet":
            progress(f"reading {item.name}")
            rows = _parse_parquet(spark, item, key)
            if rows is not None:
                parts[item.kind.name].append(rows)
    readable = [f for f in csv_files if not f.quarantined]
    records = _records(lines, readable) if readable else None
    groups: dict[tuple, list[LandingFile]] = {}
    for item in readable:
        if not item.quarantined:  # _records may have quarantined it (an unclosed quote)
            progress(f"reading {item.name}")
            groups.setdefault((item.kind.name, item.delimiter, tuple(item.header)), []).append(item)
    for (kind_name, _delimiter, _header), group in groups.items():
        rows, rejected = _parse_csv(records, group, key)
        parts[kind_name].append(rows)
        rejected_parts.append(rejected)

    for kind in KINDS:
        frame = _union(parts[kind.name]) if parts[kind.name] else _empty(spark, _kind_ddl(kind))
        tables.save(stored_table(kind), frame)
        tables.save(f"raw.{kind.name}", tables.sql(raw_text_view_sql(kind)))  # DuckDB's view, as a table
    tables.save("raw.rejected_lines",
                _union(rejected_parts) if rejected_parts else _empty(spark, RAW_DDL["rejected_lines"]))
    if lines is not None:
        lines.unpersist()

    # per file: rows stored, lines rejected, and the decimal separator of its amounts (as the DuckDB loader sniffs)
    counts: dict[int, dict] = {}
    comma = "^\\s*-?[0-9.]*,[0-9]+\\s*$"
    for kind in KINDS:
        decimal_hit = F.lit(False)
        for column in kind.decimal_columns:
            decimal_hit = decimal_hit | F.coalesce(F.col(column).rlike(comma), F.lit(False))
        for r in tables.table("raw", kind.name).groupBy("load_id").agg(
                F.count("*").alias("rows"), F.max(decimal_hit.cast("int")).alias("comma")).collect():
            counts.setdefault(r.load_id, {})["rows"] = r.rows
            counts[r.load_id]["comma"] = bool(r.comma)
    for r in tables.table("raw", "rejected_lines").groupBy("load_id").count().collect():
        counts.setdefault(r.load_id, {})["rejected"] = r["count"]

    manifest = []
    for item in files:
        if item.quarantined:
            progress(f"quarantined {item.name}: {item.reason}")
            _quarantine(item, out_dir)
            manifest.append((item.load_id, item.name, item.kind.name, item.checksum, item.size, "quarantined",
                             None, 0, 0, None, None, None, item.reason, _now()))
            continue
        got = counts.get(item.load_id, {})
        rows, rejected = got.get("rows", 0), got.get("rejected", 0)
        separator = "," if got.get("comma") else "."  # a typed Parquet amount never has a comma
        ignored_columns = ", ".join(sorted(set(item.header) - set(item.kind.columns))) or None
        manifest.append((item.load_id, item.name, item.kind.name, item.checksum, item.size, "loaded",
                         rows + rejected, rows, rejected, item.delimiter, separator, ignored_columns, None, _now()))
    tables.save("raw.load_manifest", spark.createDataFrame(manifest, RAW_DDL["load_manifest"]))


def _union(frames: list):
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def _quarantine(item: LandingFile, out_dir: str | Path) -> None:
    """A copy of the file and its reason under out_dir/quarantine (local output only; elsewhere the manifest
    row has the reason)."""
    if not (_is_local(out_dir) and _is_local(item.location)):
        return
    folder = Path(out_dir) / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{stamp}_{item.name}"
    shutil.copy2(item.location, target)
    target.with_name(target.name + ".reason.txt").write_text((item.reason or "") + "\n", encoding="utf-8")


def _trends(spark, tables: _Tables, items, months: int):
    """marts.benchmark_trends as pipelines/benchmarks/trends.py builds it: at each month end the core and mart SQL
    run over core.claim_lines up to that date, into scratch tables scratch_core.* and scratch_marts.* (the same
    SCRATCH mapping of the SQL), which are dropped at the end."""
    (as_of,) = tables.table("core", "run_parameters").select("as_of").first()
    core_models = [m for m in in_dependency_order(models("core")) if m.name not in TAKEN_AS_IS]
    columns = _trend_columns()
    results = []
    for period_end in month_ends(as_of, months):
        selected = columns.format(month=period_end.month, end=period_end.isoformat())
        if period_end == as_of:
            # at the as-of date itself the trend is what this run published: core.claim_lines already ends there
            results.append(spark.sql(f"SELECT {selected} FROM {tables.name('marts', 'benchmark_results')} "
                                     f"WHERE year = {period_end.year}"))
            continue
        end = f"DATE'{period_end.isoformat()}'"
        tables.save_scratch(SCRATCH["core"], "run_parameters", spark.sql(
            f"SELECT {end} AS as_of, policy, computed_at, dagster_run_id FROM {tables.name('core', 'run_parameters')}"))
        tables.save_scratch(SCRATCH["core"], "policy_parameters", tables.table("core", "policy_parameters"))
        tables.save_scratch(SCRATCH["core"], "claim_lines", spark.sql(
            f"SELECT l.* FROM {tables.name('core', 'claim_lines')} AS l WHERE l.service_date <= {end}"))
        for model in core_models:
            tables.save_scratch(SCRATCH["core"], model.name, tables.sql(model.sql, SCRATCH))
        for b in items:
            tables.save_scratch(SCRATCH["marts"], b.name, tables.sql(b.model.sql, SCRATCH))
        month = tables.sql(results_sql(items), SCRATCH).where(f"year = {period_end.year}").selectExpr(
            *_split_select(selected))
        results.append(month.localCheckpoint())  # kept: the scratch tables change for the next month end
    tables.drop_scratch()
    return _union(results)


def _profile_comparison(spark, tables: _Tables, items):
    """marts.profile_comparison as pipelines/benchmarks/profile_comparison.py builds it: the marts under every
    profile in profiles/, rebuilding only the core tables that read the policy parameters."""
    from pyspark.sql import functions as F

    from pipelines.benchmarks.profile_comparison import policy_dependent_models
    from pipelines.benchmarks.profiles import available_profiles

    rebuilt, kept = policy_dependent_models()
    for table in sorted({m.name for m in kept} | {"claim_lines", "run_parameters"}):
        tables.save_scratch(SCRATCH["core"], table, tables.table("core", table))
    required = required_parameters(items)
    results = []
    for name in available_profiles():
        profile = load_profile(name, required=required)
        tables.save_scratch(SCRATCH["core"], "policy_parameters", spark.createDataFrame(
            profile.rows(), "policy STRING, benchmark STRING, parameter STRING, value STRING, source STRING"))
        for model in rebuilt:
            tables.save_scratch(SCRATCH["core"], model.name, tables.sql(model.sql, SCRATCH))
        for b in items:
            tables.save_scratch(SCRATCH["marts"], b.name, tables.sql(b.model.sql, SCRATCH))
        frame = tables.sql(results_sql(items), SCRATCH).select(
            F.lit(profile.name).alias("policy"), "benchmark", "provider_agb", F.col("year").cast("int"),
            "provider_type", "numerator", "denominator", "value", "threshold", "meets_norm", "volume")
        results.append(frame.localCheckpoint())  # kept: the scratch tables change for the next profile
    tables.drop_scratch()
    return _union(results)


def _split_select(select_list: str) -> list[str]:
    """'a, CAST(b AS INT) AS b' -> ['a', 'CAST(b AS INT) AS b'] (top-level commas only)."""
    parts, depth, current = [], 0, ""
    for char in select_list:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()] if current.strip() else parts


def _trend_columns() -> str:
    """The select list of a trend row, from the DuckDB table definition (TRENDS_DDL in trends.py): month and
    period_end for the month end, every other column from the results row, with the definition's types."""
    import sqlglot

    from pipelines.benchmarks.trends import TRENDS_DDL

    out = []
    for column in sqlglot.parse_one(TRENDS_DDL, read="duckdb").this.expressions:
        name, kind = column.name, column.args["kind"].sql(dialect="spark")
        if name == "month":
            out.append("{month} AS month")
        elif name == "period_end":
            out.append("DATE'{end}' AS period_end")
        else:
            out.append(f"CAST({name} AS {kind}) AS {name}")
    return ", ".join(out)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# --- command line -----------------------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main_spark(args: argparse.Namespace) -> int:
    """``praktijkvariatie run --engine spark``: the run's tables as Parquet under DATA_DIR/spark/ (a local Spark
    session unless ``--spark-master`` names a cluster)."""
    from pipelines.benchmarks.assets import NoValidClaimsError
    from pipelines.benchmarks.profiles import ProfileError

    data_dir = Path(args.data_dir).resolve()
    landing = getattr(args, "landing", None)
    if not landing:
        landing = data_dir / "sample_landing"
        if not landing.is_dir() or not any(landing.iterdir()):
            from sample_data.generate import generate

            _say(f"no --landing given: generating the sample data set in {landing}")
            generate(landing, progress=_say)
    elif _is_local(landing):
        landing = Path(landing).resolve()
    as_of = getattr(args, "as_of", None)
    as_of = as_of.isoformat() if isinstance(as_of, date) else (as_of or "")
    out_dir = data_dir / "spark"
    spark = None
    try:
        spark = spark_session(getattr(args, "spark_master", None))
        _say(f"running on Spark {spark.version} ({spark.conf.get('spark.master', 'remote')}): landing {landing}, "
             f"policy {args.policy}, as-of {as_of or 'latest service date'}")
        outputs = run_spark(landing, out_dir, policy=args.policy, as_of=as_of, progress=_say, spark=spark,
                            trend_months=int(os.environ.get("PRAKTIJKVARIATIE_TREND_MONTHS", "12")))
    except (SparkEngineError, ProfileError, ReferenceDataError, NoValidClaimsError, FileNotFoundError) as error:
        print(f"\npraktijkvariatie run --engine spark FAILED: {error}")
        return 1
    finally:
        if spark is not None:
            spark.stop()
    print("\npraktijkvariatie run --engine spark succeeded")
    print(f"  parquet:  {out_dir}/<schema>/<table>/")
    for table in sorted(t for t in outputs if t.startswith("marts.")):
        print(f"  {table}: {outputs[table]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.engines.spark`` (or spark-submit of this file): for clusters and Databricks jobs."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.engines.spark",
        description="Run the praktijkvariatie SQL on Spark: landing folder in, Parquet tables out (docs/spark.md).")
    parser.add_argument("--landing", required=True, help="landing folder: a path or URI (s3a://, abfss://, dbfs:/...)")
    parser.add_argument("--out", required=True, help="where the Parquet tables go: a path or URI")
    parser.add_argument("--policy", default="default")
    parser.add_argument("--as-of", default="", help="YYYY-MM-DD (default: latest service_date loaded)")
    parser.add_argument("--master", default=None, help="Spark master (default: spark-submit's, else local[2])")
    parser.add_argument("--schema-prefix", default="", help="prefix of the Spark databases (raw, staging, ...)")
    parser.add_argument("--catalog", choices=("databases", "views"), default="databases",
                        help="register the tables in Spark databases (default) or as temporary views only")
    parser.add_argument("--trend-months", type=int, default=12, help="month ends in marts.benchmark_trends")
    args = parser.parse_args(argv)
    spark = spark_session(args.master)
    outputs = run_spark(args.landing, args.out, policy=args.policy, as_of=args.as_of, progress=_say, spark=spark,
                        trend_months=args.trend_months, schema_prefix=args.schema_prefix, catalog=args.catalog)
    for table, location in sorted(outputs.items()):
        print(f"{table}\t{location}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
