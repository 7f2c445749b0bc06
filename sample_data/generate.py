"""Generate a realistic landing folder of GGZ zorgprestatiemodel claims and contracts.

    python -m sample_data.generate --out landing --providers 40 --clients 4000 --years 2025,2026

Files written (``<ext>`` is ``parquet`` or ``csv``):

* ``claims_<year>.<ext>``: the debit lines with a service date in that year, their credit lines (full
  reversals, partial credits, a few credits whose debit is not in the data) and corrected re-declarations.
* ``claims_<last year>_redelivery.<ext>``: re-delivered identical copies of lines, a few conflicting
  re-deliveries (same claim_id, different amount) and late credit lines. It sorts after
  ``claims_<last year>.<ext>``, so it loads last. As CSV it uses ``;`` and a decimal comma.
* ``contracts.csv``: one row per provider and year, with an omzetmaximum for most provider-years.

Size: about 19 claim lines per client for two years (``clients`` is the number of distinct clients over
all years, so more years spread the same clients thinner): ``providers=400, clients=500_000`` gives about
9.4 million lines (~16 s, < 1 GB memory on 2 cores; memory does not grow with the size, clients are simulated
in fixed chunks and written per year as they go). The same seed gives byte-identical files.

Every benchmark of the spec gets providers on both sides of its norm; see ``sample_data/population.py`` for
the archetype cycles. Client numbers are 9 digits that fail the BSN eleven-test, so none is a real BSN.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sample_data.codebook import CodeBook, load_codebook
from sample_data.population import (
    PROVIDER_TYPES, UZOVI_CODES, Clients, Providers, make_clients, make_providers,
)
from sample_data.simulate import (
    P_DIAG_ZVT_EMPTY, REFERRAL_NO_DATE, REFERRAL_TYPES, Lines, Trajectories, expand, plan,
)

CHUNK_CLIENTS = 40_000  # clients simulated at a time; fixed, because the output depends on it

CLAIMS_COLUMNS = (
    "claim_id", "related_claim_id", "debit_credit", "uzovi", "provider_agb", "practitioner_agb", "client_id",
    "birth_year", "trajectory_id", "trajectory_start_date", "prestatiecode", "service_date", "zvt", "zorglabel",
    "privacy_flag", "referral_type", "referral_date", "location_id", "declared_amount", "allowed_amount",
    "submitted_date",
)
CONTRACTS_COLUMNS = ("provider_agb", "year", "provider_name", "provider_type", "omzetmaximum")

AMOUNT = pa.decimal128(12, 2)
CLAIMS_SCHEMA = pa.schema([
    ("claim_id", pa.string()), ("related_claim_id", pa.string()), ("debit_credit", pa.string()),
    ("uzovi", pa.string()), ("provider_agb", pa.string()), ("practitioner_agb", pa.string()),
    ("client_id", pa.string()), ("birth_year", pa.int32()), ("trajectory_id", pa.string()),
    ("trajectory_start_date", pa.date32()), ("prestatiecode", pa.string()), ("service_date", pa.date32()),
    ("zvt", pa.int32()), ("zorglabel", pa.string()), ("privacy_flag", pa.bool_()), ("referral_type", pa.string()),
    ("referral_date", pa.date32()), ("location_id", pa.string()), ("declared_amount", AMOUNT),
    ("allowed_amount", AMOUNT), ("submitted_date", pa.date32()),
])
assert tuple(CLAIMS_SCHEMA.names) == CLAIMS_COLUMNS

# rates of the data-quality and correction features (per debit line unless noted)
P_FULL_CREDIT = 0.02
P_PARTIAL_CREDIT = 0.01
P_REPLACE_AFTER_CREDIT = 0.5  # share of fully reversed lines that are declared again with a new claim_id
P_LATE_CREDIT = 0.3  # share of the last year's credits that arrive in the redelivery file
P_ORPHAN_CREDIT = 0.0004
P_DUPLICATE = 0.004  # share of the last year's lines delivered again, identical
P_CONFLICT = 0.0003  # share of the last year's debit lines delivered again with another amount
P_DECLARED_MAX = 0.015  # declared at the maximum tariff, allowed at the contract tariff
P_NOT_ASSESSED = 0.02  # allowed_amount empty
P_REJECTED = 0.002  # allowed_amount 0
ORPHAN_BASE = 90_000_000_000  # related claim numbers >= this never exist as debit lines


@dataclass(frozen=True)
class GeneratedSet:
    """What ``generate`` wrote. With ``fmt="both"`` there are two complete landing folders (``parquet/``, ``csv/``)."""

    out_dir: Path
    fmt: str
    years: tuple[int, ...]
    seed: int
    providers: int
    clients: int
    landing_dirs: tuple[Path, ...]
    claims_files: tuple[Path, ...]
    contracts_files: tuple[Path, ...]
    row_counts: dict[str, int] = field(default_factory=dict)  # path relative to out_dir -> data rows

    def __str__(self) -> str:
        lines = [f"{self.out_dir} (seed {self.seed}, {self.providers} providers, {self.clients} clients, "
                 f"years {', '.join(map(str, self.years))}):"]
        lines += [f"  {name}: {rows:,} rows" for name, rows in sorted(self.row_counts.items())]
        return "\n".join(lines)

    @property
    def files(self) -> tuple[Path, ...]:
        return self.claims_files + self.contracts_files

    @property
    def contracts_file(self) -> Path:
        return self.contracts_files[0]

    @property
    def claim_lines(self) -> int:
        """Claim rows in one landing folder (all claims files, redelivery included)."""
        first = self.landing_dirs[0]
        return sum(
            self.row_counts[p.relative_to(self.out_dir).as_posix()] for p in self.claims_files if p.parent == first
        )


# --------------------------------------------------------------------------------------------------------------
# rows: one numpy array per field; claims text is made only when a block is written


ROW_FIELDS = (
    "claim_no", "related_no", "is_credit", "client", "prov", "pract", "tid", "tstart", "code", "day", "zvt",
    "s01", "ref_type", "ref_day", "loc", "declared", "allowed", "submitted", "year_i",
)


def _take(rows: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in rows.items()}


def _cat(blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    blocks = [b for b in blocks if b and len(b["claim_no"])]
    if not blocks:
        return {}
    return {k: np.concatenate([b[k] for b in blocks]) for k in ROW_FIELDS}


def _nrows(rows: dict[str, np.ndarray]) -> int:
    return len(rows["claim_no"]) if rows else 0


def _amount_of(rows: dict[str, np.ndarray]) -> np.ndarray:
    """Signed amount in cents as the spec counts it: allowed when present, else declared; credits negative."""
    amount = np.where(rows["allowed"] >= 0, rows["allowed"], rows["declared"])
    return np.where(rows["is_credit"], -amount, amount)


def _frame(rows: dict[str, np.ndarray], P: Providers, C: Clients, CB: CodeBook) -> pl.DataFrame:
    """Rows -> a DataFrame with the contract's columns and types."""
    n = _nrows(rows)
    if n == 0:
        return pl.from_arrow(CLAIMS_SCHEMA.empty_table())

    def idx(a: np.ndarray) -> pl.Series:
        return pl.Series(np.where(a >= 0, a, 0).astype(np.int64)).set(pl.Series(a < 0), None)

    def date(a: np.ndarray) -> pl.Series:
        return pl.Series(a.astype(np.int32)).set(pl.Series(a < 0), None).cast(pl.Date)

    def cents(a: np.ndarray) -> pl.Series:
        s = pl.Series(a.astype(np.int64)).set(pl.Series(a < 0), None)
        return (s.cast(pl.Decimal(14, 2)) / 100).cast(pl.Decimal(12, 2))

    client = rows["client"]
    base = pl.DataFrame({
        "claim_no": rows["claim_no"], "related_no": idx(rows["related_no"]), "is_credit": rows["is_credit"],
        "uz": C.uzovi[client], "prov": rows["prov"], "pract": idx(rows["pract"]), "client_no": C.client_id[client],
        "birth_year": C.birth_year[client], "tid": idx(rows["tid"]), "trajectory_start_date": date(rows["tstart"]),
        "code": rows["code"], "service_date": date(rows["day"]), "zvt": idx(rows["zvt"] - 1),
        "s01": rows["s01"], "privacy_flag": C.privacy[client], "ref": rows["ref_type"],
        "referral_date": date(rows["ref_day"]), "loc": rows["loc"], "declared_amount": cents(rows["declared"]),
        "allowed_amount": cents(rows["allowed"]), "submitted_date": date(rows["submitted"]),
    })

    def number(col: str, prefix: str, width: int) -> pl.Expr:
        return pl.concat_str([pl.lit(prefix), pl.col(col).cast(pl.String).str.zfill(width)])

    def lookup(values: np.ndarray, col: str) -> pl.Expr:
        return pl.lit(pl.Series(values.astype(str).tolist(), dtype=pl.String)).gather(pl.col(col))

    return base.select(
        claim_id=pl.concat_str([
            pl.when(pl.col("is_credit")).then(pl.lit("C")).otherwise(pl.lit("D")),
            pl.col("claim_no").cast(pl.String).str.zfill(11),
        ]),
        related_claim_id=number("related_no", "D", 11),
        debit_credit=pl.when(pl.col("is_credit")).then(pl.lit("C")).otherwise(pl.lit("D")),
        uzovi=lookup(UZOVI_CODES, "uz"),
        provider_agb=lookup(P.agb, "prov"),
        practitioner_agb=lookup(P.pract_agb, "pract"),
        client_id=pl.col("client_no").cast(pl.String),
        birth_year=pl.col("birth_year").cast(pl.Int32),
        trajectory_id=number("tid", "ZT", 9),
        trajectory_start_date=pl.col("trajectory_start_date"),
        prestatiecode=lookup(CB.codes, "code"),
        service_date=pl.col("service_date"),
        zvt=(pl.col("zvt") + 1).cast(pl.Int32),
        zorglabel=pl.when(pl.col("s01")).then(pl.lit("S01")),
        privacy_flag=pl.col("privacy_flag"),
        referral_type=lookup(REFERRAL_TYPES, "ref"),
        referral_date=pl.col("referral_date"),
        location_id=lookup(P.loc_id, "loc"),
        declared_amount=pl.col("declared_amount"),
        allowed_amount=pl.col("allowed_amount"),
        submitted_date=pl.col("submitted_date"),
    )


