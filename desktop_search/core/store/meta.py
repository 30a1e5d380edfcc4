"""The index description file (``desktop_search_index.json``): schema version, bound model and its vector size.

Written atomically (temporary file created exclusively, without following links, then renamed). Opening an index
checks it first: no file means no index, another schema version means the index must be rebuilt (``doctor
--repair``). An index is only created in a new or empty folder, or one holding nothing but what this app writes
(``foreign_content``): a user's folder or another program's database is refused, never written to."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from desktop_search.errors import UserError

__all__ = ["IndexIncompatible", "IndexMissing", "IndexNotOurs", "META_FILE", "SCHEMA_VERSION", "foreign_content",
           "open_meta", "open_remote_meta", "read_meta", "write_meta"]

SCHEMA_VERSION = 1
META_FILE = "desktop_search_index.json"


class IndexMissing(UserError, RuntimeError):
    """The index directory does not hold an index (yet)."""


class IndexIncompatible(UserError, RuntimeError):
    """The index was written by another schema version or model, and must be rebuilt."""


class IndexNotOurs(IndexMissing):
    """The folder holds something else (a user's files, another application's database): never written to."""


# What an index folder of this app may hold besides the description file (``lance/`` is checked table by table).
OWN_ENTRIES = frozenset({"lance", "writer.lock", META_FILE + ".tmp"})
OWN_TABLES = frozenset({"files.lance", "chunks.lance", "vectors.lance"})


def write_meta(index_dir: Path, meta: dict[str, Any]) -> None:
    """Replace the description file atomically. The temporary file is created exclusively and without following
    links: a planted ``….tmp`` link is removed (the link, never its target) rather than written through."""
    tmp = Path(index_dir) / (META_FILE + ".tmp")
    try:
        os.unlink(tmp)  # a leftover of a crash, or a planted link
    except FileNotFoundError:
        pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(json.dumps(meta, indent=2).encode("utf-8"))
        fh.flush()
        try:
            os.fsync(fh.fileno())
        except OSError:
            pass
    os.replace(tmp, Path(index_dir) / META_FILE)


def foreign_content(index_dir: Path) -> str | None:
    """Why ``index_dir`` (which has no description file) is not a folder this app may create an index in, or None
    when it may: it does not exist, is empty, or holds only what this app writes there (an index whose
    description file was lost). Anything else - a user's files, another program's LanceDB tables - is not ours."""
    index_dir = Path(index_dir)
    if not index_dir.exists():
        return None
    if not index_dir.is_dir():
        return f"{index_dir} is a file, not a folder"
    entries = sorted(os.listdir(index_dir))
    others = [e for e in entries if e not in OWN_ENTRIES]
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        return f"{index_dir} is not empty and is not a desktop-search index (it holds {shown})"
    lance = index_dir / "lance"
    if lance.exists():
        tables = sorted(os.listdir(lance)) if lance.is_dir() else ["?"]
        strange = [t for t in tables if t not in OWN_TABLES]
        if strange or not own_schemas(lance):
            return f"{index_dir} holds a database that is not a desktop-search index"
    return None


def own_schemas(lance_dir: Path) -> bool:
    """Whether every table in ``lance_dir`` has exactly the columns this app gives that table."""
    import lancedb

    from desktop_search.core.store.tables import CHUNKS_SCHEMA, FILES_SCHEMA

    expected = {"files": FILES_SCHEMA.names, "chunks": CHUNKS_SCHEMA.names,
                "vectors": ["text_hash", "dense", "sparse_ids", "sparse_weights", "colbert", "colbert_scale",
                            "n_vectors"]}
    try:
        db = lancedb.connect(str(lance_dir))
        lister = getattr(db, "list_tables", None)
        names = list(getattr(lister(), "tables", lister())) if lister is not None else list(db.table_names())
        def ours(name: str) -> bool:
            have = set(db.open_table(name).schema.names)
            # Columns added by later versions of this app (the chunks' analysed terms) may be absent.
            return name in expected and set(expected[name]) - {"lang", "terms"} <= have <= set(expected[name])

        return all(ours(name) for name in names)
    except Exception:  # noqa: BLE001 - unreadable: not provably ours
        return False


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
        why = foreign_content(index_dir)
        if why is not None:
            raise IndexNotOurs(f"{why}; an index is only created in a new or empty folder - choose another with "
                               "--index-dir (nothing was written there)")
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
