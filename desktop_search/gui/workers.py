"""Background work for the window: QRunnable tasks with their own signals, in pools separated by role.

A task wraps a plain core function that takes ``progress`` and ``cancel`` keyword arguments (or none) and
delivers its progress, result or error back on the GUI thread through queued signals. Pools by role keep a
search from ever waiting behind indexing: ``search`` (queries, many short tasks), ``index`` (one indexing run
at a time: the single writer), ``model`` (loading the encoder, downloads, verification), ``render`` (preview
pages) and ``maintenance`` (status refreshes, query-cache warm-up: one thread, so they queue behind each other
and never in front of a search). Workers never touch widgets: they return values, and the slot connected to
``result`` runs on the GUI thread and assigns them.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from desktop_search.errors import is_user_error


class TaskSignals(QObject):
    progress = Signal(object)
    result = Signal(object)
    error = Signal(str)
    finished = Signal()


class Task(QRunnable):
    """Runs ``fn(*args, **kwargs)``; if ``with_progress``, passes ``progress=`` and ``cancel=`` too."""

    def __init__(self, fn: Callable[..., Any], *args: Any, with_progress: bool = False, **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.with_progress = with_progress
        self.cancel_event = threading.Event()
        self.signals = TaskSignals()
        # Owned by Python (Pools keeps it alive until `finished` reached the GUI thread): an auto-deleted
        # runnable would destroy its signals object in the worker thread, losing or crashing queued signals.
        self.setAutoDelete(False)

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        signals = self.signals  # keep a reference: the runnable may be deleted when run() returns
        try:
            kwargs = dict(self.kwargs)
            if self.with_progress:
                kwargs.setdefault("progress", signals.progress.emit)
                kwargs.setdefault("cancel", self.cancel_event)
            out = self.fn(*self.args, **kwargs)
        except Exception as e:  # an error is data for the window, never a crash of the app
            detail = str(e) or type(e).__name__
            signals.error.emit(detail if is_user_error(e) else f"{type(e).__name__}: {detail}\n{traceback.format_exc(limit=3)}")
        else:
            signals.result.emit(out)
        finally:
            signals.finished.emit()


class Pools:
    """One QThreadPool per role."""

    def __init__(self) -> None:
        self._running: set[Task] = set()
        self.search = self._pool("search", 2)
        self.index = self._pool("index", 1)
        self.model = self._pool("model", 1)
        self.render = self._pool("render", 1)
        self.maintenance = self._pool("maintenance", 1)

    @staticmethod
    def _pool(name: str, threads: int) -> QThreadPool:
        pool = QThreadPool()
        pool.setObjectName(f"{name}-pool")
        pool.setMaxThreadCount(threads)
        return pool

    def start(self, pool: QThreadPool, task: Task) -> Task:
        """Run ``task`` in ``pool``, keeping it alive until its last signal has been handled."""
        self._running.add(task)
        # Dropped one event-loop turn after `finished` arrives, when the worker has left run().
        task.signals.finished.connect(lambda t=task: QTimer.singleShot(0, lambda: self._running.discard(t)))
        pool.start(task)
        return task

    def all(self) -> list[QThreadPool]:
        return [self.search, self.index, self.model, self.render, self.maintenance]

    def active(self) -> int:
        return sum(p.activeThreadCount() for p in self.all())

    def wait(self, ms: int = 30_000) -> bool:
        return all(p.waitForDone(ms) for p in self.all())