class _ClaimsWriter:
    """Appends blocks to one claims file, written under a hidden temporary name until ``close``."""

    def __init__(self, path: Path, fmt: str, separator: str = ",", decimal_comma: bool = False) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.partial")
        self.fmt = fmt
        self.separator = separator
        self.decimal_comma = decimal_comma
        self.rows = 0
        self._pq: pq.ParquetWriter | None = None
        self._fh = None

    def write(self, df: pl.DataFrame) -> None:
        if self.fmt == "parquet":
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.tmp, CLAIMS_SCHEMA, compression="zstd")
            if df.height:
                self._pq.write_table(df.to_arrow().cast(CLAIMS_SCHEMA))
        else:
            if self._fh is None:
                self._fh = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()
                df.head(0).write_csv(self._fh, separator=self.separator)
            if df.height:
                df.write_csv(
                    self._fh, include_header=False, separator=self.separator, decimal_comma=self.decimal_comma
                )
        self.rows += df.height

    def close(self) -> None:
        if self._pq is None and self._fh is None:
            self.write(pl.from_arrow(CLAIMS_SCHEMA.empty_table()))
        if self._pq is not None:
            self._pq.close()
        if self._fh is not None:
            self._fh.close()
        os.replace(self.tmp, self.path)


# --------------------------------------------------------------------------------------------------------------
# one chunk of clients


