"""Number formatting for tables and hover texts, and Plotly axis formats, per benchmark unit."""

from __future__ import annotations

import math
from datetime import date, datetime

DASH = "–"


def missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def value(v, unit: str) -> str:
    """A benchmark value in its unit: share 12.3%, index 0.93, euro € 12,345, count 12,345."""
    if missing(v):
        return DASH
    if unit == "share":
        return f"{v * 100:.1f}%"
    if unit == "index":
        return f"{v:.2f}"
    if unit == "euro":
        return f"€ {v:,.0f}"
    return f"{v:,.0f}"


def difference(v, unit: str) -> str:
    """A signed difference in the unit: share in percentage points."""
    if missing(v):
        return DASH
    if unit == "share":
        return f"{v * 100:+.1f} pp"
    if unit == "index":
        return f"{v:+.2f}"
    return f"{v:+,.0f}"


def number(v) -> str:
    if missing(v):
        return DASH
    if float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def count(v, suppressed: bool, min_cell_size: int) -> str:
    """A count, or ``<min_cell_size`` when it was suppressed."""
    if suppressed:
        return f"<{min_cell_size}"
    return number(v)


def euro(v) -> str:
    return DASH if missing(v) else f"€ {v:,.0f}"


def day(v) -> str:
    if missing(v):
        return DASH
    if isinstance(v, (date, datetime)):
        return v.isoformat()[:10]
    return str(v)


def label(column: str) -> str:
    """A column name for humans: clients_in_scope -> clients in scope."""
    return column.replace("_", " ")


def axis(unit: str) -> dict:
    """Plotly axis attributes for values of ``unit``."""
    if unit == "share":
        return {"tickformat": ".0%"}
    if unit == "index":
        return {"tickformat": ".2f"}
    if unit == "euro":
        return {"tickprefix": "€ ", "tickformat": ",.0f"}
    return {"tickformat": ",.0f"}


def hover(unit: str) -> str:
    """A d3 format for %{y:...} in hover templates."""
    return {"share": ".1%", "index": ".3f", "euro": ",.0f"}.get(unit, ",.0f")
