"""``praktijkvariatie``: run the pipeline, generate sample data, serve the UI and dashboards."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

#: Dagster's SQLite event log with its connections kept open (pipelines/event_log.py). Added to a dagster.yaml that
#: configures no storage of its own, also to one written by an earlier version.
EVENT_LOG_YAML = """# Dagster's SQLite event log, its connections kept open between writes (pipelines/event_log.py)
event_log_storage:
  module: pipelines.event_log
  class: PooledSqliteEventLogStorage
"""
DAGSTER_YAML = """# Dagster instance of praktijkvariatie (written by the CLI; edit freely: it is not overwritten).
telemetry:
  enabled: false
concurrency:
  runs:
    # One writer: runs that write the warehouse never overlap (queued runs wait their turn). A step of any other
    # run that writes DuckDB waits for the warehouse's writer lock (pipelines/warehouse.py).
    tag_concurrency_limits:
      - key: praktijkvariatie/writes
        value: warehouse
        limit: 1
""" + EVENT_LOG_YAML


def ensure_dagster_home(data_dir: Path) -> Path:
    """Use DAGSTER_HOME if set, else DATA_DIR/dagster_home, created with telemetry off. A dagster.yaml that chooses
    no event storage of its own gets the event log that keeps its files open (EVENT_LOG_YAML)."""
    home = Path(os.environ.get("DAGSTER_HOME") or (data_dir / "dagster_home")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    elif not _configures_storage(config):
        with config.open("a", encoding="utf-8") as out:
            out.write("\n" + EVENT_LOG_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _configures_storage(config: Path) -> bool:
    """Whether a dagster.yaml chooses where Dagster stores events (``storage`` or ``event_log_storage``)."""
    import yaml

    settings = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    return "storage" in settings or "event_log_storage" in settings


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_generate(args: argparse.Namespace) -> int:
    from sample_data.generate import generate

    years = [int(y) for y in str(args.years).split(",")]
    result = generate(Path(args.out), providers=args.providers, clients=args.clients, years=years,
                      seed=args.seed, fmt=args.format, progress=_say)
    print(f"sample landing folder: {Path(args.out).resolve()}")
    print(result)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.engine == "spark":
        from pipelines.engines.spark import main_spark

        return main_spark(args)
    from pipelines.run import run_pipeline

    data_dir = Path(args.data_dir).resolve()
    landing = Path(args.landing).resolve() if args.landing else None
    if landing is None:
        landing = data_dir / "sample_landing"
        if not landing.is_dir() or not any(landing.iterdir()):
            from sample_data.generate import generate

            _say(f"no --landing given: generating the sample data set in {landing}")
            generate(landing, progress=_say)
    ensure_dagster_home(data_dir)
    from pipelines.resources import settings_from_env

    tuning = settings_from_env()  # memory limit, threads, cell size, trend months from PRAKTIJKVARIATIE_*
    outcome = run_pipeline(
        landing_dir=landing, data_dir=data_dir, policy=args.policy,
        as_of=args.as_of.isoformat() if args.as_of else "", progress=_say,
        memory_limit=tuning.memory_limit, incremental_memory_limit=tuning.incremental_memory_limit,
        threads=tuning.threads, min_cell_size=tuning.min_cell_size,
        trend_months=tuning.trend_months, full_rebuild=args.full_rebuild or tuning.full_rebuild,
    )
    print(outcome.report())
    return outcome.exit_code


def cmd_serve(args: argparse.Namespace) -> int:
    from pipelines.serve import serve

    ensure_dagster_home(Path(args.data_dir).resolve())
    return serve(Path(args.data_dir).resolve(), args.ui_port, args.dashboards_port)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="praktijkvariatie", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="load extracts, compute the benchmarks, publish warehouse and dashboards")
    run.add_argument("--landing", help="folder with claims*/contracts* extracts (default: generated sample data)")
    run.add_argument("--data-dir", default="data", help="where the warehouse and dashboards go (default: data)")
    run.add_argument("--as-of", type=_date, help="data cut-off date (default: latest service_date loaded)")
    run.add_argument("--policy", default="default", help="policy profile (default, cz, caresq, zorg_en_zekerheid)")
    run.add_argument("--full-rebuild", action="store_true",
                     help="rebuild every table from raw instead of bringing the big ones up to date with new files")
    run.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                     help="duckdb: the embedded warehouse (default); spark: the same SQL on Spark, Parquet under "
                          "DATA_DIR/spark/ (docs/spark.md)")
    run.add_argument("--spark-master", default=None, help="Spark master for --engine spark (default: local[2])")
    run.set_defaults(func=cmd_run)

    srv = sub.add_parser("serve", help="start the Dagster UI (with schedule and sensor) and serve the dashboards "
                                        "on localhost; Ctrl-C stops both")
    srv.add_argument("--data-dir", default="data")
    srv.add_argument("--ui-port", type=int, default=3000)
    srv.add_argument("--dashboards-port", type=int, default=8080)
    srv.set_defaults(func=cmd_serve)

    gen = sub.add_parser("generate", help="write a realistic sample landing folder")
    gen.add_argument("--out", default="data/sample_landing")
    gen.add_argument("--providers", type=int, default=40)
    gen.add_argument("--clients", type=int, default=4000)
    gen.add_argument("--years", default="2025,2026", help="comma-separated service years")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    gen.set_defaults(func=cmd_generate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
