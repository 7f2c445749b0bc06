"""Headless Chromium from the machine: PNG previews of pages (for Dagster metadata) and the rendered DOM
(for the browser test). No network: background networking, component updates and sync are disabled, and the
pages themselves load only local files. Without a ``chromium`` on PATH the callers skip these steps."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BROWSER_NAMES = ("chromium", "chromium-browser")
BASE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--disable-crash-reporter",
    "--disable-breakpad",
)


def find_browser() -> str | None:
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run Chromium with a fresh profile in its own process group; on timeout the whole group is killed
    (Chromium's zygote and renderer processes would otherwise outlive the main process)."""
    with tempfile.TemporaryDirectory(prefix="pv-chromium-") as profile:
        cmd = [*args[:1], *BASE_FLAGS, f"--user-data-dir={profile}", *args[1:]]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise
        finally:
            _kill_group(proc)  # anything left behind in the group
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 1000, scale: float = 0.5,
               budget_ms: int = 4000, timeout: float = 60, fragment: str = "") -> bool:
    """Write a PNG of ``page`` (window width x height, scaled by ``scale``; scrolled to ``#fragment`` when
    given). False when it did not work."""
    browser = find_browser()
    if browser is None:
        return False
    png.parent.mkdir(parents=True, exist_ok=True)
    try:
        _run([browser, f"--screenshot={png}", f"--window-size={width},{height}",
              f"--force-device-scale-factor={scale}", f"--virtual-time-budget={budget_ms}",
              Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")], timeout)
    except (subprocess.TimeoutExpired, OSError):
        return False
    return png.is_file() and png.stat().st_size > 0


def dump_dom(page: Path, budget_ms: int = 5000, timeout: float = 60) -> str:
    """The page's DOM after scripts ran (``--dump-dom``); raises when no browser is installed."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("chromium is not installed")
    result = _run([browser, "--dump-dom", f"--virtual-time-budget={budget_ms}", "--window-size=1200,900",
                   Path(page).resolve().as_uri()], timeout)
    return result.stdout.decode("utf-8", errors="replace")


def screenshots(pairs: list[tuple[Path, Path]], workers: int = 2, **kwargs) -> dict[Path, bool]:
    """Screenshots of several pages, ``workers`` browsers at a time: {png: written}."""
    if not pairs or find_browser() is None:
        return {png: False for _, png in pairs}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = pool.map(lambda pair: screenshot(pair[0], pair[1], **kwargs), pairs)
        return {png: ok for (_, png), ok in zip(pairs, done, strict=True)}
