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


def test_window_says_unverified_not_missing(make_window, qtbot, tmp_path, tiny_model_dir):
    import shutil

    from desktop_search.core.encoder import model_state
    from desktop_search.core.models import MARKER

    services, window = make_window()
    model = tmp_path / "copied-model"
    shutil.copytree(tiny_model_dir, model)
    (model / MARKER).unlink()  # the files are there, but never verified
    services.settings = services.settings.with_(model_dir=model)
    assert model_state(model) == "not verified"
    with qtbot.waitSignal(services.semantic_unavailable, timeout=120_000):
        services.load_model()
    assert window.device_label.text() == "model: not verified (keyword search)"
    shutil.rmtree(model)
    assert model_state(model) == "not installed"
