"""Everything the dashboards read from the warehouse, as small Polars frames (one row per provider-year or
per provider-month at most; never a client row), with small client counts suppressed at load time.

Privacy: a benchmark's numerator, denominator and volume columns that count clients (see
:func:`is_client_count`) are set to null where they are below ``min_cell_size``, with a ``*_suppressed`` flag;
a value computed from fewer clients than the minimum (its denominator or volume is such a count) is set to
null with ``value_suppressed``. Suppressing here, before any chart or table is built, means no page can show
a suppressed number by accident. Nothing here selects a client key or client identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import polars as pl

from pipelines.benchmarks.registry import Benchmark

TURNOVER_COLUMNS = ("utilisation", "projected_utilisation", "projected_amount", "status", "first_warning_date",
                    "warning_level", "realised_amount", "omzetmaximum")
DECILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MIN_PROVIDERS_FOR_DECILES = 5


def is_client_count(column: str) -> bool:
    """Whether a mart column counts clients: its name has the word ``clients`` (``clients``,
    ``clients_in_scope``, ``clients_light_zvt``), but not ``..._per_client`` amounts."""
    return "clients" in column.lower().split("_")


@dataclass(frozen=True)
class RunInfo:
    as_of: date
    policy: str
    computed_at: datetime | None

    @property
    def as_of_year(self) -> int:
        return self.as_of.year

    @property
    def computed_text(self) -> str:
        return f"{self.computed_at:%Y-%m-%d %H:%M} UTC" if self.computed_at else "unknown"


@dataclass
class BenchmarkData:
    benchmark: Benchmark
    rows: pl.DataFrame  # provider-years: see benchmark_rows()
    client_columns: dict[str, bool]  # role (numerator/denominator/volume) -> counts clients
    turnover: pl.DataFrame | None = None  # extra columns for a turnover-cap style mart
    parameters: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def name(self) -> str:
        return self.benchmark.name

    @property
    def counts_clients(self) -> bool:
        return any(self.client_columns.values())


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    (found,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [schema, name]
    ).fetchone()
    return bool(found)


def table_columns(con: duckdb.DuckDBPyConnection, qualified: str) -> list[str]:
    schema, name = qualified.split(".")
    return [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, name]).fetchall()]


def run_info(con: duckdb.DuckDBPyConnection) -> RunInfo:
    as_of, policy, computed_at = con.execute(
        "SELECT as_of, policy, computed_at FROM core.run_parameters LIMIT 1").fetchone()
    return RunInfo(as_of=as_of, policy=policy, computed_at=computed_at)


def policy_parameters(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per benchmark and parameter, the values of list parameters joined with ', '."""
    return con.sql("""
        SELECT benchmark, parameter, string_agg(value, ', ' ORDER BY value) AS value,
               string_agg(DISTINCT source, '; ') AS source
        FROM core.policy_parameters
        GROUP BY benchmark, parameter
        ORDER BY benchmark, parameter
    """).pl()


def profile_comparison(con: duckdb.DuckDBPyConnection) -> pl.DataFrame | None:
    """Every benchmark value under every policy profile (marts.profile_comparison), or None without it."""
    if not table_exists(con, "marts.profile_comparison"):
        return None
    return con.sql("""
        SELECT policy, benchmark, provider_agb, year, value, meets_norm, volume
        FROM marts.profile_comparison
    """).pl()


