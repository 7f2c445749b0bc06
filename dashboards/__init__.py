"""The praktijkvariatie dashboards: static HTML pages with Plotly charts, rendered from the warehouse.

:mod:`dashboards.render` builds every page from the benchmark registry, :mod:`dashboards.data` reads the marts
(with small client counts suppressed), :mod:`dashboards.funnel` computes the control limits,
:mod:`dashboards.charts` the figures and :mod:`dashboards.preview` drives headless Chromium. The Dagster
assets are in :mod:`pipelines.dashboards`.
"""
