"""Suppression of small client counts (dashboards.data), independent of a warehouse."""

from __future__ import annotations

import polars as pl

from dashboards.data import is_client_count, suppress


def test_client_count_columns_are_recognised_by_name():
    assert is_client_count("clients")
    assert is_client_count("clients_in_scope")
    assert is_client_count("clients_light_zvt")
    assert not is_client_count("observed_cost_per_client")
    assert not is_client_count("expected_cost_per_client")
    assert not is_client_count("trajectories")
    assert not is_client_count("treatment_minutes")


def test_suppress_counts_below_minimum_and_values_computed_from_them():
    rows = pl.DataFrame({
        "provider_agb": ["A", "B", "C", "D"],
        "numerator": [3.0, 12.0, 0.0, 9.0],  # clients_light_zvt
        "denominator": [9.0, 40.0, 0.0, 10.0],  # clients_in_scope
        "value": [3 / 9, 12 / 40, None, 0.9],
        "volume": [9.0, 40.0, 0.0, 10.0],
    })
    roles = {"numerator": True, "denominator": True, "volume": True}
    out = suppress(rows, roles, min_cell_size=10).sort("provider_agb")
    assert out["numerator"].to_list() == [None, 12.0, None, None]
    assert out["numerator_suppressed"].to_list() == [True, False, True, True]
    assert out["denominator"].to_list() == [None, 40.0, None, 10.0]
    # A: from 9 clients -> suppressed; C: no value at all (not "suppressed"); D: 10 clients is enough
    assert out["value"].to_list() == [None, 0.3, None, 0.9]
    assert out["value_suppressed"].to_list() == [True, False, False, False]


def test_non_client_columns_are_kept():
    rows = pl.DataFrame({"numerator": [3.0], "denominator": [5.0], "value": [0.6], "volume": [5.0]})
    out = suppress(rows, {"numerator": False, "denominator": False, "volume": False}, min_cell_size=10)
    assert out.row(0, named=True) == {"numerator": 3.0, "denominator": 5.0, "value": 0.6, "volume": 5.0,
                                      "numerator_suppressed": False, "denominator_suppressed": False,
                                      "volume_suppressed": False, "value_suppressed": False}


def test_value_suppressed_by_client_volume_even_when_denominator_is_not_a_count():
    # cost_per_client: numerator and denominator are amounts, the volume (clients) decides
    rows = pl.DataFrame({"numerator": [3000.0, 2500.0], "denominator": [2500.0, 2500.0], "value": [1.2, 1.0],
                         "volume": [4.0, 25.0]})
    out = suppress(rows, {"numerator": False, "denominator": False, "volume": True}, min_cell_size=10)
    assert out["value"].to_list() == [None, 1.0]
    assert out["volume"].to_list() == [None, 25.0]
    # numerator / denominator would give the suppressed value back: hidden too
    assert out["numerator"].to_list() == [None, 2500.0]
    assert out["denominator"].to_list() == [None, 2500.0]
    assert out["numerator_suppressed"].to_list() == [True, False]
