"""Control limits for the funnel plots on the benchmark pages.

A funnel plot shows each provider's value against its volume, with the peer mean (the *target*) and control
limits that narrow as the volume grows. A provider outside the limits differs from its peers by more than
chance would explain for a provider of that size, so small providers are not flagged for noise alone.
Two limit levels are drawn: 95% (z = 1.959964) and 99.8% (z = 3.090232).

How the limits are computed depends on the benchmark's ``unit`` (from its YAML):

``share`` -- **binomial limits**. The target is the pooled peer share p = sum(numerators) / sum(denominators)
    and the limits at volume n are p ± z·sqrt(p(1 − p)/n), clipped to [0, 1], with n = the benchmark's
    denominator (the number of trajectories, clients, consult lines, minutes...). This treats every unit of
    the denominator as an independent yes/no observation; where the units cluster (minutes within consults,
    lines within clients) the true noise is larger than binomial, so the limits are then on the narrow side.

``index`` (and ``euro`` / ``count``) -- **limits from the spread of the provider values**. There is no
    binomial model for a ratio of costs, so the noise is estimated from the peers themselves: with values
    x_i and volumes n_i (the volume column, e.g. clients) of k peers, the target is the volume-weighted mean
    x̄ = Σ n_i·x_i / Σ n_i and the per-unit standard deviation is s = sqrt(Σ n_i·(x_i − x̄)² / (k − 1)).
    A provider's value is an average over its n units, so its standard error is s/√n and the limits are
    x̄ ± z·s/√n. Because s also contains the real differences between providers, these limits are
    deliberately wide: a provider outside them stands out from its peers, not just from a sampling model.

For binomial limits the overdispersion factor φ = mean of z_i² with z_i = (x_i − p)/sqrt(p(1 − p)/n_i)
(Spiegelhalter, 2005) is about 1 when the providers differ only by binomial noise. Denominators such as
treatment minutes are not independent yes/no observations (minutes cluster in consults, consults in clients),
so φ is often far above 1 and plain binomial limits would flag most providers. When φ > 1 the limits are
therefore widened multiplicatively: p ± z·sqrt(φ·p(1 − p)/n) (Spiegelhalter's overdispersion-adjusted funnel),
which is what an analyst expects from a funnel: only providers that stand out from their peers are flagged.
``ADJUST_FOR_OVERDISPERSION = False`` gives the plain binomial limits.
Lower spread limits are clipped at 0 when no peer value is negative.

Peers are the providers of the same year for which the norm is evaluated and whose value is published
(values suppressed for small client counts are neither plotted nor used for the limits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959964
Z998 = 3.090232
LEVELS = (("95%", Z95), ("99.8%", Z998))
MIN_PEERS = 3  # fewer peers than this: no limits are drawn
OVERDISPERSION_WARNING = 2.0  # binomial funnels with φ above this get a note on the page
ADJUST_FOR_OVERDISPERSION = True  # widen binomial limits by sqrt(φ) when φ > 1 (see the module docstring)


def binomial_limits(p: float, n: float, z: float) -> tuple[float, float]:
    """Binomial control limits p ± z·sqrt(p(1 − p)/n), clipped to [0, 1]."""
    if n <= 0:
        raise ValueError("n must be positive")
    half = z * math.sqrt(max(p * (1.0 - p), 0.0) / n)
    return max(0.0, p - half), min(1.0, p + half)


def spread_limits(target: float, sd_per_unit: float, n: float, z: float) -> tuple[float, float]:
    """Limits target ± z·sd/sqrt(n) for a mean over n units with per-unit standard deviation ``sd``."""
    if n <= 0:
        raise ValueError("n must be positive")
    half = z * sd_per_unit / math.sqrt(n)
    return target - half, target + half


def weighted_spread(values: Sequence[float], volumes: Sequence[float]) -> tuple[float, float]:
    """Volume-weighted mean and per-unit standard deviation sqrt(Σ n_i (x_i − x̄)² / (k − 1))."""
    pairs = [(float(x), float(n)) for x, n in zip(values, volumes, strict=True) if n and n > 0]
    if len(pairs) < 2:
        raise ValueError("need at least two providers with a positive volume")
    total = sum(n for _, n in pairs)
    mean = sum(x * n for x, n in pairs) / total
    variance = sum(n * (x - mean) ** 2 for x, n in pairs) / (len(pairs) - 1)
    return mean, math.sqrt(variance)


@dataclass(frozen=True)
class Funnel:
    """The target and limits of one funnel plot (one benchmark, one year)."""

    method: str  # "binomial" or "spread"
    target: float
    sd_per_unit: float  # spread method only; 0 for binomial
    peers: int
    dispersion: float | None = None  # binomial method only: mean squared z-score (1 = binomial noise)
    nonnegative: bool = False  # spread method: clip the lower limit at 0

    @property
    def inflation(self) -> float:
        """The factor sqrt(φ) by which binomial limits are widened (1 without adjustment)."""
        if self.method != "binomial" or not ADJUST_FOR_OVERDISPERSION or not self.dispersion:
            return 1.0
        return math.sqrt(max(1.0, self.dispersion))

    def limits(self, n: float, z: float) -> tuple[float, float]:
        if self.method == "binomial":
            return binomial_limits(self.target, n, z * self.inflation)
        low, high = spread_limits(self.target, self.sd_per_unit, n, z)
        return (max(low, 0.0) if self.nonnegative else low), high

    @property
    def overdispersed(self) -> bool:
        return self.dispersion is not None and self.dispersion > OVERDISPERSION_WARNING

    def signal(self, value: float, n: float, higher_is_better: bool) -> str:
        """Where a provider lies: ``worse_998``, ``worse_95``, ``within``, ``better_95`` or ``better_998``."""
        if value is None or n is None or n <= 0 or (isinstance(value, float) and math.isnan(value)):
            return "unknown"
        result = "within"
        for label, z in LEVELS:
            low, high = self.limits(n, z)
            tag = "998" if label == "99.8%" else "95"
            if value > high:
                result = f"{'better' if higher_is_better else 'worse'}_{tag}"
            elif value < low:
                result = f"{'worse' if higher_is_better else 'better'}_{tag}"
        return result

    def curves(self, n_min: float, n_max: float, points: int = 80) -> dict[str, list[float]]:
        """Limit curves over a log-spaced grid of volumes: keys ``n``, ``lo95``, ``hi95``, ``lo998``, ``hi998``."""
        n_min = max(n_min, 1e-9)
        n_max = max(n_max, n_min * 1.0001)
        ratio = (n_max / n_min) ** (1.0 / (points - 1))
        grid = [n_min * ratio**i for i in range(points)]
        out: dict[str, list[float]] = {"n": grid}
        for label, z in LEVELS:
            tag = "998" if label == "99.8%" else "95"
            lows, highs = zip(*(self.limits(n, z) for n in grid), strict=True)
            out[f"lo{tag}"], out[f"hi{tag}"] = list(lows), list(highs)
        return out

    def description(self, unit: str) -> str:
        if self.method == "binomial":
            phi = f" Overdispersion φ = {self.dispersion:.3g}" if self.dispersion is not None else ""
            widened = (f"; the limits are widened by √φ = {self.inflation:.3g} because the providers vary more "
                       "than binomial noise (Spiegelhalter 2005)." if self.inflation > 1 else ".")
            return (f"Binomial limits around the pooled peer share p = {self.target:.4g} (all numerators / all "
                    f"denominators of {self.peers} peers): p ± z·√(φ·p(1−p)/n) with n the denominator; "
                    f"z = {Z95} (95%) and {Z998} (99.8%).{phi}{widened}")
        return (f"Limits from the spread of the {self.peers} peer values ({unit}): volume-weighted mean "
                f"x̄ = {self.target:.4g}, per-unit standard deviation s = √(Σ n·(x − x̄)² / (k − 1)) = "
                f"{self.sd_per_unit:.4g}; limits x̄ ± z·s/√n with n the volume; z = {Z95} (95%) and "
                f"{Z998} (99.8%).")


def funnel_for(unit: str, values: Sequence[float], volumes: Sequence[float],
               numerators: Sequence[float] | None = None,
               denominators: Sequence[float] | None = None) -> Funnel | None:
    """The funnel of one benchmark-year from its peers' rows, or None with too few peers.

    ``share``: binomial around sum(numerators)/sum(denominators) (``volumes`` are then the denominators);
    any other unit: the spread method over ``values`` weighted by ``volumes``.
    """
    if unit == "share":
        if numerators is None or denominators is None:
            raise ValueError("a share funnel needs numerators and denominators")
        rows = [(float(a), float(b)) for a, b in zip(numerators, denominators, strict=True)
                if a is not None and b is not None and b > 0]
        if len(rows) < MIN_PEERS:
            return None
        total = sum(b for _, b in rows)
        p = sum(a for a, _ in rows) / total
        return Funnel("binomial", p, 0.0, len(rows), dispersion=overdispersion(p, rows))
    rows = [(float(x), float(n)) for x, n in zip(values, volumes, strict=True)
            if x is not None and n is not None and n > 0 and not math.isnan(float(x))]
    if len(rows) < MIN_PEERS:
        return None
    mean, sd = weighted_spread([x for x, _ in rows], [n for _, n in rows])
    return Funnel("spread", mean, sd, len(rows), nonnegative=min(x for x, _ in rows) >= 0)


def overdispersion(p: float, rows: Sequence[tuple[float, float]]) -> float | None:
    """φ = mean over providers of z² with z = (a/b − p)/sqrt(p(1 − p)/b) for (numerator a, denominator b)."""
    variance = p * (1.0 - p)
    if variance <= 0 or not rows:
        return None
    return sum((a / b - p) ** 2 / (variance / b) for a, b in rows) / len(rows)
