"""The dashboard charts as Plotly figure specifications (plain dicts of ``data`` and ``layout``).

The figures are written as plain plotly.js JSON rather than ``plotly.graph_objects`` so that 400 provider pages
render in seconds (building graph objects costs ~30 ms per figure). Every builder returns the same structure
``plotly.graph_objects.Figure(spec)`` accepts: :func:`validate` runs that check (used for the overview and
benchmark pages at render time and for every figure in the tests).

Marker colours: green meets the norm, red misses it, grey the norm does not apply; the norm's threshold is an
orange dashed line, the peer target black, the 95% / 99.8% control limits blue dashed / dotted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime

from dashboards import fmt
from dashboards.funnel import Funnel

MEETS = "#1a9850"
MISSES = "#d73027"
NOT_APPLICABLE = "#9e9e9e"
THRESHOLD = "#e08214"
TARGET = "#222222"
LIMITS = "#4575b4"
BAND = "rgba(69,117,180,0.15)"
BAND_INNER = "rgba(69,117,180,0.30)"
STATUS_COLOURS = {"exceeded": MISSES, "early_warning": "#fc8d59", "projected_overrun": "#fee08b", "ok": MEETS}
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12, "color": "#222"}


def clean(obj):
    """JSON-ready copy: NaN/inf -> null, floats to 6 significant digits, dates as ISO strings."""
    kind = type(obj)
    if kind is float:
        if obj != obj or obj in (math.inf, -math.inf):
            return None
        return float(f"{obj:.6g}")
    if kind is list or kind is tuple:
        return [clean(v) for v in obj]
    if kind is dict:
        return {k: clean(v) for k, v in obj.items()}
    if kind is str or kind is int or kind is bool or obj is None:
        return obj
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, float):  # numpy floats
        return clean(float(obj))
    return obj


def validate(spec: dict) -> None:
    """Raise ValueError when plotly.py's schema rejects the figure (unknown attribute, bad value)."""
    import plotly.graph_objects as go

    go.Figure(spec)


def _axis(**extra) -> dict:
    return {"gridcolor": "#e6e6e6", "zeroline": False, "linecolor": "#999", "showline": True, "automargin": True,
            **extra}


def layout(height: int, **extra) -> dict:
    base = {
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": FONT,
        "hoverlabel": {"font": {"size": 12}},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        "xaxis": _axis(),
        "yaxis": _axis(),
    }
    base.update(extra)
    return base


def _line(x: Sequence, y: Sequence, name: str, colour: str, dash: str = "solid", width: float = 1.5,
          showlegend: bool = True, **extra) -> dict:
    return {"type": "scatter", "mode": "lines", "x": list(x), "y": list(y), "name": name,
            "line": {"color": colour, "dash": dash, "width": width}, "hoverinfo": "skip",
            "showlegend": showlegend, **extra}


# ---------------------------------------------------------------------------------------------------------
# overview


def missing_counts_figure(titles: list[str], misses: list[int], meets: list[int], not_applicable: list[int],
                          year: int) -> dict:
    """Horizontal stacked bars: per benchmark, how many providers miss / meet the norm / are out of scope."""
    def bar(name, values, colour):
        return {"type": "bar", "orientation": "h", "y": titles, "x": values, "name": name,
                "marker": {"color": colour},
                "hovertemplate": f"%{{y}}<br>{name}: %{{x}} providers<extra></extra>"}

    return {
        "data": [bar("misses the norm", misses, MISSES), bar("meets the norm", meets, MEETS),
                 bar("not applicable / no value", not_applicable, NOT_APPLICABLE)],
        "layout": layout(90 + 42 * len(titles), barmode="stack",
                         margin={"l": 20, "r": 20, "t": 40, "b": 40},
                         xaxis=_axis(title={"text": f"providers in {year}"}),
                         yaxis=_axis(autorange="reversed")),
    }


# ---------------------------------------------------------------------------------------------------------
# benchmark pages


