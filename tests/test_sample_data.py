"""The sample-data generator: contract, determinism, and that every benchmark gets something to show."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sample_data.generate import CLAIMS_COLUMNS, CONTRACTS_COLUMNS, generate, main
from sample_data.population import fails_eleven_test

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
YEARS = (2025, 2026)
SMALL = dict(providers=12, clients=600, years=YEARS)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("landing")
    return generate(out, seed=7, **SMALL)


@pytest.fixture(scope="module")
def codes() -> pl.DataFrame:
    return pl.read_csv(
        REFERENCE / "prestatiecodes.csv",
        schema_overrides={"setting": pl.Int64, "beroepscategorie": pl.Int64, "duration_min": pl.Int64,
                          "group_size": pl.Int64},
    )


@pytest.fixture(scope="module")
def claims(small, codes) -> pl.DataFrame:
    """All claim rows of the parquet landing folder, with the file they came from and the code attributes."""
    frames = [
        pl.read_parquet(p).with_columns(file=pl.lit(p.name)) for p in sorted(small.out_dir.glob("claims_*.parquet"))
    ]
    return pl.concat(frames).join(
        codes.select("prestatiecode", "family", "activity", "setting", "duration_min"), on="prestatiecode", how="left"
    )


@pytest.fixture(scope="module")
def main_claims(claims) -> pl.DataFrame:
    return claims.filter(~pl.col("file").str.contains("redelivery"))


@pytest.fixture(scope="module")
def net_lines(claims) -> pl.DataFrame:
    """Debit lines after the spec's cleaning: last delivery wins, credits netted, reversed lines dropped."""
    c = (
        claims.with_columns(order=pl.col("file").rank("dense"))
        .sort("order", maintain_order=True)
        .group_by("claim_id", maintain_order=True).last()
        .with_columns(amount=pl.coalesce("allowed_amount", "declared_amount").cast(pl.Float64),
                      year=pl.col("service_date").dt.year())
    )
    credits = (c.filter(pl.col("debit_credit") == "C").group_by("related_claim_id")
               .agg(credited=pl.col("amount").sum()))
    debits = c.filter(pl.col("debit_credit") == "D").join(
        credits, left_on="claim_id", right_on="related_claim_id", how="left"
    ).with_columns(credited=pl.col("credited").fill_null(0.0))
    return debits.with_columns(reversed=pl.col("credited") >= pl.col("amount"),
                               net=pl.col("amount") - pl.col("credited"))


def _digest(paths) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


# --- files, determinism -------------------------------------------------------------------------------------


def test_files_and_row_counts(small):
    names = sorted(p.name for p in small.out_dir.iterdir())
    assert names == ["claims_2025.parquet", "claims_2026.parquet", "claims_2026_redelivery.parquet", "contracts.csv"]
    for path in small.claims_files:
        assert pq.ParquetFile(path).metadata.num_rows == small.row_counts[path.name]
    assert small.row_counts["contracts.csv"] == SMALL["providers"] * len(YEARS)
    assert small.claim_lines == sum(v for k, v in small.row_counts.items() if k.startswith("claims"))
    assert 8_000 < small.claim_lines < 16_000  # ~19 lines per client over two years


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    again = generate(tmp_path / "again", seed=7, **SMALL)
    other = generate(tmp_path / "other", seed=8, **SMALL)
    assert _digest(again.files) == _digest(small.files)
    theirs = _digest(other.files)
    assert all(theirs[p.name] != h for p, h in zip(small.claims_files, _digest(small.claims_files).values()))


# --- contract: columns and types --------------------------------------------------------------------------------


def test_claims_columns_and_parquet_types(small):
    schema = pq.read_schema(small.claims_files[0])
    assert tuple(schema.names) == CLAIMS_COLUMNS
    types = {f.name: f.type for f in schema}
    for name in ("trajectory_start_date", "service_date", "referral_date", "submitted_date"):
        assert types[name] == pa.date32()
    for name in ("declared_amount", "allowed_amount"):
        assert types[name] == pa.decimal128(12, 2)
    assert types["zvt"] == pa.int32() and types["birth_year"] == pa.int32()
    assert types["privacy_flag"] == pa.bool_()
    for name in ("claim_id", "provider_agb", "practitioner_agb", "client_id", "prestatiecode", "referral_type"):
        assert types[name] == pa.string()


