"""The window's view of the core: opens the index, loads the model lazily, runs searches and indexing in the
role pools and re-emits what the core reports as Qt signals on the GUI thread.

Start-up order is what makes the window appear at once: the window is shown first, then the index is opened
(keyword search works from then on) while the model loads beside it in its own pool, from the moment the index
libraries are imported (imports hold the GIL: loading both at once would delay the first keyword results). When
the model is ready, searches become hybrid and an incremental pass encodes whatever was keyword-indexed meanwhile.
A model that is ready before the index waits for it: the window's first reconciliation then encodes as it goes.

Threads: workers return values and the GUI thread assigns them (Picard's ``run_task(func, next_func)``), so
``store``, ``searcher`` and ``encoder`` only ever change on the GUI thread. A ``Searcher`` is never changed once
built: a new encoder or new weights make a new one, and a search already running keeps the one it started with.
Stats refreshes and cache warm-up run in the one-thread ``maintenance`` pool, never in front of a search.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_search import config
from desktop_search.core.paths import is_under, under_any
from desktop_search.environment import settle_heap
from desktop_search.gui.prefs import Key, Prefs, WatchedFolder
from desktop_search.gui.workers import Pools, Task

if TYPE_CHECKING:
    from desktop_search.config import SearchMode
    from desktop_search.core.search import Searcher
    from desktop_search.core.store import Store
    from desktop_search.core.watcher import FolderWatcher, OfflineFolder


def bad_files_message(bad, src_dir: str) -> str:
    """First line: which file failed and why, for the model page; the following lines: every detail."""
    first = bad[0]
    why = {"missing": "is missing"}.get(first.actual, "does not match the manifest"
                                        if len(first.actual) == 64 else f"cannot be used ({first.actual})")
    more = f" (and {len(bad) - 1} more file{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
    head = f"{first.path} in {src_dir} {why}{more}"
    return "\n".join([head, *(b.describe() for b in bad)])


MODEL_WATCH_MS = 3000  # how often a window without a model looks for one installed meanwhile


class Services(QObject):
    store_ready = Signal()
    store_failed = Signal(str)
    semantic_ready = Signal(str)  # device
    semantic_unavailable = Signal(str)  # why
    search_stage = Signal(int, object)  # request id, SearchResult
    search_failed = Signal(int, str)
    index_started = Signal()
    index_progress = Signal(object)  # core Progress
    index_finished = Signal(object)  # core IndexReport
    index_failed = Signal(str)
    stats_ready = Signal(object)  # dict
    watch_status = Signal(str)  # "watching 2 folders (native)" / why a folder is polled
    offline_changed = Signal(object)  # tuple[OfflineFolder, ...]: watched folders not there now
    _batch_arrived = Signal(object)  # from the watcher thread; queued to the GUI thread
    model_progress = Signal(object)  # core.models.TransferProgress
    model_done = Signal(bool, str)  # verified?, message (names bad files on failure)
    encoder_progress = Signal(object)  # core.quantize.BuildProgress: the one-time int8 build
    ocr_models_progress = Signal(object)  # core.models.TransferProgress of an OCR model pack
    ocr_models_done = Signal(bool, str)  # all installed?, message

    def __init__(self, settings: config.Settings, prefs: Prefs, pools: Pools | None = None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.prefs = prefs
        self.pools = pools or Pools()
        self.store: Store | None = None
        self.searcher: Searcher | None = None
        self.encoder: Any = None
        self.device = "none"
        self._search_seq = 0
        self._search_task: Task | None = None
        self._index_task: Task | None = None
        self._index_queue: list[tuple[str, list[str], list[str], list[str]]] = []
        self.current_job_paths: list[str] = []
        self.watcher: FolderWatcher | None = None
        self.offline: tuple[OfflineFolder, ...] = ()
        # How soon an offline folder (an unplugged drive) is looked for again, doubling up to the maximum.
        self.offline_retry_s, self.offline_retry_max_s = 2.0, 60.0
        self._batch_arrived.connect(self._on_batch)
        # Emitted on the watcher's thread, so this runs queued on ours, after the watcher changed its state.
        self.watch_status.connect(self._refresh_offline)
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.setInterval(300)
        self._stats_timer.timeout.connect(self._refresh_stats_now)
        self.pause_event = threading.Event()
        self._closing = False
        self._model_task: Task | None = None
        self._ocr_task: Task | None = None
        self.ocr_manifest_path: Path | None = None  # None: the pinned OCR model packs shipped in resources/
        # None: the pinned BGE-M3 manifest shipped in resources/; Settings → Model manifest picks another.
        self.manifest_path = Path(prefs.get(Key.MANIFEST)) if prefs.get(Key.MANIFEST) else None
        # A model installed meanwhile by the CLI (`model download/import`) is noticed without a restart.
        self._model_watch = QTimer(self)
        self._model_watch.setInterval(MODEL_WATCH_MS)
        self._model_watch.timeout.connect(self._check_model_appeared)

    @property
    def shared(self) -> bool:
        """Connected to a shared index (search only: no indexing, no folder watching from this window)."""
        return bool(self.settings.index_uri)

    # -- start-up ---------------------------------------------------------------------------------------
    def start(self, *, load_model: bool = True) -> None:
        settings, shared = self.settings, self.shared

        def open_store(progress, cancel) -> Store:  # in a worker: opening reads the tables
            from desktop_search.core.lancedb_import import import_lancedb
            from desktop_search.core.store import Store

            import_lancedb()  # (else imported when the tables open)
            progress("imported")  # the index libraries: the model may load now (see below)
            # A shared index is searched, never written, from the window: the team's indexing machine writes it.
            return Store(settings.index, create=not shared, read_consistency_s=settings.read_consistency_s,
                         mirror_dir=settings.mirror_dir)

        task = Task(open_store, with_progress=True)
        task.signals.result.connect(self._on_store)
        task.signals.error.connect(self._on_store_failed)
        if load_model:
            # Beside the index opening, not after it; but once the index libraries are imported: imports hold the
            # GIL, and the model's would only stretch those of the index (and the first keyword results).
            task.signals.progress.connect(lambda _step: self.load_model())
        self.pools.start(self.pools.search, task)

    def _make_searcher(self) -> None:
        """A new Searcher for the current store, encoder and weights (GUI thread)."""
        from desktop_search.core.search import Searcher

        if self.store is None:
            return
        self.searcher = Searcher(
            self.store,
            self.encoder,
            weights=self.settings.weights,
            candidates_per_mode=self.settings.candidates_per_mode,
            rerank_k=self.settings.rerank_k,
            fusion=self.settings.fusion,
            rrf_k=self.settings.rrf_k,
            keyword_weight=self.settings.keyword_weight,
        )

    def _on_store(self, store: Store) -> None:
        settle_heap()
        self.store = store
        self._make_searcher()
        self.store_ready.emit()
        self.refresh_stats()
        self._warm_caches()  # when the model was ready first

    def _on_store_failed(self, message: str) -> None:
        settle_heap()  # start-up ends here too
        self.store_failed.emit(message)

    def load_model(self) -> None:
        from desktop_search.core.encoder import model_problem

        problem = model_problem(self.settings.model_dir)
        if problem:
            self.semantic_unavailable.emit(problem)
            if not self._closing:
                self._model_watch.start()
            return
        self._model_watch.stop()
        task = Task(self._load_encoder, with_progress=True)
        task.signals.progress.connect(self.encoder_progress)
        task.signals.result.connect(self.use_encoder)
        task.signals.error.connect(self.semantic_unavailable)
        self.pools.start(self.pools.model, task)

    def _load_encoder(self, progress=None, cancel=None):
        from desktop_search.core.encoder import ModelUnavailable, load_failure

        try:
            from desktop_search.core.encoder import Encoder

            return Encoder(self.settings.model_dir, self.settings.device, precision=self.settings.cpu_precision,
                           progress=progress)
        except Exception as e:  # packages that cannot run the model, or a damaged model: keyword search goes on
            raise ModelUnavailable(load_failure(e, self.settings.model_dir)) from None

    def use_encoder(self, encoder: Any) -> None:
        """Search with ``encoder`` from now on (GUI thread: the model task's result, or a test's encoder)."""
        if self._closing:
            return
        settle_heap()
        self.encoder = encoder
        self.device = encoder.device
        self._make_searcher()
        self.semantic_ready.emit(encoder.device)
        self._warm_caches()
        # Catch up: anything keyword-indexed before the model was ready gets its vectors now. (Before the index
        # is open there is nothing to catch up: the window reconciles its folders, with this encoder, once it is.)
        if self.store is not None and self.prefs.folders() and not self.shared:
            self.index_folders(self.prefs.folders())

    def _check_model_appeared(self) -> None:
        """Every few seconds while there is no model: has one been installed (by the CLI) meanwhile?"""
        if self.encoder is not None or self._model_task is not None or self._closing:
            self._model_watch.stop()
            return
        from desktop_search.core.encoder import model_problem

        if model_problem(self.settings.model_dir) is None:
            self._model_watch.stop()
            self.model_done.emit(True, "model installed and verified")
            self.load_model()

    # -- model download / import --------------------------------------------------------------------------
    @property
    def model_busy(self) -> bool:
        return self._model_task is not None

    def _manifest(self):
        from desktop_search.core import models

        return models.Manifest.load(self.manifest_path or models.default_manifest_path())

    def model_download_size(self) -> tuple[int, int] | None:
        """(bytes still to download, bytes of the whole model) for the pinned manifest, counting files and partial
        downloads already in the model folder (cheap: sizes, no hashing); None when the manifest cannot be read."""
        from desktop_search.core import models

        try:
            status = models.model_status(self._manifest(), self.settings.model_dir)
        except (models.ModelError, OSError, ValueError):
            return None
        left = sum(f["size"] - (f["bytes"] if f["present"] else min(f["partial_bytes"], f["size"]))
                   for f in status["files"])
        return left, status["bytes_total"]

    def download_model(self, endpoint: str | None = None, proxy: str | None = None) -> None:
        """Download (resuming any partial files), verify, then load the model and catch up on encoding."""
        from desktop_search.core import models

        manifest, model_dir = self._manifest(), self.settings.model_dir

        def run(progress, cancel):
            models.download_model(manifest, model_dir, endpoint=endpoint or None, proxy=proxy or None,
                                  progress=progress, cancel=cancel)

        self._start_model_job(Task(run, with_progress=True), "model downloaded and verified")

    def import_model(self, src_dir: str) -> None:
        from desktop_search.core import models

        manifest, model_dir = self._manifest(), self.settings.model_dir

        def run(progress, cancel):
            bad = models.import_model(Path(src_dir), manifest, model_dir, progress=progress, cancel=cancel)
            if bad:
                raise models.ModelError(bad_files_message(bad, src_dir), bad)

        self._start_model_job(Task(run, with_progress=True), "model imported and verified")

    def cancel_model_job(self) -> None:
        """Stop a download or import; partial files stay, so the next start resumes where this one stopped."""
        if self._model_task is not None:
            self._model_task.cancel()

    def _start_model_job(self, task: Task, ok_message: str) -> None:
        if self._model_task is not None:
            return
        self._model_task = task
        self._start_download(task, self.model_progress, self._on_model_job, ok_message)

    def _start_download(self, task: Task, progress: Any, done: Any, ok_message: str) -> None:
        """Run a download-and-verify ``task`` in the model pool: its progress to ``progress``, then
        ``done(True, ok_message)`` or ``done(False, error)`` on the GUI thread."""
        task.signals.progress.connect(progress)
        task.signals.result.connect(lambda _r: done(True, ok_message))
        task.signals.error.connect(lambda e: done(False, e))
        self.pools.start(self.pools.model, task)

    def _on_model_job(self, ok: bool, message: str) -> None:
        self._model_task = None
        self.model_done.emit(ok, message)
        if ok and self.encoder is None and not self._closing:
            self.load_model()

    def add_document_password(self, password: str) -> None:
        """Try ``password`` on protected PDFs from now on (indexing and preview), for this session only: it is
        never written to the settings file, the index or a log."""
        if password and password not in self.settings.document_passwords:
            self.settings = self.settings.with_(document_passwords=(*self.settings.document_passwords, password))

    def indexed_passages(self, path: str) -> list[tuple[int | None, str]]:
        """(page, text) of the file's passages as the index holds them (none without an index); for any pool."""
        store = self.store
        return [(row.page, row.text) for row in store.chunks_of(path)] if store is not None else []

    # -- OCR model packs (more scripts) --------------------------------------------------------------------
    def ocr_packs(self) -> tuple[Any, ...]:
        from desktop_search.core import ocr_models

        return ocr_models.load_packs(self.ocr_manifest_path)

    def installed_ocr_packs(self) -> set[str]:
        from desktop_search.core import ocr_models

        return {p.id for p in ocr_models.installed(self.settings.ocr_models_dir, self.ocr_packs())}

    @property
    def ocr_models_busy(self) -> bool:
        return self._ocr_task is not None

    def install_ocr_models(self, ids: list[str], endpoint: str | None = None, proxy: str | None = None) -> None:
        """Download, verify and unpack the chosen packs one after the other (resuming cut downloads); the next
        OCR'd page can use them (pages with unreadable lines are read again)."""
        from desktop_search.core import ocr_models

        if self._ocr_task is not None:
            return
        packs = [p for p in self.ocr_packs() if p.id in ids]
        root = self.settings.ocr_models_dir

        def run(progress, cancel):
            for pack in packs:
                ocr_models.install(pack, root, endpoint=endpoint or None, proxy=proxy or None, progress=progress,
                                   cancel=cancel)

        task = Task(run, with_progress=True)
        self._ocr_task = task
        self._start_download(task, self.ocr_models_progress, self._on_ocr_job,
                             f"{len(packs)} OCR model(s) installed and verified")

    def _on_ocr_job(self, ok: bool, message: str) -> None:
        self._ocr_task = None
        self.ocr_models_done.emit(ok, message)

    def cancel_ocr_models(self) -> None:
        if self._ocr_task is not None:
            self._ocr_task.cancel()

    # -- search -----------------------------------------------------------------------------------------
    def search(self, query: str, flt=None, k: int = 30) -> int:
        """Start a search; stages arrive as ``search_stage(id, result)``. Earlier searches are cancelled."""
        self._search_seq += 1
        seq = self._search_seq
        if self._search_task is not None:
            self._search_task.cancel()
        if self.searcher is None:
            return seq
        searcher = self.searcher
        mode: SearchMode = "hybrid" if self.encoder is not None else "keyword"

        def run(progress, cancel):
            for result in searcher.stages(query, k=k, mode=mode, flt=flt):
                if cancel.is_set():
                    return
                progress(result)

        task = Task(run, with_progress=True)
        task.signals.progress.connect(lambda r, s=seq: self.search_stage.emit(s, r))
        task.signals.error.connect(lambda e, s=seq: self.search_failed.emit(s, e))
        self._search_task = task
        self.pools.start(self.pools.search, task)
        return seq

    def set_weights(self, weights: tuple[float, float, float]) -> None:
        self.settings = self.settings.with_(weights=weights)
        self._make_searcher()

    # -- indexing ---------------------------------------------------------------------------------------
    @property
    def indexing(self) -> bool:
        return self._index_task is not None

    @property
    def index_idle(self) -> bool:
        """No indexing job is running or queued."""
        return self._index_task is None and not self._index_queue

    def index_folders(self, folders: list[WatchedFolder]) -> None:
        for f in folders:
            self.index_paths([f.path], f.include, f.exclude)

    def index_paths(self, paths: list[str], include=(), exclude=(), *, update: bool = False) -> None:
        """Queue a reconciliation of ``paths``: a whole run (``index``) or, for watcher batches, ``update``."""
        if self.shared:
            return  # the team's indexing machine keeps a shared index up to date
        job = ("update" if update else "index", list(paths), list(include), list(exclude))
        if self._index_task is not None:
            if job not in self._index_queue:
                self._index_queue.append(job)
            return
        self._start_index(job)

    def _start_index(self, job) -> None:
        if self.store is None:
            return
        kind, paths, include, exclude = job
        self.current_job_paths = list(paths) if kind == "index" else []
        store, settings, encoder = self.store, self.settings, self.encoder

        def run(progress, cancel):
            # Built in the worker: binding the model may create tables, which must not stall the window.
            from desktop_search.core.indexer import Indexer

            indexer = Indexer(store, settings, encoder)
            run_job = indexer.update_paths if kind == "update" else indexer.index
            return run_job(
                [Path(p) for p in paths], progress=progress, cancel=cancel, pause=self.pause_event,
                include=include, exclude=exclude,
            )

        task = Task(run, with_progress=True)
        task.signals.progress.connect(self.index_progress)
        task.signals.result.connect(self._on_index_done)
        task.signals.error.connect(self._on_index_error)
        self._index_task = task
        self.index_started.emit()
        self.pools.start(self.pools.index, task)

    def _on_index_done(self, report) -> None:
        self._index_task = None
        self.current_job_paths = []
        self.index_finished.emit(report)
        self._warm_caches()
        self._next_index()

    def _warm_caches(self) -> None:
        """Bring the store's query caches up to date in the background (after the model loads and after each
        index job: only new rows are read), so the next search does not pay for it."""
        if self.store is not None and self.encoder is not None and not self._closing:
            self.pools.start(self.pools.maintenance, Task(self.store.warm))

    def _on_index_error(self, message: str) -> None:
        self._index_task = None
        self.current_job_paths = []
        self.index_failed.emit(message)
        self._next_index()

    def _next_index(self) -> None:
        self.refresh_stats()
        if self._index_queue and not self._closing:
            self._start_index(self._index_queue.pop(0))

    # -- watching ---------------------------------------------------------------------------------------
    def watch_folders(self) -> None:
        """(Re)start watching the folders in prefs; changes become ``update`` jobs in the index queue."""
        from desktop_search.core.watcher import FolderWatcher

        self.stop_watching()
        if self.shared:
            self.watch_status.emit("shared index: search only")
            return
        # Folders that are not there now are watched too: the watcher says they are offline and looks for them
        # again (a drive unplugged before the window started), so their documents stay marked, not dropped.
        roots = [f.path for f in self.prefs.folders()]
        if not roots or self._closing:
            self.watch_status.emit("not watching: no folders" if not roots else "")
            return
        watcher = FolderWatcher(
            roots,
            self._batch_arrived.emit,  # called on the watcher's thread; the signal queues it to ours
            ignore_dirs=[self.settings.index_dir, self.settings.model_dir],
            on_status=self.watch_status.emit,
            offline_retry_s=self.offline_retry_s,
            offline_retry_max_s=self.offline_retry_max_s,
        ).start()
        self.watcher = watcher
        self.watch_status.emit(watcher.status)

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        self._refresh_offline()

    def _refresh_offline(self, _status: str = "") -> None:
        offline = self.watcher.offline_folders() if self.watcher is not None else ()
        if [f.path for f in offline] != [f.path for f in self.offline]:
            self.offline = offline
            self.offline_changed.emit(offline)

    def offline_folder_of(self, stored_path: str) -> OfflineFolder | None:
        """The offline watched folder a result's file is in, if any (its file cannot be opened now)."""
        if not self.offline:
            return None
        from desktop_search.core.store import fs_path

        path = fs_path(stored_path)
        return next((f for f in self.offline if is_under(path, f.path)), None)

    def _on_batch(self, batch) -> None:
        if self._closing:
            return
        import os

        # by_root() normalises roots with abspath: key the folders the same way (a saved "docs/" must match)
        folders = {os.path.abspath(f.path): f for f in self.prefs.folders()}
        for root, paths in batch.by_root(folders).items():
            f = folders[root]
            self.index_paths(paths, f.include, f.exclude, update=True)

    def set_paused(self, paused: bool) -> None:
        (self.pause_event.set if paused else self.pause_event.clear)()

    def cancel_indexing(self) -> None:
        self._index_queue.clear()
        if self._index_task is not None:
            self._index_task.cancel()

    def forget_paths(self, paths: list[str], then=None, keep_under: Sequence[str] = ()) -> None:
        """Drop index records of ``paths`` (a removed folder, or files to retry / rebuild) in the serial index
        pool, so it never races an indexing run, except files inside a folder of ``keep_under`` (folders still
        watched); ``then`` is called on the GUI thread afterwards."""
        if self.store is None or not paths or self.shared:
            return
        store = self.store

        def run() -> None:
            from desktop_search.core.lease import writer_lock

            with writer_lock(store.index_dir):  # one writer per index, also against a CLI `watch` process
                records = store.file_records()
                gone = [p for p in records if under_any(p, paths) and not under_any(p, keep_under)]
                store.delete_files(gone)

        task = Task(run)
        task.signals.finished.connect(self.refresh_stats)
        if then is not None:
            task.signals.finished.connect(then)
        self.pools.start(self.pools.index, task)

    # -- stats ------------------------------------------------------------------------------------------
    def refresh_stats(self) -> None:
        """Schedule a status refresh. Requests within 300 ms collapse into one: each refresh reads every files row
        and walks the index folder, and a burst of watcher batches would otherwise repeat that per batch."""
        if self.store is None or self._closing:
            return
        self._stats_timer.start()

    def _refresh_stats_now(self) -> None:
        if self.store is None or self._closing:
            return
        store, folders = self.store, [f.path for f in self.prefs.folders()]

        def run() -> dict[str, Any]:
            from desktop_search.core.indexer import folder_counts

            records = store.file_records()
            failures = sorted(
                ((r.path, r.reason or "", r.detail) for r in records.values() if r.status == "failed"),
            )
            return {
                "indexed": sum(1 for r in records.values() if r.status == "indexed"),
                "failed": len(failures),
                "failures": failures,
                "index_bytes": store.index_bytes(),
                "folders": folder_counts(records, folders),
            }

        task = Task(run)
        task.signals.result.connect(self.stats_ready)
        self.pools.start(self.pools.maintenance, task)

    # -- shutdown ---------------------------------------------------------------------------------------
    def shutdown(self, wait_ms: int = 30_000) -> None:
        self._closing = True
        self._stats_timer.stop()
        self._model_watch.stop()
        self.stop_watching()
        self.cancel_indexing()
        self.cancel_model_job()
        self.cancel_ocr_models()
        self.pause_event.clear()
        if self._search_task is not None:
            self._search_task.cancel()
        self.pools.wait(wait_ms)
        from desktop_search.core.search import shutdown_helper

        shutdown_helper()  # after the pools: no search is left to submit to it