def funnel_figure(groups: list[dict], funnel: Funnel | None, unit: str, threshold: float | None,
                  x_title: str, y_title: str) -> dict:
    """Value against volume with the peer target, 95% and 99.8% control limits and the norm's threshold.

    ``groups``: dicts with name, colour, x, y, customdata ([href, provider, agb, value, numerator,
    denominator, volume] as text) and ``hollow`` (bool).
    """
    xs = [x for g in groups for x in g["x"] if x is not None and x > 0]
    data = []
    log_x = bool(xs) and max(xs) / max(min(xs), 1e-9) > 30
    if funnel is not None and xs:
        lo, hi = min(xs), max(xs)
        curves = funnel.curves(lo * 0.8 if log_x else max(lo * 0.5, 1e-9), hi * 1.1)
        n = curves["n"]
        data += [
            _line(n, curves["hi998"], "99.8% limits", LIMITS, "dot", legendgroup="l998"),
            _line(n, curves["lo998"], "99.8% limits", LIMITS, "dot", showlegend=False, legendgroup="l998"),
            _line(n, curves["hi95"], "95% limits", LIMITS, "dash", legendgroup="l95"),
            _line(n, curves["lo95"], "95% limits", LIMITS, "dash", showlegend=False, legendgroup="l95"),
            _line([n[0], n[-1]], [funnel.target, funnel.target], "peer mean", TARGET, width=1.2),
        ]
        x_range = [n[0], n[-1]]
    else:
        x_range = [0, 1]
    if threshold is not None and xs:
        data.append(_line(x_range, [threshold, threshold], "norm threshold", THRESHOLD, "dash", width=2))
    hover = ("<b>%{customdata[1]}</b> (AGB %{customdata[2]})<br>value: %{customdata[3]}"
             "<br>numerator: %{customdata[4]}<br>denominator: %{customdata[5]}<br>volume: %{customdata[6]}"
             "<extra>%{fullData.name}</extra>")
    for g in groups:
        data.append({
            "type": "scatter", "mode": "markers", "name": g["name"], "x": g["x"], "y": g["y"],
            "customdata": g["customdata"], "hovertemplate": hover, "meta": "pv-link",
            "marker": {"color": "white" if g.get("hollow") else g["colour"], "size": 9,
                       "line": {"color": g["colour"], "width": 1.5}},
        })
    xaxis = _axis(title={"text": x_title})
    if log_x:
        xaxis.update(type="log", dtick="D2")
    ys = [y for g in groups for y in g["y"] if y is not None]
    ys += [v for v in (threshold, funnel.target if funnel else None) if v is not None]
    yaxis = _axis(title={"text": y_title}, **fmt.axis(unit))
    if ys:
        # the range follows the providers, not the (wide) limits of the smallest volumes
        pad = (max(ys) - min(ys)) * 0.12 or abs(max(ys)) * 0.1 or 0.05
        yaxis["range"] = [min(ys) - pad, max(ys) + pad]
    return {"data": data, "layout": layout(500, xaxis=xaxis, yaxis=yaxis)}


def distribution_figure(groups: list[dict], unit: str, threshold: float | None, median: float | None,
                        x_title: str) -> dict:
    """Histogram of provider values, stacked by norm status, with the threshold and the peer median."""
    values = [x for g in groups for x in g["x"] if x is not None]
    bins = {}
    if values:
        low, high = min(values), max(values)
        size = (high - low) / 25 if high > low else max(abs(high) * 0.05, 0.01)
        bins = {"xbins": {"start": low - size / 2, "end": high + size, "size": size}}
    data = [{"type": "histogram", "x": g["x"], "name": g["name"], "marker": {"color": g["colour"]}, **bins,
             "hovertemplate": "%{x}<br>%{y} providers<extra>%{fullData.name}</extra>"}
            for g in groups if g["x"]]
    shapes, annotations = [], []
    for x, colour, text, dash in ((threshold, THRESHOLD, "threshold", "dash"), (median, TARGET, "median", "dot")):
        if x is None:
            continue
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                       "line": {"color": colour, "dash": dash, "width": 2}})
        annotations.append({"xref": "x", "yref": "paper", "x": x, "y": 1, "yanchor": "bottom", "text": text,
                            "showarrow": False, "font": {"color": colour}})
    return {"data": data, "layout": layout(360, barmode="stack", shapes=shapes, annotations=annotations,
                                           margin={"l": 60, "r": 20, "t": 50, "b": 50}, bargap=0.05,
                                           legend={"orientation": "h", "yanchor": "bottom", "y": 1.08,
                                                   "xanchor": "right", "x": 1},
                                           xaxis=_axis(title={"text": x_title}, **fmt.axis(unit)),
                                           yaxis=_axis(title={"text": "providers"}))}


