"""The window with an install that cannot run the model: keyword search, and the reason in the status bar."""

from __future__ import annotations

import sys
from pathlib import Path


def test_window_says_why_semantic_search_is_off(make_window, qtbot, monkeypatch):
    services, window = make_window()
    monkeypatch.setitem(sys.modules, "FlagEmbedding", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setenv("DESKTOP_SEARCH_CACHE_DIR", str(Path(window.services.settings.index_dir).parent / "cache"))
    with qtbot.waitSignal(services.semantic_unavailable, timeout=120_000):
        services.load_model()
    assert window.device_label.text() == "semantic search off (keyword search)"
    shown = window.statusBar().currentMessage()
    assert shown.startswith("semantic search is off: dependency incompatibility") and "FlagEmbedding" in shown
    assert services.encoder is None
