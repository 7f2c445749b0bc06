"""The dashboards as Dagster assets: one step renders every page from the published warehouse into
DATA_DIR/dashboards (written beside it and swapped into place), and reports one materialisation per page:

* ``dashboards/overview`` -- index.html, the scorecard;
* ``dashboards/benchmark_<name>`` -- one per benchmark in the registry (benchmark_<name>.html);
* ``dashboards/providers`` -- the provider profiles (provider_<agb>.html).

Each carries a link to its page (a file:// URL, plus an http:// URL when ``praktijkvariatie serve`` serves the
folder), the path, its key numbers and, for the overview and the benchmark pages, a small PNG preview taken
with the machine's headless Chromium (skipped, with a note, when there is no ``chromium`` or when
PRAKTIJKVARIATIE_DASHBOARD_PREVIEWS=0).

The step reads the *published* warehouse read-only, so it depends on ``published_warehouse`` and must come
after it in the graph; it never takes the writer lock.
"""

import base64
import contextlib
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg

from dashboards.preview import BROWSER_ERRORS, WARM_UP_PAGE, Browser, find_browser, screenshots, serving
from dashboards.render import Page, RenderResult, benchmark_file, build_dashboards, plotly_js_path
from pipelines.benchmarks.registry import benchmarks
from pipelines.resources import ENV_PREFIX, PipelineSettings
from pipelines.transform.assets import asset_key

GROUP = "dashboards"
PREVIEWS_ENV = f"{ENV_PREFIX}DASHBOARD_PREVIEWS"  # "0" / "false": no screenshots
DASHBOARDS_URL_ENV = f"{ENV_PREFIX}DASHBOARDS_URL"  # set by `praktijkvariatie serve`: http://127.0.0.1:8080/
PUBLISHED = dg.AssetKey(["published_warehouse"])
OVERVIEW = dg.AssetKey(["dashboards", "overview"])
PROVIDERS = dg.AssetKey(["dashboards", "providers"])
KINDS = {"plotly", "html"}


def benchmark_page_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["dashboards", f"benchmark_{name}"])


def page_key(page: Page) -> dg.AssetKey:
    if page.key == "overview":
        return OVERVIEW
    if page.key == "providers":
        return PROVIDERS
    return dg.AssetKey(["dashboards", page.key])


def dashboard_specs() -> list[dg.AssetSpec]:
    common = [PUBLISHED, asset_key("core.run_parameters"), asset_key("core.provider_years")]
    items = benchmarks()
    specs = [dg.AssetSpec(
        OVERVIEW, group_name=GROUP, kinds=KINDS,
        deps=[*common, asset_key("marts.provider_scorecard"), asset_key("marts.benchmark_results"),
              *(asset_key(b.table) for b in items)],
        description="index.html: the scorecard (providers x benchmarks, meets / misses / not applicable), "
                    "how many providers miss each norm, links to every benchmark and provider page.",
    )]
    for b in items:
        specs.append(dg.AssetSpec(
            benchmark_page_key(b.name), group_name=GROUP, kinds=KINDS,
            deps=[*common, asset_key(b.table), asset_key("marts.benchmark_trends"),
                  asset_key("core.policy_parameters")],
            description=f"{benchmark_file(b.name)}: {b.title}. Funnel plot with control limits, distribution "
                        "with the threshold, peer deciles over months and the providers missing the norm.",
        ))
    specs.append(dg.AssetSpec(
        PROVIDERS, group_name=GROUP, kinds=KINDS,
        deps=[*common, asset_key("marts.provider_scorecard"), asset_key("marts.benchmark_trends"),
              *(asset_key(b.table) for b in items)],
        description="provider_<agb>.html: one profile per provider, every benchmark against its peers, the "
                    "monthly trend and earlier years.",
    ))
    return specs