def break_years(periods: list, series: dict[str, list]) -> tuple[list, dict[str, list]]:
    """Insert an empty point on 1 January between two years, so that year-to-date lines (which restart
    every January) are not drawn as one line across the turn of the year."""
    out_periods, out = [], {k: [] for k in series}
    for i, p in enumerate(periods):
        if i and isinstance(p, date) and isinstance(periods[i - 1], date) and p.year != periods[i - 1].year:
            out_periods.append(date(p.year, 1, 1))
            for k in series:
                out[k].append(None)
        out_periods.append(p)
        for k, values in series.items():
            out[k].append(values[i])
    return out_periods, out


def band(periods: list, low: list, high: list, name: str, showlegend: bool = True, **extra) -> dict:
    """A shaded band between ``low`` and ``high``: one closed polygon per year (so that year-to-date bands
    are not joined across the turn of the year), separated by gaps."""
    xs, ys = [], []
    segment: list[int] = []

    def close(seg: list[int]) -> None:
        if not seg:
            return
        if xs:
            xs.append(None), ys.append(None)
        xs.extend([periods[i] for i in seg] + [periods[i] for i in reversed(seg)])
        ys.extend([high[i] for i in seg] + [low[i] for i in reversed(seg)])

    for i, p in enumerate(periods):
        ok = low[i] is not None and high[i] is not None
        new_year = segment and isinstance(p, date) and p.year != periods[segment[-1]].year
        if not ok or new_year:
            close(segment)
            segment = []
        if ok:
            segment.append(i)
    close(segment)
    return {"type": "scatter", "mode": "lines", "x": xs, "y": ys, "fill": "toself", "fillcolor": BAND,
            "line": {"width": 0, "color": BAND}, "name": name, "hoverinfo": "skip", "showlegend": showlegend,
            **extra}


def deciles_figure(periods: list, deciles: dict[str, list], thresholds: list, unit: str, y_title: str) -> dict:
    """Peer deciles (p10..p90) of the year-to-date value at each month end, median bold, p10-p90 shaded."""
    data = [band(periods, deciles["p10"], deciles["p90"], "p10-p90 of peers")]
    periods, series = break_years(periods, {**deciles, "threshold": thresholds})
    deciles, thresholds = series, series["threshold"]
    for key in ("p10", "p20", "p30", "p40", "p60", "p70", "p80", "p90"):
        data.append({**_line(periods, deciles[key], key, LIMITS, width=0.8, showlegend=False),
                     "hovertemplate": f"{key}: %{{y:{fmt.hover(unit)}}}<extra></extra>", "hoverinfo": None})
    data.append({**_line(periods, deciles["p50"], "peer median", TARGET, width=2.5),
                 "hovertemplate": f"median: %{{y:{fmt.hover(unit)}}}<extra></extra>", "hoverinfo": None})
    if any(t is not None for t in thresholds):
        data.append(_line(periods, thresholds, "norm threshold", THRESHOLD, "dash", width=2))
    for trace in data:
        if trace.get("hoverinfo") is None:
            trace.pop("hoverinfo", None)
    return {"data": data, "layout": layout(400, hovermode="x unified",
                                           xaxis=_axis(title={"text": "month end (year to date)"}),
                                           yaxis=_axis(title={"text": y_title}, **fmt.axis(unit)))}


