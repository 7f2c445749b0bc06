"""Lookup arrays over the reference tables, so that line generation can pick prestatiecodes vectorised.

Only codes that exist in ``reference/prestatiecodes.csv`` are ever produced, and every amount is derived from
``reference/max_tariffs.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

DEFAULT_REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"

# Duration classes of consults ("vanaf" minutes), in the order used by the lookup arrays.
DURATIONS = np.array([5, 15, 30, 45, 60, 75, 90, 120], dtype=np.int16)
DIAG, BEH = 0, 1  # activity index
MAX_GROUP = 12

SPECIAL_CODES = ("TC0009", "TC0010", "TC0020", "OV0007", "OV0008", "OV0012")


@dataclass(frozen=True)
class CodeBook:
    codes: np.ndarray  # prestatiecode strings, sorted; a code's index is its position here
    family: np.ndarray  # family per code index
    years: tuple[int, ...]  # years with maximum tariffs
    tariff_cents: np.ndarray  # [year index, code index] maximum tariff in cents (-1 when missing)
    consult: np.ndarray  # [activity, setting 1..8, beroepscategorie 1..8, duration class] -> code index or -1
    group: np.ndarray  # [beroepscategorie 1..8, group size 0..MAX_GROUP] -> code index or -1
    stay: np.ndarray  # [0 = setting 5, 1 = setting 8, category 0..7] -> code index or -1
    special: dict[str, int]  # TC/OV code -> code index (only those present)

    def year_index(self, year: int) -> int:
        try:
            return self.years.index(year)
        except ValueError:
            raise ValueError(
                f"no maximum tariffs for {year} in max_tariffs.csv (available: {', '.join(map(str, self.years))})"
            ) from None

    def require_complete(self) -> None:
        """The generator needs a consult code for every activity/setting/beroep/duration and GC codes for 2+."""
        if (self.consult[:, 1:, 1:, :] < 0).any():
            raise ValueError("prestatiecodes.csv lacks consult codes for some activity/setting/beroep/duration")
        if (self.group[1:, 2:] < 0).any():
            raise ValueError("prestatiecodes.csv lacks groepsconsult codes for some beroep/group size")


def load_codebook(reference_dir: Path | None = None) -> CodeBook:
    ref = Path(reference_dir) if reference_dir is not None else DEFAULT_REFERENCE_DIR
    codes_df = pl.read_csv(
        ref / "prestatiecodes.csv",
        schema_overrides={
            "prestatiecode": pl.String, "family": pl.String, "activity": pl.String, "setting": pl.Int64,
            "beroepscategorie": pl.Int64, "duration_min": pl.Int64, "group_size": pl.Int64,
        },
    ).sort("prestatiecode")
    tariffs = pl.read_csv(
        ref / "max_tariffs.csv",
        schema_overrides={"prestatiecode": pl.String, "year": pl.Int64, "max_tariff": pl.String},
    )
    codes = codes_df["prestatiecode"].to_numpy().astype(str)
    index = {c: i for i, c in enumerate(codes.tolist())}
    n = len(codes)

    consult = np.full((2, 9, 9, len(DURATIONS)), -1, dtype=np.int32)
    group = np.full((9, MAX_GROUP + 1), -1, dtype=np.int32)
    stay = np.full((2, 8), -1, dtype=np.int32)
    dur_pos = {int(d): i for i, d in enumerate(DURATIONS)}
    stay_count = [0, 0]
    for row in codes_df.iter_rows(named=True):
        i = index[row["prestatiecode"]]
        fam = row["family"]
        if fam == "consult" and row["activity"] in ("diagnostiek", "behandeling"):
            a = DIAG if row["activity"] == "diagnostiek" else BEH
            s, b, d = row["setting"], row["beroepscategorie"], row["duration_min"]
            if s and b and d in dur_pos and 1 <= s <= 8 and 1 <= b <= 8:
                consult[a, s, b, dur_pos[d]] = i
        elif fam == "groepsconsult":
            b, g = row["beroepscategorie"], row["group_size"]
            if b and g and 1 <= b <= 8 and 2 <= g <= MAX_GROUP:
                group[b, g] = i
        elif fam == "verblijfsdag" and row["setting"] in (5, 8):
            k = 0 if row["setting"] == 5 else 1
            if stay_count[k] < 8:  # codes sorted: categorie A..H within the setting
                stay[k, stay_count[k]] = i
                stay_count[k] += 1
    # Fill missing stay categories with the nearest lower one so that every category maps to a real code.
    for k in range(2):
        for c in range(8):
            if stay[k, c] < 0 and c > 0:
                stay[k, c] = stay[k, c - 1]

    years = tuple(sorted(set(tariffs["year"].to_list())))
    tariff_cents = np.full((len(years), n), -1, dtype=np.int64)
    cents = (
        tariffs.with_columns(
            cents=(pl.col("max_tariff").str.replace(",", ".").cast(pl.Decimal(14, 2)) * 100).cast(pl.Int64)
        )
        .select("prestatiecode", "year", "cents")
    )
    for code, year, c in cents.iter_rows():
        if code in index:
            tariff_cents[years.index(year), index[code]] = c

    special = {c: index[c] for c in SPECIAL_CODES if c in index}
    return CodeBook(
        codes=codes,
        family=codes_df["family"].to_numpy().astype(str),
        years=years,
        tariff_cents=tariff_cents,
        consult=consult,
        group=group,
        stay=stay,
        special=special,
    )
