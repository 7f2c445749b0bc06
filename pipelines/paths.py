"""Where the project's own files are. Deployments may point reference data and profiles elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = PROJECT_ROOT / "sql"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DASHBOARDS_DIR = PROJECT_ROOT / "dashboards"


def reference_dir() -> Path:
    """Reference code tables: the shipped sample tables unless PRAKTIJKVARIATIE_REFERENCE_DIR names others."""
    return Path(os.environ.get("PRAKTIJKVARIATIE_REFERENCE_DIR", PROJECT_ROOT / "reference"))


def profiles_dir() -> Path:
    """Policy profiles: the shipped ones unless PRAKTIJKVARIATIE_PROFILES_DIR names others."""
    return Path(os.environ.get("PRAKTIJKVARIATIE_PROFILES_DIR", PROJECT_ROOT / "profiles"))