@dataclass
class _Counters:
    debit: int = 1
    credit: int = 1
    trajectory: int = 1


def _chunk_debits(
    lo: int, hi: int, P: Providers, C: Clients, CB: CodeBook, d0: int, d1: int, rng: np.random.Generator,
    counters: _Counters,
) -> dict[str, np.ndarray]:
    """Debit lines (service date within [d0, d1]) of the clients lo..hi-1, claim numbers not yet assigned."""
    cl = np.arange(lo, hi, dtype=np.int64)
    sec = cl[C.second[cl] >= 0]
    client = np.concatenate([cl, sec])
    prov = np.concatenate([C.home[cl], C.second[sec]])
    first = np.concatenate([np.ones(len(cl), bool), np.zeros(len(sec), bool)])
    ongoing = first & C.ongoing[client]
    n1 = len(client)
    start = np.where(ongoing, d0 - rng.integers(30, 331, n1), rng.integers(d0, d1 - 4, n1))
    early = first & C.long_gap[client]
    start = np.where(early, d0 + rng.integers(0, 45, n1), start)
    no = np.zeros(n1, bool)
    T1 = plan(client, prov, start, ongoing, C.zvt[client], no, no, P, rng, d0, force_diag_only=early)
    T1.tid = counters.trajectory + np.arange(n1, dtype=np.int64)
    L1 = expand(T1, P, CB, rng)
    first1 = np.full(n1, np.iinfo(np.int64).max)
    last1 = np.full(n1, np.iinfo(np.int64).min)
    np.minimum.at(first1, L1.traj, L1.day)
    np.maximum.at(last1, L1.traj, L1.day)

    # a return to the home provider: within 365 days the trajectory number is reused, later it is a new one
    gap = 30 + rng.gamma(2.0, 150.0, n1).astype(np.int64)
    gap = np.where(early, rng.integers(380, 480, n1), gap)
    start2 = last1 + gap
    back = np.nonzero(first & C.returns[client] & (start2 <= d1 - 3))[0]
    reuse = gap[back] <= 365
    n2 = len(back)
    T2 = plan(client[back], prov[back], start2[back], np.zeros(n2, bool), T1.zvt2[back], np.ones(n2, bool),
              reuse, P, rng, d0)
    T2.tid = np.where(reuse, T1.tid[back], counters.trajectory + n1 + np.arange(n2, dtype=np.int64))
    T2.has_tid = np.where(reuse, T1.has_tid[back], T2.has_tid)
    T2.ref_type = np.where(reuse, T1.ref_type[back], T2.ref_type)
    L2 = expand(T2, P, CB, rng)
    first2 = np.full(n2, np.iinfo(np.int64).max)
    np.minimum.at(first2, L2.traj, L2.day)
    counters.trajectory += n1 + n2

    ref1 = first1 - T1.ref_lead
    tstart = np.concatenate([first1, np.where(reuse, first1[back], first2)])
    ref_day = np.concatenate([ref1, np.where(reuse, ref1[back], first2 - T2.ref_lead)])
    T = _join_trajectories(T1, T2)
    ref_day = np.where(T.ref_type == REFERRAL_NO_DATE, -1, ref_day)
    tid = np.where(T.has_tid, T.tid, -1)
    tstart = np.where(T.has_tid, tstart, -1)

    L = Lines(**{k: np.concatenate([getattr(L1, k), getattr(L2, k) + (n1 if k == "traj" else 0)])
                 for k in ("traj", "day", "code", "pract", "clinical_loc", "s01_factor", "diag")})
    keep = (L.day >= d0) & (L.day <= d1)
    t = L.traj[keep]
    day = L.day[keep]
    diag = L.diag[keep]
    n = len(t)
    lprov = T.prov[t]
    lclient = T.client[t]
    zvt = np.where(day >= T.retype_day[t], T.zvt2[t], T.zvt1[t]).astype(np.int16)
    empty = C.privacy[lclient] | (diag & (rng.random(n) < P_DIAG_ZVT_EMPTY))
    zvt = np.where(empty, 0, zvt)
    s01 = rng.random(n) < P.s01[lprov] * L.s01_factor[keep]
    loc = np.where(L.clinical_loc[keep], P.loc_clin[lprov], T.amb_loc[t])

    order = np.lexsort((np.arange(n), lclient, lprov, day))
    rows = {
        "claim_no": np.zeros(n, np.int64), "related_no": np.full(n, -1, np.int64), "is_credit": np.zeros(n, bool),
        "client": lclient, "prov": lprov, "pract": L.pract[keep], "tid": tid[t], "tstart": tstart[t],
        "code": L.code[keep].astype(np.int64), "day": day, "zvt": zvt.astype(np.int64), "s01": s01,
        "ref_type": T.ref_type[t].astype(np.int64), "ref_day": ref_day[t], "loc": loc.astype(np.int64),
        "declared": np.zeros(n, np.int64), "allowed": np.zeros(n, np.int64), "submitted": np.zeros(n, np.int64),
        "year_i": np.zeros(n, np.int64),
    }
    return _take(rows, order)


