"""How things are named in the index: stored path keys (and back to the path on disk), chunk ids, text hashes.

A path is the key of the ``files`` table and the owner column of ``chunks``; a chunk's text hash keys its row in
``vectors``, so identical text anywhere in the index is encoded once. A document inside a file (a mail attachment,
``extract.Member``) is keyed ``<file's key> › <name>`` (``member_key``): its own entry in the results, named like
``message.eml › report.docx``, whose chunks belong to the file (``owner_key``): they go when the file is re-read,
moved or deleted, and opening the entry opens the file (``fs_path``).
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Iterable

from desktop_search.core.paths import under_any

__all__ = ["MEMBER_SEP", "chunk_id", "fs_path", "is_under", "member_key", "member_name", "owner_key", "path_key", "text_hash"]

MEMBER_SEP = " › "  # between a file's key and the name of a document inside it


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def path_key(path: str) -> str:
    """The form a file path is stored in: one stored path per real path (injective), readable like ``ls -b``.

    Arrow strings must be valid UTF-8, but a POSIX file name is any bytes. A path that is valid UTF-8 with no
    backslash - nearly every path - is stored unchanged. Any other has its backslashes doubled and each byte that is
    not UTF-8 written ``\\xNN``: a name with the byte 0xE9 is stored ``caf\\xe9.txt``, a file literally named
    ``caf\\xe9.txt`` is stored ``caf\\\\xe9.txt``, so the two can never collide, and a folder's key is a prefix of
    its files' keys. Keys of names with an odd byte and no backslash are what earlier versions stored; a name with
    a backslash is stored anew by the next run, like a renamed file. On Windows, where paths are Unicode and the
    backslash is the separator, only lone surrogates are escaped."""
    if os.sep == "\\":
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            return path.encode("utf-8", "backslashreplace").decode("utf-8")
    try:
        path.encode("utf-8")
        if "\\" not in path:
            return path
        text = path
    except UnicodeEncodeError:
        text = os.fsencode(path).decode("utf-8", "surrogateescape")
    text = text.replace("\\", "\\\\")
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


_SURROGATE = re.compile("[\udc80-\udcff]")
_ESCAPE = re.compile(r"\\\\|\\x([89a-fA-F][0-9a-fA-F])")


def member_key(owner: str, name: str) -> str:
    """The key of the document ``name`` inside the file keyed ``owner`` (names carry no separator: mail.py)."""
    return f"{owner}{MEMBER_SEP}{name}"


def owner_key(key: str) -> str:
    """The key of the file a stored key belongs to: the key itself, or for a member its file's key. Only files of a
    kind that carries members (``registry.has_members``: a ``.eml`` or ``.mbox``) own any, so a real file whose
    name happens to contain the separator stays its own."""
    from desktop_search.core.extract.registry import has_members

    head, sep, _name = key.rpartition(MEMBER_SEP)
    return head if sep and has_members(head) else key


def member_name(key: str) -> str | None:
    """The name of the document a member key stands for inside its file, or None for a file's own key."""
    owner = owner_key(key)
    return key[len(owner) + len(MEMBER_SEP):] if owner != key else None


def fs_path(key: str) -> str:
    """The path on disk for a stored path (inverse of :func:`path_key`): open results with this. A member's is its
    file's (a message opens for its attachment)."""
    key = owner_key(key)
    if os.sep == "\\" or "\\" not in key:
        return key
    raw = _ESCAPE.sub(lambda m: "\\" if m.group(1) is None else chr(0xDC00 + int(m.group(1), 16)), key)
    try:
        candidate = os.fsdecode(raw.encode("utf-8", "surrogateescape"))
    except UnicodeError:
        return key
    if not os.path.lexists(candidate) and os.path.lexists(key):
        return key  # stored by an earlier version, before names with a backslash were escaped
    return candidate


def chunk_id(path: str, ordinal: int) -> str:
    return f"{hashlib.sha1(path.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}:{ordinal}"


def is_under(path: str, roots: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one of them (core/paths.py: the one answer, Windows too)."""
    return under_any(path, roots)
