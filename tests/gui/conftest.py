"""GUI fixtures: a window over an isolated INI and index, and a check that no worker outlives its test."""

from __future__ import annotations

import threading

import pytest

from desktop_search.gui.prefs import Prefs


@pytest.fixture
def prefs(tmp_path, tiny_model_dir):
    p = Prefs(tmp_path / "cfg" / "desktop-search.ini")
    p.set("index_dir", str(tmp_path / "index"))
    p.set("model_dir", str(tiny_model_dir))
    p.set("device", "cpu")
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
            services._on_encoder(encoder)
        made.append((services, window))
        return services, window

    yield make
    for services, window in made:
        services.shutdown()
        assert services.pools.active() == 0, "a background task outlived the window"
    leftovers = [t.name for t in threading.enumerate()
                 if t.name.startswith(("extract", "search-candidates")) and t.is_alive()]
    assert not leftovers, f"dangling threads: {leftovers}"


def wait_idle(qtbot, services, timeout=120_000):
    """Wait until no indexing job is running or queued."""
    qtbot.waitUntil(lambda: not services.indexing and not services._index_queue, timeout=timeout)
