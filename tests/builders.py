"""Tiny hand-made extracts and a warehouse built from them through the real Dagster graph."""

from __future__ import annotations

import csv
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.contract import CLAIMS, CONTRACTS
from pipelines.resources import PipelineSettings

P1, P2, P3, P4, P5 = "00000001", "00000002", "00000003", "00000004", "00000005"

# Prestatiecodes from reference/prestatiecodes.csv (gezondheidszorgpsycholoog unless noted)
DIAG_60 = "CO0562"        # consult diagnostiek, setting 1, 60 min
DIAG_45_S8 = "CO0439"     # consult diagnostiek, setting 8, 45 min
BEH_60 = "CO0627"         # consult behandeling, setting 1, 60 min
BEH_45 = "CO0497"         # consult behandeling, setting 1, 45 min
BEH_60_S5 = "CO0631"      # consult behandeling, setting 5, 60 min
BEH_60_S8 = "CO0634"      # consult behandeling, setting 8, 60 min
GROUP = "GC0078"          # groepsconsult, 30-minute block, group size 2
STAY_S5 = "VD0001"        # verblijfsdag, setting 5
TOESLAG = "TC0009"        # toeslag reistijd


def claim(claim_id: str, client: str, date: str, code: str, amount: str = "100.00", *, provider: str = P1,
          dc: str = "D", related: str | None = None, trajectory: str | None = "T1", zvt: int | None = None,
          zorglabel: str | None = None, privacy: bool | None = None, allowed: str | None = None) -> dict:
    return {
        "claim_id": claim_id, "related_claim_id": related, "debit_credit": dc, "provider_agb": provider,
        "client_id": client, "trajectory_id": trajectory, "prestatiecode": code, "service_date": date,
        "zvt": zvt, "zorglabel": zorglabel, "privacy_flag": None if privacy is None else str(privacy).lower(),
        "declared_amount": amount, "allowed_amount": allowed,
    }


def credit(claim_id: str, debit: dict, amount: str | None = None) -> dict:
    """A credit line reversing (all or part of) a debit line."""
    return {**debit, "claim_id": claim_id, "related_claim_id": debit["claim_id"], "debit_credit": "C",
            "declared_amount": amount or debit["declared_amount"], "allowed_amount": None}


def contract(provider: str, year: int = 2025, provider_type: str = "vrijgevestigde",
             omzetmaximum: str | None = None, name: str | None = None) -> dict:
    return {"provider_agb": provider, "year": year, "provider_name": name or f"Aanbieder {provider[-1]}",
            "provider_type": provider_type, "omzetmaximum": omzetmaximum}


def write_csv(path: Path, rows: list[dict], columns: tuple[str, ...], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), delimiter=delimiter, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return path


def write_landing(folder: Path, claims: list[dict], contracts: list[dict] = (), name: str = "claims_1.csv") -> Path:
    write_csv(folder / name, claims, CLAIMS.columns)
    if contracts:
        write_csv(folder / "contracts.csv", list(contracts), CONTRACTS.columns)
    return folder


def materialize(landing: Path, data_dir: Path, *, policy: str = "default", as_of: str = "",
                trend_months: int = 1) -> dg.ExecuteInProcessResult:
    from pipelines.definitions import all_assets

    settings = PipelineSettings(landing_dir=str(landing), data_dir=str(data_dir), policy=policy, as_of=as_of,
                                trend_months=trend_months, threads=1, memory_limit="1GB")
    assets = all_assets()
    selection = dg.AssetSelection.all() - dg.AssetSelection.groups("dashboards")
    result = dg.materialize(assets, selection=selection, resources={"settings": settings},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=True)
    settings.warehouse.wait_for_working_copy()  # made in the background after publishing, as the CLI waits for it
    return result


def build(tmp_path: Path, claims: list[dict], contracts: list[dict] = (), **options) -> duckdb.DuckDBPyConnection:
    """Write the extract, run the pipeline, and return a read-only connection to the published warehouse."""
    landing = write_landing(tmp_path / "landing", claims, contracts)
    data_dir = tmp_path / "data"
    materialize(landing, data_dir, **options)
    return duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)


def rows(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def one(con: duckdb.DuckDBPyConnection, table: str, provider: str, year: int = 2025) -> dict:
    found = rows(con, f"SELECT * FROM {table} WHERE provider_agb = ? AND year = ?", [provider, year])
    assert len(found) == 1, f"expected one row in {table} for {provider}/{year}, got {found}"
    return found[0]
