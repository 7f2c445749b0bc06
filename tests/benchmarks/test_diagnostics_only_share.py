"""marts.diagnostics_only_share on a hand-computed extract."""

import pytest

from tests.builders import BEH_60, DIAG_60, P1, P2, TOESLAG, claim, contract, credit, one

reversed_treatment = claim("d2", "d", "2025-02-01", BEH_60, trajectory="T4")
CLAIMS = [
    claim("a1", "a", "2025-01-10", DIAG_60, trajectory="T1"),                      # diagnostics-only, closed
    claim("b1", "b", "2025-02-01", DIAG_60, trajectory="T2"),                      # with treatment
    claim("b2", "b", "2025-03-01", BEH_60, trajectory="T2"),
    claim("c1", "c", "2025-11-15", DIAG_60, trajectory="T3"),                      # open: 46 days before as-of
    claim("d1", "d", "2025-01-01", DIAG_60, trajectory="T4"),                      # treatment reversed: diag-only
    reversed_treatment, credit("d2c", reversed_treatment),
    claim("e1", "e", "2025-05-01", TOESLAG, trajectory="T5"),                      # neither: left out
    claim("f1", "f", "2024-12-01", DIAG_60, trajectory="T6"),                      # treatment in the next year
    claim("f2", "f", "2025-01-15", BEH_60, trajectory="T6"),
    claim("g1", "g", "2024-01-10", DIAG_60, trajectory=None),                      # 416-day gap: two
    claim("g2", "g", "2025-03-01", DIAG_60, trajectory=None),                      # diagnostics-only trajectories
    claim("h1", "h", "2025-06-01", BEH_60, provider=P2, trajectory="H"),
]
CONTRACTS = [contract(P1), contract(P1, 2024), contract(P2)]


def test_closed_open_and_treated_trajectories(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, as_of="2025-12-31"), "marts.diagnostics_only_share", P1)
    # diagnostics-only and closed: T1, T4, g#2; with treatment: T2, T6; open: T3; T5 left out
    assert row["diagnostics_only_trajectories"] == 3
    assert row["with_treatment_trajectories"] == 2
    assert row["open_trajectories"] == 1
    assert row["trajectories"] == 5
    assert row["share"] == pytest.approx(0.6) and row["meets_norm"] is False


def test_casemix_of_the_earlier_year_uses_what_happened_up_to_the_as_of_date(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, as_of="2025-12-31"), "marts.diagnostics_only_share", P1, 2024)
    # T6 had treatment in 2025, so it counts as with treatment in 2024 too; g#1 is diagnostics-only
    assert (row["diagnostics_only_trajectories"], row["trajectories"]) == (1, 2)


def test_an_earlier_as_of_date_leaves_recent_trajectories_open(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, as_of="2025-03-15"), "marts.diagnostics_only_share", P1)
    # T1 (64 days), T4 (73 days) and g#2 (14 days) are open; T2 and T6 treated; T3 not yet started
    assert row["open_trajectories"] == 3 and row["trajectories"] == 2 and row["share"] == 0.0


def test_only_treated_trajectories_meet_the_norm(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, as_of="2025-12-31"), "marts.diagnostics_only_share", P2)
    assert row["share"] == 0.0 and row["meets_norm"] is True
