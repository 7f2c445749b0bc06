"""Policy profiles: YAML files in ``profiles/`` that set every benchmark parameter and cite its source.

A profile is published as ``core.policy_parameters`` (policy, benchmark, parameter, value, source): one row
per scalar parameter, one row per member of a list parameter. The mart SQL reads its parameters from there,
so a data engineer sees in the warehouse which parameters produced the numbers and which policy says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from pipelines.paths import profiles_dir

COMMON_PARAMETERS = ("threshold", "provider_types", "effective_from_year")


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    path: Path
    benchmarks: dict[str, dict[str, dict]]  # benchmark -> parameter -> {value, source}

    def value(self, benchmark: str, parameter: str):
        return self.benchmarks[benchmark][parameter]["value"]

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        out = []
        for benchmark, parameters in sorted(self.benchmarks.items()):
            for parameter, spec in sorted(parameters.items()):
                values = spec["value"] if isinstance(spec["value"], list) else [spec["value"]]
                for value in values:
                    text = str(value).lower() if isinstance(value, bool) else str(value)
                    out.append((self.name, benchmark, parameter, text, spec.get("source", "")))
        return out


def available_profiles(folder: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (folder or profiles_dir()).glob("*.yaml"))


def load_profile(name: str, folder: Path | None = None, required: dict[str, tuple[str, ...]] | None = None) -> Profile:
    """Read a profile; ``required`` maps each benchmark to the parameters its SQL reads."""
    folder = folder or profiles_dir()
    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise ProfileError(f"policy profile '{name}' not found in {folder} (available: {', '.join(available_profiles(folder))})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    benchmarks = data.get("benchmarks") or {}
    for benchmark, parameters in benchmarks.items():
        for parameter, spec in (parameters or {}).items():
            if not isinstance(spec, dict) or "value" not in spec:
                raise ProfileError(f"{path}: {benchmark}.{parameter} needs a 'value' (and a 'source')")
            if not spec.get("source"):
                raise ProfileError(f"{path}: {benchmark}.{parameter} does not cite its source")
    for benchmark, parameters in (required or {}).items():
        missing = [p for p in (*COMMON_PARAMETERS, *parameters) if p not in (benchmarks.get(benchmark) or {})]
        if missing:
            raise ProfileError(f"{path}: benchmark {benchmark} lacks parameter(s) {', '.join(missing)}")
    return Profile(name=data.get("name", name), title=data.get("title", name), path=path, benchmarks=benchmarks)


def publish_profile(con: duckdb.DuckDBPyConnection, profile: Profile) -> int:
    con.execute(
        "CREATE OR REPLACE TABLE core.policy_parameters (policy VARCHAR, benchmark VARCHAR, parameter VARCHAR, "
        "value VARCHAR, source VARCHAR)"
    )
    rows = profile.rows()
    con.executemany("INSERT INTO core.policy_parameters VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)
