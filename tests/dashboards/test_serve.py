"""The pieces of `praktijkvariatie serve` that can be tested without starting Dagster (~15-40 s): the static
dashboards server and stopping a whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipelines.serve import dagster_environment, start_dashboard_server, stop_process_group


def _get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_dashboard_server_serves_the_folder_and_a_hint_without_it(tmp_path):
    folder = tmp_path / "dashboards"
    server = start_dashboard_server(folder, port=0)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        status, body, _ = _get(base + "index.html")
        assert status == 503 and b"No dashboards yet" in body
        folder.mkdir()
        (folder / "index.html").write_text("<html>scorecard</html>")
        status, body, headers = _get(base + "index.html")
        assert status == 200 and body == b"<html>scorecard</html>"
        assert headers.get("Cache-Control") == "no-cache"
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_stop_process_group_stops_the_leader_and_its_children(tmp_path):
    child_pid = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; "
              f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(child_pid)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 20
    while not child_pid.exists() or not child_pid.read_text():
        assert time.monotonic() < deadline, "child did not start"
        time.sleep(0.05)
    child = int(child_pid.read_text())
    started = time.monotonic()
    stop_process_group(proc, steps=((signal.SIGINT, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)))
    assert proc.poll() is not None
    assert time.monotonic() - started < 15
    try:
        os.kill(child, 0)
        alive = not Path(f"/proc/{child}/status").read_text().count("State:\tZ")
    except ProcessLookupError:
        alive = False
    assert not alive, "the child process survived"


def test_dagster_environment_points_at_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("PRAKTIJKVARIATIE_LANDING", raising=False)
    (tmp_path / "sample_landing").mkdir()
    env = dagster_environment(tmp_path, tmp_path / "dagster_home", "http://127.0.0.1:8080/")
    assert env["PRAKTIJKVARIATIE_DATA_DIR"] == str(tmp_path)
    assert env["PRAKTIJKVARIATIE_LANDING"] == str(tmp_path / "sample_landing")
    assert env["DAGSTER_HOME"] == str(tmp_path / "dagster_home")
    assert env["PRAKTIJKVARIATIE_DASHBOARDS_URL"] == "http://127.0.0.1:8080/"
