"""Client identifiers are replaced at load by HMAC-SHA256 with the configured key, computed inside DuckDB."""

import hashlib
import hmac
from pathlib import Path

import duckdb

from pipelines.ingest.load import load_landing
from pipelines.ingest.pseudonymise import hmac_parameters, hmac_python, hmac_sql
from tests.builders import BEH_60, claim, write_landing


def test_sql_hmac_equals_python_hmac_for_short_and_long_keys():
    con = duckdb.connect()
    for key in ("k", "a-much-longer-secret-key-" * 5):   # longer than the 64-byte block: hashed first
        for value in ("123456789", "é-ünïcode", ""):
            (sql,) = con.execute(f"SELECT {hmac_sql('$value')}", {**hmac_parameters(key), "value": value}).fetchone()
            assert sql == hmac_python(key, value)


def test_raw_claims_hold_the_keyed_hash_never_the_identifier(tmp_path: Path):
    rows = [claim("a1", " 111222333 ", "2025-01-01", BEH_60), claim("a2", "111222333", "2025-01-02", BEH_60),
            claim("b1", "444555666", "2025-01-03", BEH_60), claim("blank", "   ", "2025-01-04", BEH_60)]
    landing = write_landing(tmp_path / "landing", rows)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    load_landing(con, landing, tmp_path / "quarantine", "secret")
    keys = dict(con.execute("SELECT claim_id, client_key FROM raw.claims").fetchall())
    assert keys["a1"] == keys["a2"] == hmac_python("secret", "111222333")   # trimmed, same client, same key
    assert keys["b1"] == hmac_python("secret", "444555666")
    assert keys["blank"] is None                                             # rejected in staging, never hashed
    columns = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = 'claims'").fetchall()]
    assert "client_id" not in columns
    text = con.execute("SELECT string_agg(CAST(COLUMNS(*) AS VARCHAR), '|') FROM raw.claims").fetchall()
    assert "111222333" not in str(text) and "444555666" not in str(text)


def test_the_client_key_is_the_first_128_bits_of_the_hmac():
    full = hmac.new(b"secret", b"111222333", hashlib.sha256).hexdigest()
    assert hmac_python("secret", "111222333") == full[:32]
    assert len(hmac_python("secret", "111222333")) == 32


def test_keys_stored_with_64_digits_are_shortened_once_and_every_table_is_rebuilt(tmp_path: Path):
    from pipelines.incremental import MODEL_BUILDS_DDL
    from pipelines.ingest.pseudonymise import shorten_stored_client_keys

    landing = write_landing(tmp_path / "landing", [claim("a1", "111", "2025-01-01", BEH_60),
                                                   claim("b1", "", "2025-01-02", BEH_60)])
    con = duckdb.connect()
    for schema in ("raw", "quality"):
        con.execute(f"CREATE SCHEMA {schema}")
    load_landing(con, landing, tmp_path / "quarantine", "secret")
    con.execute(MODEL_BUILDS_DDL)
    con.execute("INSERT INTO quality.model_builds VALUES ('staging.claims_typed', 'f', [1], NULL, now(), 'rebuilt', 1, 2)")
    assert shorten_stored_client_keys(con) == 0  # keys loaded now are short already: nothing changes
    assert con.execute("SELECT count(*) FROM quality.model_builds").fetchone() == (1,)
    full = hmac.new(b"secret", b"111", hashlib.sha256).hexdigest()
    con.execute("UPDATE raw.claims_stored SET client_key = ? WHERE claim_id = 'a1'", [full])  # as loaded before
    assert shorten_stored_client_keys(con) == 1
    assert dict(con.execute("SELECT claim_id, client_key FROM raw.claims").fetchall()) == {
        "a1": hmac_python("secret", "111"), "b1": None}
    assert con.execute("SELECT count(*) FROM quality.model_builds").fetchone() == (0,)
    assert shorten_stored_client_keys(con) == 0
