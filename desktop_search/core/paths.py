"""Is this path inside that folder? Asked by the watcher (which root an event belongs to), the indexer (which
known files a run reconciles, per-folder counts), the folder filter of a search and the window (what removing
a folder forgets, nested folders). One answer for all of them, right on Windows too: separators ``\\`` and
``/`` are the same there, names compare without case, and ``C:\\`` (a root) already ends with its separator.
"""

from __future__ import annotations

import os
from functools import lru_cache
from types import ModuleType
from typing import Iterable


@lru_cache(maxsize=1024)
def _folder_key(folder: str, flavour: ModuleType) -> tuple[str, str]:
    f: str = flavour.normcase(flavour.normpath(folder))
    return f, f if f.endswith(flavour.sep) else f + flavour.sep


def is_under(path: str, folder: str, *, flavour: ModuleType = os.path) -> bool:
    """``path`` is ``folder`` itself or anywhere below it (``flavour``: ``ntpath``/``posixpath``, for tests)."""
    if not folder:
        return False
    f, prefix = _folder_key(folder, flavour)
    p: str = flavour.normcase(path)
    if flavour.altsep:  # Windows: stored paths may use either separator
        p = p.replace(flavour.altsep, flavour.sep)
    return p == f or p.startswith(prefix) or (p + flavour.sep) == prefix


def under_any(path: str, folders: Iterable[str], *, flavour: ModuleType = os.path) -> bool:
    return any(is_under(path, f, flavour=flavour) for f in folders)
