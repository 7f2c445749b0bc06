"""Import Great Expectations in the background when the loading step starts.

Importing GX takes ~2 s of one core (it loads every expectation class, pandas and SQLAlchemy; 6-8 s where
the libraries' bytecode is not compiled, see the Makefile). The first check of a run needs it; a nightly run is a
new process, so without this every run waits for the import at its first check. The loading step
(``raw_extracts``, in every run however it is started) starts it, so that the import overlaps with loading the
landing files: DuckDB works outside Python's global lock (in a nightly run, with little to load, the first check
still waits for most of it). It is not started earlier, when the run starts: Dagster's
run set-up (writing the run and an event per planned asset to its storage) is Python too, and beside the import it
took ~2.8 s instead of ~0.8 s; a nightly run with last month's lines took ~2 s longer in all. A check that comes
before the import is done waits for it to finish (Python's import lock), and one that comes after finds GX
imported. An import that fails here fails again, and is reported, in the check.
"""

from __future__ import annotations

import importlib
import threading

_started: threading.Thread | None = None
_lock = threading.Lock()


# Modules imported here, in the calling thread, before GX's import starts beside it: ones whose import makes code
# the run's own thread already calls reach into them. Importing ``sqlalchemy.orm`` registers how SQLAlchemy
# inspects any object, which Dagster's event log then does for every query with ``IN (...)`` at the start of each
# step; while the GX thread was half-way through that import, such a step failed with "partially initialized
# module 'sqlalchemy.orm.exc'". ~0.07 s.
IMPORTED_FIRST = ("sqlalchemy.orm",)


def start() -> threading.Thread:
    """Start importing GX in a background thread (once per process); returns the thread."""
    global _started
    with _lock:
        if _started is None:
            for name in IMPORTED_FIRST:
                importlib.import_module(name)
            _started = threading.Thread(target=_import, name="praktijkvariatie-import-gx", daemon=True)
            _started.start()
        return _started


def _import() -> None:
    try:
        from pipelines.quality import gx_runner  # noqa: F401
    except Exception:  # noqa: BLE001 - the check that needs GX imports it again and reports the error
        pass