def test_claim_values_follow_the_contract(claims):
    required = ("claim_id", "debit_credit", "provider_agb", "client_id", "prestatiecode", "service_date",
                "declared_amount")
    assert claims.select(pl.col(required).null_count()).row(0) == (0,) * len(required)
    assert set(claims["debit_credit"].unique()) == {"D", "C"}
    assert claims["provider_agb"].str.contains(r"^\d{8}$").all()
    assert claims["provider_agb"].str.starts_with("0").any()  # leading zeros survive
    assert claims["practitioner_agb"].drop_nulls().str.contains(r"^\d{8}$").all()
    assert claims["client_id"].str.contains(r"^\d{9}$").all()
    ids = np.array(claims["client_id"].unique().cast(pl.Int64).to_list(), dtype=np.int64)
    assert fails_eleven_test(ids).all()  # never a valid BSN
    zvt = set(claims["zvt"].drop_nulls().unique())
    assert zvt <= set(range(1, 9)) | set(range(10, 22)) and 9 not in zvt and len(zvt) > 15
    assert set(claims["zorglabel"].drop_nulls().unique()) == {"S01"}
    assert set(claims["referral_type"].drop_nulls().unique()) <= {f"0{i}" for i in range(1, 8)}
    assert claims.filter(pl.col("declared_amount") < 0).is_empty()
    assert claims.filter(pl.col("allowed_amount") < 0).is_empty()
    assert claims["allowed_amount"].null_count() > 0


def test_codes_exist_and_amounts_come_from_max_tariffs(claims, codes):
    assert set(claims["prestatiecode"].unique()) <= set(codes["prestatiecode"])
    families = set(claims["family"].unique())
    assert {"consult", "groepsconsult", "verblijfsdag", "toeslag", "overig"} <= families
    tariffs = pl.read_csv(REFERENCE / "max_tariffs.csv", schema_overrides={"max_tariff": pl.Float64})
    d = claims.filter(pl.col("debit_credit") == "D", pl.col("allowed_amount") > 0).with_columns(
        year=pl.col("service_date").dt.year()
    ).join(tariffs, on=["prestatiecode", "year"], how="left")
    assert d["max_tariff"].null_count() == 0
    ratio = d["allowed_amount"].cast(pl.Float64) / d["max_tariff"]
    assert ratio.min() >= 0.795 and ratio.max() <= 1.005
    assert (d["declared_amount"].cast(pl.Float64) <= d["max_tariff"] + 0.005).all()


def test_dates(main_claims):
    c = main_claims
    assert set(c["service_date"].dt.year().unique()) == set(YEARS)
    for year in YEARS:
        months = c.filter(pl.col("service_date").dt.year() == year)["service_date"].dt.month().unique()
        assert len(months) == 12
    lag = (c["submitted_date"] - c["service_date"]).dt.total_days()
    assert lag.min() > 0 and 14 <= lag.median() <= 90
    assert c.filter(pl.col("referral_date") >= pl.col("service_date")).is_empty()
    assert c.filter(pl.col("trajectory_start_date") > pl.col("service_date")).is_empty()
    assert (c["trajectory_start_date"].drop_nulls().dt.year() < YEARS[0]).any()  # care that began before


# --- credits and re-deliveries ----------------------------------------------------------------------------------


def test_claim_ids_unique_in_the_main_files(main_claims):
    assert main_claims["claim_id"].n_unique() == main_claims.height
    dc = main_claims.select(pl.col("claim_id").str.slice(0, 1), "debit_credit")
    assert (dc["claim_id"] == dc["debit_credit"]).all()


