"""Care trajectories -> declared debit lines, vectorised over a chunk of clients.

A trajectory (zorgtraject) of a client at a provider is planned with numpy arrays (kind, number of consults,
interval, group series, clinical stay, ZVT re-typing, ...) and then expanded into lines with ``np.repeat``;
nothing loops per line or per client.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sample_data.codebook import BEH, DIAG, CodeBook
from sample_data.population import ZVT_P, ZVT_VALUES, Providers

# trajectory kinds
DIAG_ONLY, AMBULANT, CLINICAL, SPECIALIST, OUTREACH = 0, 1, 2, 3, 4

REFERRAL_TYPES = np.array(["01", "02", "03", "04", "06", "07"])
REFERRAL_P = np.array([0.82, 0.08, 0.02, 0.02, 0.04, 0.02])
REFERRAL_NO_DATE = 4  # index of "06" (other legal ground): no referral date

# duration-class probabilities over DURATIONS = 5, 15, 30, 45, 60, 75, 90, 120 minutes
DUR_DIAG = np.array([0, 0, 0.10, 0.30, 0.35, 0.10, 0.15, 0])
DUR_TREAT = np.array([0, 0.03, 0.10, 0.42, 0.33, 0.05, 0.05, 0.02])
DUR_SPECIAL = np.array([0, 0, 0.05, 0.25, 0.40, 0.15, 0.10, 0.05])
DUR_STAY = np.array([0, 0.20, 0.35, 0.25, 0.20, 0, 0, 0])

ZVT_CLASS_LO = np.array([1, 4, 10, 18], dtype=np.int8)
ZVT_CLASS_HI = np.array([3, 8, 17, 21], dtype=np.int8)

P_DIAG_ZVT_EMPTY = 0.65  # diagnostiek lines without ZVT (the ZVT is set at the end of diagnostics)
P_RETYPE = 0.15


def zvt_class(z: np.ndarray) -> np.ndarray:
    return np.where(z <= 3, 0, np.where(z <= 8, 1, np.where(z <= 17, 2, 3)))


def segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """owner (row of each expanded element), position within its row, start index of each row."""
    counts = counts.astype(np.int64)
    starts = np.cumsum(counts) - counts
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    pos = np.arange(int(counts.sum()), dtype=np.int64) - starts[owner]
    return owner, pos, starts


def seg_cumsum(values: np.ndarray, owner: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum of ``values`` restarting at every row."""
    cs = np.cumsum(values, dtype=np.int64)
    excl = cs - values
    return cs - excl[starts[owner]]


@dataclass
class Trajectories:
    client: np.ndarray
    prov: np.ndarray
    start: np.ndarray  # planned first day
    ongoing: np.ndarray
    kind: np.ndarray
    zvt1: np.ndarray
    zvt2: np.ndarray
    retype_day: np.ndarray
    n_diag: np.ndarray
    n_treat: np.ndarray
    interval: np.ndarray
    group: np.ndarray
    n_sess: np.ndarray
    blocks: np.ndarray
    nprof: np.ndarray
    gsize: np.ndarray
    stay: np.ndarray
    stay_len: np.ndarray
    stay_setting: np.ndarray  # 5 or 8
    vd_cat: np.ndarray
    main_pract: np.ndarray
    group_pract: np.ndarray  # [T, 2]
    amb_loc: np.ndarray
    has_tid: np.ndarray
    tid: np.ndarray
    ref_type: np.ndarray
    ref_lead: np.ndarray  # days between referral and first line

    def __len__(self) -> int:
        return len(self.client)


def _pick(rng: np.random.Generator, start: np.ndarray, n: np.ndarray) -> np.ndarray:
    return start + np.floor(rng.random(len(start)) * n).astype(np.int64)