def _join_trajectories(a: Trajectories, b: Trajectories) -> Trajectories:
    return Trajectories(**{k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__dataclass_fields__})


def _price(
    rows: dict[str, np.ndarray], P: Providers, CB: CodeBook, year_starts: np.ndarray, tariff_rows: np.ndarray,
    batch_delay: np.ndarray, month0: int, rng: np.random.Generator,
) -> None:
    """Amounts (cents), year index and submission date of debit lines."""
    n = _nrows(rows)
    yi = np.searchsorted(year_starts, rows["day"], side="right") - 1
    tariff = CB.tariff_cents[tariff_rows[yi], rows["code"]]
    if (tariff < 0).any():
        missing = sorted(set(CB.codes[rows["code"][tariff < 0]].tolist()))[:5]
        raise ValueError(f"max_tariffs.csv has no tariff for {', '.join(missing)}")
    contract = np.rint(tariff * P.tariff_pct[rows["prov"]]).astype(np.int64)
    u = rng.random(n)
    declared = np.where(u < P_DECLARED_MAX, tariff, contract)
    allowed = contract.copy()
    allowed[(u >= P_DECLARED_MAX) & (u < P_DECLARED_MAX + P_NOT_ASSESSED)] = -1
    allowed[(u >= P_DECLARED_MAX + P_NOT_ASSESSED) & (u < P_DECLARED_MAX + P_NOT_ASSESSED + P_REJECTED)] = 0
    rows["declared"] = declared
    rows["allowed"] = allowed
    rows["year_i"] = yi
    # declarations go in monthly batches per provider, a few lines much later
    month = rows["day"].astype("datetime64[D]").astype("datetime64[M]")
    month_end = (month + 1).astype("datetime64[D]").astype(np.int64) - 1
    m = month.astype(np.int64) - month0
    batch = batch_delay[rows["prov"], np.clip(m, 0, batch_delay.shape[1] - 1)]
    late = np.where(rng.random(n) < 0.08, np.floor(rng.gamma(2.0, 30.0, n)).astype(np.int64), 0)
    rows["submitted"] = month_end + batch + rng.integers(0, 3, n) + late


