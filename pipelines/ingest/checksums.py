"""SHA-256 of landing files, remembered by file name, size and modification time.

A file is recognised as loaded by its name and checksum (``raw.load_manifest``), so every run needs the checksum
of every file in the landing folder, and that folder keeps every extract ever delivered: years of them. Reading
all of it every night would grow with the folder, not with what is new. A file whose name, size and
modification time (in nanoseconds) are those of a file hashed before is taken to have the same checksum; any
write to a file changes its modification time, so only a file changed and then given back its old time on
purpose would be missed. The memo is a cache: deleting it only means hashing every file once more.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, MutableMapping
from pathlib import Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(paths: Iterable[Path], known: MutableMapping[str, str]) -> dict[Path, str]:
    """path -> SHA-256 of each file, hashing only those not in ``known`` (``name|size|mtime_ns`` -> SHA-256).
    ``known`` is updated in place and pruned to the given files."""
    out = {}
    present = set()
    for path in paths:
        stat = path.stat()
        fingerprint = f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}"
        if fingerprint not in known:
            known[fingerprint] = sha256_of(path)
        present.add(fingerprint)
        out[path] = known[fingerprint]
    for fingerprint in set(known) - present:
        del known[fingerprint]
    return out


class ChecksumMemo:
    """:func:`checksums` with ``known`` kept in a JSON file between runs (written atomically)."""

    def __init__(self, memo_path: Path) -> None:
        self.path = Path(memo_path)
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            self.known = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        except (OSError, ValueError):  # missing or unreadable: hash everything once more
            self.known = {}

    def checksums(self, paths: Iterable[Path]) -> dict[Path, str]:
        out = checksums(paths, self.known)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(json.dumps(self.known, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(partial, self.path)
        return out
