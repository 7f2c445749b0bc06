"""The benchmark script (`make benchmark`) at a tiny size: it must keep working, and time the runs the way
`praktijkvariatie run` makes them. Its figures are not checked here (no timed tests): CI's machine is not the
benchmark's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run_benchmark.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("run_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_benchmark"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_runs_full_and_incremental_on_the_clis_dagster_instance(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PRAKTIJKVARIATIE_DASHBOARD_PREVIEWS", "0")
    # the script sets both (as a process of its own would); setting them here restores them after the test
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "not_used"))
    monkeypatch.setenv("PRAKTIJKVARIATIE_PSEUDONYM_KEY", "benchmark-key")
    benchmark = _load_script()
    data_dir = tmp_path / "data"
    base = tmp_path / "base"
    assert benchmark.main(["--lines", "5000", "--incremental", "300", "--recent", "--cache", str(tmp_path / "cache"),
                           "--data-dir", str(data_dir), "--base", str(base)]) == 0
    out = capsys.readouterr().out

    assert "full run (ok)" in out
    assert "incremental run adding" in out and "(ok)" in out.split("incremental run adding")[1].splitlines()[0]
    for stage in ("raw_extracts", "core__claim_lines", "marts__benchmark_trends", "dashboards"):
        assert f"\n{stage} " in out
    # per stage, the page faults, kernel time and the host's steal time beside the wall time: where a slow phase of
    # the machine shows
    assert out.count("x floor  k faults  sys s steal s") == 2
    total_line = next(line for line in out.splitlines() if line.startswith("total "))
    faults, system, steal = total_line.split()[-3:]
    assert int(faults.replace(",", "")) > 0 and float(system) >= 0 and float(steal) >= 0
    assert "kernel time per page fault: " in out
    assert out.count("(outside the steps: Dagster, start and end)") == 2
    assert "the floor measured again after the runs" in out
    assert "targets: " in out

    # both runs went to the persistent instance in the data directory, as the CLI's runs do, and it was kept in
    # the base copy, so that an incremental run timed from it finds the full run's history
    instance = dg.DagsterInstance.from_config(str(data_dir / "dagster_home"))
    try:
        runs = instance.get_runs()
        assert len(runs) == 2 and all(run.is_success for run in runs)
    finally:
        instance.dispose()
    assert (base / "dagster_home" / "dagster.yaml").is_file()

    # the base keeps the digest of the SQL files it was built with; a base of other SQL files is said to be one,
    # as its incremental run rebuilds the changed tables, which a nightly run does not
    assert (base / "sql.sha256").read_text().strip() == benchmark.sql_digest()
    assert "rebuilt in full (SQL or small inputs changed): " in out
    assert "kept by a run of other SQL files" not in out
    (base / "sql.sha256").write_text("other\n")
    assert benchmark.main(["--lines", "5000", "--incremental", "300", "--recent", "--cache", str(tmp_path / "cache"),
                           "--data-dir", str(data_dir), "--base", str(base)]) == 0
    out = capsys.readouterr().out
    assert "full run skipped" in out
    assert f"{base} was kept by a run of other SQL files" in out.split("targets: ")[1]
    assert not (data_dir / "sql.sha256").exists()


def test_a_second_benchmark_on_the_same_cache_stops_before_touching_it(tmp_path, capsys):
    # A run puts its nightly extract into the cached landing folder and removes one it finds there when it starts:
    # a second run on the same cache took the first one's extract away.
    benchmark = _load_script()
    cache = tmp_path / "cache"
    held = benchmark.lock_cache(cache)
    try:
        assert benchmark.main(["--lines", "5000", "--cache", str(cache), "--data-dir", str(tmp_path / "data")]) == 2
        assert "another benchmark is running with the cache folder" in capsys.readouterr().err
        assert not (tmp_path / "data").exists() and [p.name for p in cache.iterdir()] == [".benchmark.lock"]
    finally:
        held.close()
    again = benchmark.lock_cache(cache)  # free once the first run has ended
    assert again is not None
    again.close()


def test_the_floor_after_the_runs_reads_the_lines_it_read_before_them(tmp_path):
    # a run leaves its nightly extract in the cached landing folder; the floor measured after the runs must not
    # count it, or the two floors would not be comparable
    benchmark = _load_script()
    pl.DataFrame({"provider_agb": ["1", "1", "2"], "amount": [1, 2, 3]}).write_parquet(tmp_path / "claims_2025.parquet")
    before = benchmark.bare_aggregate(tmp_path)[1]
    pl.DataFrame({"provider_agb": ["3"], "amount": [4]}).write_parquet(tmp_path / benchmark.INCREMENT_FILE)
    assert before == benchmark.bare_aggregate(tmp_path)[1] == 3
    assert [p.name for p in benchmark.claim_files(tmp_path)] == ["claims_2025.parquet"]