def test_credits_point_at_debits_except_a_few_orphans(claims):
    debits = claims.filter(pl.col("debit_credit") == "D")
    credits = claims.filter(pl.col("debit_credit") == "C").unique("claim_id")
    assert credits["related_claim_id"].null_count() == 0
    assert debits["related_claim_id"].null_count() == debits.height
    joined = credits.join(debits.unique("claim_id"), left_on="related_claim_id", right_on="claim_id",
                          how="left", suffix="_debit")
    orphans = joined.filter(pl.col("debit_credit_debit").is_null())
    assert 1 <= orphans.height <= 0.05 * credits.height
    matched = joined.filter(pl.col("debit_credit_debit").is_not_null())
    # a credit repeats its debit line and never credits more than was declared
    assert (matched["service_date"] == matched["service_date_debit"]).all()
    assert (matched["prestatiecode"] == matched["prestatiecode_debit"]).all()
    assert (matched["declared_amount"] <= matched["declared_amount_debit"]).all()
    full = (matched["declared_amount"] == matched["declared_amount_debit"]).sum()
    n_debits = debits["claim_id"].n_unique()
    assert 0.01 * n_debits < full < 0.03 * n_debits
    assert 0.004 * n_debits < matched.height - full < 0.02 * n_debits


def test_redelivery_has_duplicates_conflicts_and_late_credits(small, claims, main_claims):
    red = claims.filter(pl.col("file").str.contains("redelivery")).drop("file")
    main = main_claims.drop("file")
    identical = red.join(main, on=list(CLAIMS_COLUMNS), how="semi", nulls_equal=True)
    assert identical.height >= 5
    same_id = red.join(main, on="claim_id", how="inner", suffix="_main")
    conflicts = same_id.filter(pl.col("declared_amount") != pl.col("declared_amount_main"))
    assert conflicts.height >= 1
    new = red.join(main, on="claim_id", how="anti")
    assert (new["debit_credit"] == "C").sum() >= 1  # late credit lines
    assert red["claim_id"].n_unique() == red.height


# --- realism ------------------------------------------------------------------------------------------------------


def test_clients_trajectories_and_zvt(main_claims):
    c = main_claims.filter(pl.col("debit_credit") == "D")
    per_client = c.group_by("client_id").agg(pl.col("provider_agb").n_unique().alias("providers"),
                                             pl.col("privacy_flag").first())
    assert (per_client["providers"] == 2).any()  # a few clients visit two providers
    assert 0.005 < per_client["privacy_flag"].mean() < 0.08
    privacy = c.filter(pl.col("privacy_flag"))
    assert privacy.height > 0 and privacy["zvt"].null_count() == privacy.height
    diag = c.filter(pl.col("activity") == "diagnostiek", ~pl.col("privacy_flag"))
    assert 0.3 < diag["zvt"].null_count() / diag.height < 0.9
    beh = c.filter(pl.col("activity") == "behandeling", ~pl.col("privacy_flag"))
    assert beh["zvt"].null_count() == 0
    # re-typed clients: more than one ZVT within one trajectory
    retyped = c.drop_nulls("zvt").group_by("provider_agb", "client_id", "trajectory_id").agg(
        pl.col("zvt").n_unique().alias("n"))
    assert (retyped["n"] > 1).any()
    # lines without a trajectory id, and an id-less client who returns after more than 365 days
    no_id = c.filter(pl.col("trajectory_id").is_null())
    assert 0 < no_id.height < 0.5 * c.height
    gaps = no_id.sort("service_date").group_by("provider_agb", "client_id").agg(
        pl.col("service_date").diff().dt.total_days().max().alias("gap"))
    assert (gaps["gap"] > 365).any()
    # a trajectory number is reused on a return within a year: same id, a gap of months in between
    reuse = c.drop_nulls("trajectory_id").sort("service_date").group_by("provider_agb", "client_id",
                                                                           "trajectory_id").agg(
        pl.col("service_date").diff().dt.total_days().max().alias("gap"))
    assert (reuse["gap"] > 60).any()


