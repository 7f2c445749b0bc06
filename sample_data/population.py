"""Providers (with their archetype), their practitioners and locations, and the client population.

Archetype properties are assigned from short cycles of different lengths, so that even a run with a dozen
providers has every benchmark situation at least once, and then shuffled over the providers with the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

V, I, G = 0, 1, 2  # provider types
PROVIDER_TYPES = ("vrijgevestigde", "instelling", "geintegreerde_instelling")

# --- archetype cycles (index i of the provider before shuffling) ---------------------------------------------
TYPE_CYCLE = (V, I, G, V, I)
# probability that a treatment trajectory includes a group-treatment series: none / low / high / around 6%
GROUP_CYCLE = (0.0, 0.012, 0.09, 0.03)
DIAG_ONLY_CYCLE = (0.08, 0.45, 0.25)  # share of new trajectories that stay diagnostics-only
S01_CYCLE = (0.0, 0.15, 0.35, 0.05, 0.22, 0.10, 0.28, 0.08, 0.18)  # share of consults with zorglabel S01
INTENSITY_CYCLE = (1.0, 1.45, 0.7, 1.2, 0.85, 1.1)  # multiplier on the number of treatment sessions
TARIFF_CYCLE = (0.97, 0.84, 0.90, 1.00, 0.81, 0.93, 0.87)  # contract percentage of the maximum tariff
NO_TRAJECTORY_ID_EVERY = 7  # providers with i % 7 == 3 never send a trajectory id
# target utilisation of the omzetmaximum per provider-year; None = no omzetmaximum
UTILISATION_CYCLE = (0.45, 0.78, 1.12, None, 0.58, 0.88, 1.25, 0.35, 0.73, 1.05, 0.62)

UZOVI_CODES = np.array(["0104", "3311", "9664"])  # illustrative 4-digit UZOVI-like codes
UZOVI_P = np.array([0.6, 0.25, 0.15])

# ZVT 1-8, 10-21 (no 9) and how common each is
ZVT_VALUES = np.array([1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21], dtype=np.int8)
ZVT_P = np.array([6, 8, 10, 14, 12, 10, 8, 7, 2, 2, 2, 2, 2, 2, 2, 2, 2.25, 2.25, 2.25, 2.25])
ZVT_P = ZVT_P / ZVT_P.sum()

SURNAMES = (
    "De Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "De Boer", "Mulder", "De Groot", "Bos",
    "Vos", "Peters", "Hendriks", "Van Leeuwen", "Dekker", "Brouwer", "De Wit", "Dijkstra", "Smits", "De Graaf",
)
PLACES = (
    "Amstelland", "Rijnmond", "Brabant Oost", "Noord-Holland Zuid", "Twente", "Gelderse Vallei", "Zeeland",
    "Drenthe", "Kennemerland", "Limburg Noord", "Haaglanden", "Utrecht Stad", "Friesland", "Groningen Ommeland",
)


@dataclass(frozen=True)
class Providers:
    n: int
    agb: np.ndarray  # str, 8 digits
    name: np.ndarray  # str
    ptype: np.ndarray  # int8: V / I / G
    weight: np.ndarray  # float: relative number of clients
    p_group: np.ndarray
    diag_only: np.ndarray
    s01: np.ndarray
    intensity: np.ndarray
    tariff_pct: np.ndarray
    missing_tid: np.ndarray  # float: share of trajectories without trajectory id
    amb_setting: np.ndarray  # int8: main ambulant setting (1, 2 or 3)
    has_clinic: np.ndarray  # bool: setting 5 stays
    has_special: np.ndarray  # bool: setting 8 (hoogspecialistisch)
    has_outreach: np.ndarray  # bool: setting 4
    light_in_clinic: np.ndarray  # bool: treats ZVT 1-3 clients in settings 5/8
    vd_base: np.ndarray  # int8: typical verblijfsdag category 0..7
    group_size: np.ndarray  # int8: typical group size
    group_prof: np.ndarray  # int8: professionals in a group session (1 or 2)
    lag_scale: np.ndarray  # float: days between the end of a month and its declaration batch (mean)
    utilisation: np.ndarray  # object [provider, year index]: target utilisation or None
    # practitioners: provider p owns practitioners pract_start[p] .. pract_start[p] + pract_n[p] - 1
    pract_start: np.ndarray
    pract_n: np.ndarray
    pract_agb: np.ndarray  # str
    pract_cat: np.ndarray  # int8 beroepscategorie 1..8
    # locations: ambulant loc_start[p] .. + loc_amb_n[p] - 1, clinical location loc_clin[p] (or ambulant 0)
    loc_start: np.ndarray
    loc_amb_n: np.ndarray
    loc_clin: np.ndarray
    loc_id: np.ndarray  # str


PRACT_CATS = np.arange(1, 9, dtype=np.int8)
PRACT_P = {
    V: np.array([0.0, 0.05, 0.5, 0.2, 0.25, 0.0, 0.0, 0.0]),
    I: np.array([0.03, 0.12, 0.25, 0.12, 0.12, 0.10, 0.08, 0.18]),
    G: np.array([0.06, 0.15, 0.18, 0.10, 0.08, 0.10, 0.15, 0.18]),
}


def _unique_numbers(rng: np.random.Generator, count: int, digits: int) -> np.ndarray:
    return rng.choice(10**digits, size=count, replace=False)


def make_providers(n: int, clients: int, n_years: int, rng: np.random.Generator) -> Providers:
    if n < 1:
        raise ValueError("providers must be at least 1")
    base = np.arange(n)
    ptype = np.array([TYPE_CYCLE[i % len(TYPE_CYCLE)] for i in base], dtype=np.int8)
    p_group = np.array([GROUP_CYCLE[i % len(GROUP_CYCLE)] for i in base])
    diag_only = np.array([DIAG_ONLY_CYCLE[i % len(DIAG_ONLY_CYCLE)] for i in base])
    s01 = np.array([S01_CYCLE[i % len(S01_CYCLE)] for i in base])
    intensity = np.array([INTENSITY_CYCLE[i % len(INTENSITY_CYCLE)] for i in base])
    tariff_pct = np.array([TARIFF_CYCLE[i % len(TARIFF_CYCLE)] for i in base])
    missing_tid = np.where(base % NO_TRAJECTORY_ID_EVERY == 3, 1.0, 0.015)
    utilisation = np.empty((n, n_years), dtype=object)
    for i in base:
        for y in range(n_years):
            utilisation[i, y] = UTILISATION_CYCLE[(i * n_years + y) % len(UTILISATION_CYCLE)]

    # capabilities per type; instellingen alternate between with and without a clinic / outreach team
    inst_rank = np.cumsum(ptype == I) - 1
    has_clinic = (ptype == G) | ((ptype == I) & (inst_rank % 2 == 1))
    has_special = ptype == G
    has_outreach = (ptype == G) | ((ptype == I) & (inst_rank % 3 != 1))
    amb_setting = np.where(ptype == V, 1, np.where(ptype == G, 3, np.where(has_clinic | (inst_rank % 2 == 0), 3, 2)))
    clin_rank = np.cumsum(has_clinic | has_special) - 1
    light_in_clinic = (has_clinic | has_special) & (clin_rank % 3 == 0)

    # shuffle the archetypes over the providers (the AGB order does not reveal them)
    perm = rng.permutation(n)
    ptype, p_group, diag_only, s01, intensity, tariff_pct, missing_tid = (
        a[perm] for a in (ptype, p_group, diag_only, s01, intensity, tariff_pct, missing_tid)
    )
    has_clinic, has_special, has_outreach, amb_setting, light_in_clinic = (
        a[perm] for a in (has_clinic, has_special, has_outreach, amb_setting, light_in_clinic)
    )
    utilisation = utilisation[perm]
    tariff_pct = np.round(tariff_pct + rng.uniform(-0.01, 0.01, n), 3).clip(0.80, 1.00)

    type_weight = np.array([1.0, 6.0, 16.0])[ptype]
    weight = type_weight * rng.lognormal(0.0, 0.35, n)
    vd_base = np.where(ptype == G, rng.integers(1, 4, n), rng.integers(0, 3, n)).astype(np.int8)
    group_size = np.where(ptype == V, rng.integers(4, 7, n), rng.integers(6, 11, n)).astype(np.int8)
    group_prof = np.where(ptype == V, 1, 2).astype(np.int8)
    lag_scale = np.where(ptype == V, 25.0, 12.0) * rng.uniform(0.6, 1.4, n)

    # AGB-like codes: instellingen '06' + 6 digits, practices '94' + 6 digits (illustrative prefixes)
    nums = _unique_numbers(rng, n, 6)
    agb = np.array([("94" if t == V else "06") + f"{x:06d}" for t, x in zip(ptype.tolist(), nums.tolist())])
    order = np.argsort(agb, kind="stable")  # providers in AGB order
    (agb, ptype, weight, p_group, diag_only, s01, intensity, tariff_pct, missing_tid, amb_setting, has_clinic,
     has_special, has_outreach, light_in_clinic, vd_base, group_size, group_prof, lag_scale) = (
        a[order] for a in (agb, ptype, weight, p_group, diag_only, s01, intensity, tariff_pct, missing_tid,
                           amb_setting, has_clinic, has_special, has_outreach, light_in_clinic, vd_base,
                           group_size, group_prof, lag_scale)
    )
    utilisation = utilisation[order]

    names = []
    counters: dict[str, int] = {}
    for k, t in enumerate(ptype.tolist()):
        if t == V:
            stem = f"Psychologenpraktijk {SURNAMES[k % len(SURNAMES)]}"
        elif t == I:
            stem = f"GGZ {PLACES[k % len(PLACES)]}"
        else:
            stem = f"Stichting Geestelijke Gezondheidszorg {PLACES[k % len(PLACES)]}"
        counters[stem] = counters.get(stem, 0) + 1
        names.append(stem if counters[stem] == 1 else f"{stem} {counters[stem]}")

    # practitioners: pool size grows with the expected number of clients
    expected_clients = clients * weight / weight.sum()
    pract_n = np.where(
        ptype == V, 1 + (expected_clients > 25) + (expected_clients > 60),
        np.clip(np.round(expected_clients / 30), 4, 400),
    ).astype(np.int64)
    pract_start = np.concatenate([[0], np.cumsum(pract_n)[:-1]])
    total_pract = int(pract_n.sum())
    pract_cat = np.empty(total_pract, dtype=np.int8)
    for t in (V, I, G):
        sel = np.repeat(ptype == t, pract_n)
        pract_cat[sel] = rng.choice(PRACT_CATS, size=int(sel.sum()), p=PRACT_P[t])
    pnums = _unique_numbers(rng, total_pract + n, 6)
    pnums = pnums[~np.isin(pnums, nums)][:total_pract]  # no practitioner shares a number with a provider
    prefix = np.where(np.isin(pract_cat, (1, 2)), "03", np.where(np.isin(pract_cat, (6, 7)), "90", "94"))
    pract_agb = np.char.add(prefix, np.char.zfill(pnums.astype(str), 6))

    loc_amb_n = np.where(ptype == V, 1, np.where(ptype == I, rng.integers(1, 5, n), rng.integers(2, 7, n)))
    loc_total = loc_amb_n + (has_clinic | has_special)
    loc_start = np.concatenate([[0], np.cumsum(loc_total)[:-1]])
    loc_clin = np.where(has_clinic | has_special, loc_start + loc_amb_n, loc_start)
    loc_id = np.concatenate(
        [np.array([f"{agb[p]}-{k + 1:02d}" for k in range(int(loc_total[p]))]) for p in range(n)]
    )

    return Providers(
        n=n, agb=agb, name=np.array(names), ptype=ptype, weight=weight, p_group=p_group, diag_only=diag_only,
        s01=s01, intensity=intensity, tariff_pct=tariff_pct, missing_tid=missing_tid,
        amb_setting=amb_setting.astype(np.int8), has_clinic=has_clinic, has_special=has_special,
        has_outreach=has_outreach, light_in_clinic=light_in_clinic, vd_base=vd_base, group_size=group_size,
        group_prof=group_prof, lag_scale=lag_scale, utilisation=utilisation, pract_start=pract_start,
        pract_n=pract_n, pract_agb=pract_agb, pract_cat=pract_cat, loc_start=loc_start, loc_amb_n=loc_amb_n,
        loc_clin=loc_clin, loc_id=loc_id,
    )


@dataclass(frozen=True)
class Clients:
    n: int
    client_id: np.ndarray  # int64, 9 digits, fails the BSN eleven-test (so it is never a real BSN)
    home: np.ndarray  # provider index
    second: np.ndarray  # provider index of a second provider, -1 when none
    birth_year: np.ndarray
    zvt: np.ndarray  # int8 base ZVT
    privacy: np.ndarray  # bool
    uzovi: np.ndarray  # index into UZOVI_CODES
    ongoing: np.ndarray  # bool: in care since before the first year
    returns: np.ndarray  # bool: comes back to the home provider after the first trajectory
    long_gap: np.ndarray  # bool: short first trajectory early in the first year, back after more than 365 days


ELF_WEIGHTS = np.array([9, 8, 7, 6, 5, 4, 3, 2, -1], dtype=np.int64)


def fails_eleven_test(numbers: np.ndarray) -> np.ndarray:
    """True where a 9-digit number is NOT a valid BSN (weighted digit sum not divisible by 11)."""
    digits = (numbers[:, None] // (10 ** np.arange(8, -1, -1, dtype=np.int64))) % 10
    return (digits @ ELF_WEIGHTS) % 11 != 0


def fake_bsns(rng: np.random.Generator, count: int) -> np.ndarray:
    candidates = rng.choice(900_000_000, size=int(count * 1.2) + 64, replace=False).astype(np.int64) + 100_000_000
    keep = candidates[fails_eleven_test(candidates)]
    if len(keep) < count:  # practically impossible; fail loudly rather than loop
        raise RuntimeError("could not draw enough client numbers")
    return keep[:count]


def make_clients(n: int, providers: Providers, years: int, first_year: int, rng: np.random.Generator) -> Clients:
    if n < 1:
        raise ValueError("clients must be at least 1")
    p = providers.weight / providers.weight.sum()
    home = rng.choice(providers.n, size=n, p=p)
    k = min(n, providers.n)
    home[:k] = np.arange(k)  # every provider has at least one client
    second = np.full(n, -1, dtype=np.int64)
    visits_two = rng.random(n) < 0.03
    if providers.n > 1:
        other = rng.choice(providers.n, size=n, p=p)
        other = np.where(other == home, (home + 1 + rng.integers(0, providers.n - 1, n)) % providers.n, other)
        second = np.where(visits_two, other, -1)
    age = np.clip(18 + rng.gamma(2.2, 11.0, n), 18, 95).astype(np.int64)
    zvt = rng.choice(ZVT_VALUES, size=n, p=ZVT_P)
    age = np.where(zvt >= 18, np.maximum(age, rng.integers(55, 92, n)), age)  # cognitive/organic: older
    # in care since before the first year: about as many as start in one year, so the years look alike
    ongoing = rng.random(n) < 0.4 / max(1, years)
    returns = rng.random(n) < 0.25
    # The first client of every provider that sends no trajectory ids comes back after more than a year, so
    # that the pipeline's 365-day gap rule always has a case to split.
    long_gap = np.zeros(n, bool)
    long_gap[:k] = never_sends_trajectory_id(providers)[:k]
    ongoing &= ~long_gap
    returns |= long_gap
    return Clients(
        n=n,
        client_id=fake_bsns(rng, n),
        home=home.astype(np.int64),
        second=second,
        birth_year=(first_year - age).astype(np.int32),
        zvt=zvt,
        privacy=rng.random(n) < 0.03,
        uzovi=rng.choice(len(UZOVI_CODES), size=n, p=UZOVI_P),
        ongoing=ongoing,
        returns=returns,
        long_gap=long_gap,
    )


def never_sends_trajectory_id(providers: Providers) -> np.ndarray:
    return providers.missing_tid >= 1.0