def turnover_figure(names: list[str], customdata: list[list], utilisation: list, projected: list,
                    statuses: list[str], warning_level: float | None, cap: float | None) -> dict:
    """Utilisation of the omzetmaximum per provider (bars, by status) and projected year-end utilisation
    (diamonds), against the warning level and the cap (100%)."""
    data = []
    for status in ("exceeded", "early_warning", "projected_overrun", "ok"):
        idx = [i for i, s in enumerate(statuses) if s == status]
        if not idx:
            continue
        data.append({
            "type": "bar", "name": f"realised: {status.replace('_', ' ')}", "x": [names[i] for i in idx],
            "y": [utilisation[i] for i in idx], "customdata": [customdata[i] for i in idx], "meta": "pv-link",
            "marker": {"color": STATUS_COLOURS[status]},
            "hovertemplate": "<b>%{customdata[1]}</b> (AGB %{customdata[2]})<br>realised %{customdata[3]} of "
                             "cap %{customdata[4]} = %{y:.1%}<br>projected year end: %{customdata[5]}"
                             "<br>first warning: %{customdata[6]}<extra></extra>",
        })
    data.append({"type": "scatter", "mode": "markers", "name": "projected at year end", "x": names,
                 "y": projected, "marker": {"symbol": "diamond", "color": TARGET, "size": 7},
                 "hovertemplate": "%{x}<br>projected: %{y:.1%}<extra></extra>"})
    shapes, annotations = [], []
    for y, text in ((warning_level, "warning level"), (cap, "cap")):
        if y is None:
            continue
        shapes.append({"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": y, "y1": y,
                       "line": {"color": MISSES if text == "cap" else THRESHOLD, "dash": "dash", "width": 2}})
        annotations.append({"xref": "paper", "yref": "y", "x": 1, "y": y, "xanchor": "right", "yanchor": "bottom",
                            "text": f"{text} {y:.0%}", "showarrow": False})
    xaxis = _axis(type="category", categoryorder="array", categoryarray=names, showticklabels=len(names) <= 60,
                  tickangle=-45, title={"text": "provider (AGB)"})
    return {"data": data, "layout": layout(520, barmode="overlay", shapes=shapes, annotations=annotations,
                                           xaxis=xaxis, yaxis=_axis(title={"text": "share of omzetmaximum"},
                                                                    tickformat=".0%"))}


# ---------------------------------------------------------------------------------------------------------
# provider pages: one row (own x-axis) per benchmark


def _rows_layout(n: int, row_height: int, gap_px: int, titles: list[str], shared_x: bool, top: int = 40) -> dict:
    height = top + 40 + n * row_height + (n - 1) * gap_px
    plot_height = height - top - 40
    out = layout(height, margin={"l": 20, "r": 20, "t": top, "b": 40}, showlegend=True)
    out.pop("xaxis"), out.pop("yaxis")
    annotations = []
    for i in range(n):
        top_px = i * (row_height + gap_px)
        y1 = 1 - top_px / plot_height
        y0 = 1 - (top_px + row_height) / plot_height
        suffix = "" if i == 0 else str(i + 1)
        out[f"yaxis{suffix}"] = _axis(domain=[max(y0, 0), min(y1, 1)], anchor=f"x{suffix}")
        out[f"xaxis{suffix}"] = _axis(anchor=f"y{suffix}")
        if shared_x and i > 0:
            out[f"xaxis{suffix}"]["matches"] = "x"
        annotations.append({"xref": "paper", "yref": "paper", "x": 0, "y": min(y1, 1), "xanchor": "left",
                            "yanchor": "bottom", "text": f"<b>{titles[i]}</b>", "showarrow": False})
    out["annotations"] = annotations
    return out


