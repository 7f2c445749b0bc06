"""marts.cost_per_client: a hand-computed extract, and properties of the ZVT correction."""

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.benchmarks.registry import benchmarks
from pipelines.sql_models import materialise
from tests.builders import BEH_60, P1, P2, claim, contract, credit, one

orphan = {**claim("z1", "z", "2025-05-01", BEH_60, "50.00"), "debit_credit": "C", "related_claim_id": "GONE"}
CLAIMS = [
    # P1: a (stratum 2: latest line with a ZVT) 200; b (2) 100; c (privacy statement: unknown) 300;
    #     an orphan credit of 50 lowers P1's total cost but belongs to no active client
    claim("a1", "a", "2025-01-01", BEH_60, zvt=6, trajectory="A"),
    claim("a2", "a", "2025-03-01", BEH_60, zvt=2, trajectory="A"),
    claim("b1", "b", "2025-01-01", BEH_60, zvt=2, trajectory="B"),
    claim("c1", "c", "2025-01-01", BEH_60, "300.00", privacy=True, trajectory="C"),
    orphan,
    # P2: d (2) 400 = 500 with 100 credited; e (6) 600
    claim("d1", "d", "2025-01-01", BEH_60, "500.00", zvt=2, provider=P2, trajectory="D"),
    credit("d1c", claim("d1", "d", "2025-01-01", BEH_60, "500.00", zvt=2, provider=P2, trajectory="D"), "100.00"),
    claim("e1", "e", "2025-01-01", BEH_60, "600.00", zvt=6, provider=P2, trajectory="E"),
]
CONTRACTS = [contract(P1), contract(P2)]
# peer means 2025: m_2 = (200 + 100 + 400) / 3; m_6 = 600; m_unknown = 300; all clients: 1600 / 5 = 320
M2, M6, MU, PEER = 700 / 3, 600.0, 300.0, 320.0


def test_observed_expected_and_index(warehouse_for):
    con = warehouse_for(CLAIMS, CONTRACTS)
    p1 = one(con, "marts.cost_per_client", P1)
    assert (p1["clients"], p1["unknown_stratum_clients"], float(p1["total_cost"])) == (3, 1, 550.0)
    assert p1["observed_cost_per_client"] == pytest.approx(550 / 3)
    assert p1["expected_cost_per_client"] == pytest.approx((2 * M2 + MU) / 3)
    assert p1["cost_index"] == pytest.approx((550 / 3) / ((2 * M2 + MU) / 3))
    assert p1["adjusted_cost_per_client"] == pytest.approx(p1["cost_index"] * PEER)
    assert p1["meets_norm"] is True

    p2 = one(con, "marts.cost_per_client", P2)
    assert (p2["clients"], p2["unknown_stratum_clients"], float(p2["total_cost"])) == (2, 0, 1000.0)
    assert p2["expected_cost_per_client"] == pytest.approx((M2 + M6) / 2)
    assert p2["cost_index"] == pytest.approx(1.2) and p2["meets_norm"] is False


def test_provider_strata_count_and_cost_each_providers_clients_per_stratum(warehouse_for):
    con = warehouse_for(CLAIMS, CONTRACTS)
    rows = con.execute("SELECT provider_agb, year, stratum, clients, cost FROM core.provider_strata "
                       "ORDER BY provider_agb, stratum").fetchall()
    # the orphan credit belongs to no active client: it is in P1's total cost, not in a stratum
    assert [(p, y, s, n, float(c)) for p, y, s, n, c in rows] == [
        (P1, 2025, "2", 2, 300.0), (P1, 2025, "unknown", 1, 300.0),
        (P2, 2025, "2", 1, 400.0), (P2, 2025, "6", 1, 600.0)]


# --- the mart's SQL alone, on core tables written directly -------------------------------------------------

COST_SQL = next(b for b in benchmarks() if b.name == "cost_per_client").model


def run_cost_sql(clients: list[tuple[str, str, float]]) -> dict[str, float]:
    """clients: (provider, stratum, cost) for year 2025. Returns provider -> cost_index."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA core; CREATE SCHEMA marts")
    con.execute("CREATE TABLE core.provider_clients (provider_agb VARCHAR, year INTEGER, client_key VARCHAR, "
                "stratum VARCHAR, cost DOUBLE)")
    con.executemany("INSERT INTO core.provider_clients VALUES (?, 2025, ?, ?, ?)",
                    [(p, f"k{i}", s, c) for i, (p, s, c) in enumerate(clients)])
    con.execute("CREATE TABLE core.provider_strata AS SELECT provider_agb, year, stratum, count(*) AS clients, "
                "sum(cost) AS cost FROM core.provider_clients GROUP BY ALL")
    con.execute("CREATE TABLE core.provider_years AS SELECT provider_agb, year, sum(cost) AS net_amount "
                "FROM core.provider_clients GROUP BY ALL")
    con.execute("CREATE TABLE core.provider_years_in_scope AS SELECT DISTINCT provider_agb, year "
                "FROM core.provider_clients")
    con.execute("CREATE TABLE core.benchmark_norms AS SELECT 'cost_per_client' AS benchmark, provider_agb, year, "
                "1.0 AS threshold, TRUE AS norm_applies FROM core.provider_years_in_scope")
    materialise(con, COST_SQL)
    return dict(con.execute("SELECT provider_agb, cost_index FROM marts.cost_per_client").fetchall())


mix = st.lists(st.sampled_from(["1", "4", "12", "unknown"]), min_size=1, max_size=4)


@settings(max_examples=30, deadline=None)
@given(strata=mix, costs=st.lists(st.lists(st.floats(10, 5000), min_size=4, max_size=4), min_size=2, max_size=4))
def test_same_zvt_mix_means_index_is_observed_over_peer_mean(strata, costs):
    clients = [(f"P{p}", s, per_provider[i % 4]) for p, per_provider in enumerate(costs)
               for i, s in enumerate(strata)]
    index = run_cost_sql(clients)
    peer_mean = sum(c for _, _, c in clients) / len(clients)
    for p in index:
        own = [c for q, _, c in clients if q == p]
        assert index[p] == pytest.approx((sum(own) / len(own)) / peer_mean)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["P1", "P2", "P3"]), st.sampled_from(["2", "6", "unknown"]),
                          st.floats(10, 5000)), min_size=3, max_size=30))
def test_client_weighted_mean_of_the_index_times_expected_is_the_peer_total(clients):
    index = run_cost_sql(clients)
    # sum over providers of observed cost equals sum of expected cost: the correction redistributes, never inflates
    means = {}
    for s in {s for _, s, _ in clients}:
        costs = [c for _, t, c in clients if t == s]
        means[s] = sum(costs) / len(costs)
    expected_total = sum(means[s] for _, s, _ in clients)
    observed_total = sum(c for *_, c in clients)
    assert expected_total == pytest.approx(observed_total)
    for p in index:
        own = [(s, c) for q, s, c in clients if q == p]
        expected = sum(means[s] for s, _ in own) / len(own)
        assert index[p] == pytest.approx((sum(c for _, c in own) / len(own)) / expected)
