"""Isolated extraction: documents are read in a small pool of worker processes, so a hostile file costs one file.

Every kind the registry marks ``isolated`` (PDF and the other formats read by C libraries or complex parsers) is
read here. MuPDF and friends are C code: a malformed or malicious file can hang them inside one call, crash the
process, or allocate without bound, and none of that can be stopped from Python in the same process. :class:`ExtractorPool` keeps a
few worker processes (``spawn`` start method, so it behaves the same on every OS and in a frozen app, where
``freeze_support()`` in ``__main__`` handles the child start) alive across files to avoid their start-up cost.
Each call has a hard deadline (the extractor's own time limit plus a grace period; the extractor only checks
its limit between pages) after which the worker is killed; a progress note from the worker (OCR reports each
page) starts a new deadline, so a long scanned document is not cut off while it advances; each worker has an address-space cap
(``RLIMIT_AS`` on POSIX) so a memory bomb fails inside the worker instead of exhausting the machine. A killed or
crashed worker is replaced on the next call. The result is always an ``Extraction``: ``timeout`` for a
deadline, ``too_large`` for memory exhaustion, ``corrupt`` for a crash, each with a detail for the user.
Workers exit on their own when the parent dies (even by SIGKILL), so no orphan keeps running.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import re
import signal
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from desktop_search.core.extract import Extraction, ExtractOptions
from desktop_search.core.extract.registry import kind_of
from desktop_search.core.failures import Reason

__all__ = [
    "ExtractorPool",
    "WorkerCrashed",
    "WorkerTimeout",
    "WorkerOutOfMemory",
    "WorkerStartError",
    "shared_pool",
    "default_memory_limit",
]

GRACE_S = 10.0  # added to the extractor's own time limit before the worker is killed


class WorkerCrashed(RuntimeError):
    """The worker process died while running the job (segfault, abort, killed from outside)."""

    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode
        super().__init__(_exit_description(exitcode))


class WorkerTimeout(RuntimeError):
    """The job overran its deadline; the worker was killed."""


class WorkerOutOfMemory(RuntimeError):
    """The job hit the worker's memory cap."""


class WorkerStartError(RuntimeError):
    """A worker process could not be started (the pool then extracts in-process)."""


def default_memory_limit(max_file_bytes: int) -> int:
    """Address-space cap for one worker: room for the interpreter, MuPDF and a few copies of the largest file."""
    return 2 * 1024**3 + 3 * max_file_bytes


# -- worker side ----------------------------------------------------------------------------------------------
def _worker_main(conn: Connection, memory_limit: int | None) -> None:
    _limit_memory(memory_limit)
    _exit_with_parent()
    if hasattr(signal, "SIGINT"):
        # Ctrl+C in a terminal reaches the whole process group; the parent decides what to stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    from desktop_search.core.extract import registry

    registry.warm_up()  # the readers' libraries are imported before "ready", so jobs start at once
    global _CONN
    _CONN = conn
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        func, args = job
        try:
            reply: tuple = ("ok", func(*args))
        except MemoryError:
            reply = ("memory", "")
        except BaseException as e:  # noqa: BLE001 - reported to the parent, the worker lives on
            reply = ("error", f"{type(e).__name__}: {e}")
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory", ""))
        except Exception as e:  # noqa: BLE001 - an unpicklable result
            conn.send(("error", f"result could not be returned: {type(e).__name__}: {e}"))


def _limit_memory(limit: int | None) -> None:
    if not limit or sys.platform == "win32":
        return
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass  # macOS does not enforce RLIMIT_AS; the deadline still bounds the damage


def _exit_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


_CONN: Connection | None = None  # the worker's pipe to the parent, for progress notes


def _send_progress(message: str) -> None:
    if _CONN is not None:
        _CONN.send(("progress", message))


def _extract_job(path: str, options: ExtractOptions) -> Extraction:
    from desktop_search.core.extract import extract

    ex = extract(Path(path), options, progress=_send_progress)
    if not ex.ok and ex.reason == Reason.CORRUPT and any(_OOM.search(t) for t in (ex.detail, *ex.warnings)):
        # MuPDF reports a failed allocation (the memory cap at work) as an ordinary error.
        return Extraction(path=ex.path, kind=ex.kind, pages=(), page_count=ex.page_count, ok=False,
                          reason=Reason.TOO_LARGE, detail="reading this file needed more memory than allowed "
                                                     "(the reader's memory is capped)", warnings=ex.warnings)
    return ex


_OOM = re.compile(r"\b(?:m|re|c)alloc\b.*\bfailed|out of memory|cannot allocate|MemoryError", re.IGNORECASE)


# -- parent side ----------------------------------------------------------------------------------------------
class _Worker:
    START_TIMEOUT_S = 120.0

    def __init__(self, ctx, memory_limit: int | None) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, memory_limit), name="desktop-search-extract",
                                daemon=True)
        self.proc.start()
        child.close()
        try:
            ready = self.conn.poll(self.START_TIMEOUT_S) and self.conn.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            raise WorkerStartError(f"extraction worker did not start ({_exit_description(self.proc.exitcode)})")

    def kill(self) -> None:
        try:
            self.proc.kill()
        except Exception:  # noqa: BLE001
            pass
        self.proc.join(5)
        self.conn.close()

    def close(self) -> None:
        try:
            self.conn.send(None)
        except Exception:  # noqa: BLE001
            pass
        self.proc.join(2)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


