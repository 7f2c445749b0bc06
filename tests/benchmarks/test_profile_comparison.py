"""marts.profile_comparison equals what a run under each profile publishes."""

import pytest

from tests.benchmarks import test_group_treatment_share as group
from tests.benchmarks import test_zvt_setting_mismatch as zvt
from tests.builders import rows

CLAIMS = [*group.CLAIMS, *[{**c, "claim_id": "z-" + c["claim_id"], "related_claim_id":
                            c["related_claim_id"] and "z-" + c["related_claim_id"]} for c in zvt.CLAIMS]]
CONTRACTS = group.CONTRACTS + [c for c in zvt.CONTRACTS if c["provider_agb"] not in {g["provider_agb"] for g in group.CONTRACTS}]
RESULT_COLUMNS = "benchmark, provider_agb, year, numerator, denominator, value, threshold, meets_norm, volume"


def results(con, sql):
    found = rows(con, sql)
    return sorted((tuple(r.values()) for r in found), key=repr)


@pytest.mark.parametrize("policy", ["cz", "caresq", "zorg_en_zekerheid"])
def test_every_profile_gives_the_marts_a_run_under_that_profile_gives(warehouse_for, policy):
    default_run = warehouse_for(CLAIMS, CONTRACTS)
    policy_run = warehouse_for(CLAIMS, CONTRACTS, policy=policy)
    compared = results(default_run, f"SELECT {RESULT_COLUMNS} FROM marts.profile_comparison "
                                    f"WHERE policy = '{policy}'")
    published = results(policy_run, f"SELECT {RESULT_COLUMNS} FROM marts.benchmark_results")
    assert compared == published
    assert compared != results(default_run, f"SELECT {RESULT_COLUMNS} FROM marts.benchmark_results")


def test_the_runs_own_profile_equals_the_published_results(warehouse_for):
    con = warehouse_for(CLAIMS, CONTRACTS)
    assert (results(con, f"SELECT {RESULT_COLUMNS} FROM marts.profile_comparison WHERE policy = 'default'")
            == results(con, f"SELECT {RESULT_COLUMNS} FROM marts.benchmark_results"))
    policies = {r["policy"] for r in rows(con, "SELECT DISTINCT policy FROM marts.profile_comparison")}
    assert policies == {"default", "cz", "caresq", "zorg_en_zekerheid"}
