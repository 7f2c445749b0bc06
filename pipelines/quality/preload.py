"""Import Great Expectations in the background when a run starts.

Importing GX takes ~2 s of one core (it loads every expectation class, pandas and SQLAlchemy; 6-8 s where
the libraries' bytecode is not compiled, see the Makefile). The first check of a run needs it; a nightly run is a
new process, so without this every run waits for the import at its first check. Started at the beginning of the
run, the import overlaps with loading the landing files (DuckDB works outside Python's global lock); a check that
comes before it is done waits for it to finish (Python's import lock), and one that comes after finds GX imported.
An import that fails here fails again, and is reported, in the check.
"""

from __future__ import annotations

import threading

_started: threading.Thread | None = None
_lock = threading.Lock()


def start() -> threading.Thread:
    """Start importing GX in a background thread (once per process); returns the thread."""
    global _started
    with _lock:
        if _started is None:
            _started = threading.Thread(target=_import, name="praktijkvariatie-import-gx", daemon=True)
            _started.start()
        return _started


def _import() -> None:
    try:
        from pipelines.quality import gx_runner  # noqa: F401
    except Exception:  # noqa: BLE001 - the check that needs GX imports it again and reports the error
        pass
