"""Headless Chromium from the machine: PNG previews of pages (for Dagster metadata) and the rendered DOM
(for the browser test). No network: background networking, component updates and sync are disabled, and the
pages themselves load only local files. Without a ``chromium`` on PATH the callers skip these steps."""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BROWSER_NAMES = ("chromium", "chromium-browser")
BASE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--disable-crash-reporter",
    "--disable-breakpad",
)
#: DevTools events a caller may wait for after they arrived (kept until claimed); other events are dropped.
KEPT_EVENTS = {"Page.loadEventFired"}
#: Resolves when the page's scripts have drawn its charts (dashboard.js sets data-plots-rendered, or records an
#: error; at most ~5 s) and two animation frames later, when they are painted.
DRAWN = """new Promise(function (resolve) {
  var deadline = Date.now() + 5000;
  (function check() {
    var body = document.body;
    if ((body && (body.dataset.plotsRendered || body.dataset.renderErrors)) || Date.now() > deadline) {
      requestAnimationFrame(function () { requestAnimationFrame(resolve); });
    } else {
      setTimeout(check, 10);
    }
  })();
})"""


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
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                env=_environment(profile))
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise
        finally:
            _kill_group(proc)  # anything left behind in the group
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _environment(profile: str) -> dict[str, str]:
    """Chromium's environment: its temp directory is the profile folder, which the callers remove. Chromium makes a
    folder there for its process-singleton socket (``org.chromium.Chromium.*``) and removes it only when it exits by
    itself; the callers end it by killing its process group, which left one such folder in /tmp per run."""
    return {**os.environ, "TMPDIR": profile}


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


def dump_dom(page: Path, budget_ms: int = 5000, timeout: float = 60, fragment: str = "") -> str:
    """The page's DOM after scripts ran (``--dump-dom``); raises when no browser is installed."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("chromium is not installed")
    result = _run([browser, "--dump-dom", f"--virtual-time-budget={budget_ms}", "--window-size=1200,900",
                   Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")], timeout)
    return result.stdout.decode("utf-8", errors="replace")


#: A page that only loads plotly.min.js: opened by a browser before the pages are rendered, from the folder they
#: will be served from, so that the first preview does not wait for plotly.js to be compiled (~0.8 s).
WARM_UP_PAGE = ("pv-warm-up.html", '<!doctype html><html><head><meta charset="utf-8"><script src="plotly.min.js">'
                                   "</script></head><body></body></html>")

#: What a DevTools browser raises when it cannot start or stops answering (the callers fall back or skip).
BROWSER_ERRORS = (OSError, RuntimeError, TimeoutError, ValueError, KeyError)


def screenshots(pairs: list[tuple[Path, Path]], workers: int = 2, width: int = 1200, height: int = 1000,
                scale: float = 0.5, fragment: str = "", timeout: float = 60, browser: Browser | None = None,
                serve: Path | None = None, base_url: str = "") -> dict[Path, bool]:
    """Screenshots of several pages: {png: written}.

    One browser takes them all, driven over the DevTools protocol (starting Chromium costs more than rendering a
    page, ~1.5 s on two cores): ``browser`` when one was opened beforehand, else a new one; with ``serve``, the
    folder that holds the pages, they are loaded from it over HTTP (see :func:`serving`), or with ``base_url``
    from a server that is already serving them. If that fails, one ``--screenshot`` browser per page, ``workers``
    at a time."""
    if not pairs or find_browser() is None:
        return {png: False for _, png in pairs}
    try:
        with contextlib.ExitStack() as stack:
            if browser is None:
                browser = stack.enter_context(Browser(width, height, scale, timeout))
            if serve is not None and not base_url:
                base_url = stack.enter_context(serving(serve))
            return browser.screenshots(pairs, fragment, base_url)
    except BROWSER_ERRORS:
        pass
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = pool.map(lambda pair: screenshot(pair[0], pair[1], width=width, height=height, scale=scale,
                                                fragment=fragment, timeout=timeout), pairs)
        return {png: ok for (_, png), ok in zip(pairs, done, strict=True)}


def _screenshots_in_one_browser(pairs: list[tuple[Path, Path]], width: int, height: int, scale: float,
                                fragment: str, timeout: float) -> dict[Path, bool]:
    with Browser(width, height, scale, timeout) as browser:
        return browser.screenshots(pairs, fragment)


class Browser:
    """One headless Chromium tab driven over the DevTools pipe. Open it (``with``) before the pages exist to have
    its start-up (~1.5 s) overlap with rendering them; :meth:`screenshots` then only draws and captures."""

    def __init__(self, width: int = 1200, height: int = 1000, scale: float = 0.5, timeout: float = 60) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="pv-chromium-")
        self._devtools = _DevTools(self._profile.name, timeout)
        try:
            devtools = self._devtools
            target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = devtools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            devtools.call("Page.enable", session=self._session)
            devtools.call("Emulation.setDeviceMetricsOverride",
                          {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False},
                          self._session)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._devtools.__exit__()
        self._profile.cleanup()

    def screenshots(self, pairs: list[tuple[Path, Path]], fragment: str = "", base_url: str = "") -> dict[Path, bool]:
        """{png: written} for each (page, png). With ``base_url`` the pages are loaded from there by file name (see
        :func:`serving`) instead of as files."""
        devtools, session = self._devtools, self._session
        done = {}
        for page, png in pairs:
            url = (base_url + Path(page).name if base_url else Path(page).resolve().as_uri()) + \
                (f"#{fragment}" if fragment else "")
            self.load(url)
            devtools.call("Runtime.evaluate", {"awaitPromise": True, "expression": DRAWN}, session)
            data = devtools.call("Page.captureScreenshot", {"format": "png"}, session)["data"]
            png.parent.mkdir(parents=True, exist_ok=True)
            png.write_bytes(base64.b64decode(data))
            done[png] = png.stat().st_size > 0
        return done

    def load(self, url: str) -> None:
        """Open ``url`` and wait for its load event (for example to compile plotly.min.js before any page exists:
        :data:`WARM_UP_PAGE`)."""
        self._devtools.call("Page.navigate", {"url": url}, self._session)
        self._devtools.event("Page.loadEventFired", self._session)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page last loaded (a promise is awaited)."""
        answer = self._devtools.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                          "returnByValue": True}, self._session)
        if "exceptionDetails" in answer:
            raise RuntimeError(f"script error: {answer['exceptionDetails'].get('text')}")
        return answer["result"].get("value")


