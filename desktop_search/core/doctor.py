"""Index health: find (and with ``repair``, fix) what a crash, a full disk or an old app version left behind.

The index is derived data - every repair either deletes rows that no longer mean anything or marks files to be
indexed again, and never touches a document. Checks, in the order a repair applies them:

- ``meta``: the meta file is missing or unreadable -> rewritten; vectors, whose model is then unknown, dropped.
- ``schema_version``: written by an older schema -> rebuilt empty (re-index the folders); a newer one is left
  alone (use the newer app).
- ``table_unreadable``: a table whose data files are missing or damaged -> restored to its newest readable
  version, else recreated empty (its files are then re-indexed).
- ``duplicate_files``: several rows for one path -> the path is reset (indexed again on the next run).
- ``orphan_chunks``: chunks whose path has no files row -> deleted.
- ``missing_chunks``: files marked indexed whose chunks are missing, incomplete or duplicated -> reset.
- ``failed_with_chunks``: failed files that still have chunks -> reset.
- ``vector_dim``: stored vectors of another size than the bound model's -> dropped (re-encoded on the next run).
- ``duplicate_vectors`` / ``orphan_vectors``: repeated or unused vectors -> deleted.
- ``missing_indexes``: no full-text (or, for large tables, vector) index -> rebuilt.
- ``broken_indexes``: an index listed but unusable (its files deleted or damaged) -> dropped and rebuilt.
- every column of every table is read (``table_unreadable``), so a damaged data page anywhere is found.
- ``missing_vectors`` and ``pending_files`` are reported for information: the next ``index`` run encodes and
  indexes them (it needs the model, which doctor does not load).
A repair holds the writer lock; checking alone does not, so it may run beside a writer (and then report a
writer's work in progress).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from desktop_search.core.lock import IndexLock, holder
from desktop_search.core.store import (
    CHUNKS_SCHEMA,
    FILES_SCHEMA,
    META_FILE,
    SCHEMA_VERSION,
    FileRecord,
    IndexIncompatible,
    IndexMissing,
    Store,
    foreign_content,
    owner_key,
    read_meta,
    tiers,
    write_meta,
)
from desktop_search.core.store.meta import IndexNotOurs
from desktop_search.core.store.tables import table_read_error

__all__ = ["Problem", "DoctorReport", "check", "repair"]

EXAMPLES = 5


@dataclass
class Problem:
    code: str
    severity: str  # "error": the index is inconsistent; "info": work the next index run does
    count: int
    message: str
    fix: str  # what --repair does (or did)
    examples: list[str] = field(default_factory=list)
    fixed: bool = False


@dataclass
class DoctorReport:
    index_dir: str
    schema_version: int | None = None
    problems: list[Problem] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    repaired: bool = False
    actions: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error" and not p.fixed]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "index_dir": self.index_dir,
            "ok": self.ok,
            "schema_version": self.schema_version,
            "repaired": self.repaired,
            "stats": self.stats,
            "problems": [asdict(p) for p in self.problems],
            "actions": self.actions,
        }


def _chunks_by_file(chunks: list[dict[str, Any]]) -> tuple[Counter[str], set[str]]:
    """Chunks per file (a message's count includes its attachments', keyed ``message.eml › name``: they are its
    chunks, ``store.keys.owner_key``) and the files with an ordinal stored twice."""
    count = Counter(owner_key(c["path"]) for c in chunks)
    ordinals = Counter((c["path"], c["ordinal"]) for c in chunks)
    return count, {owner_key(p) for (p, _o), n in ordinals.items() if n > 1}


def _add(report: DoctorReport, code: str, severity: str, items: list[str] | int, message: str, fix: str) -> None:
    count = items if isinstance(items, int) else len(items)
    if count:
        examples = [] if isinstance(items, int) else sorted(items)[:EXAMPLES]
        report.problems.append(Problem(code, severity, count, message, fix, examples))


# -- meta -------------------------------------------------------------------------------------------------------
def _check_meta(index_dir: Path, report: DoctorReport) -> dict[str, Any] | None:
    """Problems that prevent opening the index. Returns the meta when the index can be opened."""
    meta, problem = read_meta(index_dir)
    if meta is None:
        if problem == "missing" and not (index_dir / "lance").is_dir():
            raise IndexMissing(f"no index at {index_dir}")
        why = foreign_content(index_dir) if problem == "missing" else None
        if why is not None:
            # Without the description file only the folder's content can say whose it is: another program's
            # LanceDB tables must never be dropped or "repaired".
            raise IndexNotOurs(f"{why}; doctor only checks and repairs desktop-search indexes (nothing was changed)")
        report.problems.append(Problem(
            "meta", "error", 1, f"the index description file {META_FILE} is {problem}",
            "write a new one; stored vectors are dropped (their model is unknown) and re-encoded by the next run",
        ))
        return None
    report.schema_version = meta.get("schema_version")
    if report.schema_version != SCHEMA_VERSION:
        older = isinstance(report.schema_version, int) and report.schema_version < SCHEMA_VERSION
        report.problems.append(Problem(
            "schema_version", "error", 1,
            f"the index has schema version {report.schema_version}; this app reads version {SCHEMA_VERSION}",
            "rebuild it empty, then run `desktop-search index` on your folders (documents are not touched)"
            if older else "none: it was written by a newer version of the app; use that version, or delete the "
                          "index folder and index again",
        ))
        return None
    return meta


# -- tables -----------------------------------------------------------------------------------------------------
def _check_tables(store: Store, report: DoctorReport) -> dict[str, Any] | None:
    broken = store.unreadable_tables()
    for name, err in broken.items():
        report.problems.append(Problem(
            "table_unreadable", "error", 1, f"the {name} table cannot be read ({err})",
            "restore its newest readable version, else recreate it empty (its files are indexed again)",
            [name],
        ))
    if broken:
        return None
    data = store.scan()
    files, chunks, vectors = data["files"], data["chunks"], data["vectors"]
    by_path = Counter(r["path"] for r in files)
    records = {r["path"]: r for r in files}
    chunk_count, dup_ordinals = _chunks_by_file(chunks)

    dup_files = [p for p, n in by_path.items() if n > 1]
    orphans = [p for p in chunk_count if p not in records]
    bad = [
        p for p, r in records.items()
        if r["status"] == "indexed" and p not in dup_files
        and (chunk_count.get(p, 0) == 0 or chunk_count[p] != r["n_chunks"] or p in dup_ordinals)
    ]
    failed_with_chunks = [p for p, r in records.items() if r["status"] == "failed" and chunk_count.get(p)]
    pending = [p for p, r in records.items() if r["status"] == "pending"]

    _add(report, "duplicate_files", "error", dup_files, "several files rows for one path",
         "reset those files: their rows and chunks are deleted and the next run indexes them")
    _add(report, "orphan_chunks", "error", orphans, "chunks of files the index has no record of "
         "(they would show up in search results)", "delete them")
    _add(report, "missing_chunks", "error", bad, "files marked indexed whose chunks are missing, incomplete or "
         "duplicated", "reset them to pending: the next run indexes them again")
    _add(report, "failed_with_chunks", "error", failed_with_chunks, "failed files that still have chunks",
         "reset them: their chunks are deleted and the next run indexes them again")

    used = {c["text_hash"] for c in chunks}
    vec_counts = Counter(vectors)
    dim = store.dim
    if data["vector_dim"] is not None and dim is not None and data["vector_dim"] != dim:
        _add(report, "vector_dim", "error", len(vectors),
             f"stored vectors have {data['vector_dim']} dimensions, the bound model {dim}",
             "drop them; the next run encodes the chunks again")
    else:
        _add(report, "duplicate_vectors", "error", [h for h, n in vec_counts.items() if n > 1],
             "texts with more than one stored vector", "keep one of each")
        _add(report, "orphan_vectors", "error", [h for h in vec_counts if h not in used],
             "vectors that no chunk uses", "delete them")
        if store.model_fingerprint:
            missing = [h for h in used if h not in vec_counts]
            _add(report, "missing_vectors", "info", missing,
                 "chunk texts without vectors (semantic search cannot find them yet)",
                 "none here: `desktop-search index` with the model installed encodes them")
    _add(report, "pending_files", "info", pending, "files waiting to be (re-)indexed",
         "none here: the next `desktop-search index` run indexes them")

    missing_ix = []
    if chunks and not store.has_fts_index():
        missing_ix.append("chunks: full-text (BM25) index")
    if store.vectors is not None and len(vectors) >= tiers.VECTOR_INDEX_MIN_ROWS and not store.has_dense_index():
        missing_ix.append("vectors: dense vector index")
    _add(report, "missing_indexes", "error", missing_ix, "search indexes are missing (search is slower or "
         "finds nothing by keyword)", "rebuild them")
    broken_ix = [f"{name}: {err}" for name, err in store.broken_indexes().items()]
    _add(report, "broken_indexes", "error", broken_ix, "search indexes that cannot be read (their files are "
         "missing or damaged: searches that use them fail)", "rebuild them from the table data")

    report.stats = {
        "files": len(records),
        "indexed": sum(1 for r in records.values() if r["status"] == "indexed"),
        "failed": sum(1 for r in records.values() if r["status"] == "failed"),
        "pending": len(pending),
        "chunks": len(chunks),
        "vectors": len(vectors),
        "model": store.model_fingerprint,
    }
    return data


# -- entry points -----------------------------------------------------------------------------------------------
def check(index_dir: Path) -> DoctorReport:
    """Inspect the index without changing it. Raises IndexMissing if there is no index at all."""
    index_dir = Path(index_dir)
    report = DoctorReport(str(index_dir))
    if _check_meta(index_dir, report) is None:
        return report
    info = holder(index_dir)
    if info:
        report.stats["last_writer"] = info
    try:
        store = Store(index_dir, create=False)
    except (IndexMissing, IndexIncompatible):
        raise
    except Exception as e:  # noqa: BLE001 - tables that cannot even be opened
        report.problems.append(Problem("table_unreadable", "error", 1, f"the index cannot be opened ({e})",
                                       "recreate the damaged tables (their files are indexed again)"))
        return report
    _check_tables(store, report)
    return report


def repair(index_dir: Path) -> DoctorReport:
    """Fix what :func:`check` finds (holding the writer lock), then check again. The returned report lists the
    problems found before the repair (``fixed`` set on those that are gone) and the ``actions`` taken."""
    index_dir = Path(index_dir)
    _check_meta(index_dir, DoctorReport(str(index_dir)))  # no index, or not ours: raised before anything is written
    with IndexLock(index_dir, command="desktop-search doctor --repair"):
        before = check(index_dir)
        actions: list[str] = []
        codes = {p.code for p in before.problems}
        if "schema_version" in codes:
            if not (isinstance(before.schema_version, int) and before.schema_version < SCHEMA_VERSION):
                before.actions = ["nothing done: the index was written by a newer version of the app"]
                return before
            _rebuild_empty(index_dir)
            actions.append(f"rebuilt an empty index (schema {before.schema_version} -> {SCHEMA_VERSION}); "
                           "run `desktop-search index` on your folders to fill it")
        elif "meta" in codes:
            _rewrite_meta(index_dir)
            actions.append("wrote a new index description; dropped vectors of an unknown model")
        if any(p.code == "table_unreadable" for p in before.problems):
            actions.extend(_restore_tables(index_dir))
        after_open = check(index_dir)
        if after_open.ok or all(p.code not in ("meta", "schema_version") for p in after_open.problems):
            store = Store(index_dir, create=True)
            data = _check_tables(store, DoctorReport(str(index_dir)))
            if data is not None:
                actions.extend(_fix_rows(store, data))
        after = check(index_dir)
        remaining = {(p.code) for p in after.problems if p.severity == "error"}
        for p in before.problems:
            p.fixed = p.severity == "error" and p.code not in remaining
        # Problems that only showed up after an earlier fix (e.g. a restored table) are reported as well.
        seen = {p.code for p in before.problems}
        before.problems.extend(p for p in after.problems if p.code not in seen)
        before.stats = after.stats or before.stats
        before.repaired = True
        before.actions = actions
        return before


def _rebuild_empty(index_dir: Path) -> None:
    lance = index_dir / "lance"
    if lance.exists():
        shutil.rmtree(lance)
    (index_dir / META_FILE).unlink(missing_ok=True)
    Store(index_dir, create=True)


def _rewrite_meta(index_dir: Path) -> None:
    from desktop_search.core.lancedb_import import import_lancedb

    lancedb = import_lancedb()

    db = lancedb.connect(str(index_dir / "lance"))
    try:
        db.drop_table("vectors")
    except Exception:  # noqa: BLE001 - not there
        pass
    write_meta(index_dir, {"schema_version": SCHEMA_VERSION})


def _restore_tables(index_dir: Path) -> list[str]:
    from desktop_search.core.lancedb_import import import_lancedb

    lancedb = import_lancedb()

    db = lancedb.connect(str(index_dir / "lance"))
    actions = []
    for name in ("files", "chunks", "vectors"):
        try:
            table = db.open_table(name)
        except Exception:  # noqa: BLE001 - missing tables are recreated by Store
            table = None
        if table is not None and table_read_error(table) is None:
            continue
        if table is None and name == "vectors":
            continue  # none yet: nothing to restore
        restored = False
        if table is not None:
            try:
                versions = sorted((v["version"] for v in table.list_versions()), reverse=True)
            except Exception:  # noqa: BLE001
                versions = []
            for v in versions[1:]:
                try:
                    table.checkout(v)
                    if table_read_error(table) is None:
                        table.restore(v)
                        actions.append(f"restored the {name} table to its version {v}")
                        restored = True
                        break
                except Exception:  # noqa: BLE001 - try the next older version
                    continue
        if restored:
            continue
        try:
            db.drop_table(name)
        except Exception:  # noqa: BLE001
            shutil.rmtree(index_dir / "lance" / f"{name}.lance", ignore_errors=True)
        if name == "files":
            db.create_table("files", schema=FILES_SCHEMA)
            actions.append("recreated the files table empty: every file is indexed again on the next run")
        elif name == "chunks":
            db.create_table("chunks", schema=CHUNKS_SCHEMA)
            actions.append("recreated the chunks table empty")
        else:
            actions.append("dropped the vectors table: the next run encodes the chunks again")
            meta, _ = read_meta(index_dir)
            if meta is not None:  # unbind the model so the next run recreates the table
                write_meta(index_dir, {k: v for k, v in meta.items() if k not in ("model", "dim")})
    return actions


def _reset(store: Store, paths: list[str], detail: str) -> None:
    """Delete the chunks of ``paths`` and mark them pending, so the next index run redoes them."""
    if not paths:
        return
    now = time.time()
    rows = []
    existing = store.records_for(paths)
    store.delete_files(paths)  # chunks, then rows (duplicates included)
    for p in paths:
        rec = existing.get(p)
        base = rec.as_row() if rec is not None else dict(
            path=p, size=0, mtime_ns=0, sha256="", kind="", reason=None, warnings="", page_count=0)
        rows.append(FileRecord(**{**base, "status": "pending", "reason": None, "detail": detail,
                                  "n_chunks": 0, "indexed_at": now}))
    store.add_files(rows)


def _fix_rows(store: Store, data: dict[str, Any]) -> list[str]:
    actions: list[str] = []
    report = DoctorReport(str(store.index_dir))
    _check_tables(store, report)
    found = {p.code: p for p in report.problems}

    def all_items(code: str) -> list[str]:
        # Examples are capped; recompute the full lists from the scan.
        files, chunks = data["files"], data["chunks"]
        records = {r["path"]: r for r in files}
        chunk_count, dup = _chunks_by_file(chunks)
        if code == "duplicate_files":
            return [p for p, n in Counter(r["path"] for r in files).items() if n > 1]
        if code == "orphan_chunks":
            return [p for p in chunk_count if p not in records]
        if code == "failed_with_chunks":
            return [p for p, r in records.items() if r["status"] == "failed" and chunk_count.get(p)]
        if code == "missing_chunks":
            dup_files = set(all_items("duplicate_files"))
            return [p for p, r in records.items() if r["status"] == "indexed" and p not in dup_files
                    and (chunk_count.get(p, 0) == 0 or chunk_count[p] != r["n_chunks"] or p in dup)]
        return []

    if "duplicate_files" in found or "missing_chunks" in found or "failed_with_chunks" in found:
        # Which is right, the row or the chunks, cannot be told: do the file again.
        paths = sorted(set(all_items("duplicate_files")) | set(all_items("missing_chunks"))
                       | set(all_items("failed_with_chunks")))
        _reset(store, paths, "reset by `desktop-search doctor --repair`: its chunks were missing or damaged")
        actions.append(f"reset {len(paths)} files to be indexed again")
    if "orphan_chunks" in found:
        paths = all_items("orphan_chunks")
        store.replace_chunks(paths, [])
        actions.append(f"deleted the chunks of {len(paths)} files the index had no record of")
    if "vector_dim" in found and store.vectors is not None:
        store.unbind_model()
        actions.append("dropped vectors of the wrong size; the next run encodes the chunks again")
    if "duplicate_vectors" in found and store.vectors is not None:
        dups = [h for h, n in Counter(data["vectors"]).items() if n > 1]
        store.dedupe_vectors(dups)
        actions.append(f"kept one vector for each of {len(dups)} texts stored more than once")
    if "broken_indexes" in found:
        store.rebuild_indexes()  # before optimize(), which updates the indexes and would fail on them
        actions.append("rebuilt damaged search indexes")
    # optimize() drops unused vectors, rebuilds missing indexes and compacts.
    store.optimize()
    if "orphan_vectors" in found:
        actions.append(f"deleted {found['orphan_vectors'].count} unused vectors")
    if "missing_indexes" in found:
        store.ensure_fts_index()
        store.ensure_vector_indexes()
        actions.append("rebuilt missing search indexes")
    return actions
