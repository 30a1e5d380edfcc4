"""The index description file (``desktop_search_index.json``): schema version, bound model and its vector size.

Written atomically (temporary file + rename). Opening an index checks it first: no file means no index, another
schema version means the index must be rebuilt (``doctor --repair``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["IndexIncompatible", "IndexMissing", "META_FILE", "SCHEMA_VERSION", "open_meta", "open_remote_meta",
           "read_meta", "write_meta"]

SCHEMA_VERSION = 1
META_FILE = "desktop_search_index.json"


class IndexMissing(RuntimeError):
    """The index directory does not hold an index (yet)."""


class IndexIncompatible(RuntimeError):
    """The index was written by another schema version or model, and must be rebuilt."""


def write_meta(index_dir: Path, meta: dict[str, Any]) -> None:
    """Replace the description file atomically."""
    tmp = Path(index_dir) / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2), "utf-8")
    os.replace(tmp, Path(index_dir) / META_FILE)


def read_meta(index_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(meta, None), or (None, "missing") / (None, "unreadable (why)")."""
    path = Path(index_dir) / META_FILE
    if not path.is_file():
        return None, "missing"
    try:
        meta = json.loads(path.read_text("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not an object")
        return meta, None
    except (OSError, ValueError) as e:
        return None, f"unreadable ({e})"


def open_meta(index_dir: Path, *, create: bool) -> dict[str, Any]:
    """The description of the index at ``index_dir`` (a new one if there is none and ``create``), checked to be
    of this app's schema version."""
    index_dir = Path(index_dir)
    meta_path = index_dir / META_FILE
    if not meta_path.is_file():
        if not create:
            raise IndexMissing(f"no index at {index_dir} (run `desktop-search index PATH` first)")
        index_dir.mkdir(parents=True, exist_ok=True)
        write_meta(index_dir, {"schema_version": SCHEMA_VERSION})
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise IndexIncompatible(
            f"the index description {meta_path} is unreadable ({e}); run `desktop-search doctor --repair`"
        ) from None
    return _checked(meta, str(index_dir))


def _checked(meta: dict[str, Any], where: str) -> dict[str, Any]:
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise IndexIncompatible(
            f"index at {where} has schema version {meta.get('schema_version')}, "
            f"this app reads version {SCHEMA_VERSION}; run `desktop-search doctor --repair` to rebuild it "
            "(your documents are not touched), then index your folders again"
        )
    return meta


def open_remote_meta(location: Any, client: Any, *, create: bool) -> dict[str, Any]:
    """:func:`open_meta` for a shared index: the description is an object next to the tables in the bucket
    (``location`` an :class:`~desktop_search.core.location.IndexLocation`, ``client`` its object-store client)."""
    try:
        meta = location.read_json(client, META_FILE)
    except ValueError as e:
        raise IndexIncompatible(f"the index description is unreadable ({e})") from None
    if meta is None:
        if not create:
            raise IndexMissing(f"no index at {location} (run `desktop-search index PATH --index-dir {location}` "
                               "on the machine that indexes for the team first)")
        meta = {"schema_version": SCHEMA_VERSION}
        location.write_json(client, META_FILE, meta)
    return _checked(meta, str(location))