SHUTDOWN_POLL_S = 0.02


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free loopback port for the duration; yields its base URL.

    Chromium keeps the compiled code of a script loaded over HTTP (not of a file:// one), so the pages after the
    first do not compile plotly.min.js (4.6 MB) again: ~0.15 s less per page.

    The server looks for the shutdown request every :data:`SHUTDOWN_POLL_S` seconds: with the standard library's
    0.5 s, leaving this block waited 0.25 s on average, at the end of the dashboards step."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S},
                              name="praktijkvariatie-preview-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


class _DevTools:
    """Chromium with ``--remote-debugging-pipe``: JSON messages ending in a NUL byte, commands on the browser's
    file descriptor 3 and answers on 4 (a shell maps them to this side's pipes)."""

    def __init__(self, profile: str, timeout: float) -> None:
        browser = find_browser()
        if browser is None:
            raise OSError("chromium is not installed")
        self.timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self._unclaimed: list[dict] = []
        self.proc = subprocess.Popen(
            ["sh", "-c", 'exec "$@" 3<&0 4>&1 0</dev/null 1>/dev/null', "sh", browser, *BASE_FLAGS,
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
            env=_environment(profile))

    def __enter__(self) -> _DevTools:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        _kill_group(self.proc)
        self.proc.wait()

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.proc.stdin.write(json.dumps(message).encode("utf-8") + b"\0")
        self.proc.stdin.flush()
        answer = self._receive(lambda m, wanted=self._next_id: m.get("id") == wanted)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def event(self, method: str, session: str) -> dict:
        return self._receive(lambda m: m.get("method") == method and m.get("sessionId") == session)

    def _receive(self, wanted) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for message in self._unclaimed:
                if wanted(message):
                    self._unclaimed.remove(message)
                    return message
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if wanted(message):
                    return message
                if "id" not in message and message.get("method") in KEPT_EVENTS:
                    self._unclaimed.append(message)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