def scorecard(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("""
        SELECT provider_agb, year, provider_name, provider_type,
               CAST(norms_evaluated AS BIGINT) AS norms_evaluated, CAST(norms_missed AS BIGINT) AS norms_missed
        FROM marts.provider_scorecard
        ORDER BY year DESC, provider_agb
    """).pl()


def benchmark_rows(con: duckdb.DuckDBPyConnection, b: Benchmark, min_cell_size: int) -> BenchmarkData:
    """Per provider-year: numerator, denominator, value, volume, threshold, meets_norm (suppressed)."""
    rows = con.sql(f"""
        SELECT m.provider_agb, m.year, y.provider_name, coalesce(y.provider_type, 'onbekend') AS provider_type,
               CAST(m.{b.numerator_column} AS DOUBLE) AS numerator,
               CAST(m.{b.denominator_column} AS DOUBLE) AS denominator,
               CAST(m.{b.value_column} AS DOUBLE) AS value,
               CAST(m.{b.volume_column} AS DOUBLE) AS volume,
               CAST(m.{b.threshold_column} AS DOUBLE) AS threshold,
               m.meets_norm
        FROM {b.table} AS m
        LEFT JOIN core.provider_years AS y ON y.provider_agb = m.provider_agb AND y.year = m.year
        ORDER BY m.year, m.provider_agb
    """).pl()
    roles = {"numerator": b.numerator_column, "denominator": b.denominator_column, "volume": b.volume_column}
    client_columns = {role: is_client_count(col) for role, col in roles.items()}
    data = BenchmarkData(b, suppress(rows, client_columns, min_cell_size), client_columns)
    columns = set(table_columns(con, b.table))
    if set(TURNOVER_COLUMNS) <= columns:
        data.turnover = con.sql(f"""
            SELECT m.provider_agb, m.year, y.provider_name, coalesce(y.provider_type, 'onbekend') AS provider_type,
                   CAST(m.realised_amount AS DOUBLE) AS realised_amount,
                   CAST(m.omzetmaximum AS DOUBLE) AS omzetmaximum,
                   CAST(m.utilisation AS DOUBLE) AS utilisation,
                   CAST(m.projected_amount AS DOUBLE) AS projected_amount,
                   CAST(m.projected_utilisation AS DOUBLE) AS projected_utilisation,
                   m.status, m.first_warning_date,
                   CAST(m.warning_level AS DOUBLE) AS warning_level,
                   CAST(m.{b.threshold_column} AS DOUBLE) AS warning_threshold,
                   {"CAST(m.threshold AS DOUBLE)" if "threshold" in columns else "1.0"} AS cap_threshold,
                   m.meets_norm
            FROM {b.table} AS m
            LEFT JOIN core.provider_years AS y ON y.provider_agb = m.provider_agb AND y.year = m.year
            ORDER BY m.year, m.provider_agb
        """).pl()
    return data


def suppress(rows: pl.DataFrame, client_columns: dict[str, bool], min_cell_size: int) -> pl.DataFrame:
    """Null out client counts below ``min_cell_size`` and values computed from them; add ``*_suppressed``.

    * a numerator / denominator / volume that counts clients and is below the minimum is suppressed;
    * a value whose denominator or volume is such a count is suppressed, and so are its numerator and
      denominator (otherwise numerator / denominator would give the value back, e.g. the observed and
      expected cost per client of a provider with 4 clients).
    """
    roles = [r for r in ("numerator", "denominator", "volume") if r in rows.columns]
    small = {r: (pl.col(r).is_not_null() & (pl.col(r) < min_cell_size)) if client_columns.get(r) else pl.lit(False)
             for r in roles}
    value_flag = pl.lit(False)
    for role in ("denominator", "volume"):
        if client_columns.get(role) and role in small:
            value_flag = value_flag | small[role]
    # only a value that exists is "suppressed"; a provider without clients in scope simply has no value
    value_flag = value_flag & pl.col("value").is_not_null()
    flags = {r: small[r] | value_flag if r in ("numerator", "denominator") else small[r] for r in roles}
    out = rows.with_columns([flags[r].alias(f"{r}_suppressed") for r in roles]
                            + [value_flag.alias("value_suppressed")])
    return out.with_columns(
        [pl.when(pl.col(f"{r}_suppressed")).then(None).otherwise(pl.col(r)).alias(r) for r in roles]
        + [pl.when(pl.col("value_suppressed")).then(None).otherwise(pl.col("value")).alias("value")]
    )


def trends(con: duckdb.DuckDBPyConnection, data: BenchmarkData, min_cell_size: int) -> tuple[pl.DataFrame | None, str]:
    """Monthly year-to-date rows of one benchmark from marts.benchmark_trends, suppressed like the marts.

    Returns (rows or None, note). Without the table: (None, explanation). When the benchmark's volume counts
    clients but the trend table has no volume for it, the monthly values cannot be checked against the
    minimum cell size and are withheld (the note says so).
    """
    if not table_exists(con, "marts.benchmark_trends"):
        return None, "No monthly trend: the table marts.benchmark_trends is not in this warehouse."
    b = data.benchmark
    columns = set(table_columns(con, "marts.benchmark_trends"))
    threshold = "CAST(t.threshold AS DOUBLE)" if "threshold" in columns else "CAST(NULL AS DOUBLE)"
    if "volume" in columns:
        volume = "CAST(t.volume AS DOUBLE)"
    elif b.volume_column == b.denominator_column:
        volume = "CAST(t.denominator AS DOUBLE)"
    elif b.volume_column == b.numerator_column:
        volume = "CAST(t.numerator AS DOUBLE)"
    else:
        volume = "CAST(NULL AS DOUBLE)"
    rows = con.sql(f"""
        SELECT t.provider_agb, t.year, t.month, t.period_end,
               CAST(t.numerator AS DOUBLE) AS numerator, CAST(t.denominator AS DOUBLE) AS denominator,
               CAST(t.value AS DOUBLE) AS value, {volume} AS volume, {threshold} AS threshold, t.meets_norm
        FROM marts.benchmark_trends AS t
        WHERE t.benchmark = $benchmark
        ORDER BY t.period_end, t.provider_agb
    """, params={"benchmark": b.name}).pl()
    rows = suppress(rows, data.client_columns, min_cell_size)
    if data.client_columns["volume"] and volume == "CAST(NULL AS DOUBLE)":
        rows = rows.with_columns(pl.lit(None, dtype=pl.Float64).alias("value"),
                                 pl.lit(True).alias("value_suppressed"))
        return rows, ("Monthly values are withheld: marts.benchmark_trends has no client count (volume) for "
                      f"this benchmark, so months with fewer than {min_cell_size} clients cannot be recognised.")
    return rows, ""


def decile_frame(rows: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Peer deciles p10..p90 of ``value`` per group over evaluated providers (meets_norm not null) with a
    published value; groups with fewer than MIN_PROVIDERS_FOR_DECILES providers are left out."""
    peers = rows.filter(pl.col("meets_norm").is_not_null() & pl.col("value").is_not_null())
    aggs = [pl.len().alias("providers")] + [
        pl.col("value").quantile(q, interpolation="linear").alias(f"p{int(q * 100)}") for q in DECILES
    ] + [pl.col("threshold").max().alias("threshold")]
    return (peers.group_by(by).agg(aggs)
            .filter(pl.col("providers") >= MIN_PROVIDERS_FOR_DECILES)
            .sort(by))