def plan(
    client: np.ndarray, prov: np.ndarray, start: np.ndarray, ongoing: np.ndarray, zvt: np.ndarray,
    is_return: np.ndarray, reuse: np.ndarray, P: Providers, rng: np.random.Generator, d0: int,
    force_diag_only: np.ndarray | None = None,
) -> Trajectories:
    """Plan one trajectory per row: ``start`` is its planned first day, ``zvt`` the client's ZVT at that time,
    ``reuse`` marks a return within 365 days (one re-intake consult instead of a full diagnostic phase)."""
    T = len(client)
    sev = np.minimum(zvt_class(zvt), 2)
    light = zvt <= 3
    flagged = P.light_in_clinic[prov]
    heavy_ok = ~light | flagged

    diag_only = (rng.random(T) < P.diag_only[prov] * np.where(is_return, 0.5, 1.0)) & ~ongoing
    if force_diag_only is not None:
        diag_only |= force_diag_only
    p_clin = np.where(P.has_clinic[prov], np.array([0.12, 0.05, 0.16])[sev], 0.0) * heavy_ok
    p_spec = np.where(P.has_special[prov], np.array([0.12, 0.08, 0.15])[sev], 0.0) * heavy_ok
    p_out = np.where(P.has_outreach[prov], np.array([0.03, 0.08, 0.30])[sev], 0.0)
    v = rng.random(T)
    kind = np.full(T, AMBULANT, dtype=np.int8)
    kind[v < p_clin + p_spec + p_out] = OUTREACH
    kind[v < p_clin + p_spec] = SPECIALIST
    kind[v < p_clin] = CLINICAL
    kind[diag_only] = DIAG_ONLY
    treat = kind != DIAG_ONLY

    n_diag = rng.choice(np.array([1, 2, 3, 4]), size=T, p=[0.35, 0.35, 0.2, 0.1])
    n_diag = np.where(reuse, 1, n_diag)
    base = np.array([7, 8, 9])[sev] + rng.poisson(np.array([4.0, 6.0, 14.0])[sev])
    long_tail = np.where(rng.random(T) < 0.15, rng.geometric(1 / 20, T), 0)
    n_treat = np.maximum(1, np.round((base + long_tail) * P.intensity[prov])).astype(np.int64)
    interval = rng.choice(np.array([7, 14, 21, 28]), size=T, p=[0.45, 0.40, 0.10, 0.05])
    # in care since before the first year: long enough to reach well into it
    need = np.ceil((d0 - start) / interval).astype(np.int64) + 4 + rng.poisson(6, T)
    n_treat = np.where(ongoing, np.maximum(n_treat, need), n_treat)

    group = treat & (rng.random(T) < P.p_group[prov])
    n_sess = rng.integers(6, 13, T)
    blocks = rng.choice(np.array([2, 3]), size=T)
    nprof = np.where((P.group_prof[prov] == 2) & (rng.random(T) < 0.85), 2, 1)
    gsize = np.clip(P.group_size[prov] + rng.integers(-1, 2, T), 2, 12)
    n_treat = np.where(group, np.maximum(1, n_treat // 2), n_treat)  # group replaces part of individual care

    stay = (kind == CLINICAL) | ((kind == SPECIALIST) & (rng.random(T) < 0.15))
    stay_len = np.clip(5 + rng.gamma(1.3, 20.0, T), 3, 150).astype(np.int64)
    stay_setting = np.where(kind == SPECIALIST, 8, 5)
    vd_cat = np.clip(P.vd_base[prov] + rng.integers(-1, 2, T) + (sev == 2), 0, 7)
    n_treat = np.where(kind == CLINICAL, n_treat // 2 + 1, n_treat)  # aftercare after discharge

    retype = treat & (rng.random(T) < P_RETYPE)
    cls = zvt_class(zvt)
    same_class = rng.integers(ZVT_CLASS_LO[cls], ZVT_CLASS_HI[cls] + 1).astype(np.int8)
    any_class = rng.choice(ZVT_VALUES, size=T, p=ZVT_P)
    zvt2 = np.where(retype, np.where(flagged, any_class, same_class), zvt).astype(np.int8)
    retype_day = np.where(retype, start + rng.integers(60, 331, T), np.iinfo(np.int32).max)

    main_pract = _pick(rng, P.pract_start[prov], P.pract_n[prov])
    group_pract = np.stack(
        [_pick(rng, P.pract_start[prov], P.pract_n[prov]), _pick(rng, P.pract_start[prov], P.pract_n[prov])], axis=1
    )
    amb_loc = _pick(rng, P.loc_start[prov], P.loc_amb_n[prov])
    has_tid = rng.random(T) >= P.missing_tid[prov]
    ref_type = rng.choice(len(REFERRAL_TYPES), size=T, p=REFERRAL_P)
    ref_lead = rng.integers(3, 121, T)

    return Trajectories(
        client=client, prov=prov, start=start, ongoing=ongoing, kind=kind, zvt1=zvt.astype(np.int8), zvt2=zvt2,
        retype_day=retype_day, n_diag=n_diag, n_treat=np.where(treat, n_treat, 0), interval=interval,
        group=group, n_sess=np.where(group, n_sess, 0), blocks=blocks, nprof=nprof, gsize=gsize, stay=stay,
        stay_len=np.where(stay, stay_len, 0), stay_setting=stay_setting, vd_cat=vd_cat, main_pract=main_pract,
        group_pract=group_pract, amb_loc=amb_loc, has_tid=has_tid, tid=np.zeros(T, dtype=np.int64),
        ref_type=ref_type, ref_lead=ref_lead,
    )


@dataclass
class Lines:
    traj: np.ndarray  # row in the Trajectories
    day: np.ndarray
    code: np.ndarray
    pract: np.ndarray  # -1: none
    clinical_loc: np.ndarray
    s01_factor: np.ndarray
    diag: np.ndarray  # diagnostiek (ZVT often still empty)


def _concat(parts: list[dict[str, np.ndarray]]) -> Lines:
    keys = ("traj", "day", "code", "pract", "clinical_loc", "s01_factor", "diag")
    return Lines(**{k: np.concatenate([p[k] for p in parts]) for k in keys})


def _part(traj, day, code, pract, clinical_loc=False, s01=0.0, diag=False) -> dict[str, np.ndarray]:
    n = len(traj)
    return {
        "traj": traj.astype(np.int64),
        "day": day.astype(np.int64),
        "code": code.astype(np.int32),
        "pract": np.broadcast_to(pract, n).astype(np.int64),
        "clinical_loc": np.broadcast_to(clinical_loc, n).astype(bool),
        "s01_factor": np.broadcast_to(s01, n).astype(np.float64),
        "diag": np.broadcast_to(diag, n).astype(bool),
    }


def _other_pract(rng: np.random.Generator, T: Trajectories, owner: np.ndarray, P: Providers, p_main: float):
    prov = T.prov[owner]
    rand = _pick(rng, P.pract_start[prov], P.pract_n[prov])
    return np.where(rng.random(len(owner)) < p_main, T.main_pract[owner], rand)


def expand(T: Trajectories, P: Providers, CB: CodeBook, rng: np.random.Generator) -> Lines:
    """All lines of the trajectories (dates not yet limited to the requested years)."""
    parts: list[dict[str, np.ndarray]] = []
    treat = T.kind != DIAG_ONLY
    n_dur = len(DUR_DIAG)

    # diagnostiek consults, 3-14 days apart
    owner, pos, starts = segments(T.n_diag)
    gaps = rng.integers(3, 15, len(owner))
    gaps[pos == 0] = 0
    day = T.start[owner] + seg_cumsum(gaps, owner, starts)
    diag_end = T.start.copy()
    has = T.n_diag > 0
    diag_end[has] = day[starts[has] + T.n_diag[has] - 1]
    pract = _other_pract(rng, T, owner, P, 0.8)
    setting = np.where(T.kind[owner] == SPECIALIST, 8, P.amb_setting[T.prov[owner]])
    dur = rng.choice(n_dur, size=len(owner), p=DUR_DIAG)
    code = CB.consult[DIAG, setting, P.pract_cat[pract], dur]
    parts.append(_part(owner, day, code, pract, s01=1.0, diag=True))
    if "TC0020" in CB.special:  # toeslag psychodiagnostiek on a few diagnostiek consults
        sel = rng.random(len(owner)) < 0.04
        parts.append(_part(owner[sel], day[sel], np.full(sel.sum(), CB.special["TC0020"]), pract[sel], diag=True))

    tstart = diag_end + rng.integers(7, 43, len(T))

    # clinical stay: one verblijfsdag per night, consults during the stay
    owner, pos, starts = segments(T.stay_len)
    code = CB.stay[(T.stay_setting[owner] == 8).astype(np.int64), T.vd_cat[owner]]
    parts.append(_part(owner, tstart[owner] + pos, code, -1, clinical_loc=True))
    n_stay_consults = np.where(T.stay, np.maximum(1, T.stay_len * 2 // 7), 0)
    owner, pos, starts = segments(n_stay_consults)
    day = tstart[owner] + np.floor(rng.random(len(owner)) * T.stay_len[owner]).astype(np.int64)
    pract = _other_pract(rng, T, owner, P, 0.3)
    dur = rng.choice(n_dur, size=len(owner), p=DUR_STAY)
    code = CB.consult[BEH, T.stay_setting[owner], P.pract_cat[pract], dur]
    parts.append(_part(owner, day, code, pract, clinical_loc=True))

    # individual treatment sessions (after discharge for a clinical stay)
    ind_start = np.where(T.stay, tstart + T.stay_len + rng.integers(3, 15, len(T)), tstart)
    owner, pos, starts = segments(T.n_treat)
    gaps = T.interval[owner] + rng.integers(-2, 4, len(owner))
    gaps[pos == 0] = 0
    day = ind_start[owner] + seg_cumsum(gaps, owner, starts)
    ind_end = ind_start.copy()
    has = T.n_treat > 0
    ind_end[has] = day[starts[has] + T.n_treat[has] - 1]
    pract = _other_pract(rng, T, owner, P, 0.85)
    k = T.kind[owner]
    setting = np.where(k == SPECIALIST, 8, np.where(k == OUTREACH, 4, P.amb_setting[T.prov[owner]]))
    dur_special = rng.choice(n_dur, size=len(owner), p=DUR_SPECIAL)
    dur = np.where(k == SPECIALIST, dur_special, rng.choice(n_dur, size=len(owner), p=DUR_TREAT))
    code = CB.consult[BEH, setting, P.pract_cat[pract], dur]
    s01 = np.where(k == OUTREACH, 0.0, 1.0)  # outreach is face to face
    parts.append(_part(owner, day, code, pract, clinical_loc=(k == SPECIALIST), s01=s01))
    # toeslag reistijd on outreach consults
    out = (k == OUTREACH) & (rng.random(len(owner)) < 0.6)
    if out.any() and "TC0009" in CB.special and "TC0010" in CB.special:
        travel = np.where(rng.random(int(out.sum())) < 0.7, CB.special["TC0009"], CB.special["TC0010"])
        parts.append(_part(owner[out], day[out], travel, pract[out]))

    # group treatment: weekly sessions of 2-3 blocks of 30 minutes, one line per block per professional
    gstart = ind_start + rng.integers(0, 36, len(T))
    s_owner, s_pos, _ = segments(T.n_sess)
    s_day = gstart[s_owner] + 7 * s_pos
    l_sess, l_pos, _ = segments(T.blocks[s_owner] * T.nprof[s_owner])
    owner = s_owner[l_sess]
    prof = l_pos % T.nprof[owner]
    pract = T.group_pract[owner, prof]
    code = CB.group[P.pract_cat[pract], T.gsize[owner]]
    parts.append(_part(owner, s_day[l_sess], code, pract, s01=0.3))
    ind_end = np.maximum(ind_end, np.where(T.n_sess > 0, gstart + 7 * (T.n_sess - 1), ind_end))

    # overige prestaties: intercollegiaal overleg (kort/lang), niet-basispakketzorg consult
    span = np.maximum(ind_end - ind_start, 0) + 1
    for code_name, p, lo, hi in (("OV0007", 0.15, 1, 3), ("OV0008", 0.05, 1, 2), ("OV0012", 0.01, 1, 4)):
        if code_name not in CB.special:
            continue
        counts = np.where(treat & (rng.random(len(T)) < p), rng.integers(lo, hi, len(T)), 0)
        owner, pos, starts = segments(counts)
        day = ind_start[owner] + np.floor(rng.random(len(owner)) * span[owner]).astype(np.int64)
        parts.append(_part(owner, day, np.full(len(owner), CB.special[code_name]), T.main_pract[owner]))

    lines = _concat(parts)
    # consults are on weekdays: Saturday -> Friday, Sunday -> Monday (verblijfsdagen stay on every day)
    vd = lines.pract < 0
    dow = (lines.day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    shift = np.where(dow == 5, -1, np.where(dow == 6, 1, 0))
    lines.day = np.where(vd, lines.day, lines.day + shift)
    if (lines.code < 0).any():
        raise AssertionError("a generated line has no prestatiecode (reference table incomplete)")
    return lines
