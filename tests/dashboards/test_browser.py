"""Every generated page opened in headless Chromium (no network): each figure is drawn by plotly.js and no
script error occurs. Skipped when the machine has no chromium (``make test`` installs it)."""

from __future__ import annotations

import json
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from dashboards.preview import Browser, _screenshots_in_one_browser, dump_dom, find_browser, screenshot, serving
from dashboards.render import benchmark_file

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (apt-get install chromium)"),
]

PLOT_DIV = re.compile(r'<div id="(fig-[a-z-]+)" class="pv-plot"')


def _check(page: Path) -> list[str]:
    """Problems of one page: empty list when every figure rendered without an error."""
    source = page.read_text(encoding="utf-8")
    expected = PLOT_DIV.findall(source)
    dom = dump_dom(page, budget_ms=5000, timeout=90)
    problems = []
    if "<body" not in dom:
        return [f"{page.name}: chromium returned no DOM"]
    errors = re.search(r'data-render-errors="([^"]*)"', dom)
    if errors:
        problems.append(f"{page.name}: script error: {errors.group(1)}")
    rendered = re.search(r'data-plots-rendered="(\d+)"', dom)
    if not rendered or int(rendered.group(1)) != len(expected):
        problems.append(f"{page.name}: {rendered.group(0) if rendered else 'no data-plots-rendered'}, "
                        f"expected {len(expected)} figures")
    for fig_id in expected:
        # after Plotly.newPlot the div carries js-plotly-plot and contains the main SVG of the plot
        opening = re.search(rf'<div id="{fig_id}" class="[^"]*"', dom)
        start = dom.find(f'<div id="{fig_id}"')
        following = dom[start:start + 20000]
        if not opening or "js-plotly-plot" not in opening.group(0) or 'class="main-svg"' not in following:
            problems.append(f"{page.name}: figure {fig_id} was not drawn")
    if dom.count('class="main-svg"') < len(expected):
        problems.append(f"{page.name}: fewer main-svg elements than figures")
    return problems


def test_every_page_renders_offline_without_errors(rendered):
    pages = sorted(rendered.out_dir.glob("*.html"))
    assert len(pages) >= 2 + rendered.provider_pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'<(script|link)\b[^>]*(src|href)="(https?:)?//', text), page.name
    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for result in pool.map(_check, pages) for p in result]
    assert not problems, "\n".join(problems)


def test_a_page_with_a_broken_script_is_detected(rendered, tmp_path):
    """The check above would notice a failure: a page whose figure JSON is corrupt reports an error."""
    source = (rendered.out_dir / "index.html").read_text(encoding="utf-8")
    broken = tmp_path / "index.html"
    broken.write_text(re.sub(r'(id="fig-missing-data">)\{', r"\1{oops", source, count=1), encoding="utf-8")
    for name in ("plotly.min.js", "dashboard.js", "dashboard.css"):
        (tmp_path / name).symlink_to(rendered.out_dir / name)
    problems = _check(broken)
    assert any("script error" in p for p in problems), problems


def test_preview_screenshot(rendered, tmp_path):
    png = tmp_path / "overview.png"
    assert screenshot(rendered.out_dir / "index.html", png, fragment="preview")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_browser_takes_every_preview(rendered, tmp_path):
    pages = [rendered.out_dir / "index.html", *sorted(rendered.out_dir.glob("benchmark_*.html"))[:2]]
    pairs = [(page, tmp_path / f"{page.stem}.png") for page in pages]
    # the DevTools path itself, not the per-page fallback that screenshots() would use if it failed
    done = _screenshots_in_one_browser(pairs, width=1200, height=1000, scale=0.5, fragment="preview", timeout=60)
    assert done == {png: True for _, png in pairs}
    for _, png in pairs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(data[16:20], "big") == 600  # width 1200 at scale 0.5


def test_previews_are_drawn_from_pages_served_on_the_loopback(rendered, tmp_path):
    pages = [rendered.out_dir / "index.html", *sorted(rendered.out_dir.glob("benchmark_*.html"))[:1]]
    pairs = [(page, tmp_path / f"{page.stem}.png") for page in pages]
    with serving(rendered.out_dir) as base_url, Browser() as browser:
        assert base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(base_url + "plotly.min.js") as answer:  # what the pages load from there
            assert answer.status == 200
        done = browser.screenshots(pairs, fragment="preview", base_url=base_url)
        drawn = browser.evaluate("document.body.dataset.plotsRendered")
    assert done == {png: True for _, png in pairs}
    assert int(drawn) >= 1  # the last page drew its figures: its scripts came from the server


def test_a_preview_draws_the_figures_of_the_first_screen_only(rendered):
    page = sorted(rendered.out_dir.glob("benchmark_*.html"))[0]
    expected = PLOT_DIV.findall(page.read_text(encoding="utf-8"))
    dom = dump_dom(page, budget_ms=5000, timeout=90, fragment="preview")
    assert "data-render-errors" not in dom
    drawn = int(re.search(r'data-plots-rendered="(\d+)"', dom).group(1))
    assert 1 <= drawn < len(expected)
    assert dom.count('class="main-svg"') >= drawn


