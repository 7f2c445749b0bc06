"""Render the dashboards from the warehouse: every page is generated from the benchmark registry.

Pages (all in one folder, beside one shared ``plotly.min.js`` copied from the installed plotly package, so
they render offline):

* ``index.html`` -- the scorecard (providers x benchmarks, coloured by meets / misses / not applicable,
  sortable, filterable by year, provider type and name), how many providers miss each norm, links to every
  benchmark and provider page.
* ``benchmark_<name>.html`` -- one per benchmark in the registry: what it measures (definition, norm, policy
  source, why it matters, the profile's parameters), a funnel plot with control limits (see
  :mod:`dashboards.funnel`), the distribution with the threshold, peer deciles over months (from
  ``marts.benchmark_trends`` when present) and the providers missing the norm with the numbers behind the
  value. A mart with turnover-cap columns (utilisation, projected_utilisation, status, first_warning_date)
  gets the utilisation chart and the early-warning list instead of a funnel.
* ``provider_<agb>.html`` -- one per provider: every benchmark against its peers in the latest year, the
  monthly trend, and earlier years.

Every page shows the as-of date, the computation time and the policy profile of the run. Data come from
:mod:`dashboards.data` (small client counts already suppressed there).

:func:`build_dashboards` writes everything into a temporary folder beside the target and swaps it into place
at the end (:func:`swap_into_place`), so a reader never sees a half-written folder.
"""

from __future__ import annotations

import fcntl
import functools
import html
import json
import os
import re
import shutil
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from dashboards import charts, data, fmt
from dashboards.funnel import Funnel, funnel_for
from pipelines.benchmarks.registry import Benchmark, benchmarks

TEMPLATES = Path(__file__).parent / "templates"
STATIC_FILES = ("dashboard.css", "dashboard.js")
PLOTLY_JS = "plotly.min.js"
SIGNAL_TEXT = {
    "worse_998": ("worse", "worse, beyond 99.8%"),
    "worse_95": ("worse", "worse, beyond 95%"),
    "within": ("within", "within limits"),
    "better_95": ("better", "better, beyond 95%"),
    "better_998": ("better", "better, beyond 99.8%"),
    "unknown": ("within", "no funnel position"),
}
SIGNAL_HELP = ("Funnel position: outside the 95% / 99.8% control limits on the worse or better side of the peers, "
               "or within the limits (the difference from the peers may be chance for a provider of this size).")
SUMMARY_ID = "pv-summary"  # the key numbers of a page; previews start there
STATUS_ORDER = {"exceeded": 0, "early_warning": 1, "projected_overrun": 2, "ok": 3}


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / PLOTLY_JS


@dataclass
class Page:
    key: str  # "overview", "benchmark_<name>" or "providers"
    filename: str
    title: str
    numbers: dict = field(default_factory=dict)
    figures: int = 0


@dataclass
class RenderResult:
    out_dir: Path
    pages: list[Page]
    provider_pages: int
    seconds: float
    total_bytes: int
    run: data.RunInfo | None = None
    removing_old: threading.Thread | None = None  # see build_dashboards(remove_old_in_background=True)

    def page(self, key: str) -> Page:
        return next(p for p in self.pages if p.key == key)

    def wait_for_old_folder_removed(self) -> None:
        if self.removing_old is not None:
            self.removing_old.join()


# ---------------------------------------------------------------------------------------------------------
# small HTML helpers

esc = html.escape


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(text))


def benchmark_file(name: str) -> str:
    return f"benchmark_{safe_name(name)}.html"


def provider_file(agb: str) -> str:
    return f"provider_{safe_name(agb)}.html"


def td(text: str = "", cls: str | None = None, sort=None, num: bool = False, title: str | None = None,
       raw: bool = False, **data_attrs) -> str:
    classes = " ".join(c for c in (cls, "pv-n" if num else None) if c)
    attrs = f' class="{classes}"' if classes else ""
    if sort is not None:
        attrs += f' data-sort="{esc(f"{sort:.6g}" if isinstance(sort, float) else str(sort))}"'
    if title:
        attrs += f' title="{esc(title)}"'
    for key, value in data_attrs.items():
        attrs += f' data-{key.replace("_", "-")}="{esc(str(value))}"'
    return f"<td{attrs}>{text if raw else esc(str(text))}</td>"


def table(headers: list[tuple[str, str]], rows: Iterable[str], table_id: str | None = None,
          sortable: bool = True, footer: str = "") -> str:
    """``headers``: (label, "num" | "text"); ``rows``: ready ``<tr>`` strings."""
    ths = "".join(f'<th data-type="{kind}">{esc(label)}</th>' for label, kind in headers)
    attrs = f' id="{table_id}"' if table_id else ""
    cls = "pv-table pv-sortable" if sortable else "pv-table"
    foot = f"<tfoot>{footer}</tfoot>" if footer else ""
    return f'<table class="{cls}"{attrs}><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody>{foot}</table>'


def cards(items: list[tuple[str, str, bool]], element_id: str | None = None) -> str:
    """(number, label, bad) cards."""
    attrs = f' id="{element_id}"' if element_id else ""
    out = "".join(f'<div class="pv-card{" pv-bad" if bad else ""}"><div class="pv-num">{esc(str(n))}</div>'
                  f'<div class="pv-lbl">{esc(label)}</div></div>' for n, label, bad in items)
    return f'<div class="pv-cards"{attrs}>{out}</div>'


def status_of(meets) -> tuple[str, str]:
    if meets is None:
        return "na", "norm not applicable / no value"
    return ("ok", "meets the norm") if meets else ("miss", "misses the norm")


def norm_badge(meets) -> str:
    cls, text = status_of(meets)
    return f'<span class="pv-badge {cls}">{esc(text)}</span>'


def signal_badge(signal: str) -> str:
    cls, text = SIGNAL_TEXT.get(signal, SIGNAL_TEXT["unknown"])
    return f'<span class="pv-badge {cls}" title="{esc(SIGNAL_HELP)}">{esc(text)}</span>'