def test_care_patterns(net_lines):
    c = net_lines.filter(~pl.col("reversed"))
    beh = c.filter(pl.col("family") == "consult", pl.col("activity") == "behandeling")
    assert beh["duration_min"].is_in([45, 60]).mean() > 0.6
    # group blocks: several lines per client on one day, per block and professional
    gc = c.filter(pl.col("family") == "groepsconsult").group_by("client_id", "service_date").len()
    assert gc.height > 0 and (gc["len"] >= 4).any()
    # verblijfsdagen: one line per day (a reversed day may be declared again), setting 5 at a clinic
    vd = c.filter(pl.col("family") == "verblijfsdag")
    assert (vd["setting"] == 5).any()
    assert vd.group_by("client_id", "service_date").len()["len"].max() == 1


# --- benchmarks have something to show ----------------------------------------------------------------------------


def test_every_benchmark_has_providers_on_both_sides(small, net_lines):
    nr = net_lines.filter(~pl.col("reversed"))
    contracts = pl.read_csv(small.contracts_file, schema_overrides={"provider_agb": pl.String,
                                                                    "omzetmaximum": pl.Float64})
    assert tuple(contracts.columns) == CONTRACTS_COLUMNS
    per = nr.group_by("provider_agb", "year").agg(
        group_min=30 * (pl.col("family") == "groepsconsult").sum(),
        beh_min=pl.col("duration_min").filter(pl.col("family") == "consult", pl.col("activity") == "behandeling").sum(),
        consults=pl.col("family").is_in(["consult", "groepsconsult"]).sum(),
        s01=(pl.col("family").is_in(["consult", "groepsconsult"]) & (pl.col("zorglabel") == "S01")).sum(),
        scope=pl.col("setting").is_in([5, 8]).sum(),
        light=(pl.col("setting").is_in([5, 8]) & pl.col("zvt").is_in([1, 2, 3])).sum(),
    ).with_columns(share=pl.col("group_min") / (pl.col("group_min") + pl.col("beh_min")))
    # 1. group-treatment share on both sides of 6%, and providers without any group treatment
    assert (per["share"] >= 0.06).any() and ((per["share"] < 0.06) & (per["share"] > 0)).any()
    assert (per["group_min"] == 0).any()
    # 3. ZVT 1-3 in settings 5/8 at some providers; clinical providers without it too
    assert (per["light"] > 0).any() and ((per["scope"] > 0) & (per["light"] == 0)).any()
    # 4. a provider without any S01
    assert ((per["consults"] > 0) & (per["s01"] == 0)).any() and (per["s01"] > 0).any()
    # 2. diagnostics-only trajectories above and below 20% (trajectories with an id)
    traj = nr.drop_nulls("trajectory_id").group_by("provider_agb", "client_id", "trajectory_id").agg(
        diag=(pl.col("activity") == "diagnostiek").any(),
        treat=(pl.col("activity") == "behandeling").any() | (pl.col("family") == "verblijfsdag").any(),
    ).group_by("provider_agb").agg(
        share=(pl.col("diag") & ~pl.col("treat")).sum() / (pl.col("diag") | pl.col("treat")).sum())
    assert (traj["share"] > 0.2).any() and (traj["share"] < 0.2).any()
    # 5. cost per client varies between providers
    cost = nr.group_by("provider_agb").agg(cpc=pl.col("net").sum() / pl.col("client_id").n_unique())
    assert cost["cpc"].max() > 1.5 * cost["cpc"].min()
    # 6. turnover cap: well below, past the 70% warning and past 100%, and some without a cap
    realised = net_lines.group_by("provider_agb", "year").agg(realised=pl.col("net").sum())
    util = contracts.join(realised, on=["provider_agb", "year"], how="left").with_columns(
        u=pl.col("realised") / pl.col("omzetmaximum"))
    assert contracts["omzetmaximum"].null_count() >= 1
    u = util["u"].drop_nulls()
    assert (u < 0.6).any() and ((u >= 0.7) & (u < 1)).any() and (u >= 1).any()
    assert set(contracts["provider_type"]) == {"vrijgevestigde", "instelling", "geintegreerde_instelling"}
    assert contracts.group_by("provider_agb").len()["len"].to_list() == [len(YEARS)] * SMALL["providers"]