def _chunk_rows(
    lo: int, hi: int, P: Providers, C: Clients, CB: CodeBook, years: tuple[int, ...], year_starts: np.ndarray,
    tariff_rows: np.ndarray, batch_delay: np.ndarray, rng: np.random.Generator, counters: _Counters,
) -> tuple[dict[str, np.ndarray], ...]:
    """Rows of the main files, late rows (credits, re-declarations), identical copies, conflicting copies and
    the originals of the conflicting copies."""
    d0, d1 = int(year_starts[0]), int(year_starts[-1]) - 1
    debits = _chunk_debits(lo, hi, P, C, CB, d0, d1, rng, counters)
    n = _nrows(debits)
    if n == 0:
        return {}, {}, {}, {}, {}
    month0 = int(np.datetime64(int(year_starts[0]), "D").astype("datetime64[M]").astype(np.int64))
    _price(debits, P, CB, year_starts, tariff_rows, batch_delay, month0, rng)
    debits["claim_no"] = counters.debit + np.arange(n, dtype=np.int64)
    counters.debit += n
    last = len(years) - 1

    # credits: full reversals, partial credits
    u = rng.random(n)
    creditable = debits["allowed"] != 0
    full = np.nonzero(creditable & (u < P_FULL_CREDIT))[0]
    part = np.nonzero(creditable & (u >= P_FULL_CREDIT) & (u < P_FULL_CREDIT + P_PARTIAL_CREDIT))[0]
    src = np.concatenate([full, part])
    credits = _take(debits, src)
    frac = np.concatenate([np.ones(len(full)), rng.uniform(0.1, 0.6, len(part))])
    # a full credit repeats the debit's amounts; a partial one credits 10-60% of them
    credits["declared"] = np.maximum(1, np.rint(credits["declared"] * frac)).astype(np.int64)
    credits["allowed"] = np.where(
        credits["allowed"] < 0, -1, np.maximum(1, np.rint(credits["allowed"] * frac))
    ).astype(np.int64)
    credits["is_credit"] = np.ones(len(src), bool)
    credits["related_no"] = debits["claim_no"][src]
    credits["submitted"] = debits["submitted"][src] + 14 + np.floor(rng.gamma(2.0, 20.0, len(src))).astype(np.int64)
    late = (credits["year_i"] == last) & (rng.random(len(src)) < P_LATE_CREDIT)
    credits["submitted"] = credits["submitted"] + np.where(late, rng.integers(30, 91, len(src)), 0)

    # credits whose debit line is not in the data: at least one per year
    n_orph = max(len(years), int(round(n * P_ORPHAN_CREDIT)))
    per_year = [np.nonzero(debits["year_i"] == y)[0] for y in range(len(years))]
    picks = [rng.choice(ix) for ix in per_year if len(ix)]
    picks += list(rng.integers(0, n, max(0, n_orph - len(picks)))) if n else []
    orph_src = np.array(sorted(set(int(x) for x in picks)), dtype=np.int64)
    orphans = _take(debits, orph_src)
    orphans["is_credit"] = np.ones(len(orph_src), bool)
    orphans["related_no"] = ORPHAN_BASE + rng.integers(0, 9_999_999_999, len(orph_src))
    orphans["submitted"] = orphans["submitted"] + rng.integers(20, 120, len(orph_src))
    orph_late = np.zeros(len(orph_src), bool)

    all_credits = _cat([credits, orphans])
    nc = _nrows(all_credits)
    late_all = np.concatenate([late, orph_late])
    if nc:
        all_credits["claim_no"] = counters.credit + np.arange(nc, dtype=np.int64)
        counters.credit += nc

    # corrected re-declarations of half of the fully reversed lines, after the credit
    redo_sel = rng.random(len(full)) < P_REPLACE_AFTER_CREDIT
    redo = _take(debits, full[redo_sel])
    nr = len(full[redo_sel])
    redo["claim_no"] = counters.debit + np.arange(nr, dtype=np.int64)
    counters.debit += nr
    redo["submitted"] = credits["submitted"][: len(full)][redo_sel] + rng.integers(0, 11, nr)
    redo_late = late[: len(full)][redo_sel]

    main = _cat([debits, _take(all_credits, ~late_all) if nc else {}, _take(redo, ~redo_late)])
    late_rows = _cat([_take(all_credits, late_all) if nc else {}, _take(redo, redo_late)])

    # re-deliveries of the last year's lines: identical copies and a few with another amount
    m = _nrows(main)
    in_last = main["year_i"] == last
    dup = in_last & (rng.random(m) < P_DUPLICATE)
    copies = _take(main, np.nonzero(dup)[0])
    credited = np.zeros(n, bool)
    credited[src] = True
    cand = np.nonzero((debits["year_i"] == last) & ~credited & (debits["allowed"] != 0) & ~dup[:n])[0]
    conflicts: dict[str, np.ndarray] = {}
    if len(cand):
        k = max(1, int(rng.binomial(len(cand), P_CONFLICT)))
        chosen = np.sort(rng.choice(cand, size=min(k, len(cand)), replace=False))
        conflicts = _take(debits, chosen)
        originals = _take(debits, chosen)
        # re-declared at the maximum tariff (or at 90% of it when the first delivery already was at the maximum)
        tariff = CB.tariff_cents[tariff_rows[conflicts["year_i"]], conflicts["code"]]
        other = np.where(conflicts["declared"] < tariff, tariff, np.rint(tariff * 0.9)).astype(np.int64)
        conflicts["declared"] = other
        conflicts["allowed"] = np.where(conflicts["allowed"] < 0, -1, other)
    else:
        originals = {}
    return main, late_rows, copies, conflicts, originals