class FigureSet:
    """Collects the figures of one page and embeds each as a div plus its JSON."""

    def __init__(self, validate: bool = False):
        self.count = 0
        self.validate = validate

    def embed(self, fig_id: str, spec: dict) -> str:
        spec = charts.clean(spec)
        if self.validate:
            charts.validate(spec)
        self.count += 1
        height = spec["layout"].get("height", 450)
        return (f'<div class="pv-plot-box"><div id="{fig_id}" class="pv-plot" style="height:{height}px"></div>'
                f'{json_script(f"{fig_id}-data", spec)}</div>')


# ---------------------------------------------------------------------------------------------------------
# the model every page is built from


@dataclass
class YearStats:
    """Peers of one benchmark in one year."""

    deciles: dict[str, float | None]
    mean: float | None
    funnel: Funnel | None
    evaluated: int
    missed: int
    not_applicable: int
    suppressed: int


@dataclass
class Model:
    run: data.RunInfo
    year: int
    years: list[int]
    min_cell_size: int
    scorecard: pl.DataFrame
    items: list[data.BenchmarkData]
    parameters: pl.DataFrame
    stats: dict[tuple[str, int], YearStats]
    signals: dict[tuple[str, int, str], str]
    trends: dict[str, pl.DataFrame | None]
    trend_notes: dict[str, str]
    trend_deciles: dict[str, pl.DataFrame]
    rows_by_provider: dict[str, dict[tuple[str, int], dict]]
    # other policy profiles (marts.profile_comparison): policy -> (provider, year) -> benchmark -> row
    other_profiles: dict[str, dict[tuple[str, int], dict[str, dict]]] = field(default_factory=dict)

    def nav(self) -> str:
        links = ['<a href="index.html">Overview</a>']
        for d in self.items:
            title = d.benchmark.title
            short = title if len(title) <= 34 else title[:32] + "…"
            links.append(f'<a href="{benchmark_file(d.name)}" title="{esc(title)}">{esc(short)}</a>')
        return "".join(links)


def _funnel_x(d: data.BenchmarkData) -> str:
    """The column on the funnel's x-axis: the denominator (binomial n) for shares, else the volume."""
    return "denominator" if d.benchmark.unit == "share" else "volume"


def _value_title(d: data.BenchmarkData) -> str:
    """An axis title for the benchmark value: its title, or the value column when the title is long."""
    b = d.benchmark
    return b.title if len(b.title) <= 40 else fmt.label(b.value_column)


def _funnel_x_title(d: data.BenchmarkData) -> str:
    b = d.benchmark
    return fmt.label(b.denominator_column if b.unit == "share" else b.volume_column)


def year_stats(d: data.BenchmarkData, rows: pl.DataFrame) -> YearStats:
    peers = rows.filter(pl.col("meets_norm").is_not_null() & pl.col("value").is_not_null())
    values = peers["value"].to_list()
    deciles: dict[str, float | None] = {}
    for q in (10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90):
        deciles[f"p{q}"] = peers["value"].quantile(q / 100, interpolation="linear") if values else None
    funnel = None
    if d.turnover is None and values:
        x = peers[_funnel_x(d)].to_list()
        if d.benchmark.unit == "share":
            # numerator = value x denominator also where the numerator itself was suppressed for display
            num = [v * n if v is not None and n is not None else None for v, n in zip(values, x, strict=True)]
            funnel = funnel_for("share", values, x, num, x)
        else:
            funnel = funnel_for(d.benchmark.unit, values, x)
    evaluated = rows.filter(pl.col("meets_norm").is_not_null()).height
    missed = rows.filter(pl.col("meets_norm") == False).height  # noqa: E712 (polars expression)
    return YearStats(
        deciles=deciles,
        mean=(sum(values) / len(values)) if values else None,
        funnel=funnel,
        evaluated=evaluated,
        missed=missed,
        not_applicable=rows.height - evaluated,
        suppressed=rows.filter(pl.col("value_suppressed")).height,
    )


def load_model(con: duckdb.DuckDBPyConnection, min_cell_size: int,
               items: tuple[Benchmark, ...] | list[Benchmark] | None = None) -> Model:
    run = data.run_info(con)
    score = data.scorecard(con)
    years = sorted(set(score["year"].to_list()), reverse=True) or [run.as_of_year]
    year = years[0]
    parameters = data.policy_parameters(con)
    loaded = [data.benchmark_rows(con, b, min_cell_size) for b in (items or benchmarks())]
    stats: dict[tuple[str, int], YearStats] = {}
    signals: dict[tuple[str, int, str], str] = {}
    rows_by_provider: dict[str, dict[tuple[str, int], dict]] = {}
    trends, notes, trend_deciles = {}, {}, {}
    for d in loaded:
        d.parameters = parameters.filter(pl.col("benchmark") == d.name)
        higher = d.benchmark.direction == "higher_is_better"
        for (y,), rows in d.rows.partition_by("year", as_dict=True).items():
            s = stats[(d.name, y)] = year_stats(d, rows)
            for r in rows.iter_rows(named=True):
                rows_by_provider.setdefault(r["provider_agb"], {})[(d.name, y)] = r
                if s.funnel is not None and r["value"] is not None and r["meets_norm"] is not None:
                    signals[(d.name, y, r["provider_agb"])] = s.funnel.signal(r["value"], r[_funnel_x(d)], higher)
        t, note = data.trends(con, d, min_cell_size)
        trends[d.name], notes[d.name] = t, note
        if t is not None:
            trend_deciles[d.name] = data.decile_frame(t, ["period_end"])
    return Model(run=run, year=year, years=years, min_cell_size=min_cell_size, scorecard=score, items=loaded,
                 parameters=parameters, stats=stats, signals=signals, trends=trends, trend_notes=notes,
                 trend_deciles=trend_deciles, rows_by_provider=rows_by_provider,
                 other_profiles=_other_profiles(con, run.policy, loaded, min_cell_size))


