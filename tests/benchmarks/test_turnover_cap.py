"""marts.turnover_cap on a hand-computed extract, at as-of dates around the 70% crossing."""

import datetime as dt

import pytest

from tests.builders import BEH_60, P1, P2, P3, claim, contract, one

CLAIMS = [
    # P1, cap 1000: cumulative 300, 600, 800 (70% reached on 10 March), 1100 (exceeded on 10 April)
    claim("a1", "a", "2025-01-10", BEH_60, "300.00"),
    claim("a2", "a", "2025-02-10", BEH_60, "300.00"),
    claim("a3", "a", "2025-03-10", BEH_60, "200.00"),
    claim("a4", "a", "2025-04-10", BEH_60, "300.00"),
    claim("b1", "b", "2025-01-10", BEH_60, "1000.00", provider=P2),   # P2, cap 10000
    claim("c1", "c", "2025-01-10", BEH_60, "1000.00", provider=P3),   # P3, no cap
]
CONTRACTS = [contract(P1, omzetmaximum="1000"), contract(P2, omzetmaximum="10000"), contract(P3)]


def test_before_the_warning_level_a_projected_overrun_is_flagged(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, as_of="2025-03-09"), "marts.turnover_cap", P1)
    assert float(row["realised_amount"]) == 600.0 and row["utilisation"] == pytest.approx(0.6)
    assert row["elapsed_fraction"] == pytest.approx(68 / 365)
    assert row["projected_amount"] == pytest.approx(600 / (68 / 365))
    assert row["status"] == "projected_overrun" and row["first_warning_date"] is None
    assert row["meets_norm"] is False


def test_on_the_day_cumulative_turnover_reaches_70_percent(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, as_of="2025-03-10"), "marts.turnover_cap", P1)
    assert row["utilisation"] == pytest.approx(0.8) and row["status"] == "early_warning"
    assert row["first_warning_date"] == dt.date(2025, 3, 10)


def test_past_the_cap(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, as_of="2025-12-31"), "marts.turnover_cap", P1)
    assert row["status"] == "exceeded" and row["elapsed_fraction"] == 1.0
    assert row["projected_amount"] == pytest.approx(1100.0)


def test_within_the_cap_is_ok(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, as_of="2025-12-31"), "marts.turnover_cap", P2)
    assert row["status"] == "ok" and row["meets_norm"] is True and row["utilisation"] == pytest.approx(0.1)


def test_providers_without_omzetmaximum_have_no_row(warehouse_for):
    con = warehouse_for(CLAIMS, CONTRACTS, as_of="2025-12-31")
    assert con.execute("SELECT count(*) FROM marts.turnover_cap WHERE provider_agb = ?", [P3]).fetchone() == (0,)
