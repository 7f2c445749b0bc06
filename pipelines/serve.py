"""``praktijkvariatie serve``: the Dagster UI and daemon (``dagster dev``) plus the dashboards over HTTP.

* ``dagster dev -m pipelines.definitions`` runs in its own process group (so it can be stopped by its PID
  together with the webserver, daemon and code server it starts), with DAGSTER_HOME and the
  PRAKTIJKVARIATIE_* variables of this data directory, so the UI materialises the same assets as the CLI.
* A static HTTP server on 127.0.0.1 serves DATA_DIR/dashboards (no caching, so a freshly swapped folder
  shows at once). Dashboard assets link to it (PRAKTIJKVARIATIE_DASHBOARDS_URL); browsers do not open
  file:// links from the http:// Dagster UI.

Ctrl-C or SIGTERM stops both: dagster gets SIGINT (its own graceful shutdown), then SIGTERM, then SIGKILL
if it has not exited after a grace period.
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipelines.resources import ENV_PREFIX

HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS_URL_ENV = f"{ENV_PREFIX}DASHBOARDS_URL"
STOP_STEPS = ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))

NO_DASHBOARDS = b"""<!doctype html><html><head><meta charset="utf-8"><title>No dashboards yet</title></head>
<body style="font-family:sans-serif;margin:2em"><h1>No dashboards yet</h1>
<p>Materialise the pipeline (the <code>dashboards</code> assets) in the Dagster UI or run
<code>praktijkvariatie run</code>; the pages appear here when the run has finished.</p></body></html>"""


class DashboardHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the dashboards folder read-only; quiet; never cached; a hint page while there is none."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def send_head(self):
        if not Path(self.directory).is_dir():
            self.send_response(503)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(NO_DASHBOARDS)))
            self.end_headers()
            return _Body(NO_DASHBOARDS)
        return super().send_head()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


class _Body:
    """A file-like body for send_head()."""

    def __init__(self, data: bytes):
        self.data = data

    def read(self, *_):
        data, self.data = self.data, b""
        return data

    def close(self) -> None:
        pass


def start_dashboard_server(directory: Path, port: int = 8080, host: str = HOST) -> http.server.ThreadingHTTPServer:
    """Serve ``directory`` on host:port in a background thread (port 0: any free port). Stop it with
    ``server.shutdown(); server.server_close()``."""
    handler = functools.partial(DashboardHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="dashboards-http", daemon=True).start()
    return server


def dagster_environment(data_dir: Path, dagster_home: Path, dashboards_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(dagster_home)
    env[f"{ENV_PREFIX}DATA_DIR"] = str(data_dir)
    if f"{ENV_PREFIX}LANDING" not in env:
        # the landing folder `praktijkvariatie run` uses: DATA_DIR/landing, else the generated sample data
        landing = data_dir / "landing"
        if not landing.is_dir() and (data_dir / "sample_landing").is_dir():
            landing = data_dir / "sample_landing"
        env[f"{ENV_PREFIX}LANDING"] = str(landing)
    env[DASHBOARDS_URL_ENV] = dashboards_url
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def start_dagster(env: dict[str, str], port: int = 3000, host: str = HOST) -> subprocess.Popen:
    """``dagster dev`` in a new session (its own process group, pgid = its pid)."""
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "pipelines.definitions", "-h", host, "-p", str(port)]
    return subprocess.Popen(cmd, env=env, cwd=str(PROJECT_ROOT), start_new_session=True)


def stop_process_group(proc: subprocess.Popen, steps=STOP_STEPS) -> None:
    """Stop ``proc`` and everything in its process group: SIGINT, then SIGTERM, then SIGKILL."""
    pgid = proc.pid  # start_new_session: the group id is the leader's pid
    for index, (sig, grace) in enumerate(steps):
        if proc.poll() is not None and not _group_alive(pgid):
            return
        if index:
            print(f"dagster is still running: sending {signal.Signals(sig).name}", flush=True)
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(pgid):
                return
            time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(data_dir: Path, ui_port: int = 3000, dashboards_port: int = 8080, *, host: str = HOST) -> int:
    """Run the Dagster UI + daemon and the dashboards server until Ctrl-C / SIGTERM (or dagster exits).
    Returns an exit code: 0 after a requested stop, else dagster's own."""
    from pipelines.cli import ensure_dagster_home

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    home = ensure_dagster_home(data_dir)
    server = start_dashboard_server(data_dir / "dashboards", dashboards_port, host)
    dashboards_url = f"http://{host}:{server.server_address[1]}/"
    proc = start_dagster(dagster_environment(data_dir, home, dashboards_url), ui_port, host)

    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    print(f"Dagster UI:  http://{host}:{ui_port}  (starts in ~15 s; DAGSTER_HOME={home})", flush=True)
    print(f"Dashboards:  {dashboards_url}index.html  (serving {data_dir / 'dashboards'})", flush=True)
    print("Press Ctrl-C to stop both.", flush=True)
    try:
        while not stop.is_set() and proc.poll() is None:
            stop.wait(0.5)
    finally:
        print("stopping dagster and the dashboards server ...", flush=True)
        stop_process_group(proc)
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stop.is_set() else (proc.returncode or 0)
