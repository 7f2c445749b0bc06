"""marts.group_treatment_share on a hand-computed extract."""

import pytest

from tests.builders import BEH_45, BEH_60, DIAG_60, GROUP, P1, P2, P3, P4, claim, contract, credit, one

reversed_line = claim("a5", "a", "2025-02-05", BEH_60)
partly_credited = claim("a6", "a", "2025-02-06", BEH_45, "100.00")
CLAIMS = [
    # P1: group 2 x 30 = 60 min; behandeling 60 + 45 (partly credited, still counts) = 105 min; one reversed.
    claim("a1", "a", "2025-01-10", DIAG_60),
    claim("a2", "a", "2025-02-01", BEH_60, "100.00"),
    claim("a3", "a", "2025-03-01", GROUP, "40.00"),
    claim("a4", "a", "2025-03-01", GROUP, "40.00"),
    reversed_line, credit("a5c", reversed_line),
    partly_credited, credit("a6c", partly_credited, "30.00"),
    # P2: 20 x 60 min behandeling, one group block: 30 / 1230
    *[claim(f"b{i}", "b", f"2025-03-{i + 1:02d}", BEH_60, provider=P2) for i in range(20)],
    claim("b-group", "b", "2025-04-01", GROUP, provider=P2),
    # P3: diagnostiek only: no treatment minutes
    claim("c1", "c", "2025-01-10", DIAG_60, provider=P3),
    # P4: exactly 6%: 3 group blocks (90 min) of 22 x 60 + 2 x 45 + 90 = 1500 min
    *[claim(f"d{i}", "d", f"2025-05-{i + 1:02d}", BEH_60, provider=P4) for i in range(22)],
    *[claim(f"e{i}", "d", f"2025-06-{i + 1:02d}", BEH_45, provider=P4) for i in range(2)],
    *[claim(f"g{i}", "d", "2025-07-01", GROUP, provider=P4) for i in range(3)],
]
CONTRACTS = [contract(P1), contract(P2), contract(P3, provider_type="instelling"),
             contract(P4, provider_type="geintegreerde_instelling")]


@pytest.fixture(scope="module")
def default(warehouse_for):
    return warehouse_for(CLAIMS, CONTRACTS)


def test_minutes_lines_and_share(default):
    row = one(default, "marts.group_treatment_share", P1)
    assert row["group_minutes"] == 60 and row["treatment_minutes"] == 165
    assert row["group_lines"] == 2 and row["treatment_lines"] == 4
    assert row["share"] == pytest.approx(60 / 165)
    assert row["share_amount"] == pytest.approx(80 / (80 + 100 + 70))
    assert row["threshold"] == 0.06 and row["meets_norm"] is True


def test_below_the_minimum_misses_the_norm(default):
    row = one(default, "marts.group_treatment_share", P2)
    assert row["share"] == pytest.approx(30 / 1230) and row["meets_norm"] is False


def test_no_treatment_minutes_gives_no_share(default):
    row = one(default, "marts.group_treatment_share", P3)
    assert row["treatment_minutes"] == 0 and row["share"] is None and row["meets_norm"] is None


def test_exactly_the_minimum_meets_the_norm(default):
    row = one(default, "marts.group_treatment_share", P4)
    assert row["treatment_minutes"] == 1500 and row["meets_norm"] is True


def test_caresq_applies_the_minimum_to_integrated_institutions_only(warehouse_for):
    con = warehouse_for(CLAIMS, CONTRACTS, policy="caresq")
    assert one(con, "marts.group_treatment_share", P4)["meets_norm"] is True
    assert one(con, "marts.group_treatment_share", P2)["meets_norm"] is None  # vrijgevestigde


def test_cz_asks_for_any_group_treatment_from_institutions(warehouse_for):
    con = warehouse_for(CLAIMS, CONTRACTS, policy="cz")
    row = one(con, "marts.group_treatment_share", P4)
    assert row["threshold"] == 0 and row["meets_norm"] is True
    assert one(con, "marts.group_treatment_share", P1)["meets_norm"] is None  # vrijgevestigde: not in CZ's text
