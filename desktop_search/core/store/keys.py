"""How things are named in the index: stored path keys (and back to the path on disk), chunk ids, text hashes.

A path is the key of the ``files`` table and the owner column of ``chunks``; a chunk's text hash keys its row in
``vectors``, so identical text anywhere in the index is encoded once.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Iterable

from desktop_search.core.paths import under_any

__all__ = ["chunk_id", "fs_path", "is_under", "path_key", "text_hash"]


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def path_key(path: str) -> str:
    """The form a file path is stored in. Arrow strings must be valid UTF-8, but a POSIX file name is any bytes:
    a name that is not UTF-8 (Python holds it with surrogate escapes) is stored with its undecodable bytes
    written as ``\\xNN``, like ``ls -b`` shows it. Every other path is stored unchanged."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


_ESCAPED_BYTE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")


def fs_path(key: str) -> str:
    """The path on disk for a stored path (inverse of :func:`path_key`): open results with this."""
    if "\\x" not in key or os.path.lexists(key):
        return key
    raw = _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), key)
    try:
        candidate = os.fsdecode(raw.encode("utf-8", "surrogateescape"))
    except UnicodeError:
        return key
    return candidate if os.path.lexists(candidate) else key


def chunk_id(path: str, ordinal: int) -> str:
    return f"{hashlib.sha1(path.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}:{ordinal}"


def is_under(path: str, roots: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one of them (core/paths.py: the one answer, Windows too)."""
    return under_any(path, roots)