def _write_year_blocks(
    rows: dict[str, np.ndarray], writers: list[list[_ClaimsWriter]], P: Providers, C: Clients, CB: CodeBook
) -> None:
    if not _nrows(rows):
        return
    for y, per_format in enumerate(writers):
        sel = np.nonzero(rows["year_i"] == y)[0]
        block = _take(rows, sel)
        order = np.lexsort((block["claim_no"], block["is_credit"], block["day"]))
        df = _frame(_take(block, order), P, C, CB)
        for w in per_format:
            w.write(df)


# --------------------------------------------------------------------------------------------------------------


def _parse_years(years: Sequence[int] | str) -> tuple[int, ...]:
    if isinstance(years, str):
        years = [int(y) for y in years.replace(" ", "").split(",") if y]
    ys = tuple(sorted(set(int(y) for y in years)))
    if not ys:
        raise ValueError("years must not be empty")
    if ys != tuple(range(ys[0], ys[-1] + 1)):
        raise ValueError(f"years must be consecutive, got {ys}")
    return ys


def generate(
    out_dir: Path,
    providers: int = 40,
    clients: int = 4000,
    years: Sequence[int] = (2025, 2026),
    seed: int = 7,
    fmt: str = "parquet",
    progress: Callable[[str], None] | None = None,
    reference_dir: Path | None = None,
) -> GeneratedSet:
    """Write a landing folder (claims per year, a redelivery file, contracts.csv) into ``out_dir``.

    ``fmt``: ``parquet``, ``csv`` or ``both`` (two complete landing folders ``out_dir/parquet`` and
    ``out_dir/csv`` with the same content). Existing files with the same names are replaced; other files in
    ``out_dir`` are left alone. Files appear under their final names only when complete.
    """
    say = progress or (lambda _msg: None)
    if fmt not in ("parquet", "csv", "both"):
        raise ValueError(f"fmt must be 'parquet', 'csv' or 'both', not {fmt!r}")
    ys = _parse_years(years)
    out_dir = Path(out_dir)
    CB = load_codebook(reference_dir)
    CB.require_complete()
    tariff_rows = np.array([CB.year_index(y) for y in ys], dtype=np.int64)
    epoch = dt.date(1970, 1, 1)
    year_starts = np.array([(dt.date(y, 1, 1) - epoch).days for y in (*ys, ys[-1] + 1)], dtype=np.int64)

    P = make_providers(int(providers), int(clients), len(ys), np.random.default_rng([seed, 1]))
    C = make_clients(int(clients), P, len(ys), ys[0], np.random.default_rng([seed, 1, 1]))

    formats = ["parquet", "csv"] if fmt == "both" else [fmt]
    landing = [out_dir / f if fmt == "both" else out_dir for f in formats]
    for d in landing:
        d.mkdir(parents=True, exist_ok=True)
    ext = {"parquet": "parquet", "csv": "csv"}
    writers = [
        [_ClaimsWriter(d / f"claims_{y}.{ext[f]}", f) for f, d in zip(formats, landing)] for y in ys
    ]
    redelivery_writers = [
        _ClaimsWriter(d / f"claims_{ys[-1]}_redelivery.{ext[f]}", f, separator=";" if f == "csv" else ",",
                      decimal_comma=(f == "csv"))
        for f, d in zip(formats, landing)
    ]

    counters = _Counters()
    # days between the end of a service month and the provider's declaration batch for it
    batch_delay = np.floor(
        np.random.default_rng([seed, 4]).gamma(2.0, 1.0, (P.n, 12 * len(ys))) * P.lag_scale[:, None] / 2
    ).astype(np.int64) + 2
    realised = np.zeros(P.n * len(ys), dtype=np.float64)  # cents; exact in float64 at these sizes
    redelivery_blocks: list[dict[str, np.ndarray]] = []
    n_chunks = max(1, -(-int(clients) // CHUNK_CLIENTS))
    try:
        for k in range(n_chunks):
            lo, hi = k * CHUNK_CLIENTS, min(int(clients), (k + 1) * CHUNK_CLIENTS)
            rng = np.random.default_rng([seed, 2, k])
            main, late, copies, conflicts, originals = _chunk_rows(
                lo, hi, P, C, CB, ys, year_starts, tariff_rows, batch_delay, rng, counters
            )
            _write_year_blocks(main, writers, P, C, CB)
            redelivery_blocks += [late, copies, conflicts]
            # what the pipeline will count: main lines, late rows, and conflicting copies replace their originals
            for block, sign in ((main, 1), (late, 1), (conflicts, 1), (originals, -1)):
                if _nrows(block):
                    realised += sign * np.bincount(
                        block["prov"] * len(ys) + block["year_i"], weights=_amount_of(block).astype(np.float64),
                        minlength=P.n * len(ys),
                    )
            say(f"clients {lo + 1:,}-{hi:,} of {clients:,}: {_nrows(main):,} claim lines")
        for per_format in writers:
            for w in per_format:
                w.close()
            say(f"wrote {per_format[0].path.name}: {per_format[0].rows:,} lines")

        red = _cat(redelivery_blocks)
        if _nrows(red):
            red = _take(red, np.lexsort((red["claim_no"], red["is_credit"], red["submitted"])))
        red_df = _frame(red, P, C, CB)
        for w in redelivery_writers:
            w.write(red_df)
            w.close()
        say(f"wrote {redelivery_writers[0].path.name}: {red_df.height:,} lines")
    except BaseException:
        for w in [w for per in writers for w in per] + redelivery_writers:
            w.tmp.unlink(missing_ok=True)
        raise

    contracts = _contracts(P, ys, realised.reshape(P.n, len(ys)), np.random.default_rng([seed, 3]))
    contract_files = []
    for d in landing:
        path = d / "contracts.csv"
        tmp = path.with_name(".contracts.csv.partial")
        contracts.write_csv(tmp)
        os.replace(tmp, path)
        contract_files.append(path)
    say(f"wrote contracts.csv: {contracts.height:,} provider-years")

    claims_files = tuple(w.path for per in writers for w in per) + tuple(w.path for w in redelivery_writers)
    counts = {w.path.relative_to(out_dir).as_posix(): w.rows for per in writers for w in per}
    counts.update({w.path.relative_to(out_dir).as_posix(): w.rows for w in redelivery_writers})
    counts.update({p.relative_to(out_dir).as_posix(): contracts.height for p in contract_files})
    return GeneratedSet(
        out_dir=out_dir, fmt=fmt, years=ys, seed=seed, providers=P.n, clients=C.n, landing_dirs=tuple(landing),
        claims_files=tuple(sorted(claims_files)), contracts_files=tuple(contract_files), row_counts=counts,
    )


def _contracts(P: Providers, ys: tuple[int, ...], realised_cents: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    rows = []
    for p in range(P.n):
        for y, year in enumerate(ys):
            target = P.utilisation[p, y]
            cap = None
            if target is not None:
                r = realised_cents[p, y] / 100
                cap = round(r / (target * rng.uniform(0.985, 1.015)), -2) if r > 0 else 25_000.0
                cap = max(cap, 1000.0)
            rows.append((str(P.agb[p]), year, str(P.name[p]), PROVIDER_TYPES[int(P.ptype[p])], cap))
    df = pl.DataFrame(
        rows, schema={"provider_agb": pl.String, "year": pl.Int32, "provider_name": pl.String,
                      "provider_type": pl.String, "omzetmaximum": pl.Float64}, orient="row",
    )
    return df.with_columns(pl.col("omzetmaximum").cast(pl.Decimal(14, 2)))


# --------------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sample_data.generate",
        description="Write a sample landing folder of GGZ claims (claims_<year>, a redelivery file, contracts.csv).",
    )
    parser.add_argument("--out", type=Path, default=Path("landing"), help="landing folder to write (default: landing)")
    parser.add_argument("--providers", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4000, help="distinct clients; ~19 claim lines each over 2 years")
    parser.add_argument("--years", default="2025,2026", help="consecutive years, e.g. 2025,2026")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", dest="fmt", choices=("parquet", "csv", "both"), default="parquet")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = generate(
            args.out, providers=args.providers, clients=args.clients, years=_parse_years(args.years),
            seed=args.seed, fmt=args.fmt, progress=None if args.quiet else (lambda m: print(m, file=sys.stderr)),
        )
    except ValueError as error:
        parser.error(str(error))
    for rel, count in sorted(result.row_counts.items()):
        print(f"{rel}\t{count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
