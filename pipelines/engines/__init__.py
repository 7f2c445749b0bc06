"""Execution engines for the SQL in ``sql/``.

DuckDB is the embedded default (the Dagster assets in ``pipelines/``). :mod:`pipelines.engines.spark` runs the
same SQL files, profiles and registry on Spark (a local session, a standalone cluster, Databricks), translated by
:mod:`pipelines.engines.dialect`; see docs/spark.md.
"""

ENGINES = ("duckdb", "spark")
