"""Control limits of the funnel plots against hand-computed values."""

from __future__ import annotations

import math

import pytest

from dashboards.funnel import (
    Z95, Z998, binomial_limits, funnel_for, overdispersion, spread_limits, weighted_spread,
)


def test_binomial_limits_p02_n100():
    # sqrt(0.2 * 0.8 / 100) = 0.04
    low, high = binomial_limits(0.2, 100, Z95)
    assert low == pytest.approx(0.2 - 1.959964 * 0.04, abs=1e-12)
    assert high == pytest.approx(0.2 + 1.959964 * 0.04, abs=1e-12)
    assert (round(low, 4), round(high, 4)) == (0.1216, 0.2784)
    low, high = binomial_limits(0.2, 100, Z998)
    assert low == pytest.approx(0.2 - 3.090232 * 0.04, abs=1e-12)
    assert high == pytest.approx(0.2 + 3.090232 * 0.04, abs=1e-12)
    assert (round(low, 4), round(high, 4)) == (0.0764, 0.3236)


def test_binomial_limits_narrow_with_volume_and_clip_to_unit_interval():
    assert binomial_limits(0.2, 10_000, Z95)[1] - binomial_limits(0.2, 10_000, Z95)[0] == pytest.approx(
        2 * 1.959964 * 0.004)
    assert binomial_limits(0.05, 4, Z998)[0] == 0.0  # 0.05 - 3.09 * 0.109 < 0
    assert binomial_limits(0.95, 4, Z998)[1] == 1.0
    assert binomial_limits(0.0, 50, Z95) == (0.0, 0.0)
    with pytest.raises(ValueError):
        binomial_limits(0.2, 0, Z95)


def test_weighted_spread_and_spread_limits_by_hand():
    # values 1, 2, 3 with volumes 1, 1, 2: mean (1 + 2 + 6) / 4 = 2.25;
    # variance (1 * 1.25^2 + 1 * 0.25^2 + 2 * 0.75^2) / (3 - 1) = 2.75 / 2 = 1.375
    mean, sd = weighted_spread([1.0, 2.0, 3.0], [1, 1, 2])
    assert mean == pytest.approx(2.25)
    assert sd == pytest.approx(math.sqrt(1.375))
    low, high = spread_limits(mean, sd, 4, Z95)
    half = 1.959964 * math.sqrt(1.375) / 2
    assert (low, high) == pytest.approx((2.25 - half, 2.25 + half))


def test_share_funnel_uses_pooled_share_and_binomial_limits():
    # three providers: 10/100, 30/100, 20/200 -> pooled p = 60 / 400 = 0.15
    f = funnel_for("share", [0.1, 0.3, 0.1], [100, 100, 200], numerators=[10, 30, 20], denominators=[100, 100, 200])
    assert f.method == "binomial"
    assert f.target == pytest.approx(0.15)
    # z-scores: (0.1-0.15)/sqrt(.1275/100), (0.3-0.15)/sqrt(.1275/100), (0.1-0.15)/sqrt(.1275/200)
    v = 0.15 * 0.85
    expected_phi = ((0.05**2) / (v / 100) + (0.15**2) / (v / 100) + (0.05**2) / (v / 200)) / 3
    assert f.dispersion == pytest.approx(expected_phi)
    assert overdispersion(0.15, [(15, 100), (30, 200)]) == pytest.approx(0.0)
    # overdispersed (phi = (1.961 + 17.647 + 3.922) / 3): limits widened: 0.15 ± 1.959964 * sqrt(phi * 0.1275 / 100)
    assert expected_phi == pytest.approx(7.843137, rel=1e-6)
    half = Z95 * math.sqrt(expected_phi * v / 100)
    assert f.limits(100, Z95) == pytest.approx((0.0, 0.15 + half))  # the lower limit clips at 0


def test_binomial_funnel_is_not_narrowed_when_providers_vary_less_than_binomial_noise():
    f = funnel_for("share", [0.15, 0.15, 0.15], [100, 100, 200], numerators=[15, 15, 30],
                   denominators=[100, 100, 200])
    assert f.dispersion == pytest.approx(0.0) and f.inflation == 1.0
    assert f.limits(100, Z95) == pytest.approx(binomial_limits(0.15, 100, Z95))


def test_index_funnel_uses_spread_of_values_and_clips_at_zero():
    f = funnel_for("index", [1.0, 2.0, 3.0], [1, 1, 2])
    assert f.method == "spread"
    assert f.target == pytest.approx(2.25)
    assert f.sd_per_unit == pytest.approx(math.sqrt(1.375))
    assert f.limits(1, Z998)[0] == 0.0  # 2.25 - 3.09 * 1.17 < 0, and no peer value is negative
    assert f.limits(4, Z95) == pytest.approx(spread_limits(2.25, math.sqrt(1.375), 4, Z95))


def test_too_few_peers_gives_no_funnel():
    assert funnel_for("share", [0.1, 0.2], [10, 10], [1, 2], [10, 10]) is None
    assert funnel_for("index", [1.0, None, 2.0], [5, 5, 0]) is None


@pytest.mark.parametrize(("value", "higher_is_better", "expected"), [
    (0.15, False, "within"),
    (0.25, False, "worse_95"),  # above 0.15 + 1.96 * 0.0357 = 0.220, below 0.15 + 3.09 * 0.0357 = 0.260
    (0.30, False, "worse_998"),
    (0.30, True, "better_998"),
    (0.05, False, "better_95"),  # below 0.080 (95%), above 0.040 (99.8%)
    (0.05, True, "worse_95"),
])
def test_signal(value, higher_is_better, expected):
    f = funnel_for("share", [0.1, 0.2, 0.15], [100, 100, 100], [10, 20, 15], [100, 100, 100])
    assert f.signal(value, 100, higher_is_better) == expected


def test_curves_are_log_spaced_and_narrow():
    f = funnel_for("share", [0.1, 0.2, 0.15], [100, 100, 100], [10, 20, 15], [100, 100, 100])
    c = f.curves(10, 1000, points=5)
    assert c["n"] == pytest.approx([10, 31.6227766, 100, 316.227766, 1000])
    widths = [h - lo for lo, h in zip(c["lo95"], c["hi95"], strict=True)]
    assert widths == sorted(widths, reverse=True)
