"""Client identifiers are replaced at load by HMAC-SHA256 with the configured key, computed inside DuckDB."""

from pathlib import Path

import duckdb

from pipelines.ingest.load import load_landing
from pipelines.ingest.pseudonymise import hmac_pads, hmac_python, hmac_sql
from tests.builders import BEH_60, claim, write_landing


def test_sql_hmac_equals_python_hmac_for_short_and_long_keys():
    con = duckdb.connect()
    for key in ("k", "a-much-longer-secret-key-" * 5):   # longer than the 64-byte block: hashed first
        for value in ("123456789", "é-ünïcode", ""):
            (sql,) = con.execute(f"SELECT {hmac_sql('$value')}", {**hmac_pads(key), "value": value}).fetchone()
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
