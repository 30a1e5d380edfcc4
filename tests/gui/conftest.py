"""GUI fixtures: a window over an isolated INI and index, and a check that no worker outlives its test."""

from __future__ import annotations

import itertools
import threading
import traceback

import pytest
from PySide6.QtCore import QCoreApplication, QTimer
from shiboken6 import isValid

from desktop_search.gui.prefs import Key, Prefs
from desktop_search.gui.workers import Pools


def _origin() -> str:
    return "".join(traceback.format_stack(limit=10)[:-2])


@pytest.fixture(autouse=True)
def no_dangling_tasks_or_timers(monkeypatch, qapp):
    """napari's dangling checks: record where every pool task and QTimer was started, and fail a test that
    leaves a task running or queued, a timer active, or a single-shot timer pending when it ends (they would
    fire into the next test, or into a window that is gone)."""
    tasks: list[tuple[Pools, object, str]] = []
    timers: list[tuple[QTimer, str]] = []
    pending: dict[int, tuple[object, str]] = {}  # context object (or None), where it was set
    counter = itertools.count()
    real_start, real_timer_start, real_single_shot = Pools.start, QTimer.start, QTimer.singleShot

    def start(self, pool, task):
        tasks.append((self, task, _origin()))
        return real_start(self, pool, task)

    def timer_start(self, *args):
        timers.append((self, _origin()))
        return real_timer_start(self, *args)

    def single_shot(msec, *args):
        *rest, fn = args
        if not callable(fn):  # (msec, receiver, "member") form: not tracked
            return real_single_shot(msec, *args)
        key = next(counter)
        pending[key] = (rest[0] if rest else None, _origin())

        def fire(*a):
            pending.pop(key, None)
            return fn(*a)

        return real_single_shot(msec, *rest, fire)

    monkeypatch.setattr(Pools, "start", start)
    monkeypatch.setattr(QTimer, "start", timer_start)
    monkeypatch.setattr(QTimer, "singleShot", staticmethod(single_shot))
    yield
    QCoreApplication.processEvents()  # zero-delay clean-ups queued by finished tasks run now
    problems = []
    for pools, task, origin in tasks:
        if task in pools._running:
            problems.append(f"a background task is still running or queued; started at:\n{origin}")
    for timer, origin in timers:
        if isValid(timer) and timer.isActive():
            problems.append(f"a QTimer is still active ({timer.objectName() or 'unnamed'}); started at:\n{origin}")
    problems += [f"a single-shot timer has not fired; set at:\n{origin}" for context, origin in pending.values()
                 if context is None or isValid(context)]  # a timer whose context object is gone never fires
    assert not problems, "\n\n".join(problems)


@pytest.fixture
def prefs(tmp_path, tiny_model_dir):
    p = Prefs(tmp_path / "cfg" / "desktop-search.ini")
    p.set(Key.INDEX_DIR, str(tmp_path / "index"))
    p.set(Key.MODEL_DIR, str(tiny_model_dir))
    p.set(Key.DEVICE, "cpu")
    return p


@pytest.fixture
def make_window(qtbot, prefs):
    """Build the real services + window (store opened by the real start-up path); closed at the end, and
    the test fails if any pool thread or extraction thread is still running then."""
    made = []

    def make(folders=None, *, encoder=None):
        from desktop_search.gui.app import create

        if folders:
            from desktop_search.gui.prefs import WatchedFolder

            prefs.set_folders([WatchedFolder(str(f)) for f in folders])
        services, window = create(prefs, load_model=False, start=False)
        qtbot.addWidget(window)
        with qtbot.waitSignal(services.store_ready, timeout=30_000):
            services.start(load_model=False)
        if encoder is not None:
            services.use_encoder(encoder)
        made.append((services, window))
        return services, window

    yield make
    for services, window in made:
        window.close()  # as the user quits: the window's own timers stop with it
        services.shutdown()
        assert services.pools.active() == 0, "a background task outlived the window"
    leftovers = [t.name for t in threading.enumerate()
                 if t.name.startswith(("extract", "search-candidates")) and t.is_alive()]
    assert not leftovers, f"dangling threads: {leftovers}"


def wait_idle(qtbot, services, timeout=120_000):
    """Wait until no indexing job is running or queued."""
    qtbot.waitUntil(lambda: services.index_idle, timeout=timeout)
