"""The dashboards rendered from a tiny warehouse built by the real pipeline: every page exists, nothing
personal is published, suppressed values are not plotted, every figure is valid Plotly, and the pages are
generated from the registry (a new benchmark needs no dashboard code; a missing trend table is no error)."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from dashboards.preview import find_browser
from dashboards.render import benchmark_file, build_dashboards, plotly_js_path, provider_file, swap_into_place
from pipelines.benchmarks.registry import benchmarks

FIGURE_JSON = re.compile(r'<script type="application/json" id="(fig-[a-z-]+)-data">(.*?)</script>', re.S)


def figures(page: Path) -> dict[str, dict]:
    return {fid: json.loads(text.replace("<\\/", "</")) for fid, text in FIGURE_JSON.findall(page.read_text())}


def published_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.is_file()]


def test_every_page_exists(rendered, tiny_warehouse):
    out = rendered.out_dir
    assert (out / "index.html").is_file()
    for b in benchmarks():
        assert (out / benchmark_file(b.name)).is_file(), b.name
    with duckdb.connect(str(tiny_warehouse.published), read_only=True) as con:
        agbs = [r[0] for r in con.execute("SELECT DISTINCT provider_agb FROM marts.provider_scorecard").fetchall()]
    assert agbs
    for agb in agbs:
        assert (out / provider_file(agb)).is_file(), agb
    assert rendered.provider_pages == len(agbs)
    # one shared, unmodified plotly.js; no other copy of it anywhere
    assert filecmp.cmp(out / "plotly.min.js", plotly_js_path(), shallow=False)
    big = [p.name for p in published_files(out) if p.stat().st_size > 1_000_000]
    assert big == ["plotly.min.js"]
    index = (out / "index.html").read_text()
    for b in benchmarks():
        assert f'href="{benchmark_file(b.name)}"' in index
    scorecard = json.loads(re.search(r'<script type="application/json" id="pv-scorecard-data">(.*?)</script>',
                                     index, re.S).group(1))
    for agb in agbs:  # the scorecard rows link every provider's page
        assert scorecard["providers"][agb][2] == provider_file(agb)


def test_pages_load_only_local_files(rendered):
    for page in rendered.out_dir.glob("*.html"):
        text = page.read_text()
        refs = re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="([^"]*)"', text)
        assert "plotly.min.js" in refs, page.name
        assert not [r for r in refs if re.match(r"(?i)^(https?:)?//", r)], page.name
        assert 'include_plotlyjs' not in text and "cdn.plot.ly" not in text


def test_header_shows_as_of_and_run_time(rendered, tiny_warehouse):
    with duckdb.connect(str(tiny_warehouse.published), read_only=True) as con:
        as_of, policy, computed_at = con.execute(
            "SELECT as_of, policy, computed_at FROM core.run_parameters").fetchone()
    for page in rendered.out_dir.glob("*.html"):
        text = page.read_text()
        assert f"Data as of <b>{as_of.isoformat()}</b>" in text, page.name
        assert f"computed {computed_at:%Y-%m-%d %H:%M} UTC" in text, page.name
        assert f"policy profile <b>{policy}</b>" in text, page.name


def test_no_client_key_or_client_id_is_published(rendered, tiny_warehouse):
    with duckdb.connect(str(tiny_warehouse.published), read_only=True) as con:
        keys = {r[0] for r in con.execute("SELECT DISTINCT client_key FROM core.provider_clients").fetchall()}
    ids = set()
    for f in tiny_warehouse.landing.glob("claims*.parquet"):
        ids |= {str(v) for v in pq.read_table(f, columns=["client_id"]).column("client_id").to_pylist() if v}
    assert keys and ids
    id_pattern = re.compile(r"(?<![0-9])(" + "|".join(sorted(map(re.escape, ids))) + r")(?![0-9])")
    for path in published_files(rendered.out_dir):
        if path.name == "plotly.min.js":
            continue  # a byte-identical copy of the library (checked above)
        text = path.read_text(encoding="utf-8")
        assert not any(k in text for k in keys), f"client key in {path.name}"
        found = id_pattern.search(text)
        assert found is None, f"client id {found.group(0) if found else ''} in {path.name}"


def test_small_client_counts_are_suppressed(rendered, tiny_warehouse):
    """No funnel or distribution shows a value computed from fewer than 10 clients; the counts read <10."""
    client_benchmarks = {"cost_per_client": "clients", "zvt_setting_mismatch": "clients_in_scope"}
    with duckdb.connect(str(tiny_warehouse.published), read_only=True) as con:
        year = con.execute("SELECT max(year) FROM marts.provider_scorecard").fetchone()[0]
        small = {name: {r[0] for r in con.execute(
            f"SELECT provider_agb FROM marts.{name} WHERE year = ? AND {col} BETWEEN 1 AND 9 "
            f"AND {next(b.value_column for b in benchmarks() if b.name == name)} IS NOT NULL", [year]).fetchall()}
            for name, col in client_benchmarks.items()}
    assert any(small.values()), "the tiny warehouse should have providers with fewer than 10 clients"
    # the amounts behind a suppressed cost index are hidden too (they would give the index back)
    with duckdb.connect(str(tiny_warehouse.published), read_only=True) as con:
        amounts = con.execute("SELECT provider_agb, observed_cost_per_client, expected_cost_per_client "
                              "FROM marts.cost_per_client WHERE year = ? AND clients < 10", [year]).fetchall()
    for agb, observed, expected in amounts:
        for page in (rendered.out_dir / provider_file(agb), rendered.out_dir / benchmark_file("cost_per_client")):
            text = page.read_text()
            assert f"{observed:,.2f}" not in text and f"{expected:,.2f}" not in text, (agb, page.name)
    for name, agbs in small.items():
        page = rendered.out_dir / benchmark_file(name)
        figs = figures(page)
        plotted = {cd[2] for trace in figs.get("fig-funnel", {"data": []})["data"]
                   for cd in trace.get("customdata") or []}
        assert not plotted & agbs, name
        if agbs:
            assert "&lt;10" in page.read_text()
        for agb in agbs:
            text = (rendered.out_dir / provider_file(agb)).read_text()
            assert "suppressed (&lt;10 clients)" in text
    # hover texts never show a client count below 10
    for name in client_benchmarks:
        for trace in figures(rendered.out_dir / benchmark_file(name)).get("fig-funnel", {"data": []})["data"]:
            for cd in trace.get("customdata") or []:
                for count in cd[4:7]:
                    if re.fullmatch(r"[0-9]+", count):
                        assert int(count) >= 10, (name, cd)


def test_every_figure_is_valid_plotly(rendered):
    import plotly.graph_objects as go

    pages = sorted(rendered.out_dir.glob("*.html"))
    checked = 0
    for page in pages:
        for fid, spec in figures(page).items():
            go.Figure(spec)  # raises on an unknown attribute or a bad value
            assert spec["data"], f"{page.name} {fid} has no traces"
            assert spec["layout"]["height"] > 0
            checked += 1
        ids = re.findall(r'<div id="(fig-[a-z-]+)" class="pv-plot"', page.read_text())
        assert len(ids) == len(set(ids)) == len(figures(page)), page.name
    assert checked >= 1 + 2 * len(benchmarks())


def test_benchmark_pages_show_metadata_funnel_and_missing_table(rendered):
    limits_drawn = 0
    for b in benchmarks():
        text = (rendered.out_dir / benchmark_file(b.name)).read_text()
        for field in (b.definition, b.norm, b.policy_source, b.why_it_matters):
            assert field.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") \
                .replace("'", "&#x27;") in text, (b.name, field)
        figs = figures(rendered.out_dir / benchmark_file(b.name))
        assert "fig-distribution" in figs
        if b.name == "turnover_cap":
            assert "fig-turnover" in figs and "Early-warning list" in text
        else:
            assert "fig-funnel" in figs
            names = {t["name"] for t in figs["fig-funnel"]["data"]}
            if "Too few peers with a value for control limits" not in text:
                assert {"peer mean", "95% limits", "99.8% limits"} <= names, b.name
                limits_drawn += 1
        assert "Providers missing the norm" in text
    assert limits_drawn >= 3


def test_asset_materialises_every_page_with_metadata(tiny_warehouse, tmp_path, monkeypatch):
    from pipelines.dashboards import dashboard_assets
    from pipelines.resources import PipelineSettings

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(tiny_warehouse.published, data_dir / "warehouse.duckdb")
    monkeypatch.setenv("PRAKTIJKVARIATIE_DASHBOARD_PREVIEWS", "0")
    settings = PipelineSettings(landing_dir=str(tiny_warehouse.landing), data_dir=str(data_dir))
    result = dg.materialize(dashboard_assets(), resources={"settings": settings},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    events = {e.materialization.asset_key: e.materialization.metadata
              for e in result.get_asset_materialization_events()}
    expected = {dg.AssetKey(["dashboards", "overview"]), dg.AssetKey(["dashboards", "providers"])} | {
        dg.AssetKey(["dashboards", f"benchmark_{b.name}"]) for b in benchmarks()}
    assert set(events) == expected
    for key, meta in events.items():
        assert meta["page"].value.startswith("file://")
        assert Path(meta["path"].value).is_file()
        assert "as_of" in meta
    overview = events[dg.AssetKey(["dashboards", "overview"])]
    assert overview["providers"].value > 0 and "render_seconds" in overview
    assert "preview skipped" in overview["preview"].value
    assert (data_dir / "dashboards" / "index.html").is_file()
    assert not list(data_dir.glob(".dashboards*tmp*")) and not list(data_dir.glob(".dashboards.old-*"))


@pytest.mark.slow
@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (apt-get install chromium)")
def test_asset_attaches_a_preview_of_the_overview_and_every_benchmark_page(tiny_warehouse, tmp_path, monkeypatch):
    from pipelines.dashboards import dashboard_assets
    from pipelines.resources import PipelineSettings

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(tiny_warehouse.published, data_dir / "warehouse.duckdb")
    monkeypatch.setenv("PRAKTIJKVARIATIE_DASHBOARD_PREVIEWS", "1")
    settings = PipelineSettings(landing_dir=str(tiny_warehouse.landing), data_dir=str(data_dir))
    result = dg.materialize(dashboard_assets(), resources={"settings": settings},
                            instance=dg.DagsterInstance.ephemeral())
    previews = {e.materialization.asset_key.path[-1]: e.materialization.metadata.get("preview")
                for e in result.get_asset_materialization_events()}
    assert set(previews) == {"overview", "providers", *(f"benchmark_{b.name}" for b in benchmarks())}
    for key, preview in previews.items():
        if key == "providers":
            assert preview is None
        else:
            assert preview.value.startswith("![") and "(data:image/png;base64,iVBORw0KGgo" in preview.value, key


def test_rebuild_swaps_the_folder_in_place(tiny_warehouse, tmp_path):
    target = tmp_path / "dashboards"
    build_dashboards(tiny_warehouse.published, target)
    (target / "stale.html").write_text("from an earlier build")
    build_dashboards(tiny_warehouse.published, target)
    assert (target / "index.html").is_file() and not (target / "stale.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["dashboards"]


def test_a_swap_can_leave_deleting_the_old_folder_to_a_thread(tmp_path):
    target = tmp_path / "dashboards"
    target.mkdir()
    (target / "page.html").write_text("old")
    left_by_a_stopped_run = tmp_path / ".dashboards.old-0badf00d"
    left_by_a_stopped_run.mkdir()
    new = tmp_path / ".dashboards.tmp-1"
    new.mkdir()
    (new / "page.html").write_text("new")
    removing = swap_into_place(new, target, remove_old_in_background=True)
    assert (target / "page.html").read_text() == "new"  # in place before the old folder is gone
    assert removing is not None
    removing.join()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["dashboards"]


def test_new_benchmark_gets_a_page_and_a_column_without_code(tiny_warehouse, tmp_path):
    """A registry entry with its mart table is all a new benchmark needs."""
    db = tmp_path / "warehouse.duckdb"
    shutil.copyfile(tiny_warehouse.published, db)
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE marts.early_dropout AS SELECT * FROM marts.diagnostics_only_share")
    base = next(b for b in benchmarks() if b.name == "diagnostics_only_share")
    extra = dataclasses.replace(base, name="early_dropout", title="Early drop-out share (test)")
    result = build_dashboards(db, tmp_path / "dashboards", items=[*benchmarks(), extra])
    page = result.out_dir / benchmark_file("early_dropout")
    assert page.is_file() and "Early drop-out share (test)" in page.read_text()
    assert "fig-funnel" in figures(page)
    assert 'data-bench="early_dropout"' in (result.out_dir / "index.html").read_text()
    assert any(p.key == "benchmark_early_dropout" for p in result.pages)


def test_without_trend_table_pages_render_with_a_note(tiny_warehouse, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    shutil.copyfile(tiny_warehouse.published, db)
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE IF EXISTS marts.benchmark_trends")
    result = build_dashboards(db, tmp_path / "dashboards")
    for b in benchmarks():
        page = result.out_dir / benchmark_file(b.name)
        assert "marts.benchmark_trends is not in this warehouse" in page.read_text()
        assert "fig-deciles" not in figures(page)
    provider_pages = list(result.out_dir.glob("provider_*.html"))
    assert provider_pages and all("fig-trend" not in figures(p) for p in provider_pages)


def test_scorecard_counts_match_the_marts(rendered, tiny_warehouse):
    with duckdb.connect(str(tiny_warehouse.published), read_only=True) as con:
        year = con.execute("SELECT max(year) FROM marts.provider_scorecard").fetchone()[0]
        missed = dict(con.execute(
            "SELECT benchmark, count(*) FILTER (WHERE meets_norm = false) FROM marts.benchmark_results "
            "WHERE year = ? GROUP BY benchmark", [year]).fetchall())
    overview = rendered.page("overview").numbers
    for b in benchmarks():
        assert overview[f"missing_{b.name}"] == missed.get(b.name, 0)
        assert rendered.page(f"benchmark_{b.name}").numbers["missing_norm"] == missed.get(b.name, 0)
    spec = figures(rendered.out_dir / "index.html")["fig-missing"]
    bars = next(t for t in spec["data"] if t["name"] == "misses the norm")
    assert bars["x"] == [missed.get(b.name, 0) for b in benchmarks()]


def test_a_benchmark_without_rows_still_gets_its_page(tiny_warehouse, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    shutil.copyfile(tiny_warehouse.published, db)
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM marts.s01_usage")
        con.execute("DELETE FROM marts.benchmark_trends WHERE benchmark = 's01_usage'")
    result = build_dashboards(db, tmp_path / "dashboards")
    text = (result.out_dir / benchmark_file("s01_usage")).read_text()
    assert "No provider has a value for this benchmark" in text