def test_provider_types_match_settings(small, main_claims):
    contracts = pl.read_csv(small.contracts_file, schema_overrides={"provider_agb": pl.String})
    c = main_claims.join(contracts.filter(pl.col("year") == YEARS[0]).select("provider_agb", "provider_type"),
                         on="provider_agb")
    settings = c.drop_nulls("setting").group_by("provider_type").agg(pl.col("setting").unique().sort())
    by_type = dict(zip(settings["provider_type"], settings["setting"].to_list()))
    assert by_type["vrijgevestigde"] == [1]
    assert set(by_type["instelling"]) <= {2, 3, 4, 5} and {5, 8} <= set(by_type["geintegreerde_instelling"])


# --- other formats, CLI -------------------------------------------------------------------------------------------


def test_csv_format_with_a_semicolon_decimal_comma_file(small, tmp_path):
    result = generate(tmp_path, seed=7, fmt="csv", **SMALL)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["claims_2025.csv", "claims_2026.csv", "claims_2026_redelivery.csv", "contracts.csv"]
    header = (tmp_path / "claims_2025.csv").read_text().splitlines()[0]
    assert header == ",".join(CLAIMS_COLUMNS)
    red_text = (tmp_path / "claims_2026_redelivery.csv").read_text().splitlines()
    assert red_text[0] == ";".join(CLAIMS_COLUMNS)
    assert "," in red_text[1].split(";")[CLAIMS_COLUMNS.index("declared_amount")]
    text = pl.read_csv(tmp_path / "claims_2025.csv", infer_schema=False)
    assert text["provider_agb"].str.contains(r"^\d{8}$").all()
    assert text["service_date"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
    red = pl.read_csv(tmp_path / "claims_2026_redelivery.csv", separator=";", decimal_comma=True,
                      schema_overrides={"provider_agb": pl.String, "declared_amount": pl.Float64})
    # the same content as the parquet files
    for name, sep in (("claims_2025", ","), ("claims_2026_redelivery", ";")):
        pq_df = pl.read_parquet(small.out_dir / f"{name}.parquet")
        csv_df = red if sep == ";" else pl.read_csv(tmp_path / f"{name}.csv", infer_schema=False)
        assert csv_df.height == pq_df.height == result.row_counts[f"{name}.csv"]
        assert csv_df["claim_id"].to_list() == pq_df["claim_id"].to_list()
    assert abs(red["declared_amount"].sum() - float(pl.read_parquet(
        small.out_dir / "claims_2026_redelivery.parquet")["declared_amount"].cast(pl.Float64).sum())) < 0.01


def test_both_formats_give_two_landing_folders(tmp_path):
    result = generate(tmp_path, providers=3, clients=60, years=(2026,), fmt="both")
    assert [d.name for d in result.landing_dirs] == ["parquet", "csv"]
    assert (tmp_path / "parquet" / "claims_2026.parquet").exists() and (tmp_path / "csv" / "contracts.csv").exists()
    assert result.row_counts["parquet/claims_2026.parquet"] == result.row_counts["csv/claims_2026.csv"]


def test_cli(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--providers", "3", "--clients", "50", "--years", "2027", "--quiet"]) == 0
    assert (tmp_path / "claims_2027.parquet").exists() and (tmp_path / "claims_2027_redelivery.parquet").exists()
    assert "contracts.csv" in capsys.readouterr().out


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="max_tariffs"):
        generate(tmp_path, providers=2, clients=10, years=(2030,))
    with pytest.raises(ValueError, match="fmt"):
        generate(tmp_path, providers=2, clients=10, fmt="xlsx")
    with pytest.raises(ValueError, match="consecutive"):
        generate(tmp_path, providers=2, clients=10, years=(2025, 2027))
