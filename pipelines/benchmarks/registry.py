"""The benchmark registry: every ``sql/marts/<name>.sql`` with a ``<name>.yml`` beside it is a benchmark.

The YAML is the benchmark's short metadata (title, definition, unit, direction, policy source, which columns
hold numerator, denominator, value and threshold, and which profile parameters it reads; ``per_provider: true``
when a provider's rows depend only on its own lines and contracts, not on other providers'). Everything generic —
the Dagster assets, the long-format results table, the scorecard, the dashboard pages, the docs — is driven by
this registry, so adding a benchmark means adding those two files and its parameters in the profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from pipelines.paths import SQL_DIR
from pipelines.sql_models import SqlModel

REQUIRED_FIELDS = ("title", "definition", "unit", "direction", "value_column", "numerator_column",
                   "denominator_column", "norm", "policy_source", "parameters")
UNITS = ("share", "index", "euro", "count")
DIRECTIONS = ("higher_is_better", "lower_is_better")


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    definition: str
    unit: str
    direction: str
    value_column: str
    numerator_column: str
    denominator_column: str
    volume_column: str
    threshold_column: str
    norm: str
    policy_source: str
    why_it_matters: str
    parameters: tuple[str, ...]
    model: SqlModel
    # A provider's rows depend only on its own lines and contracts (and the policy): a nightly run recomputes its
    # trend for the providers whose lines changed only. False (the default) when it compares providers, as the
    # cost per client does with its peer prices; tests/benchmarks/test_trends.py checks each true on an extract.
    per_provider: bool = False
    columns: dict[str, str] = field(default_factory=dict, hash=False, compare=False)  # COMMENT ON COLUMN texts

    @property
    def table(self) -> str:
        return f"marts.{self.name}"

    @property
    def specific_parameters(self) -> tuple[str, ...]:
        from pipelines.benchmarks.profiles import COMMON_PARAMETERS

        return tuple(p for p in self.parameters if p not in COMMON_PARAMETERS)


class RegistryError(ValueError):
    pass


def load_benchmarks(sql_dir: Path = SQL_DIR) -> list[Benchmark]:
    out = []
    for meta_path in sorted((sql_dir / "marts").glob("*.yml")):
        sql_path = meta_path.with_suffix(".sql")
        if not sql_path.is_file():
            raise RegistryError(f"{meta_path} has no SQL file {sql_path.name} beside it")
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
        missing = [f for f in REQUIRED_FIELDS if f not in meta]
        if missing:
            raise RegistryError(f"{meta_path}: missing field(s) {', '.join(missing)}")
        if meta["unit"] not in UNITS or meta["direction"] not in DIRECTIONS:
            raise RegistryError(f"{meta_path}: unit must be one of {UNITS}, direction one of {DIRECTIONS}")
        if not isinstance(meta.get("per_provider", False), bool):
            raise RegistryError(f"{meta_path}: per_provider must be true or false")
        model = SqlModel("marts", meta_path.stem, sql_path)
        if (model.incremental_key or "").startswith("provider_agb of") and not meta.get("per_provider", False):
            # the header says a provider's rows depend on its own lines only; the trend test checks that claim
            # for the benchmarks that make it in their .yml (tests/benchmarks/test_trends.py)
            raise RegistryError(f"{sql_path} is built by provider (-- materialise: incremental by provider_agb "
                                f"...), so {meta_path.name} must say per_provider: true")
        out.append(Benchmark(
            name=meta_path.stem,
            title=meta["title"],
            definition=meta["definition"],
            unit=meta["unit"],
            direction=meta["direction"],
            value_column=meta["value_column"],
            numerator_column=meta["numerator_column"],
            denominator_column=meta["denominator_column"],
            volume_column=meta.get("volume_column", meta["denominator_column"]),
            threshold_column=meta.get("threshold_column", "threshold"),
            norm=meta["norm"],
            policy_source=meta["policy_source"],
            why_it_matters=meta.get("why_it_matters", ""),
            parameters=tuple(meta["parameters"]),
            model=model,
            per_provider=meta.get("per_provider", False),
            columns=dict(meta.get("columns") or {}),
        ))
    return out


@cache
def benchmarks() -> tuple[Benchmark, ...]:
    return tuple(load_benchmarks())


def required_parameters(items: tuple[Benchmark, ...] | list[Benchmark]) -> dict[str, tuple[str, ...]]:
    return {b.name: b.specific_parameters for b in items}
