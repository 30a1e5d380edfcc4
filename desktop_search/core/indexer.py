"""Folders -> index: discover files, skip unchanged ones, extract, chunk, encode, store; report progress.

Extraction runs ahead in a thread pool (file I/O; the kinds the extractor registry marks isolated go to worker
processes, see ``isolate.py``, so a hostile document costs one file) while the encoder works on the previous
group, so neither the CPU nor a GPU waits on the other. Files are committed in groups: an intent row (status
``pending``) for every file whose chunks are written or rewritten (new, modified, or now failing), then chunks,
then their vectors, then the files rows, so a file is never marked indexed without its chunks, no chunk is ever
left without a files row, and a run killed at any moment simply redoes the files it had not committed. Pipes,
devices and sockets are never opened, empty files never read. Unchanged files (same size and mtime, or same
content hash) cost one stat; a moved or renamed file
(same size and content hash as a file gone from the index) keeps its chunks under the new path without being
read again; text that was encoded before (same chunk text anywhere in the index) is never encoded again. Every
file ends as ``indexed`` or ``failed`` with a reason; nothing here raises for a bad file. Only one process
writes an index at a time (``lock.py``); a failing index write (disk full) ends the run with
:class:`IndexWriteError` and leaves the last committed state readable. Progress goes to a plain callback.
The documents inside a file (a message's attachments, ``Extraction.members``) are chunked as documents of their
own under ``message.eml › name`` keys and committed, moved and deleted with their file, whose ``n_chunks`` counts
them; an attachment that cannot be read is reported as a failure of its own and costs only itself.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import stat
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

import numpy as np

from desktop_search.config import Settings
from desktop_search.core import ocr_models
from desktop_search.core.chunk import Chunk, TokenSpans, TooManyChunks, chunk_pages, token_spans_for
from desktop_search.core.extract import (
    READERS_IMPROVED_AT,
    Extraction,
    ExtractOptions,
    extract,
    is_supported,
    kind_of,
    runs_isolated,
)
from desktop_search.core.failures import Failure, Reason
from desktop_search.core.lease import writer_lock
from desktop_search.core.lock import IndexBusy
from desktop_search.core.paths import is_under, under_any
from desktop_search.core.store import (
    ChunkRow,
    FileRecord,
    Store,
    chunk_id,
    member_key,
    path_key,
    quantize_colbert,
    text_hash,
)
from desktop_search.errors import UserError
from desktop_search.formatting import format_bytes

# Files whose names say they are temporary, partial or editor lock files.
_IGNORED_PREFIXES = ("~$", ".~lock", ".")
_IGNORED_SUFFIXES = (".part", ".crdownload", ".tmp", ".swp", "~")
GROUP_FILES = 32
_Todo = list[tuple[Path, "os.stat_result | None"]]  # files to read, with their stat when it is known
_Moved = list[tuple[FileRecord, Path, os.stat_result]]  # (gone file's record, its new path, the new stat)
_Group = list[tuple["_Prepared", list[Chunk]]]  # extracted and chunked files committed together
_Tick = Callable[..., None]  # tick(phase=..., files_done=..., ...): update the run's Progress and report it
GROUP_TOKENS = 32_768


class IndexWriteError(UserError, RuntimeError):
    """The index could not be written (disk full, read-only, I/O error). Everything committed before stays
    readable and searchable; the next run continues from there."""


IndexPhase = Literal["scanning", "indexing", "encoding", "paused", "optimizing", "done"]


@dataclass
class Progress:
    phase: IndexPhase
    files_total: int = 0
    files_done: int = 0
    files_failed: int = 0
    files_skipped: int = 0
    chunks_done: int = 0
    chunks_encoded: int = 0
    chunks_to_encode: int = 0  # chunks found so far that need vectors (grows while files are still read)
    elapsed_s: float = 0.0
    current: str = ""
    note: str = ""  # what the reader of a slow file is doing, e.g. "scan.pdf: OCR page 3/40"

    @property
    def semantic_line(self) -> str:
        """"semantic: 1,240 / 52,000 chunks"; "+" after the total while files remain that may add chunks."""
        more = "+" if self.phase not in ("done", "optimizing") and self.files_done < self.files_total else ""
        return f"semantic: {self.chunks_encoded:,} / {self.chunks_to_encode:,}{more} chunks"

    @property
    def files_per_s(self) -> float:
        return self.files_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        left = self.files_total - self.files_done
        rate = self.files_per_s
        return left / rate if rate > 0 and left > 0 else (0.0 if left <= 0 else None)


@dataclass
class IndexReport:
    files_seen: int = 0
    indexed: int = 0
    failed: int = 0
    unchanged: int = 0
    removed: int = 0
    moved: int = 0  # of ``indexed``: renamed/moved files whose chunks were kept without reading them again
    chunks_written: int = 0
    chunks_encoded: int = 0
    encode_s: float = 0.0
    ocr_pages: int = 0  # pages the OCR engine recognised in this run
    ocr_cached: int = 0  # pages whose OCR text came from the cache (recognised in an earlier run)
    elapsed_s: float = 0.0
    cancelled: bool = False
    semantic: bool = False
    errors: list[str] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)  # named folders not found: their documents were kept
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (path, reason, detail)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def is_ignored_name(name: str) -> bool:
    return name.startswith(_IGNORED_PREFIXES) or name.endswith(_IGNORED_SUFFIXES)


def matches_patterns(path: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> bool:
    """Glob patterns (``*.pdf``, ``drafts/*``) against the file name and the full path."""
    name, full = path.name, path.as_posix()

    def hit(pat: str) -> bool:
        return fnmatch.fnmatch(name, pat) or fnmatch.fnmatch(full, pat) or fnmatch.fnmatch(full, "*/" + pat)

    if include and not any(hit(p) for p in include):
        return False
    return not any(hit(p) for p in exclude)


def discover(
    paths: Iterable[Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    *,
    errors: list[tuple[str, OSError]] | None = None,
    strict_files: bool = False,
) -> tuple[list[Path], list[Path]]:
    """(files to index, explicitly named files that are not supported). Symlinked folders are not followed,
    so a link loop cannot trap the walk; hidden and temporary files are skipped. Folders that cannot be listed
    are appended to ``errors``. With ``strict_files`` a named file passes the same filters as a found one
    (type, temporary name, patterns) and is left out silently when it does not: the watcher names files."""
    found: dict[str, Path] = {}
    unsupported: list[Path] = []

    def onerror(e: OSError) -> None:
        if errors is not None and not isinstance(e, (FileNotFoundError, NotADirectoryError)):
            errors.append((e.filename or "", e))

    for root in paths:
        root = Path(os.path.abspath(root))
        if os.path.lexists(root) and not os.path.isdir(root):  # a file, also a pipe, device or broken link
            if strict_files:
                if is_supported(root) and not is_ignored_name(root.name) and matches_patterns(root, include, exclude):
                    found.setdefault(str(root), root)
            else:
                (found.setdefault(str(root), root) if is_supported(root) else unsupported.append(root))
            continue
        if os.path.islink(root) and strict_files:
            continue  # a link to a folder inside a watched folder: not followed, as in a full walk
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=onerror):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if is_ignored_name(name):
                    continue
                p = Path(dirpath) / name
                if is_supported(p) and matches_patterns(p, include, exclude):
                    found.setdefault(str(p), p)
    return list(found.values()), unsupported


class NotRegularFile(OSError):
    """The path is a pipe, device or socket: reading it could block or never end, so it is never read."""


_NOTHING_TO_INDEX = Failure(Reason.NO_TEXT, "no text to index")
SPECIAL_FILE = Failure(Reason.UNSUPPORTED, "not a regular file (a pipe, device or socket); such files are never read")


def open_regular(path: Path) -> int:
    """A read-only descriptor of ``path`` that is certainly a regular file. ``O_NONBLOCK`` keeps the open
    itself from waiting for a writer when a FIFO was swapped in after the caller's stat."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def sha256_file(path: Path, chunk: int = 1 << 20, *, limit: int | None = None) -> str:
    """SHA-256 of a regular file's content (``NotRegularFile`` for anything else); at most ``limit`` bytes are
    read, so a file that grows while it is read cannot keep this busy."""
    h = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as f:
        left = limit
        while block := f.read(chunk if left is None else min(chunk, left + 1)):
            h.update(block)
            if left is not None:
                left -= len(block)
                if left < 0:
                    break
    return h.hexdigest()


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    text = str(exc)
    # LanceDB reports I/O errors as RuntimeError text carrying the OS message and code.
    return any(s in text for s in ("No space left on device", "os error 28", "Disk quota exceeded",
                                   "not enough space on the disk", "os error 112"))


def _is_store_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, OSError) or is_disk_full(exc) or "lance error" in text.lower() or "LanceError" in text


def _write_error(index_dir: Path, exc: BaseException) -> IndexWriteError:
    from desktop_search.core.errors import is_damage

    if is_damage(exc) and not is_disk_full(exc):
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return IndexWriteError(f"the index at {index_dir} is damaged ({first}); run `desktop-search doctor --repair` "
                               "(your documents are not touched), then index again")
    if is_disk_full(exc):
        return IndexWriteError(
            f"cannot write to the index at {index_dir}: the disk is full. Free some space and run again; "
            "everything indexed so far is kept and searchable"
        )
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return IndexWriteError(f"cannot write to the index at {index_dir}: {detail[:300]}")


def _os_failure(path: Path, e: OSError) -> Failure:
    """Why a file could not even be opened or hashed."""
    if isinstance(e, NotRegularFile):
        return SPECIAL_FILE
    if isinstance(e, PermissionError):
        return Failure(Reason.PERMISSION_DENIED, f"cannot read file: {e.strerror or e}")
    if e.errno == errno.ELOOP:
        return Failure(Reason.UNSUPPORTED, "symbolic link loop: the link leads back to itself")
    if isinstance(e, FileNotFoundError):
        if os.path.islink(path):
            return Failure(Reason.UNSUPPORTED, "broken symbolic link: its target does not exist")
        return Failure(Reason.CORRUPT, "file disappeared before it could be read")
    return Failure(Reason.CORRUPT, f"cannot read file: {e.strerror or e}")


@dataclass
class _Prepared:
    path: Path
    size: int
    mtime_ns: int
    sha256: str
    extraction: Extraction | None
    error: Failure | None = None
    members: list[tuple[str, list[Chunk]]] = field(default_factory=list)  # (name, chunks) of each read member
    member_failures: list[tuple[str, str, str]] = field(default_factory=list)  # (name, reason, detail)


class Indexer:
    """Indexes folders into a Store. ``encoder`` may be None: then only keyword (BM25) search is built.

    ``extractor`` reads the kinds the registry marks isolated (``extract(path, options) -> Extraction``); by
    default the shared pool of isolated worker processes. Text files are read in this process."""

    def __init__(self, store: Store, settings: Settings, encoder: Any = None, *, extractor: Any = None) -> None:
        self.store = store
        self.settings = settings
        self._ocr_manifest = str(ocr_models.default_manifest_path())  # read once: handed to every extraction
        self.encoder = encoder
        self.counter: TokenSpans = token_spans_for(settings.model_dir)
        if extractor is None:
            from desktop_search.core.isolate import default_memory_limit, shared_pool

            extractor = shared_pool(settings.extract_workers, default_memory_limit(settings.max_file_bytes))
        self.extractor = extractor
        self._note: Callable[[Path, str], None] | None = None  # the running pass's progress notes
        self._known_keys: set[str] = set()  # paths with a files row, so new ones get an intent row first
        if encoder is not None:
            current = store.model_fingerprint == encoder.fingerprint and store.dim == encoder.dim
            if not current or store.vectors is None:
                with writer_lock(store.index_dir):  # binding writes (and may drop vectors): writers only
                    store.bind_model(encoder.fingerprint, encoder.dim, settings.colbert_storage)

    # -- public -----------------------------------------------------------------------------------------
    def index(
        self,
        paths: Sequence[Path],
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        *,
        pause: threading.Event | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> IndexReport:
        """Bring the index in line with ``paths``. ``pause`` (set = paused) holds the run between files;
        ``cancel`` ends it after the current group is committed. Raises :class:`IndexBusy` if another process
        writes this index, :class:`IndexWriteError` if the index cannot be written."""
        return self._locked(paths, progress, cancel, pause, include, exclude, watched=False)

    def update_paths(
        self,
        paths: Sequence[Path],
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        *,
        pause: threading.Event | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> IndexReport:
        """Reconcile only ``paths`` - files or folders, existing or gone - with the index: what a watcher calls
        with a batch of changes. A gone path loses its records (a folder: everything under it); a named file that
        is not a document the index takes (unsupported type, temporary name, excluded) is left out silently
        rather than recorded as a failure. Chunks of moved files are kept when both ends are in ``paths``."""
        return self._locked(paths, progress, cancel, pause, include, exclude, watched=True)

    def _locked(self, paths: Sequence[Path], progress: Callable[[Progress], None] | None,
                cancel: threading.Event | None, pause: threading.Event | None, include: Sequence[str],
                exclude: Sequence[str], *, watched: bool) -> IndexReport:
        with writer_lock(self.store.index_dir):
            try:
                # Lock first, then read: the view this Store opened with may predate another writer's whole run,
                # and reconciling from it would add every one of that run's files a second time.
                self.store.refresh()
                return self._reconcile(paths, progress, cancel, pause, include, exclude, watched=watched)
            except (IndexBusy, IndexWriteError):
                raise
            except Exception as e:
                if _is_store_error(e):
                    raise _write_error(self.store.index_dir, e) from e
                raise

    def _known_under(self, roots: list[str], watched: bool) -> dict[str, FileRecord]:
        if not watched:
            return {p: r for p, r in self.store.file_records().items() if under_any(p, roots)}
        # A watcher batch names a few paths: ask for their rows instead of reading the whole table.
        return self.store.records_under(roots)

    def _reconcile(self, paths: Sequence[Path], progress: Callable[[Progress], None] | None,
                   cancel: threading.Event | None, pause: threading.Event | None, include: Sequence[str],
                   exclude: Sequence[str], *, watched: bool) -> IndexReport:
        t0 = time.monotonic()
        self._pause = pause
        self._phase_before_pause = "indexing"
        self.store.upgrade_terms()  # an index from before keyword analysis gets its terms (vectors are kept)
        report = IndexReport(semantic=self.encoder is not None)
        prog = Progress("scanning")
        cancel = cancel or threading.Event()

        def tick(**kw: Any) -> None:
            if kw.get("phase") == "paused" and prog.phase != "paused":
                self._phase_before_pause = prog.phase
            for k, v in kw.items():
                setattr(prog, k, v)
            prog.elapsed_s = time.monotonic() - t0
            if progress is not None:
                progress(prog)

        tick()
        if not watched:
            # A folder that is not there (an unplugged drive, a share not mounted) is offline, not empty: its
            # documents stay in the index (and searchable) until it is back. A watcher batch naming a missing path
            # means it was deleted; the watcher itself keeps vanished watched folders out of its batches.
            report.offline = [str(p) for p in paths if not os.path.lexists(p)]
            paths = [p for p in paths if str(p) not in report.offline]
        self._note = lambda path, message: tick(note=f"{path.name}: {message}")
        dir_errors: list[tuple[str, OSError]] = []
        files, unsupported = discover(paths, include, exclude, errors=dir_errors, strict_files=watched)
        # The index folder may sit inside a watched folder: its own files are never documents.
        if isinstance(self.store.index_dir, Path):  # (an index on object storage has no folder here)
            own = os.path.abspath(self.store.index_dir)
            files = [p for p in files if not is_under(str(p), own)]
        roots = [path_key(os.path.abspath(p)) for p in paths]
        known = self._known_under(roots, watched)
        self._known_keys = set(known)
        on_disk = {path_key(str(p)) for p in files} | {path_key(d) for d, _e in dir_errors}
        gone = [p for p in known if p not in on_disk]

        todo: list[tuple[Path, os.stat_result | None]] = []
        touch: list[FileRecord] = []
        # Files that fail on what one stat says (pipes, devices, sockets, empty files): recorded together in one
        # write, without being opened - 50,000 empty files cost seconds, and a FIFO or a link to /dev/zero can
        # neither block the run nor be read forever.
        at_once: list[tuple[Path, os.stat_result, Failure]] = []
        for p in files:
            try:
                st = p.stat()
            except OSError:
                todo.append((p, None))  # extraction will record the reason
                continue
            rec = known.get(path_key(str(p)))
            instant = None
            if not stat.S_ISREG(st.st_mode):
                instant = SPECIAL_FILE
            elif st.st_size == 0:
                instant = Failure(Reason.NO_TEXT, "empty file")
            if instant is not None:
                if not (rec is not None and rec.status == "failed" and rec.reason == instant.reason.value
                        and rec.size == st.st_size and rec.mtime_ns == st.st_mtime_ns):
                    at_once.append((p, st, instant))
                else:
                    report.unchanged += 1
                continue
            # A failed file is tried again, unchanged, when the readers have learnt more since it failed, and a
            # protected one while the user has given passwords (one may open it now).
            retry = rec is not None and rec.status == "failed" and (
                rec.indexed_at < READERS_IMPROVED_AT
                or (rec.reason == Reason.ENCRYPTED.value and bool(self.settings.document_passwords)))
            if rec is not None and rec.status in ("indexed", "failed") and rec.size == st.st_size and not retry:
                if rec.mtime_ns == st.st_mtime_ns:
                    report.unchanged += 1
                    continue
                # Touched but maybe not changed (copied back, `touch`, sync tools): compare content.
                try:
                    if sha256_file(p) == rec.sha256:
                        touch.append(FileRecord(**{**rec.as_row(), "mtime_ns": st.st_mtime_ns}))
                        report.unchanged += 1
                        continue
                except OSError:
                    pass
            todo.append((p, st))
        moved, todo = self._find_moves(todo, [known[p] for p in gone])
        # Recently modified or opened files first: semantic search is useful on what the user works on within
        # minutes of a first run over a large folder, long before the rest is encoded.
        todo.sort(key=lambda item: _recency(item[1]), reverse=True)
        if moved:
            self._apply_moves(moved, report)
        if gone:
            self.store.delete_files(gone)
            report.removed = len(gone)
        self.store.upsert_files(touch)
        report.files_seen = len(files)
        failures: list[tuple[Path, Failure, os.stat_result | None]] = [(p, why, st) for p, st, why in at_once]
        for p in unsupported:
            failures.append((p, Failure(Reason.UNSUPPORTED,
                                        f"not a supported document type ({p.suffix or 'no extension'})"), None))
        for d, e in dir_errors:
            reason = Reason.PERMISSION_DENIED if isinstance(e, PermissionError) else Reason.UNSUPPORTED
            failures.append((Path(d), Failure(reason, f"cannot open this folder: {e.strerror or e}"), None))
        self._record_failures(report, failures)

        tick(phase="indexing", files_total=len(todo), files_skipped=report.unchanged)
        self._run(todo, report, prog, tick, cancel)
        if not cancel.is_set() and self.encoder is not None and not watched:
            # A watcher batch encodes its own chunks in _commit; catching up on everything is a full run's job.
            self._encode_missing(report, prog, tick, cancel)
        report.cancelled = cancel.is_set()
        tick(phase="optimizing")
        if watched:
            # A watcher batch is a handful of files: compacting and GC-ing the whole index after each one would
            # cost more than the change itself, so batches compact once enough versions piled up.
            self.store.maybe_optimize()
        else:
            self.store.optimize()
        report.elapsed_s = time.monotonic() - t0
        tick(phase="done")
        return report

    # -- moves ------------------------------------------------------------------------------------------
    def _find_moves(self, todo: _Todo, gone: list[FileRecord]) -> tuple[_Moved, _Todo]:
        """Split ``todo`` into files that are a gone file under a new name (same size, kind and SHA-256) and the
        rest. Only files of a size some gone file had are hashed."""
        by_size: dict[int, list[FileRecord]] = {}
        for rec in gone:
            if rec.status == "indexed" and rec.n_chunks > 0 and rec.sha256:
                by_size.setdefault(rec.size, []).append(rec)
        if not by_size:
            return [], todo
        moved: _Moved = []
        rest: _Todo = []
        for p, st in todo:
            candidates = by_size.get(st.st_size, []) if st is not None else []
            match = None
            if candidates:
                try:
                    digest = sha256_file(p)
                except OSError:
                    digest = ""
                match = next((r for r in candidates if r.sha256 == digest and r.kind == kind_of(p)), None)
            if match is not None and st is not None:  # (a match needs a size, so a stat)
                candidates.remove(match)
                moved.append((match, p, st))
            else:
                rest.append((p, st))
        return moved, rest

    def _apply_moves(self, moved: _Moved, report: IndexReport) -> None:
        """Copy the chunks and files row of each source to its new path (intent row, chunks, files row; the
        caller then deletes the sources), so a moved file is neither extracted nor encoded again."""
        now = time.time()
        rows: list[ChunkRow] = []
        records: list[FileRecord] = []
        for rec, p, st in moved:
            dest = path_key(str(p))
            old = self.store.owned_chunks(rec.path)
            if len(old) != rec.n_chunks:  # damaged record: let the normal path redo it
                continue
            for r in old:
                key = dest + r.path[len(rec.path):]  # a member's key follows its file's
                rows.append(replace(r, path=key, id=chunk_id(key, r.ordinal)))
            records.append(FileRecord(**{**rec.as_row(), "path": dest, "size": st.st_size,
                                         "mtime_ns": st.st_mtime_ns, "indexed_at": now}))
        if not records:
            return
        self.store.upsert_files([FileRecord(**{**r.as_row(), "status": "pending"}) for r in records])
        self.store.replace_chunks([r.path for r in records], rows)
        self.store.upsert_files(records)
        report.moved += len(records)
        report.indexed += len(records)
        report.chunks_written += len(rows)

    # -- pipeline ---------------------------------------------------------------------------------------
    def _prepare(self, path: Path, st: os.stat_result | None) -> _Prepared:
        try:
            if st is None:
                st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
            if kind_of(path) == "text" and st.st_size > self.settings.max_text_bytes:
                limit = format_bytes(self.settings.max_text_bytes)
                detail = f"text file is {format_bytes(st.st_size)}, larger than the limit of {limit} for text files"
                return _Prepared(path, st.st_size, st.st_mtime_ns, "", None, Failure(Reason.TOO_LARGE, detail))
            too_big = st.st_size > self.settings.max_file_bytes
            digest = "" if too_big else sha256_file(path, limit=self.settings.max_file_bytes)
        except OSError as e:
            return _Prepared(path, 0, 0, "", None, _os_failure(path, e))
        options = ExtractOptions(
            max_bytes=self.settings.max_file_bytes, time_limit_s=self.settings.extract_time_limit_s,
            ocr=self.settings.ocr, ocr_cache_dir=str(self.settings.ocr_cache_dir),
            ocr_models_dir=str(self.settings.ocr_models_dir), ocr_primary=self.settings.ocr_primary,
            ocr_manifest=self._ocr_manifest,
            passwords=self.settings.document_passwords,
            # Each extraction worker may be recognising a page at once: share the cores instead of each taking all.
            ocr_threads=max(1, (os.cpu_count() or 1) // max(1, self.settings.extract_workers)),
        )
        if runs_isolated(path):
            note = self._note
            ex = self.extractor.extract(path, options, progress=None if note is None else lambda m: note(path, m))
        else:
            ex = extract(path, options)
        return _Prepared(path, st.st_size, st.st_mtime_ns, digest, ex)

    def _hold_while_paused(self, cancel: threading.Event, tick: _Tick) -> bool:
        """Block while the user has paused indexing (reporting "paused" at once), then resume the phase that
        was under way. Checked between files and between encoder batches, so a pause takes effect within one
        batch. Returns whether the run was cancelled."""
        if self._pause is not None and self._pause.is_set() and not cancel.is_set():
            tick(phase="paused")
            resume = self._phase_before_pause
            while self._pause.is_set() and not cancel.is_set():
                cancel.wait(0.1)
            tick(phase=resume)
        return cancel.is_set()

    def _run(self, todo: _Todo, report: IndexReport, prog: Progress, tick: _Tick, cancel: threading.Event) -> None:
        if not todo:
            return
        workers = max(1, self.settings.extract_workers)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="extract") as pool:
            queue: deque[Future[_Prepared]] = deque()
            it = iter(todo)

            def refill() -> None:
                # Bounded look-ahead: enough to keep the encoder fed, not every document in memory at once.
                while len(queue) < workers * 2 + GROUP_FILES:
                    nxt = next(it, None)
                    if nxt is None:
                        return
                    queue.append(pool.submit(self._prepare, *nxt))

            refill()
            try:
                self._drain(queue, refill, report, prog, tick, cancel)
            finally:
                for fut in queue:  # also on a write error: do not read files nobody will store
                    fut.cancel()

    def _drain(self, queue: deque[Future[_Prepared]], refill: Callable[[], None], report: IndexReport, prog: Progress,
               tick: _Tick, cancel: threading.Event) -> None:
        group: _Group = []
        group_tokens = 0
        while queue and not cancel.is_set():
            if self._hold_while_paused(cancel, tick):
                break
            tick(phase="indexing")
            prepared = self._next_prepared(queue, cancel)
            if prepared is None:
                break
            refill()
            tick(current=path_key(str(prepared.path)), note="")
            chunks: list[Chunk] = []
            if prepared.extraction is not None and prepared.extraction.ok:
                try:
                    chunks = chunk_pages(
                        prepared.extraction.pages,
                        self.counter,
                        max_tokens=self.settings.chunk_tokens,
                        overlap_tokens=self.settings.chunk_overlap_tokens,
                        max_chunks=self.settings.max_chunks_per_file,
                    )
                except TooManyChunks as e:
                    prepared.error = Failure(Reason.TOO_LARGE, f"this document would make {e}; the limit is "
                                                               f"{e.limit:,} passages per file")
                except Exception as e:  # a chunker bug must cost one file, not the run
                    prepared.error = Failure(Reason.CORRUPT, f"internal error while chunking: {type(e).__name__}: {e}")
                if prepared.error is None:
                    self._chunk_members(prepared)
            group.append((prepared, chunks))
            group_tokens += sum(c.n_tokens for c in chunks) + sum(c.n_tokens for _, m in prepared.members for c in m)
            if len(group) >= GROUP_FILES or group_tokens >= GROUP_TOKENS:
                self._commit(group, report, prog, tick, cancel)
                group, group_tokens = [], 0
        if group:
            self._commit(group, report, prog, tick, cancel)

    def _chunk_members(self, prepared: _Prepared) -> None:
        """Chunk each document inside the file (attachments) as a document of its own; one that cannot be read
        or chunked is a failure of its own."""
        assert prepared.extraction is not None
        for member in prepared.extraction.members:
            ex = member.extraction
            if not ex.ok:
                prepared.member_failures.append((member.name, (ex.reason or Reason.CORRUPT).value, ex.detail))
                continue
            try:
                chunks = chunk_pages(ex.pages, self.counter, max_tokens=self.settings.chunk_tokens,
                                     overlap_tokens=self.settings.chunk_overlap_tokens,
                                     max_chunks=self.settings.max_chunks_per_file)
            except TooManyChunks as e:
                prepared.member_failures.append((member.name, Reason.TOO_LARGE.value, f"this attachment would make "
                                                 f"{e}; the limit is {e.limit:,} passages per file"))
                continue
            except Exception as e:  # a chunker bug must cost one attachment
                prepared.member_failures.append((member.name, Reason.CORRUPT.value, f"internal error while "
                                                 f"chunking: {type(e).__name__}: {e}"))
                continue
            if chunks:
                prepared.members.append((member.name, chunks))

    @staticmethod
    def _next_prepared(queue: deque[Future[_Prepared]], cancel: threading.Event) -> _Prepared | None:
        """The next extracted file, waiting in short steps so that a cancel (Ctrl+C, SIGTERM, the window's
        Stop) is seen while a slow file is being read; None once cancelled."""
        fut = queue[0]
        while True:
            try:
                prepared = fut.result(timeout=0.2)
                break
            except FutureTimeout:
                if cancel.is_set():
                    return None
        queue.popleft()
        return prepared

    def _commit(self, group: _Group, report: IndexReport, prog: Progress, tick: _Tick, cancel: threading.Event) -> None:
        now = time.time()
        chunk_rows: list[ChunkRow] = []
        records: list[FileRecord] = []
        intents: list[FileRecord] = []
        for prepared, chunks in group:
            path = path_key(str(prepared.path))
            ex = prepared.extraction
            if ex is not None:
                report.ocr_pages += ex.ocr_pages
                report.ocr_cached += ex.ocr_cached
            if prepared.error or ex is None or not ex.ok or not chunks:
                why = prepared.error or (ex.failure if ex is not None else None) or _NOTHING_TO_INDEX
                records.append(self._failed_record(prepared, why, now))
                if path in self._known_keys:  # its old chunks are deleted below: pending until the row says failed
                    intents.append(FileRecord(**{**records[-1].as_row(), "status": "pending", "reason": None}))
                report.failed += 1
                report.failures.append((path, why.reason.value, why.detail))
                prog.files_failed += 1
                continue
            owned = [(path, chunks)] + [(member_key(path, name), m) for name, m in prepared.members]
            chunk_rows.extend(
                ChunkRow(id=chunk_id(key, c.ordinal), path=key, ordinal=c.ordinal, page=c.page,
                         char_start=c.char_start, char_end=c.char_end, text=c.text, text_hash=text_hash(c.text),
                         n_tokens=c.n_tokens)
                for key, these in owned for c in these
            )
            for name, reason, detail in prepared.member_failures:
                report.failures.append((member_key(path, name), reason, detail))
            record = FileRecord(
                path=path,
                size=prepared.size,
                mtime_ns=prepared.mtime_ns,
                sha256=prepared.sha256,
                kind=ex.kind,
                status="indexed",
                reason=None,
                detail=ex.detail,
                warnings="\n".join(ex.warnings),
                page_count=ex.page_count,
                n_chunks=sum(len(these) for _, these in owned),
                indexed_at=now,
            )
            records.append(record)
            # Every path whose chunks are about to be rewritten gets an intent row first, a modified file as much as
            # a new one: killed between the deletion of its old chunks and the files row, it must read "pending"
            # (redone by the next run), never "indexed" without chunks.
            intents.append(FileRecord(**{**record.as_row(), "status": "pending", "detail": ""}))
            report.indexed += 1
        paths = [path_key(str(p.path)) for p, _ in group]
        # Order is the crash-safety contract: a "pending" row for paths new to the index (so no chunk is ever
        # without a files row, even if the file vanishes before the next run), chunks, vectors, then the files
        # rows that say "done".
        fresh = [r for r in intents if r.path not in self._known_keys]
        rewritten = [r for r in intents if r.path in self._known_keys]
        if fresh:
            self.store.add_files(fresh)  # an append: cheaper than an upsert, and these paths have no row yet
            self._known_keys.update(r.path for r in fresh)
        if rewritten:
            self.store.upsert_files(rewritten)
        self.store.replace_chunks(paths, chunk_rows)
        report.chunks_written += len(chunk_rows)
        if self.encoder is not None and chunk_rows and not cancel.is_set():
            try:
                self._encode_rows(chunk_rows, report, prog, tick, cancel)
            except InterruptedError:
                pass  # cancelled: the chunks are keyword-searchable; the next run encodes them
            except Exception as e:  # e.g. out of memory: keep the keyword index, say why semantic is behind
                if _is_store_error(e):
                    raise  # the index cannot be written: stop, not "encoding failed"
                report.errors.append(f"encoding failed ({type(e).__name__}: {e}); will retry on the next run")
        self.store.upsert_files(records)
        if chunk_rows:
            self.store.keep_searchable()  # committed means searchable: no waiting for the run's final optimize
        tick(files_done=prog.files_done + len(group), chunks_done=prog.chunks_done + len(chunk_rows))

    def _failed_record(self, prepared: _Prepared, why: Failure, now: float) -> FileRecord:
        """The files row of a failed file: the index stores the reason as its code (a string column)."""
        ex = prepared.extraction
        return FileRecord(
            path=path_key(str(prepared.path)),
            size=prepared.size,
            mtime_ns=prepared.mtime_ns,
            sha256=prepared.sha256,
            kind=ex.kind if ex else "",
            status="failed",
            reason=why.reason.value,
            detail=why.detail,
            warnings="\n".join(ex.warnings) if ex else "",
            page_count=ex.page_count if ex else 0,
            n_chunks=0,
            indexed_at=now,
        )

    def _record_failures(self, report: IndexReport,
                         failures: list[tuple[Path, Failure, os.stat_result | None]]) -> None:
        """Record ``(path, failure, stat or None)`` failures found without reading the files: their old
        chunks go first (a file that became empty), then one write of all their rows."""
        now = time.time()
        records: list[FileRecord] = []
        for path, why, st in failures:
            if st is None:
                try:
                    st = path.stat()
                except OSError:
                    st = None
            size, mtime = (st.st_size, st.st_mtime_ns) if st is not None else (0, 0)
            records.append(self._failed_record(_Prepared(path, size, mtime, "", None), why, now))
            report.failed += 1
            report.failures.append((path_key(str(path)), why.reason.value, why.detail))
        stale = [r.path for r in records if r.path in self._known_keys]
        if stale:
            self.store.replace_chunks(stale, [])
        for start in range(0, len(records), 5000):
            self.store.upsert_files(records[start : start + 5000])

    # -- encoding ---------------------------------------------------------------------------------------
    def _encode_rows(self, rows: Sequence[ChunkRow], report: IndexReport, prog: Progress, tick: _Tick,
                     cancel: threading.Event, counted: bool = False) -> None:
        """Encode and store the rows' texts that have no vectors yet; ``counted``: already in the total."""
        by_hash = {r.text_hash: r.text for r in rows}
        needed = [h for h in by_hash if h not in self.store.present_hashes(by_hash)]
        tick(chunks_to_encode=prog.chunks_to_encode + (len(needed) - len(by_hash) if counted else len(needed)))
        if not needed:
            return
        texts = [by_hash[h] for h in needed]
        t = time.monotonic()
        tick(phase="encoding")
        encoded = self.encoder.encode(
            texts,
            batch_tokens=self.settings.batch_tokens,
            progress=lambda n: tick(phase="encoding", chunks_encoded=prog.chunks_encoded + n),
            cancelled=lambda: self._hold_while_paused(cancel, tick),
        )
        report.encode_s += time.monotonic() - t
        vec_rows = []
        for i, h in enumerate(needed):
            blob, scale = quantize_colbert(encoded.colbert[i], self.settings.colbert_storage)
            sp = encoded.sparse[i]
            vec_rows.append(
                {
                    "text_hash": h,
                    "dense": np.asarray(encoded.dense[i], np.float32),
                    "sparse_ids": list(sp.keys()),
                    "sparse_weights": [float(w) for w in sp.values()],
                    "colbert": blob,
                    "colbert_scale": scale,
                    "n_vectors": int(encoded.colbert[i].shape[0]),
                }
            )
        self.store.add_vectors(vec_rows)
        report.chunks_encoded += len(vec_rows)
        tick(phase="indexing")

    def _encode_missing(self, report: IndexReport, prog: Progress, tick: _Tick, cancel: threading.Event) -> None:
        """Encode chunks that have no vectors yet: indexed before a model was installed, or after a model change."""
        missing = self.store.all_chunk_hashes() - self.store.vector_hashes()
        if not missing:
            return
        # Most recently modified files' chunks first, as in the main pass.
        mtimes = {path: rec.mtime_ns for path, rec in self.store.file_records().items()}
        newest: dict[str, int] = {}
        for ref in self.store.chunk_refs(sorted(missing)):
            newest[ref["text_hash"]] = max(newest.get(ref["text_hash"], 0), mtimes.get(ref["path"], 0))
        order = sorted(missing, key=lambda h: (-newest.get(h, 0), h))
        tick(phase="encoding", chunks_to_encode=prog.chunks_to_encode + len(order))
        for start in range(0, len(order), 256):
            if self._hold_while_paused(cancel, tick):
                return
            part = order[start : start + 256]
            rank = {h: i for i, h in enumerate(part)}
            rows = sorted((ChunkRow.from_row(r) for r in self.store.chunks_for_hashes(part)),
                          key=lambda r: rank.get(r.text_hash, len(rank)))
            try:
                self._encode_rows(rows, report, prog, tick, cancel, counted=True)
            except InterruptedError:
                return
            except Exception as e:
                report.errors.append(f"encoding failed ({type(e).__name__}: {e}); will retry on the next run")
                return


def _recency(st: os.stat_result | None) -> int:
    """When a file was last modified or opened (access times are coarse under relatime, but a file opened
    today still shows it); unreadable files last."""
    if st is None:
        return -1
    return max(st.st_mtime_ns, getattr(st, "st_atime_ns", 0))


def folder_counts(records: dict[str, FileRecord], folders: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per watched folder: how many of its files are indexed, failed, or waiting (pending)."""
    out: dict[str, dict[str, int]] = {}
    for folder in folders:
        counts = {"indexed": 0, "failed": 0, "pending": 0}
        for path, rec in records.items():
            if is_under(path, folder):
                counts[rec.status if rec.status in counts else "pending"] += 1
        out[folder] = counts
    return out
