"""Dagster assets that render the dashboards (see :mod:`pipelines.dashboards.assets`)."""

from pipelines.dashboards.assets import dashboard_assets

__all__ = ["dashboard_assets"]
