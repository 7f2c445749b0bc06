"""Landing files are hashed once: their checksums are remembered by name, size and modification time."""

import os
from pathlib import Path

import duckdb

from pipelines.ingest import checksums as checksums_module
from pipelines.ingest.checksums import ChecksumMemo, checksums
from pipelines.ingest.load import load_landing
from tests.builders import BEH_60, claim, write_landing


def _counting(monkeypatch) -> list[str]:
    hashed = []
    real = checksums_module.sha256_of
    monkeypatch.setattr(checksums_module, "sha256_of", lambda path: hashed.append(path.name) or real(path))
    return hashed


def test_a_file_is_hashed_again_only_when_it_changed(tmp_path: Path, monkeypatch):
    hashed = _counting(monkeypatch)
    a, b = tmp_path / "claims_a.csv", tmp_path / "claims_b.csv"
    a.write_text("one\n")
    b.write_text("two\n")
    known: dict[str, str] = {}
    first = checksums([a, b], known)
    assert checksums([a, b], known) == first and hashed == ["claims_a.csv", "claims_b.csv"]
    a.write_text("one, corrected\n")
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 1))  # a later time even on a coarse clock
    second = checksums([a], known)
    assert hashed[2:] == ["claims_a.csv"] and second[a] != first[a]
    assert len(known) == 1  # b left the folder: forgotten


def test_the_memo_is_kept_between_runs_and_a_broken_memo_means_hashing_again(tmp_path: Path, monkeypatch):
    hashed = _counting(monkeypatch)
    extract = tmp_path / "claims_a.csv"
    extract.write_text("one\n")
    memo = tmp_path / "build" / "landing_checksums.json"
    expected = ChecksumMemo(memo).checksums([extract])
    assert ChecksumMemo(memo).checksums([extract]) == expected and hashed == ["claims_a.csv"]
    memo.write_text("{not json")
    assert ChecksumMemo(memo).checksums([extract]) == expected and hashed == ["claims_a.csv"] * 2


def test_a_second_load_reads_no_file_again_and_a_corrected_file_loads(tmp_path: Path, monkeypatch):
    hashed = _counting(monkeypatch)
    landing = write_landing(tmp_path / "landing", [claim("a1", "111", "2025-01-01", BEH_60)])
    memo = tmp_path / "build" / "landing_checksums.json"
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    first = load_landing(con, landing, tmp_path / "quarantine", "secret", checksum_memo=memo)
    files = sorted(first.loaded)
    assert files and hashed == files
    again = load_landing(con, landing, tmp_path / "quarantine", "secret", checksum_memo=memo)
    assert again.loaded == [] and sorted(again.skipped) == files and hashed == files  # nothing read again
    claims = next(landing / name for name in files if name.startswith("claims"))
    write_landing(tmp_path / "corrected", [claim("a1", "111", "2025-01-02", BEH_60)])
    corrected = (tmp_path / "corrected" / claims.name).read_bytes()
    assert corrected != claims.read_bytes()
    claims.write_bytes(corrected)  # the same name, delivered again with other content
    os.utime(claims, ns=(claims.stat().st_atime_ns, claims.stat().st_mtime_ns + 1))
    third = load_landing(con, landing, tmp_path / "quarantine", "secret", checksum_memo=memo)
    assert third.loaded == [claims.name]
    assert con.execute("SELECT count(*) FROM raw.claims").fetchone() == (2,)
