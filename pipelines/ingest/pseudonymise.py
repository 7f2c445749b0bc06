"""Keyed pseudonymisation of client identifiers: HMAC-SHA256, computed inside DuckDB at load.

The clear identifier is hashed in the same statement that reads it from the landing file, so it is never
written to the warehouse. HMAC is built from DuckDB's ``sha256`` so that 10 million rows hash in seconds;
the tests check it against Python's ``hmac`` module. The key is passed as a statement parameter (never stored
in SQL text or in the catalog).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import warnings

KEY_ENV = "PRAKTIJKVARIATIE_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "praktijkvariatie-development-key-not-for-real-data"
_BLOCK = 64  # SHA-256 block size in bytes


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


def hmac_sql(expression: str) -> str:
    """SQL computing the hex HMAC-SHA256 of a text expression, with parameters $hmac_ipad and $hmac_opad."""
    inner = f"unhex(sha256(unhex($hmac_ipad) || encode({expression})))"
    return f"sha256(unhex($hmac_opad) || {inner})"


def hmac_python(key: str, value: str) -> str:
    """Reference implementation, for tests and for looking up one client's key by hand."""
    return hmac.new(key.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()