SCORECARD_STATE = """(function () {
  var table = document.getElementById("pv-scorecard");
  return {rows: Array.prototype.map.call(table.tBodies[0].rows, function (r) {
            return [r.cells[0].textContent, Number(r.cells[3].textContent), Number(r.cells[4].textContent)]; }),
          shown: document.getElementById("pv-shown").textContent,
          footer: Array.prototype.map.call(table.querySelectorAll("tfoot td[data-bench]"), function (td) {
            return [td.dataset.bench, td.textContent]; })};
})()"""


def _set(element_id: str, value) -> str:
    prop = "checked" if isinstance(value, bool) else "value"
    return (f"(function () {{ var el = document.getElementById('{element_id}'); el.{prop} = {json.dumps(value)}; "
            f"el.dispatchEvent(new Event(el.type === 'text' ? 'input' : 'change')); return true; }})()")


def test_the_scorecard_shows_the_rows_its_filters_select(rendered, tiny_warehouse, tmp_path):
    with duckdb.connect(str(tiny_warehouse.published), read_only=True) as con:
        year = con.execute("SELECT max(year) FROM marts.provider_scorecard").fetchone()[0]
        per_year = dict(con.execute("SELECT year, count(*) FROM marts.provider_scorecard GROUP BY year").fetchall())
        missing = {agb for (agb,) in con.execute("SELECT provider_agb FROM marts.provider_scorecard "
                                                 "WHERE year = ? AND norms_missed > 0", [year]).fetchall()}
        other = con.execute("SELECT min(policy) FROM marts.profile_comparison WHERE policy <> "
                            "(SELECT policy FROM core.run_parameters)").fetchone()[0]
    numbers = rendered.page("overview").numbers
    with serving(rendered.out_dir) as base_url, Browser() as browser:
        browser.screenshots([(rendered.out_dir / "index.html", tmp_path / "index.png")], base_url=base_url)
        state = browser.evaluate(SCORECARD_STATE)
        # by default: this run's profile, the as-of year; the footer counts the rows shown
        assert len(state["rows"]) == per_year[year] == int(state["shown"])
        assert {r[1] for r in state["rows"]} == {year}
        assert {b: text.split(" of ")[0] for b, text in state["footer"]} == {
            b: str(numbers[f"missing_{b}"]) for b, _ in state["footer"]}
        browser.evaluate(_set("pv-missing", True))
        assert {r[0] for r in browser.evaluate(SCORECARD_STATE)["rows"]} == missing
        browser.evaluate(_set("pv-missing", False))
        browser.evaluate(_set("pv-year", ""))
        assert len(browser.evaluate(SCORECARD_STATE)["rows"]) == sum(per_year.values())
        # sorted by norms missed, descending; the order holds when a filter changes the rows
        browser.evaluate("document.querySelectorAll('#pv-scorecard thead th')[4].click()")
        browser.evaluate("document.querySelectorAll('#pv-scorecard thead th')[4].click()")
        browser.evaluate(_set("pv-policy", other))
        rows = browser.evaluate(SCORECARD_STATE)["rows"]
        assert len(rows) == sum(per_year.values())
        assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)
        browser.evaluate(_set("pv-search", rows[-1][0]))
        assert {r[0] for r in browser.evaluate(SCORECARD_STATE)["rows"]} == {rows[-1][0]}


def test_the_preview_browser_compiles_plotly_before_any_page_is_rendered():
    import logging

    from pipelines.dashboards.assets import _Previews

    previews = _Previews(logging.getLogger("test"))
    try:
        browser = previews._browser.result()  # opened, and the warm-up page loaded, while pages would render
        assert browser.evaluate("typeof Plotly.newPlot") == "function"
        assert browser.evaluate("location.href").startswith("http://127.0.0.1:")
    finally:
        previews.close()


def test_a_closed_browser_leaves_no_folder_in_the_temp_directory():
    # Chromium makes a folder for its process-singleton socket in its temp directory and, ended by a kill, left it
    # there: one per dashboards run in /tmp.
    browser = Browser()
    singleton = Path(browser._profile.name) / "SingletonSocket"
    folder = Path(singleton.readlink()).parent
    assert folder.is_dir() and folder.name.startswith("org.chromium.Chromium.")
    browser.close()
    assert not folder.exists()
    assert not singleton.parent.exists()  # the profile itself


ROWS_SHOWN = """(function () {
  var table = document.querySelector("table.pv-table"), body = table.tBodies[0];
  while (body.rows.length < 60) { body.appendChild(body.rows[0].cloneNode(true)); }
  return Array.prototype.map.call(body.rows, function (r) { return getComputedStyle(r).display !== "none"; });
})()"""


def test_a_preview_leaves_the_rows_after_the_50th_of_a_table_out(rendered):
    """The first screen holds at most ~40 rows; a preview does not lay out the rest. The page itself shows them all."""
    page = rendered.out_dir / benchmark_file("group_treatment_share")
    with serving(rendered.out_dir) as base_url, Browser() as browser:
        browser.load(base_url + page.name + "#preview")
        assert browser.evaluate(ROWS_SHOWN) == [True] * 50 + [False] * 10
        browser.load(base_url + "index.html")  # another page first: a new hash alone would not load the page again
        browser.load(base_url + page.name)
        assert browser.evaluate(ROWS_SHOWN) == [True] * 60
