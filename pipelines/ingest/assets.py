"""Assets of the first two layers: reference code tables, and landing files -> raw."""


from pathlib import Path

import dagster as dg

from pipelines.ingest.load import load_landing
from pipelines.ingest.pseudonymise import pseudonym_key
from pipelines.quality.preload import start as preload_great_expectations
from pipelines.reference import REFERENCE_TABLES, load_reference
from pipelines.resources import PipelineSettings

RAW_TABLES = ("claims", "claims_stored", "contracts", "contracts_stored", "load_manifest", "rejected_lines")


def _raw_description(name: str) -> str:
    if name.endswith("_stored"):
        return (f"raw.{name}: the rows of raw.{name.removesuffix('_stored')} as stored (values a Parquet file "
                "delivered typed kept in that type, in <column>_value)")
    return f"raw.{name}: landing extracts as received (client_id pseudonymised)"


@dg.multi_asset(
    specs=[dg.AssetSpec(["reference", name], group_name="reference", kinds={"duckdb"},
                        description=f"Reference code table reference.{name} (reference/{name}.csv)")
           for name in REFERENCE_TABLES],
)
def reference_tables(context: dg.AssetExecutionContext, settings: PipelineSettings):
    with settings.warehouse.connect() as con:
        counts = load_reference(con)
    for name, rows in counts.items():
        yield dg.MaterializeResult(asset_key=["reference", name], metadata={"rows": rows})


@dg.multi_asset(
    specs=[dg.AssetSpec(["raw", name], group_name="raw", kinds={"duckdb"},
                        description=_raw_description(name))
           for name in RAW_TABLES],
)
def raw_extracts(context: dg.AssetExecutionContext, settings: PipelineSettings):
    """Load every new file in the landing folder; skip files loaded before; quarantine unreadable ones."""
    preload_great_expectations()  # the checks on raw.claims come next: import GX while the files load
    with settings.warehouse.connect() as con:
        summary = load_landing(
            con, Path(settings.landing_dir), settings.warehouse.quarantine_dir, pseudonym_key(),
            progress=context.log.info, checksum_memo=settings.warehouse.landing_checksums_path,
        )
        counts = {name: con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0] for name in RAW_TABLES}
    for name in summary.quarantined:
        context.log.error(f"quarantined: {summary.quarantined[name]}")
    for name in RAW_TABLES:
        metadata = {"rows": counts[name]}
        if name == "load_manifest":
            metadata.update({
                "files_loaded": len(summary.loaded), "files_skipped": len(summary.skipped),
                "files_quarantined": len(summary.quarantined), "rows_loaded": summary.rows_loaded,
                "lines_rejected": summary.lines_rejected,
                "quarantined": dg.MetadataValue.md("\n".join(f"- {r}" for r in summary.quarantined.values()) or "none"),
            })
        yield dg.MaterializeResult(asset_key=["raw", name], metadata=metadata)
