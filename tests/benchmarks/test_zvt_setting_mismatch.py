"""marts.zvt_setting_mismatch on a hand-computed extract."""

import pytest

from tests.builders import BEH_60, BEH_60_S5, BEH_60_S8, DIAG_60, P1, P2, STAY_S5, claim, contract, credit, one

reversed_light = claim("d1", "d", "2025-01-10", BEH_60_S8, zvt=1, trajectory="D")
CLAIMS = [
    claim("a1", "a", "2025-01-10", BEH_60_S8, zvt=2, trajectory="A"),              # mismatch
    claim("a2", "a", "2025-01-20", BEH_60_S8, trajectory="A"),                     # ZVT 2 carried: mismatch
    claim("b1", "b", "2025-01-10", BEH_60_S5, zvt=5, trajectory="B"),              # in scope, not light
    claim("c1", "c", "2025-01-10", STAY_S5, "300.00", zvt=3, trajectory="C"),      # verblijfsdag setting 5, ZVT 3
    reversed_light, credit("d1c", reversed_light),                                 # reversed: not in scope
    claim("e1", "e", "2025-01-10", BEH_60, zvt=1, trajectory="E"),                 # setting 1: not in scope
    claim("f1", "f", "2025-01-10", DIAG_60, zvt=1, provider=P2, trajectory="F"),   # P2 has no scope lines
]
CONTRACTS = [contract(P1, provider_type="instelling"), contract(P2, provider_type="instelling")]


def test_default_light_zvt_in_settings_5_and_8(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS), "marts.zvt_setting_mismatch", P1)
    assert row["scope_lines"] == 4 and row["clients_in_scope"] == 3
    assert row["clients_light_zvt"] == 2 and row["mismatch_lines"] == 3
    assert float(row["mismatch_amount"]) == 500.0
    assert row["share"] == pytest.approx(2 / 3) and row["meets_norm"] is False


def test_no_scope_lines_gives_no_share(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS), "marts.zvt_setting_mismatch", P2)
    assert row["scope_lines"] == 0 and row["share"] is None and row["meets_norm"] is None


def test_caresq_counts_zvt_1_and_2_only(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, policy="caresq"), "marts.zvt_setting_mismatch", P1)
    assert (row["clients_light_zvt"], row["mismatch_lines"], float(row["mismatch_amount"])) == (1, 2, 200.0)


def test_cz_looks_at_setting_8_only(warehouse_for):
    row = one(warehouse_for(CLAIMS, CONTRACTS, policy="cz"), "marts.zvt_setting_mismatch", P1)
    assert (row["clients_in_scope"], row["clients_light_zvt"], row["mismatch_lines"]) == (1, 1, 2)
    assert row["meets_norm"] is False