def previews_enabled() -> bool:
    return os.environ.get(PREVIEWS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class _Previews:
    """PNG previews of the overview and benchmark pages, taken with Chromium on the other core while the provider
    pages are rendered. The browser starts when this object is made, before any page is rendered, so that its
    start-up overlaps with the rendering, and loads plotly.min.js from the loopback server of the previews' own
    folder (WARM_UP_PAGE), so that the first preview does not wait for it to be compiled; :meth:`start` (the
    ``after_main_pages`` hook of build_dashboards) copies the finished pages and the static files into that folder
    (the render folder is moved when rendering is done) and has the browser take the screenshots; :meth:`result`
    waits for them."""

    def __init__(self, log) -> None:
        self.log = log
        self.note = ""
        self._tmp = tempfile.TemporaryDirectory(prefix="pv-previews-")
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._browser = None
        self._future = None
        self._serving = contextlib.ExitStack()
        self._base_url = ""
        if not previews_enabled():
            self.note = f"preview skipped: {PREVIEWS_ENV} is off"
        elif find_browser() is None:
            self.note = "preview skipped: no chromium on this machine (apt-get install chromium)"
        else:
            folder = Path(self._tmp.name)
            shutil.copyfile(plotly_js_path(), folder / "plotly.min.js")  # the same file the pages will load
            (folder / WARM_UP_PAGE[0]).write_text(WARM_UP_PAGE[1], encoding="utf-8")
            self._browser = self._pool.submit(self._open_and_warm_up, folder)

    def _open_and_warm_up(self, folder: Path) -> Browser | None:
        browser = _open_browser()
        if browser is None:
            return None
        try:
            self._base_url = self._serving.enter_context(serving(folder))
            browser.load(self._base_url + WARM_UP_PAGE[0])
        except BROWSER_ERRORS:  # only a head start: the previews are taken all the same
            pass
        return browser

    def start(self, out_dir: Path, pages: list[Page]) -> None:
        if self.note:
            return
        folder = Path(self._tmp.name)
        for path in out_dir.iterdir():  # the main pages, the stylesheet and script (plotly.min.js is there)
            if path.is_file() and not (folder / path.name).exists():
                shutil.copyfile(path, folder / path.name)
        self._future = self._pool.submit(self._take, folder, pages)

    def _take(self, folder: Path, pages: list[Page]) -> dict[str, str]:
        started = time.perf_counter()
        pairs = [(folder / p.filename, folder / f"{p.key}.png") for p in pages]
        browser = self._browser.result()
        done = screenshots(pairs, fragment="preview", browser=browser, serve=folder, base_url=self._base_url)
        out = {p.key: base64.b64encode(png.read_bytes()).decode("ascii")
               for p, (_, png) in zip(pages, pairs, strict=True) if done.get(png)}
        self.log.info(f"{len(out)} dashboard previews in {time.perf_counter() - started:.1f} s after the main "
                      "pages were rendered")
        if len(out) < len(pages):
            self.note = "preview failed: chromium did not write a screenshot"
        return out

    def result(self) -> dict[str, str]:
        """{page key: base64 PNG}; empty when skipped (see ``note``)."""
        try:
            return self._future.result() if self._future is not None else {}
        finally:
            self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._browser is not None and self._browser.result() is not None:
            self._browser.result().close()
        self._serving.close()
        self._tmp.cleanup()


def _open_browser() -> Browser | None:
    try:
        return Browser()
    except BROWSER_ERRORS:
        return None  # screenshots() opens one of its own, or falls back to one browser per page


def _metadata(page: Page, result: RenderResult, preview: str | None, note: str) -> dict:
    path = result.out_dir / page.filename
    meta: dict = {
        "page": dg.MetadataValue.url(path.resolve().as_uri()),
        "path": dg.MetadataValue.path(str(path)),
    }
    base_url = os.environ.get(DASHBOARDS_URL_ENV, "")
    if base_url:
        meta["page_http"] = dg.MetadataValue.url(base_url.rstrip("/") + "/" + page.filename)
    if preview:
        meta["preview"] = dg.MetadataValue.md(f"![{page.title}](data:image/png;base64,{preview})")
    elif page.key != "providers":
        meta["preview"] = dg.MetadataValue.text(note or "preview skipped")
    meta["figures"] = page.figures
    for key, value in page.numbers.items():
        if value is None:
            continue
        meta[key] = round(value, 4) if isinstance(value, float) else value
    if result.run is not None:
        meta["as_of"] = result.run.as_of.isoformat()
        meta["policy"] = result.run.policy
    return meta


def dashboard_assets() -> list[dg.AssetsDefinition]:
    specs = dashboard_specs()

    @dg.multi_asset(specs=specs, name="dashboards", can_subset=False,
                    description="Render every dashboard page from the published warehouse into "
                                "DATA_DIR/dashboards (atomically swapped into place).")
    def dashboards(context: dg.AssetExecutionContext, settings: PipelineSettings):
        warehouse = settings.warehouse
        if not warehouse.published_path.is_file():
            raise FileNotFoundError(f"no published warehouse at {warehouse.published_path}: run the pipeline first")
        taking = _Previews(context.log)
        try:
            # the previous pages are deleted while the previews are taken (see swap_into_place)
            result = build_dashboards(warehouse.published_path, warehouse.dashboards_dir,
                                      min_cell_size=settings.min_cell_size, after_main_pages=taking.start,
                                      remove_old_in_background=True)
        except BaseException:
            taking.close()
            raise
        context.log.info(f"rendered {len(result.pages) - 1 + result.provider_pages} pages in "
                         f"{result.seconds:.1f} s ({result.total_bytes / 1e6:.1f} MB) into {result.out_dir}")
        previews, note = taking.result(), taking.note
        result.wait_for_old_folder_removed()
        for page in result.pages:
            meta = _metadata(page, result, previews.get(page.key), note)
            if page.key == "overview":
                meta.update(render_seconds=round(result.seconds, 2), size_mb=round(result.total_bytes / 1e6, 2),
                            pages=len(result.pages) - 1 + result.provider_pages)
            yield dg.MaterializeResult(asset_key=page_key(page), metadata=meta)

    return [dashboards]
