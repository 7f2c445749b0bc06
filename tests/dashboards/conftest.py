"""A tiny warehouse for the dashboard tests: generated sample claims (8 providers, 2 years) run through the
real Dagster assets once per test session, shared by pytest-xdist workers (built under a file lock in the
common base temp folder).

Only the assets the dashboards read are materialised (everything upstream of the scorecard, the trend table and
the profile comparison), without the data-quality checks, and the warehouse is then published as a run would: the same SQL,
in ~8 s instead of the whole graph's ~30-60 s."""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

PROVIDERS = 8
CLIENTS = 400
YEARS = (2025, 2026)


@dataclass(frozen=True)
class TinyWarehouse:
    landing: Path
    data_dir: Path

    @property
    def published(self) -> Path:
        return self.data_dir / "warehouse.duckdb"


TARGETS = (("marts", "provider_scorecard"), ("marts", "benchmark_trends"), ("marts", "profile_comparison"))


def _build(target: Path) -> None:
    import dagster as dg

    from pipelines.definitions import all_assets
    from pipelines.resources import PipelineSettings
    from pipelines.warehouse import Warehouse
    from sample_data.generate import generate

    shutil.rmtree(target, ignore_errors=True)
    generate(target / "landing", providers=PROVIDERS, clients=CLIENTS, years=YEARS, seed=11)
    assets = all_assets()
    defined = {key for a in assets for key in a.keys}
    wanted = [dg.AssetKey(list(k)) for k in TARGETS if dg.AssetKey(list(k)) in defined]
    selection = dg.AssetSelection.assets(*wanted).upstream().required_multi_asset_neighbors().without_checks()
    settings = PipelineSettings(landing_dir=str(target / "landing"), data_dir=str(target / "data"))
    result = dg.materialize(assets, selection=selection, resources={"settings": settings},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success, "building the tiny warehouse failed"
    Warehouse(target / "data").publish()
    (target / "built").write_text("ok", encoding="utf-8")


@pytest.fixture(scope="session")
def tiny_warehouse(tmp_path_factory: pytest.TempPathFactory) -> TinyWarehouse:
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = shared / "pv_dashboards_tiny"
    with open(shared / "pv_dashboards_tiny.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (target / "built").exists():
                _build(target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return TinyWarehouse(landing=target / "landing", data_dir=target / "data")


@pytest.fixture(scope="session")
def rendered(tiny_warehouse: TinyWarehouse, tmp_path_factory: pytest.TempPathFactory):
    """The dashboards of the tiny warehouse, rendered once per worker into its own folder."""
    from dashboards.render import build_dashboards

    out = tmp_path_factory.mktemp("rendered") / "dashboards"
    return build_dashboards(tiny_warehouse.published, out, min_cell_size=10)
