"""Keyed pseudonymisation of client identifiers: HMAC-SHA256, computed inside DuckDB at load.

The clear identifier is hashed in the same statement that reads it from the landing file, so it is never
written to the warehouse. HMAC is built from DuckDB's ``sha256`` so that 10 million rows hash in seconds;
the tests check it against Python's ``hmac`` module. The key is passed as a statement parameter (never stored
in SQL text or in the catalog).

``client_key`` is the HMAC truncated to its first 128 bits: 32 lower-case hex digits (RFC 2104 allows truncating
an HMAC to half its length). Two of the Netherlands' 18 million inhabitants would share a key with a chance of
about 10^-24, and the key is written into every claim-line table and into every trajectory key, where the full 64
digits cost ~1 s of writing per table at ten million lines. Warehouses loaded with 64-digit keys are converted
once (:func:`shorten_stored_client_keys`): the new key is the first 32 digits of the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import warnings

from pipelines.contract import CLAIMS, stored_table
from pipelines.warehouse import transaction

KEY_ENV = "PRAKTIJKVARIATIE_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "praktijkvariatie-development-key-not-for-real-data"
_BLOCK = 64  # SHA-256 block size in bytes
CLIENT_KEY_HEX_DIGITS = 32  # the first 128 bits of the HMAC


def pseudonym_key() -> str:
    """The key from configuration; a development default (with a warning) keeps the sample run working."""
    key = os.environ.get(KEY_ENV, "")
    if key:
        return key
    warnings.warn(
        f"{KEY_ENV} is not set: client identifiers are pseudonymised with the development key. "
        "Set a secret key before loading real claims.",
        stacklevel=2,
    )
    return DEVELOPMENT_KEY


def hmac_pads(key: str) -> dict[str, str]:
    """Hex of (key XOR ipad) and (key XOR opad), the two parameters of :data:`HMAC_SQL`."""
    raw = key.encode("utf-8")
    if len(raw) > _BLOCK:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(_BLOCK, b"\0")
    return {
        "hmac_ipad": bytes(b ^ 0x36 for b in raw).hex(),
        "hmac_opad": bytes(b ^ 0x5C for b in raw).hex(),
    }


def hmac_parameters(key: str) -> dict[str, bytes]:
    """The parameters of :func:`hmac_sql`: the two pads as bytes (DuckDB BLOBs). Passed as BLOBs, not as hex to
    be unhexed in SQL: DuckDB evaluates ``unhex($parameter)`` again for every row, which made hashing a file's
    320,000 distinct clients take 1.2 s instead of 0.1 s."""
    return {name: bytes.fromhex(pad) for name, pad in hmac_pads(key).items()}


def hmac_sql(expression: str) -> str:
    """SQL computing the client key (the hex HMAC-SHA256, truncated) of a text expression, with the BLOB parameters
    $hmac_ipad and $hmac_opad (:func:`hmac_parameters`)."""
    inner = f"unhex(sha256($hmac_ipad || encode({expression})))"
    return f"left(sha256($hmac_opad || {inner}), {CLIENT_KEY_HEX_DIGITS})"


def hmac_python(key: str, value: str) -> str:
    """Reference implementation of the client key, for tests and for looking up one client's key by hand."""
    return hmac.new(key.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()[:CLIENT_KEY_HEX_DIGITS]


def shorten_stored_client_keys(con) -> int:
    """Convert client keys stored with all 64 hex digits (warehouses loaded before keys were truncated) to their
    first 32, and forget how the incremental tables were built, so that the run rebuilds every table from raw with
    the new keys. Returns the number of raw rows converted (0 when there are none: then nothing is changed)."""
    longer = f"length(client_key) > {CLIENT_KEY_HEX_DIGITS}"
    # This runs before every load, and the keys of all rows are shortened at once, before a later file is loaded:
    # long keys exist only when the oldest load with keys has them. One of its rows tells (~2 ms; looking for a
    # long key among all rows took ~0.1 s of every run at ten million lines).
    stored = stored_table(CLAIMS)
    oldest = con.execute(f"SELECT client_key FROM {stored} WHERE client_key IS NOT NULL AND load_id = "
                         f"(SELECT min(load_id) FROM {stored} WHERE client_key IS NOT NULL) LIMIT 1").fetchone()
    if oldest is None or len(oldest[0]) <= CLIENT_KEY_HEX_DIGITS:
        return 0
    (old,) = con.execute(f"SELECT count(*) FROM {stored} WHERE {longer}").fetchone()
    with transaction(con):
        con.execute(f"UPDATE {stored} SET client_key = left(client_key, {CLIENT_KEY_HEX_DIGITS}) WHERE {longer}")
        (builds,) = con.execute("SELECT count(*) FROM information_schema.tables "
                                "WHERE table_schema = 'quality' AND table_name = 'model_builds'").fetchone()
        if builds:
            con.execute("DELETE FROM quality.model_builds")
    return old
