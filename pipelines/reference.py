"""Reference code tables shipped with the project (``reference/*.csv``), loaded as ``reference.<name>``.

The shipped tables are samples: codes marked ``verified=false`` follow the NZa numbering pattern but are not
confirmed. A deployment points PRAKTIJKVARIATIE_REFERENCE_DIR at a folder with the NZa codelists in the same
columns.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.paths import reference_dir

REFERENCE_TABLES: dict[str, dict[str, str]] = {
    "prestatiecodes": {
        "prestatiecode": "VARCHAR", "family": "VARCHAR", "activity": "VARCHAR", "setting": "INTEGER",
        "beroepscategorie": "INTEGER", "duration_min": "INTEGER", "group_size": "INTEGER",
        "description": "VARCHAR", "verified": "BOOLEAN",
    },
    "max_tariffs": {"prestatiecode": "VARCHAR", "year": "INTEGER", "max_tariff": "DECIMAL(12,2)"},
    "settings": {"setting": "INTEGER", "name": "VARCHAR"},
    "zorgvraagtypen": {"zvt": "INTEGER", "supercluster": "VARCHAR"},
    "zorglabels": {"zorglabel": "VARCHAR", "name": "VARCHAR"},
    "beroepscategorieen": {"beroepscategorie": "INTEGER", "name": "VARCHAR"},
}
KEYS = {"prestatiecodes": ("prestatiecode",), "max_tariffs": ("prestatiecode", "year"), "settings": ("setting",),
        "zorgvraagtypen": ("zvt",), "zorglabels": ("zorglabel",), "beroepscategorieen": ("beroepscategorie",)}


class ReferenceDataError(Exception):
    """Reference data is missing or broken: nothing downstream can be trusted."""


def load_reference(con: duckdb.DuckDBPyConnection, folder: Path | None = None) -> dict[str, int]:
    folder = folder or reference_dir()
    counts = {}
    for name, columns in REFERENCE_TABLES.items():
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise ReferenceDataError(f"reference table {path} is missing")
        try:
            con.execute(
                f"CREATE OR REPLACE TABLE reference.{name} AS SELECT * FROM read_csv($path, header = true, "
                f"columns = $columns, auto_detect = false, delim = ',', quote = '\"')",
                {"path": str(path), "columns": columns},
            )
        except duckdb.Error as error:
            raise ReferenceDataError(f"reference table {path} cannot be read: {error}") from error
        key = ", ".join(KEYS[name])
        (duplicates,) = con.execute(
            f"SELECT count(*) FROM (SELECT {key} FROM reference.{name} GROUP BY {key} HAVING count(*) > 1)"
        ).fetchone()
        (rows,) = con.execute(f"SELECT count(*) FROM reference.{name}").fetchone()
        if rows == 0 or duplicates:
            raise ReferenceDataError(f"reference table {path}: {rows} rows, {duplicates} duplicated keys ({key})")
        counts[name] = rows
    return counts
