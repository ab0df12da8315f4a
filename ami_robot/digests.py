"""SHA-256 digests of files, read in 1 MiB chunks: what checkpoints record of their tensors and of
the data they were trained on."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

CHUNK_BYTES = 1 << 20


def feed_file(digest: Any, path: Path) -> None:
    """Update `digest` (a hashlib object) with the contents of the file at `path`."""
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
            digest.update(chunk)


def file_sha256(path: Path) -> str:
    """SHA-256 of one file's contents, 64 hex digits."""
    digest = hashlib.sha256()
    feed_file(digest, path)
    return digest.hexdigest()
