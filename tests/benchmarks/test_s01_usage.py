"""marts.s01_usage on a hand-computed extract."""

from tests.builders import BEH_60, GROUP, P1, P2, P3, STAY_S5, claim, contract, credit, one

reversed_s01 = claim("a5", "a", "2025-01-05", BEH_60, zorglabel="S01")
CLAIMS = [
    claim("a1", "a", "2025-01-01", BEH_60, zorglabel="S01"),
    claim("a2", "a", "2025-01-02", BEH_60),
    claim("a3", "a", "2025-01-03", BEH_60),
    claim("a4", "a", "2025-01-04", GROUP),
    reversed_s01, credit("a5c", reversed_s01),
    claim("b1", "b", "2025-01-01", BEH_60, provider=P2),
    claim("c1", "c", "2025-01-01", STAY_S5, provider=P3),
]
CONTRACTS = [contract(P1, provider_type="instelling"), contract(P2, provider_type="instelling"),
             contract(P3, provider_type="instelling")]


def test_s01_lines_among_consult_lines(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS), "marts.s01_usage", P1)
    assert (row["consult_lines"], row["s01_lines"], row["share"], row["meets_norm"]) == (4, 1, 0.25, True)


def test_no_s01_at_all_misses_the_norm(warehouse_for):
    assert one(warehouse_for(CLAIMS, CONTRACTS), "marts.s01_usage", P2)["meets_norm"] is False


def test_no_consults_gives_no_share(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS), "marts.s01_usage", P3)
    assert row["consult_lines"] == 0 and row["share"] is None and row["meets_norm"] is None


def test_cz_obligation_starts_in_2027(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, policy="cz"), "marts.s01_usage", P2)
    assert row["s01_lines"] == 0 and row["meets_norm"] is None