class ExtractorPool:
    """Up to ``workers`` extraction processes shared by any number of threads (each call uses one worker)."""

    def __init__(
        self,
        workers: int = 2,
        *,
        memory_limit: int | None = None,
        grace_s: float = GRACE_S,
        job: Callable[[str, ExtractOptions], Extraction] | None = None,
    ) -> None:
        """``job`` replaces the extraction function run in the workers (a picklable module-level function
        taking the path and the ``ExtractOptions``; tests use it to simulate hangs and crashes)."""
        self.size = max(1, workers)
        self.job = job or _extract_job
        self.memory_limit = memory_limit
        self.grace_s = grace_s
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self.restarts = 0  # workers replaced after a timeout or crash (for tests and diagnostics)
        self.unavailable: str | None = None  # set when workers cannot start: extraction then runs in-process

    # -- public -----------------------------------------------------------------------------------------
    def extract(
        self,
        path: Path,
        options: ExtractOptions | None = None,
        *,
        max_bytes: int | None = None,
        time_limit_s: float | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Extraction:
        """``extract.extract`` in a worker; never raises for a bad file. ``progress`` receives the worker's notes
        ("OCR page 3/40") in the calling thread."""
        path = Path(path)
        options = ExtractOptions.given(options, max_bytes, time_limit_s)
        if self.unavailable is None:
            try:
                return self._extract_isolated(path, options, progress)
            except WorkerStartError as e:
                self.unavailable = str(e)
        # Without isolation a hostile file can still hang this process, but every other file gets indexed.
        from desktop_search.core.extract import extract

        return extract(path, options, progress=progress)

    def _extract_isolated(self, path: Path, options: ExtractOptions, progress) -> Extraction:
        limit = options.time_limit_s + self.grace_s
        try:
            return self.call(self.job, str(path), options, timeout_s=limit, progress=progress)
        except WorkerTimeout:
            return _failure(path, Reason.TIMEOUT, f"reading this file took longer than {limit:g} s "
                                             "and was stopped (the reader hung on it)")
        except WorkerOutOfMemory:
            limit = f" (limit {self.memory_limit / 1024**3:.1f} GiB)" if self.memory_limit else ""
            return _failure(path, Reason.TOO_LARGE, f"reading this file needed too much memory{limit}")
        except WorkerCrashed as e:
            if e.exitcode == -getattr(signal, "SIGKILL", 9):
                # Nobody here sends SIGKILL except on a timeout: the system's out-of-memory killer did.
                return _failure(path, Reason.TOO_LARGE, "reading this file was stopped by the system for using too "
                                                   "much memory")
            return _failure(path, Reason.CORRUPT, f"the reader crashed on this file ({e})")
        except WorkerStartError:
            raise
        except Exception as e:  # noqa: BLE001 - one file, not the batch
            return _failure(path, Reason.CORRUPT, f"extraction failed: {type(e).__name__}: {e}")

    def call(self, func: Callable[..., Any], *args: Any, timeout_s: float,
             progress: Callable[[str], None] | None = None) -> Any:
        """Run ``func(*args)`` (a picklable module-level function) in a worker and return its result.
        ``timeout_s`` counts from the start and from each progress note the job sends.
        Raises WorkerTimeout, WorkerCrashed, WorkerOutOfMemory, or RuntimeError for an exception in the job."""
        worker = self._take()
        healthy = False
        try:
            try:
                worker.conn.send((func, args))
                while True:
                    if not worker.conn.poll(timeout_s):
                        raise WorkerTimeout(f"no result after {timeout_s:g} s")
                    reply = worker.conn.recv()
                    if reply[0] != "progress":
                        break
                    if progress is not None:
                        progress(reply[1])
            except (EOFError, OSError, BrokenPipeError):
                worker.proc.join(5)
                raise WorkerCrashed(worker.proc.exitcode) from None
            healthy = True
        finally:
            self._give_back(worker, healthy)
        kind, value = reply[0], reply[1]
        if kind == "ok":
            return value
        if kind == "memory":
            raise WorkerOutOfMemory("out of memory")
        raise RuntimeError(value)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for w in idle:
            w.close()

    # -- workers ----------------------------------------------------------------------------------------
    def _take(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("extractor pool is closed")
                while self._idle:
                    w = self._idle.pop()
                    if w.proc.is_alive():
                        return w
                    self._count -= 1
                    w.conn.close()
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return _Worker(self._ctx, self.memory_limit)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(worker)
            else:
                self._count -= 1
                if not healthy:
                    self.restarts += 1
            self._cond.notify()
        if healthy and self._closed:
            worker.close()


def _exit_description(code: int | None) -> str:
    if code is None:
        return "it stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit code {code}"


def _failure(path: Path, reason: Reason, detail: str) -> Extraction:
    return Extraction(path=path, kind=kind_of(path), pages=(), page_count=0, ok=False, reason=reason, detail=detail,
                      warnings=())


_SHARED: ExtractorPool | None = None
_SHARED_LOCK = threading.Lock()


def shared_pool(workers: int = 2, memory_limit: int | None = None) -> ExtractorPool:
    """The process-wide pool (workers stay warm across indexing runs); grown, never shrunk, to ``workers``."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None or _SHARED._closed:
            _SHARED = ExtractorPool(workers, memory_limit=memory_limit)
            atexit.register(_SHARED.close)
        else:
            with _SHARED._cond:
                _SHARED.size = max(_SHARED.size, workers)
                if memory_limit and (not _SHARED.memory_limit or memory_limit > _SHARED.memory_limit):
                    _SHARED.memory_limit = memory_limit  # applies to workers started from now on
        return _SHARED