def _other_profiles(con: duckdb.DuckDBPyConnection, run_policy: str, loaded: list[data.BenchmarkData],
                    min_cell_size: int) -> dict[str, dict[tuple[str, int], dict[str, dict]]]:
    """Scorecard cells under the other policy profiles; values from fewer clients than the minimum suppressed."""
    frame = data.profile_comparison(con)
    if frame is None:
        return {}
    counts_clients = {d.name: d.counts_clients for d in loaded}
    out: dict[str, dict[tuple[str, int], dict[str, dict]]] = {}
    for r in frame.filter(pl.col("policy") != run_policy).iter_rows(named=True):
        small = counts_clients.get(r["benchmark"]) and (r["volume"] is None or r["volume"] < min_cell_size)
        cell = {"value": None if small else r["value"], "meets_norm": r["meets_norm"], "value_suppressed": bool(small)}
        out.setdefault(r["policy"], {}).setdefault((r["provider_agb"], r["year"]), {})[r["benchmark"]] = cell
    return out


# ---------------------------------------------------------------------------------------------------------
# pages


@functools.cache
def _page_template() -> string.Template:
    return string.Template((TEMPLATES / "page.html").read_text(encoding="utf-8"))


def page_html(model: Model, title: str, body: str, heading: str | None = None) -> str:
    return _page_template().substitute(
        title=esc(title), heading=esc(heading or title), body=body, nav=model.nav(),
        as_of=esc(model.run.as_of.isoformat()), computed=esc(model.run.computed_text),
        policy=esc(model.run.policy), min_cell_size=model.min_cell_size,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def value_cell_parts(d: data.BenchmarkData, r: dict | None, min_cell_size: int) -> tuple[str, str, str, str, bool]:
    """(classes, sort key, text, title, numeric) of a scorecard cell: the value in its unit, coloured by the norm
    status."""
    if r is None:
        return "na", "", "", "no row for this provider-year", False
    cls, text = status_of(r["meets_norm"])
    if r["value_suppressed"]:
        title = f"{text}; value suppressed: fewer than {min_cell_size} clients"
        return f"{cls} supp", "", f"<{min_cell_size} cl.", title, False
    return cls, "" if r["value"] is None else f"{r['value']:.6g}", fmt.value(r["value"], d.benchmark.unit), "", True


def value_cell(d: data.BenchmarkData, r: dict | None, min_cell_size: int) -> str:
    cls, sort, text, title, num = value_cell_parts(d, r, min_cell_size)
    return td(text, cls, sort=sort, num=num, title=title or None, bench=d.name)


SCORECARD_DATA_ID = "pv-scorecard-data"


def json_script(element_id: str, payload) -> str:
    """``payload`` as JSON in a ``<script type="application/json">`` that the page's script reads."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    text = text.replace("</", "<\\/").replace("<!--", "<\\!--")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def scorecard_data(model: Model, policies: list[str]) -> dict:
    """The scorecard of every provider-year under every policy profile, for dashboard.js to show the rows that the
    filters select (the HTML of all of them, 3,000+ rows at 400 providers, made the page 3 MB). Cells are
    (classes, sort key, text[, title]), as :func:`value_cell` writes them."""
    providers, rows = {}, []
    for index, policy in enumerate(policies):
        for r in model.scorecard.iter_rows(named=True):
            agb, year = r["provider_agb"], r["year"]
            providers[agb] = [r["provider_name"] or "", r["provider_type"] or "", provider_file(agb)]
            if policy == model.run.policy:
                own = model.rows_by_provider.get(agb, {})
                cells_rows = {d.name: own.get((d.name, year)) for d in model.items}
                missed = r["norms_missed"]
            else:
                cells_rows = model.other_profiles[policy].get((agb, year), {})
                missed = sum(1 for c in cells_rows.values() if c["meets_norm"] is False)
            cells = []
            for d in model.items:
                cls, sort, text, title, num = value_cell_parts(d, cells_rows.get(d.name), model.min_cell_size)
                cells.append([f"{cls} pv-n" if num else cls, sort, text, *([title] if title else [])])
            rows.append([index, agb, year, missed, cells])
    return {"policies": policies, "benchmarks": [d.name for d in model.items], "providers": providers, "rows": rows}


def overview_page(model: Model) -> tuple[str, Page]:
    figs = FigureSet(validate=True)
    y = model.year
    latest = model.scorecard.filter(pl.col("year") == y)
    missing_any = latest.filter(pl.col("norms_missed") > 0).height
    titles, misses, meets, nas = [], [], [], []
    bench_rows = []
    for d in model.items:
        s = model.stats.get((d.name, y))
        titles.append(d.benchmark.title)
        misses.append(s.missed if s else 0)
        meets.append((s.evaluated - s.missed) if s else 0)
        nas.append(latest.height - (s.evaluated if s else 0))
        bench_rows.append(
            "<tr>" + td(f'<a href="{benchmark_file(d.name)}">{esc(d.benchmark.title)}</a>', raw=True,
                        sort=d.benchmark.title.lower())
            + td(s.missed if s else 0, num=True, sort=s.missed if s else 0, cls="miss" if s and s.missed else None)
            + td(s.evaluated if s else 0, num=True, sort=s.evaluated if s else 0)
            + td(d.benchmark.norm) + td(fmt.label(d.benchmark.direction)) + "</tr>")

    body = [f'<p class="pv-lead">Which providers miss a norm of the <b>{esc(model.run.policy)}</b> policy profile, '
            f'by how much and against which peers. Year shown first: <b>{y}</b> (the as-of year; year to date '
            f'up to {model.run.as_of.isoformat()}). Click a benchmark for its funnel plot and the providers '
            f'that miss it, or a provider for its profile.</p>',
            cards([(latest.height, f"providers in {y}", False),
                   (len(model.items), "benchmarks", False),
                   (missing_any, f"providers missing at least one norm in {y}", missing_any > 0)],
                  element_id=SUMMARY_ID),
            "<h2>Providers missing each norm</h2>",
            figs.embed("fig-missing", charts.missing_counts_figure(titles, misses, meets, nas, y)),
            table([("Benchmark", "text"), (f"Missing in {y}", "num"), ("Evaluated", "num"), ("Norm", "text"),
                   ("Direction", "text")], bench_rows, sortable=True)]

    # the scorecard: every provider-year, filtered client-side
    types = sorted(set(model.scorecard["provider_type"].drop_nulls().to_list()))
    year_options = "".join(f'<option value="{yy}"{" selected" if yy == y else ""}>{yy}</option>'
                           for yy in model.years)
    type_options = '<option value="">all types</option>' + "".join(
        f'<option value="{esc(t)}">{esc(t)}</option>' for t in types)
    policies = [model.run.policy, *sorted(model.other_profiles)]  # this run first, then the others
    policy_options = "".join(
        f'<option value="{esc(p)}"{" selected" if p == model.run.policy else ""}>{esc(p)}'
        f'{" (this run)" if p == model.run.policy else ""}</option>' for p in policies)
    body.append(
        "<h2>Scorecard</h2>"
        '<div class="pv-filters">'
        f'<label>Year <select id="pv-year"><option value="">all years</option>{year_options}</select></label>'
        f'<label>Provider type <select id="pv-type">{type_options}</select></label>'
        f'<label>Policy profile <select id="pv-policy">{policy_options}</select></label>'
        '<label>Search <input type="text" id="pv-search" placeholder="name or AGB"></label>'
        '<label><input type="checkbox" id="pv-missing"> only providers missing a norm</label>'
        '<span><b id="pv-shown"></b> rows shown</span></div>'
        '<p class="pv-legend pv-note"><span><i style="background:#d9f0d3"></i>meets the norm</span>'
        '<span><i style="background:#f8d0cc"></i>misses the norm</span>'
        '<span><i style="background:#eee"></i>norm not applicable / no value</span>'
        f'<span><i class="pv-supp">&lt;{model.min_cell_size} cl.</i> value suppressed '
        f"(fewer than {model.min_cell_size} clients)"
        '</span> Click a column header to sort.</p>')
    headers = [("AGB", "text"), ("Provider", "text"), ("Type", "text"), ("Year", "num"), ("Norms missed", "num")]
    headers += [(d.benchmark.title, "num") for d in model.items]
    footer = ('<tr><td colspan="5">Providers missing the norm (rows shown)</td>'
              + "".join(f'<td class="pv-n" data-bench="{esc(d.name)}"></td>' for d in model.items) + "</tr>")
    body.append('<div class="pv-scroll">' + table(headers, [], table_id="pv-scorecard", footer=footer) + "</div>"
                "<noscript><p>The scorecard needs JavaScript.</p></noscript>")
    body.append(json_script(SCORECARD_DATA_ID, scorecard_data(model, policies)))
    page = Page("overview", "index.html", "Overview", figures=figs.count, numbers={
        "year": y,
        "providers": latest.height,
        "benchmarks": len(model.items),
        "providers_missing_a_norm": missing_any,
        **{f"missing_{d.name}": model.stats[(d.name, y)].missed for d in model.items if (d.name, y) in model.stats},
    })
    return page_html(model, "Overview: practice variation per provider", "\n".join(body),
                     heading="Practice variation: scorecard"), page


def _about(model: Model, d: data.BenchmarkData) -> str:
    b = d.benchmark
    params = "".join(
        f"<tr>{td(p['parameter'])}{td(p['value'])}{td(p['source'] or '')}</tr>"
        for p in d.parameters.iter_rows(named=True))
    columns = (f"value <code>{esc(b.value_column)}</code> = numerator <code>{esc(b.numerator_column)}</code> / "
               f"denominator <code>{esc(b.denominator_column)}</code>; volume <code>{esc(b.volume_column)}</code>; "
               f"threshold <code>{esc(b.threshold_column)}</code>; table <code>{esc(b.table)}</code>")
    return (
        '<dl class="pv-meta">'
        f"<dt>Definition</dt><dd>{esc(b.definition)}</dd>"
        f"<dt>Norm</dt><dd>{esc(b.norm)}</dd>"
        f"<dt>Policy source</dt><dd>{esc(b.policy_source)}</dd>"
        f"<dt>Why it matters</dt><dd>{esc(b.why_it_matters)}</dd>"
        f"<dt>Unit, direction</dt><dd>{esc(b.unit)}, {esc(fmt.label(b.direction))}</dd>"
        f"<dt>Columns</dt><dd>{columns}</dd>"
        "</dl>"
        + (f"<details><summary>Parameters in the {esc(model.run.policy)} profile</summary>"
           + table([("Parameter", "text"), ("Value", "text"), ("Source", "text")], [params], sortable=False)
           + "</details>" if params else ""))


def _count_text(d: data.BenchmarkData, r: dict, role: str, min_cell_size: int) -> str:
    """A numerator / denominator / volume for display: ``<10`` for a small client count, ``suppressed`` for
    an amount hidden because the value it gives is suppressed."""
    if r[f"{role}_suppressed"] and not d.client_columns.get(role):
        return "suppressed"
    return fmt.count(r[role], r[f"{role}_suppressed"], min_cell_size)


def _point_groups(model: Model, d: data.BenchmarkData, rows: pl.DataFrame, x_col: str) -> tuple[list[dict], int]:
    """Funnel / distribution point groups by norm status; suppressed values are left out (and counted)."""
    unit = d.benchmark.unit
    groups = {"misses": {"name": "misses the norm", "colour": charts.MISSES},
              "meets": {"name": "meets the norm", "colour": charts.MEETS},
              "na": {"name": "norm not applicable", "colour": charts.NOT_APPLICABLE, "hollow": True}}
    for g in groups.values():
        g.update(x=[], y=[], customdata=[])
    hidden = 0
    for r in rows.iter_rows(named=True):
        if r["value"] is None or r[x_col] is None:
            hidden += 1 if r["value_suppressed"] else 0
            continue
        key = "na" if r["meets_norm"] is None else ("meets" if r["meets_norm"] else "misses")
        g = groups[key]
        g["x"].append(r[x_col])
        g["y"].append(r["value"])
        g["customdata"].append([provider_file(r["provider_agb"]), r["provider_name"] or r["provider_agb"],
                                r["provider_agb"], fmt.value(r["value"], unit),
                                _count_text(d, r, "numerator", model.min_cell_size),
                                _count_text(d, r, "denominator", model.min_cell_size),
                                _count_text(d, r, "volume", model.min_cell_size)])
    return [groups["misses"], groups["meets"], groups["na"]], hidden


def _missing_table(model: Model, d: data.BenchmarkData, rows: pl.DataFrame, y: int) -> str:
    b = d.benchmark
    unit = b.unit
    higher = b.direction == "higher_is_better"
    missing = rows.filter(pl.col("meets_norm") == False)  # noqa: E712
    if missing.is_empty():
        return f'<p class="pv-note">No provider misses the norm in {y}.</p>'
    headers = [("AGB", "text"), ("Provider", "text"), ("Type", "text"),
               (f"{fmt.label(b.numerator_column)} (numerator)", "num"),
               (f"{fmt.label(b.denominator_column)} (denominator)", "num")]
    show_volume = b.volume_column not in (b.numerator_column, b.denominator_column)
    if show_volume:
        headers.append((f"{fmt.label(b.volume_column)} (volume)", "num"))
    headers += [("Value", "num"), ("Threshold", "num"), ("Gap to threshold", "num"), ("Funnel position", "text")]
    out = []
    ordered = missing.with_columns(
        ((pl.col("threshold") - pl.col("value")) if higher else (pl.col("value") - pl.col("threshold")))
        .alias("_gap")).sort("_gap", descending=True, nulls_last=True)
    for r in ordered.iter_rows(named=True):
        agb = r["provider_agb"]
        gap = None if r["value"] is None or r["threshold"] is None else r["value"] - r["threshold"]
        signal = model.signals.get((d.name, y, agb), "unknown")
        cells = [td(f'<a href="{provider_file(agb)}">{esc(agb)}</a>', raw=True, sort=agb),
                 td(r["provider_name"] or ""), td(r["provider_type"] or ""),
                 td(_count_text(d, r, "numerator", model.min_cell_size), num=True, sort=r["numerator"] or ""),
                 td(_count_text(d, r, "denominator", model.min_cell_size), num=True, sort=r["denominator"] or "")]
        if show_volume:
            cells.append(td(_count_text(d, r, "volume", model.min_cell_size), num=True, sort=r["volume"] or ""))
        value_text = (f"suppressed (<{model.min_cell_size} clients)" if r["value_suppressed"]
                      else fmt.value(r["value"], unit))
        cells += [td(value_text, num=True, sort="" if r["value"] is None else r["value"]),
                  td(fmt.value(r["threshold"], unit), num=True, sort=r["threshold"] or 0),
                  td(fmt.difference(gap, unit), num=True, sort="" if gap is None else abs(gap)),
                  td(signal_badge(signal), raw=True, sort=signal)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return table(headers, out)


def _turnover_section(model: Model, d: data.BenchmarkData, figs: FigureSet, y: int) -> tuple[str, dict]:
    t = d.turnover.filter(pl.col("year") == y).sort("projected_utilisation", descending=True, nulls_last=True)
    if t.is_empty():
        return f'<p class="pv-note">No provider has an omzetmaximum in {y}.</p>', {}
    names, custom = [], []
    for r in t.iter_rows(named=True):
        names.append(r["provider_agb"])
        custom.append([provider_file(r["provider_agb"]), r["provider_name"] or r["provider_agb"], r["provider_agb"],
                       fmt.euro(r["realised_amount"]), fmt.euro(r["omzetmaximum"]),
                       fmt.value(r["projected_utilisation"], "share"), fmt.day(r["first_warning_date"])])
    warning = t["warning_level"].drop_nulls()
    cap = t["cap_threshold"].drop_nulls()
    spec = charts.turnover_figure(names, custom, t["utilisation"].to_list(), t["projected_utilisation"].to_list(),
                                  t["status"].to_list(), warning[0] if len(warning) else None,
                                  cap[0] if len(cap) else None)
    counts = {s: t.filter(pl.col("status") == s).height for s in STATUS_ORDER}
    elapsed = model.run.as_of.timetuple().tm_yday
    headers = [("AGB", "text"), ("Provider", "text"), ("Type", "text"), ("Status", "text"),
               ("Realised", "num"), ("Omzetmaximum", "num"), ("Utilisation", "num"),
               ("Projected year end", "num"), ("Projected utilisation", "num"), ("First warning date", "text")]

    def rows_of(frame: pl.DataFrame) -> list[str]:
        out = []
        for r in frame.iter_rows(named=True):
            agb = r["provider_agb"]
            cls = "miss" if r["status"] in ("exceeded", "early_warning") else ("na" if r["status"] == "ok" else None)
            out.append("<tr>" + "".join([
                td(f'<a href="{provider_file(agb)}">{esc(agb)}</a>', raw=True, sort=agb),
                td(r["provider_name"] or ""), td(r["provider_type"] or ""),
                td(fmt.label(r["status"] or ""), cls, sort=STATUS_ORDER.get(r["status"], 9)),
                td(fmt.euro(r["realised_amount"]), num=True, sort=r["realised_amount"] or 0),
                td(fmt.euro(r["omzetmaximum"]), num=True, sort=r["omzetmaximum"] or 0),
                td(fmt.value(r["utilisation"], "share"), num=True, sort=r["utilisation"] or 0),
                td(fmt.euro(r["projected_amount"]), num=True, sort=r["projected_amount"] or 0),
                td(fmt.value(r["projected_utilisation"], "share"), num=True, sort=r["projected_utilisation"] or 0),
                td(fmt.day(r["first_warning_date"]), sort=fmt.day(r["first_warning_date"]) if
                   r["first_warning_date"] else "9999"),
            ]) + "</tr>")
        return out

    warn = t.filter(pl.col("status") != "ok").with_columns(
        pl.col("status").replace_strict(STATUS_ORDER, default=9).alias("_order")).sort(
        ["_order", "projected_utilisation"], descending=[False, True], nulls_last=True)
    html_parts = [
        f"<h2>Turnover-cap utilisation {y}</h2>",
        cards([(counts["exceeded"], "cap reached (exceeded)", counts["exceeded"] > 0),
               (counts["early_warning"], "early warning (≥ warning level)", counts["early_warning"] > 0),
               (counts["projected_overrun"], "projected to overrun by year end", counts["projected_overrun"] > 0),
               (counts["ok"], "ok", False)]),
        f'<p class="pv-note">Bars: realised turnover up to {model.run.as_of.isoformat()} as a share of the '
        f"omzetmaximum; diamonds: the projection to year end (realised / elapsed share of the year; day "
        f"{elapsed} of the year). Lines: the warning level and the cap. Sorted by projected utilisation.</p>",
        figs.embed("fig-turnover", spec),
        f"<h3>Early-warning list {y}</h3>",
        table(headers, rows_of(warn)) if not warn.is_empty() else '<p class="pv-note">No provider is on the '
                                                                  "early-warning list.</p>",
        f"<details><summary>All {t.height} providers with an omzetmaximum in {y}, with their first warning date"
        "</summary>" + table(headers, rows_of(t)) + "</details>",
    ]
    return "\n".join(html_parts), counts


def benchmark_page(model: Model, d: data.BenchmarkData) -> tuple[str, Page]:
    b = d.benchmark
    figs = FigureSet(validate=True)
    y = model.year
    rows = d.rows.filter(pl.col("year") == y)
    s = model.stats.get((d.name, y))
    unit = b.unit
    body = [f'<p class="pv-lead">{esc(b.definition)}</p>', _about(model, d)]
    numbers: dict = {"year": y}
    if s is None:
        body.append(f'<p class="pv-warn">No provider has a value for this benchmark in {y}.</p>')
    else:
        worse = sum(1 for (name, yy, _), sig in model.signals.items()
                    if name == d.name and yy == y and sig.startswith("worse"))
        worse998 = sum(1 for (name, yy, _), sig in model.signals.items()
                       if name == d.name and yy == y and sig == "worse_998")
        thresholds = rows["threshold"].drop_nulls().unique().sort().to_list()
        threshold = thresholds[0] if len(thresholds) == 1 else None
        numbers.update(evaluated=s.evaluated, missing_norm=s.missed, not_applicable=s.not_applicable,
                       suppressed=s.suppressed, peer_median=s.deciles["p50"],
                       threshold=", ".join(fmt.value(t, unit) for t in thresholds))
        card_items = [(s.missed, f"providers missing the norm in {y}", s.missed > 0),
                      (s.evaluated, "providers evaluated", False),
                      (fmt.value(s.deciles["p50"], unit), "peer median", False),
                      (", ".join(fmt.value(t, unit) for t in thresholds) or fmt.DASH, "threshold", False)]
        if d.turnover is None:
            card_items.append((worse998, "worse than peers beyond the 99.8% limit", worse998 > 0))
            numbers.update(outside_95_worse=worse, outside_998_worse=worse998,
                           peer_target=s.funnel.target if s.funnel else None)
        if s.suppressed:
            card_items.append((s.suppressed, f"values suppressed (<{model.min_cell_size} clients)", False))
        body.append(cards(card_items, element_id=SUMMARY_ID))

        if d.turnover is not None:
            section, counts = _turnover_section(model, d, figs, y)
            body.append(section)
            numbers.update({f"status_{k}": v for k, v in counts.items()})
        else:
            x_col = _funnel_x(d)
            groups, hidden = _point_groups(model, d, rows, x_col)
            body.append(f"<h2>Funnel plot {y}: value against volume</h2>")
            if s.funnel is None:
                body.append('<p class="pv-note">Too few peers with a value for control limits.</p>')
            body.append(figs.embed("fig-funnel", charts.funnel_figure(
                groups, s.funnel, unit, threshold, _funnel_x_title(d), _value_title(d))))
            method = (s.funnel.description(unit) if s.funnel else "")
            if s.funnel is not None and s.funnel.overdispersed:
                body.append(
                    f'<p class="pv-note">The providers vary about {s.funnel.dispersion:.0f} times more than binomial '
                    f"noise would make them (overdispersion φ = {s.funnel.dispersion:.3g}): the units of the "
                    f"denominator ({esc(fmt.label(b.denominator_column))}) are not independent of each other. The "
                    f"limits are widened by √φ = {s.funnel.inflation:.3g}, so a provider outside them stands out "
                    "from its peers by more than their usual spread.</p>")
                numbers["overdispersion"] = round(s.funnel.dispersion, 3)
            body.append(
                f'<p class="pv-note">{esc(method)} A provider outside the limits differs from its peers by more '
                "than chance explains for its size; small providers get wide limits so they are not flagged for "
                "noise. Peers: providers of the year for which the norm is evaluated and whose value is "
                "published. Click a point to open the provider."
                + (f" {hidden} provider(s) with fewer than {model.min_cell_size} clients are not shown."
                   if hidden else "") + "</p>")

        dist_groups, _ = _point_groups(model, d, rows, "value")
        body.append(f"<h2>Distribution {y}</h2>")
        body.append(figs.embed("fig-distribution", charts.distribution_figure(
            [{"name": g["name"], "colour": g["colour"], "x": g["y"]} for g in dist_groups], unit, threshold,
            s.deciles["p50"], _value_title(d))))

    body.append("<h2>Peer deciles over months</h2>")
    deciles = model.trend_deciles.get(d.name)
    note = model.trend_notes.get(d.name, "")
    if deciles is not None and not deciles.is_empty():
        spec = charts.deciles_figure(deciles["period_end"].to_list(),
                                     {c: deciles[c].to_list() for c in deciles.columns if c.startswith("p")},
                                     deciles["threshold"].to_list(), unit, _value_title(d))
        body.append(figs.embed("fig-deciles", spec))
        body.append('<p class="pv-note">Year-to-date value at each month end (every January starts a new year), '
                    "deciles p10 … p90 over the evaluated providers with a published value; bold line: median."
                    + (f" {esc(note)}" if note else "") + "</p>")
        numbers["trend_months"] = deciles.height
    else:
        body.append(f'<p class="pv-warn">{esc(note or "No month has enough providers with a value for deciles.")}'
                    "</p>")

    body.append(f"<h2>Providers missing the norm in {y}</h2>")
    if s is not None:
        body.append(_missing_table(model, d, rows, y))

    earlier = []
    for yy in model.years:
        st = model.stats.get((d.name, yy))
        if st is None:
            continue
        thr = d.rows.filter(pl.col("year") == yy)["threshold"].drop_nulls().unique().sort().to_list()
        earlier.append("<tr>" + td(yy, num=True, sort=yy) + td(st.evaluated, num=True, sort=st.evaluated)
                       + td(st.missed, num=True, sort=st.missed, cls="miss" if st.missed else None)
                       + td(fmt.value(st.deciles["p50"], unit), num=True, sort=st.deciles["p50"] or "")
                       + td(", ".join(fmt.value(t, unit) for t in thr)) + "</tr>")
    body.append("<h2>All years</h2>")
    body.append(table([("Year", "num"), ("Evaluated", "num"), ("Missing the norm", "num"), ("Peer median", "num"),
                       ("Threshold", "text")], earlier))
    page = Page(f"benchmark_{d.name}", benchmark_file(d.name), b.title, numbers=numbers, figures=figs.count)
    return page_html(model, b.title, "\n".join(body)), page


def _position(value: float | None, peers_sorted: list[float]) -> str:
    if value is None or not peers_sorted:
        return fmt.DASH
    below = sum(1 for v in peers_sorted if v < value)
    decile = min(10, 1 + int(10 * below / len(peers_sorted)))
    return f"decile {decile}"


def provider_page(model: Model, agb: str, info: pl.DataFrame, peer_values: dict[tuple[str, int], list[float]],
                  trend_rows: dict[str, dict[str, pl.DataFrame]]) -> tuple[str, int]:
    """The profile page of one provider and its number of figures; ``info`` holds its scorecard rows, the latest
    year first."""
    figs = FigureSet(validate=False)
    own = model.rows_by_provider.get(agb, {})
    latest = info.row(0, named=True)
    y = latest["year"]
    name = latest["provider_name"] or agb
    body = [f'<p class="pv-lead">AGB <b>{esc(agb)}</b> · {esc(latest["provider_type"] or "")} · years '
            f'{", ".join(str(v) for v in info["year"].to_list())}. Every benchmark against the peers of the same '
            f"year (providers for which the norm is evaluated).</p>",
            cards([(latest["norms_missed"], f"norms missed in {y}", latest["norms_missed"] > 0),
                   (latest["norms_evaluated"], f"norms evaluated in {y}", False)])]

    headers = [("Benchmark", "text"), ("Value", "num"), ("Threshold", "num"), ("Norm", "text"),
               ("Peer median", "num"), ("Peers p10 – p90", "text"), ("Position", "text"), ("Funnel position", "text"),
               ("Numerator", "num"), ("Denominator", "num")]
    table_rows, position_rows = [], []
    for d in model.items:
        b = d.benchmark
        r = own.get((d.name, y))
        s = model.stats.get((d.name, y))
        if r is None:
            continue
        unit = b.unit
        suppressed = r["value_suppressed"]
        value_text = f"suppressed (<{model.min_cell_size} clients)" if suppressed else fmt.value(r["value"], unit)
        cls, _ = status_of(r["meets_norm"])
        dec = s.deciles if s else {}
        signal = model.signals.get((d.name, y, agb), "unknown")
        table_rows.append("<tr>" + "".join([
            td(f'<a href="{benchmark_file(d.name)}">{esc(b.title)}</a>', raw=True, sort=b.title.lower()),
            td(value_text, cls, num=True, sort="" if r["value"] is None else r["value"]),
            td(fmt.value(r["threshold"], unit), num=True, sort=r["threshold"] if r["threshold"] is not None else ""),
            td(norm_badge(r["meets_norm"]), raw=True),
            td(fmt.value(dec.get("p50"), unit), num=True),
            td(f'{fmt.value(dec.get("p10"), unit)} – {fmt.value(dec.get("p90"), unit)}' if dec.get("p10") is not None
               else fmt.DASH),
            td(_position(r["value"], peer_values.get((d.name, y), []))),
            td(signal_badge(signal) if signal != "unknown" else fmt.DASH, raw=True),
            td(_count_text(d, r, "numerator", model.min_cell_size), num=True),
            td(_count_text(d, r, "denominator", model.min_cell_size), num=True),
        ]) + "</tr>")
        colour = {"ok": charts.MEETS, "miss": charts.MISSES}.get(cls, charts.NOT_APPLICABLE)
        position_rows.append({"title": b.title, "unit": unit, "value": r["value"], "colour": colour,
                              "threshold": r["threshold"], "value_text": value_text,
                              **{k: dec.get(k) for k in ("p10", "p25", "p50", "p75", "p90")}})
    body.append(f"<h2>Benchmarks {y}</h2>")
    if table_rows:
        body.append(table(headers, table_rows))
        body.append(figs.embed("fig-position", charts.provider_position_figure(position_rows)))
        body.append('<p class="pv-note">Position: decile among the peers (1 = lowest values). Funnel position: '
                    "see the benchmark page for the control limits. Shaded spans: the middle 80% and 50% of the peer "
                    "values; black tick: peer median; orange tick: the norm's threshold.</p>")
    else:
        body.append(f'<p class="pv-note">No benchmark value for this provider in {y}.</p>')

    # monthly trend
    trend_specs, notes = [], []
    for d in model.items:
        per_provider = trend_rows.get(d.name)
        if per_provider is None:
            continue
        if model.trend_notes.get(d.name):
            notes.append(f"{d.benchmark.title}: {model.trend_notes[d.name]}")
            continue
        mine = per_provider.get(agb)
        dec = model.trend_deciles.get(d.name)
        if mine is None or dec is None or dec.is_empty():
            continue
        periods = dec["period_end"].to_list()
        by_period = dict(zip(mine["period_end"].to_list(), mine["value"].to_list(), strict=True))
        if all(v is None for v in by_period.values()):
            continue
        trend_specs.append({"title": d.benchmark.title, "unit": d.benchmark.unit, "periods": periods,
                            "value": [by_period.get(p) for p in periods], "p10": dec["p10"].to_list(),
                            "p50": dec["p50"].to_list(), "p90": dec["p90"].to_list(),
                            "threshold": dec["threshold"].to_list()})
    body.append("<h2>Monthly trend (year to date)</h2>")
    if not model.trends or all(t is None for t in model.trends.values()):
        body.append('<p class="pv-warn">No monthly trend: the table marts.benchmark_trends is not in this '
                    "warehouse.</p>")
    elif trend_specs:
        body.append(figs.embed("fig-trend", charts.provider_trend_figure(trend_specs)))
        body.append('<p class="pv-note">The provider\'s year-to-date value at each month end against the peers\' '
                    "median and p10–p90 band; every January starts a new year. Months with fewer than "
                    f"{model.min_cell_size} clients are not shown.</p>")
    else:
        body.append('<p class="pv-note">No monthly values for this provider.</p>')
    if notes:
        body.append('<p class="pv-note">' + "<br>".join(esc(n) for n in notes) + "</p>")

    # every year
    headers = [("Year", "num"), ("Norms missed", "num")] + [(d.benchmark.title, "num") for d in model.items]
    year_rows = []
    for r in info.iter_rows(named=True):
        year_rows.append("<tr>" + td(r["year"], num=True, sort=r["year"])
                         + td(r["norms_missed"], num=True, cls="miss" if r["norms_missed"] else None)
                         + "".join(value_cell(d, own.get((d.name, r["year"])), model.min_cell_size)
                                   for d in model.items) + "</tr>")
    body.append("<h2>All years</h2>")
    body.append(table(headers, year_rows))
    return page_html(model, f"{name} ({agb})", "\n".join(body), heading=f"{name}"), figs.count


# ---------------------------------------------------------------------------------------------------------
# the whole folder


def render_dashboards(con: duckdb.DuckDBPyConnection, out_dir: Path, min_cell_size: int = 10,
                      items: tuple[Benchmark, ...] | list[Benchmark] | None = None,
                      after_main_pages: Callable[[Path, list[Page]], None] | None = None) -> RenderResult:
    """Write every page into ``out_dir`` (which should be new and empty) and return what was written.
    ``after_main_pages(out_dir, pages)`` is called once the overview and benchmark pages are written, before the
    provider pages (e.g. to take previews of them meanwhile; ``out_dir`` is moved when rendering is done)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = load_model(con, min_cell_size, items)
    shutil.copyfile(plotly_js_path(), out_dir / PLOTLY_JS)
    for name in STATIC_FILES:
        shutil.copyfile(TEMPLATES / name, out_dir / name)

    pages: list[Page] = []
    text, page = overview_page(model)
    (out_dir / page.filename).write_text(text, encoding="utf-8")
    pages.append(page)
    for d in model.items:
        text, page = benchmark_page(model, d)
        (out_dir / page.filename).write_text(text, encoding="utf-8")
        pages.append(page)
    if after_main_pages is not None:
        after_main_pages(out_dir, list(pages))

    peer_values = {}
    for d in model.items:
        for (y,), rows in d.rows.partition_by("year", as_dict=True).items():
            peer_values[(d.name, y)] = sorted(rows.filter(pl.col("meets_norm").is_not_null())["value"]
                                              .drop_nulls().to_list())
    trend_rows = {d.name: ({agb: part for (agb,), part in t.partition_by("provider_agb", as_dict=True).items()}
                           if (t := model.trends.get(d.name)) is not None else None)
                  for d in model.items}
    trend_rows = {k: v for k, v in trend_rows.items() if v is not None}
    provider_count = provider_figures = 0
    # sorted once for all pages: a sort per page waits for polars' threads, which the previews' browser keeps busy
    by_provider = model.scorecard.sort(["provider_agb", "year"], descending=[False, True])
    for (agb,), info in by_provider.partition_by("provider_agb", as_dict=True).items():
        text, figures = provider_page(model, agb, info, peer_values, trend_rows)
        (out_dir / provider_file(agb)).write_text(text, encoding="utf-8")
        provider_count += 1
        provider_figures += figures
    latest = model.scorecard.filter(pl.col("year") == model.year)
    pages.append(Page("providers", "index.html", "Provider profiles", figures=provider_figures, numbers={
        "provider_pages": provider_count, "year": model.year,
        "providers_missing_a_norm": latest.filter(pl.col("norms_missed") > 0).height}))
    total = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    return RenderResult(out_dir=out_dir, pages=pages, provider_pages=provider_count,
                        seconds=time.perf_counter() - started, total_bytes=total, run=model.run)


def swap_into_place(new_dir: Path, target: Path, remove_old_in_background: bool = False) -> threading.Thread | None:
    """Replace ``target`` by the finished ``new_dir`` (both in the same parent folder).

    Two renames: the old folder moves aside, the new one takes its name, the old one is deleted. A reader
    sees either the complete old or the complete new folder (for the instant between the two renames the
    folder is absent, never half-written). A lock file serialises concurrent swaps.

    ``remove_old_in_background``: the old folder is deleted by a thread, which is returned (join it before relying
    on the folder being gone). The pipeline renders the dashboards while the next working copy of the warehouse is
    written to the same disk, and deleting ~400 files then waits for the file system's journal: 0.4-2.7 s instead
    of 0.07 s (docs/performance-history.md, sixteenth round).
    """
    target = Path(target)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            if target.exists():
                os.rename(target, old)
            os.rename(new_dir, target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not remove_old_in_background:
        _remove_old_folders(target)
        return None
    removing = threading.Thread(target=_remove_old_folders, args=(target,), name="praktijkvariatie-old-dashboards")
    removing.start()
    return removing


def _remove_old_folders(target: Path) -> None:
    """Delete the folders that swaps into ``target`` moved aside (also those a stopped process left behind)."""
    for old in target.parent.glob(f".{target.name}.old-*"):
        shutil.rmtree(old, ignore_errors=True)


def build_dashboards(warehouse_path: Path, dashboards_dir: Path, min_cell_size: int = 10,
                     items: tuple[Benchmark, ...] | list[Benchmark] | None = None,
                     after_main_pages: Callable[[Path, list[Page]], None] | None = None,
                     remove_old_in_background: bool = False) -> RenderResult:
    """Render from the warehouse file (opened read-only) into a temporary folder beside ``dashboards_dir``
    and swap it into place. Returns the result with ``out_dir`` = ``dashboards_dir``; with
    ``remove_old_in_background`` (see :func:`swap_into_place`) call its ``wait_for_old_folder_removed()`` before
    relying on the previous folder being gone."""
    dashboards_dir = Path(dashboards_dir)
    dashboards_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = dashboards_dir.parent / f".{dashboards_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        con = duckdb.connect(str(warehouse_path), read_only=True)
        try:
            result = render_dashboards(con, tmp, min_cell_size=min_cell_size, items=items,
                                       after_main_pages=after_main_pages)
        finally:
            con.close()
        result.removing_old = swap_into_place(tmp, dashboards_dir, remove_old_in_background)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.out_dir = dashboards_dir
    return result
