"""Start-up as the user meets it: a query typed while the index is still opening is answered as soon as it is."""

from __future__ import annotations

from pathlib import Path

from tests.gui.conftest import wait_idle


def test_a_query_typed_before_the_index_opens_is_answered_when_it_opens(make_window, qtbot, docs, prefs):
    services, _w = make_window([docs])
    services.index_folders(services.prefs.folders())
    wait_idle(qtbot, services)
    services.shutdown()

    from desktop_search.gui.app import create

    services, window = create(prefs, load_model=False, start=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.keyClicks(window.search_field, "Hauptstadt")
    assert window.docs_label.text() == "opening index…"
    try:
        with qtbot.waitSignal(window.results_shown, timeout=60_000):
            services.start(load_model=False)
        assert [Path(p).name for p in window.model.paths()] == ["berlin.txt"]
        assert "keyword" in window.stage_label.text()
    finally:
        services.shutdown()
        assert services.pools.active() == 0


def test_the_model_loads_while_the_index_is_still_opening(qtbot, docs, prefs, monkeypatch):
    """Semantic search does not wait for the index to open first: with an index that takes its time to open,
    the model is ready before it; once the index opens, searches are hybrid and the folder is encoded."""
    import threading

    import desktop_search.core.store as store_module
    from desktop_search.gui.app import create
    from desktop_search.gui.prefs import WatchedFolder

    prefs.set("cpu_precision", "fp32")  # no int8 build in a test
    prefs.set_folders([WatchedFolder(str(docs))])
    may_open = threading.Event()
    real_store = store_module.Store

    def slow_store(*args, **kwargs):
        assert may_open.wait(120), "the index was never allowed to open"
        return real_store(*args, **kwargs)

    monkeypatch.setattr(store_module, "Store", slow_store)
    services, window = create(prefs, start=False)
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(services.semantic_ready, timeout=120_000):
            services.start()
        assert services.store is None and window.docs_label.text() == "opening index…"
        with qtbot.waitSignal(services.store_ready, timeout=60_000):
            may_open.set()
        assert services.searcher is not None and services.searcher.encoder is services.encoder
        wait_idle(qtbot, services)
        assert services.store.count_vectors() > 0  # the window's first reconciliation encoded with the model
        qtbot.keyClicks(window.search_field, "capital of Germany")
        qtbot.waitUntil(lambda: "semantic" in window.stage_label.text(), timeout=60_000)  # after the keyword stage
    finally:
        may_open.set()
        window.close()
        services.shutdown()
        assert services.pools.active() == 0


def _fresh_modules(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    import json
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


# What the window can show itself without: the index, its analysis, the model, and the libraries behind them.
NOT_BEFORE_THE_WINDOW = {"numpy", "pyarrow", "pandas", "lancedb", "lance", "pydantic", "regex", "Stemmer",
                         "charset_normalizer", "torch", "transformers", "onnxruntime", "tokenizers", "watchdog",
                         "importlib.metadata", "desktop_search.core.store", "desktop_search.core.search",
                         "desktop_search.core.encoder", "desktop_search.core.analysis"}


def test_building_the_window_imports_nothing_of_the_index_or_the_model(tmp_path):
    """The window appears before the index libraries load (they load on a helper thread once it is shown)."""
    loaded = _fresh_modules(
        "import os, sys\n"
        f"os.environ['DESKTOP_SEARCH_CONFIG_DIR'] = {str(tmp_path / 'cfg')!r}\n"
        f"os.environ['DESKTOP_SEARCH_DATA_DIR'] = {str(tmp_path / 'data')!r}\n"
        "from desktop_search.gui.app import skip_feature_scan\n"
        "skip_feature_scan()\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv[:1])\n"
        "from desktop_search.gui.app import create\n"
        "services, window = create(start=False)\n"
        "window.show(); app.processEvents()\n"
    )
    assert sorted(NOT_BEFORE_THE_WINDOW & loaded) == []


def test_pyside_still_knows_which_modules_use_it_without_reading_their_sources():
    """skip_feature_scan: PySide's per-import scan (it reads the source of every module imported after it) gives
    the same answer for every module of the window, the index and the model stack, reading only the window's."""
    _fresh_modules(
        "import inspect, sys\n"
        "from desktop_search.gui.app import skip_feature_scan\n"
        "skip_feature_scan()\n"
        "from PySide6.support import feature\n"
        "real_getsource, read = inspect.getsource, []\n"
        "inspect.getsource = lambda m: (read.append(m.__name__), real_getsource(m))[1]\n"
        "import desktop_search.gui.main_window, desktop_search.gui.services, desktop_search.core.encoder\n"
        "from desktop_search.core.lancedb_import import import_lancedb\n"
        "import_lancedb()\n"
        "import desktop_search.core.search\n"
        "inspect.getsource = real_getsource\n"
        "assert all(n.startswith(('PySide6', 'desktop_search.gui')) for n in read), read\n"
        "fast, full = feature._mod_uses_pyside, feature._mod_uses_pyside.full_scan\n"
        "differ = [m for m in list(sys.modules.values()) if hasattr(m, '__name__') and fast(m) != full(m)]\n"
        # Where the answers differ, PySide's scan found the word in a comment (e.g. 'no Qt plugins to clash with
        # PySide6'): such a module holds nothing of PySide6.
        "def holds_qt(m): return any(str(getattr(v, '__module__', getattr(v, '__name__', ''))).startswith(('PySide6', "
        "'shiboken6')) for v in vars(m).values() if not isinstance(v, (str, int, float, tuple, dict, list)))\n"
        "assert not [m.__name__ for m in differ if holds_qt(m) or fast(m)], differ\n"
        "assert 'lancedb' in sys.modules and fast(sys.modules['desktop_search.gui.main_window'])\n"
    )