def provider_position_figure(rows: list[dict]) -> dict:
    """Per benchmark: the peers' p10-p90 and p25-p75 spans, their median, the threshold and the provider.

    ``rows``: dicts with title, unit, value (None when suppressed / missing), colour, p10..p90, threshold,
    value_text.
    """
    n = len(rows)
    lay = _rows_layout(n, 46, 44, [r["title"] for r in rows], shared_x=False)
    data = []
    for i, r in enumerate(rows):
        suffix = "" if i == 0 else str(i + 1)
        xa, ya = f"x{suffix}", f"y{suffix}"
        lay[f"yaxis{suffix}"].update(showticklabels=False, range=[-1, 1], showgrid=False, fixedrange=True)
        lay[f"xaxis{suffix}"].update(fmt.axis(r["unit"]))
        first = i == 0
        if r.get("p10") is not None:
            data.append({**_line([r["p10"], r["p90"]], [0, 0], "peers p10-p90", "rgba(69,117,180,0.25)",
                                 width=16, showlegend=first, legendgroup="p1090"), "xaxis": xa, "yaxis": ya})
            data.append({**_line([r["p25"], r["p75"]], [0, 0], "peers p25-p75", "rgba(69,117,180,0.55)",
                                 width=16, showlegend=first, legendgroup="p2575"), "xaxis": xa, "yaxis": ya})
            data.append({"type": "scatter", "mode": "markers", "x": [r["p50"]], "y": [0], "xaxis": xa, "yaxis": ya,
                         "name": "peer median", "legendgroup": "median", "showlegend": first,
                         "marker": {"symbol": "line-ns-open", "size": 22, "color": TARGET, "line": {"width": 3}},
                         "hovertemplate": f"peer median: %{{x:{fmt.hover(r['unit'])}}}<extra></extra>"})
        if r.get("threshold") is not None:
            data.append({"type": "scatter", "mode": "markers", "x": [r["threshold"]], "y": [0], "xaxis": xa,
                         "yaxis": ya, "name": "norm threshold", "legendgroup": "threshold", "showlegend": first,
                         "marker": {"symbol": "line-ns-open", "size": 30, "color": THRESHOLD,
                                    "line": {"width": 3}},
                         "hovertemplate": f"threshold: %{{x:{fmt.hover(r['unit'])}}}<extra></extra>"})
        if r.get("value") is not None:
            data.append({"type": "scatter", "mode": "markers", "x": [r["value"]], "y": [0], "xaxis": xa,
                         "yaxis": ya, "name": "this provider", "legendgroup": "provider", "showlegend": first,
                         "marker": {"size": 14, "color": r["colour"], "line": {"color": "white", "width": 1.5}},
                         "hovertemplate": f"this provider: {r['value_text']}<extra></extra>"})
    return {"data": data, "layout": lay}


def provider_trend_figure(rows: list[dict]) -> dict:
    """Per benchmark: the provider's year-to-date value at each month end against the peers' p10-p90 band,
    median and the threshold. ``rows``: dicts with title, unit, periods, value, p10, p50, p90, threshold."""
    n = len(rows)
    lay = _rows_layout(n, 150, 50, [r["title"] for r in rows], shared_x=True)
    lay["hovermode"] = "x unified"
    data = []
    for i, r in enumerate(rows):
        suffix = "" if i == 0 else str(i + 1)
        axes = {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}
        first = i == 0
        data.append(band(r["periods"], r["p10"], r["p90"], "peers p10-p90", showlegend=first, legendgroup="band",
                         **axes))
        periods, series = break_years(r["periods"], {k: r[k] for k in ("value", "p10", "p50", "p90", "threshold")})
        r = {**r, **series, "periods": periods}
        lay[f"yaxis{suffix}"].update(fmt.axis(r["unit"]))
        h = fmt.hover(r["unit"])
        data += [
            {**_line(r["periods"], r["p50"], "peer median", TARGET, "dot", showlegend=first, legendgroup="median"),
             "hoverinfo": None, "hovertemplate": f"peer median: %{{y:{h}}}<extra></extra>", **axes},
        ]
        if any(t is not None for t in r["threshold"]):
            data.append({**_line(r["periods"], r["threshold"], "norm threshold", THRESHOLD, "dash",
                                 showlegend=first, legendgroup="threshold"), **axes})
        data.append({"type": "scatter", "mode": "lines+markers", "x": r["periods"], "y": r["value"],
                     "name": "this provider", "legendgroup": "provider", "showlegend": first,
                     "line": {"color": LIMITS, "width": 2.5}, "marker": {"size": 5}, "connectgaps": False,
                     "hovertemplate": f"this provider: %{{y:{h}}}<extra></extra>", **axes})
    for trace in data:
        if trace.get("hoverinfo", "") is None:
            trace.pop("hoverinfo")
    return {"data": data, "layout": lay}
