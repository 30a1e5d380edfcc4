"""The window while the int8 CPU copy of the model is built (once per model, minutes for the real one)."""

from __future__ import annotations


def test_window_shows_int8_build_progress_then_the_model(make_window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("DESKTOP_SEARCH_CACHE_DIR", str(tmp_path / "fresh-cache"))  # nothing built yet
    services, window = make_window()
    shown: list[str] = []
    # Connected after the window's own slot, so this reads the label as the window just set it.
    services.encoder_progress.connect(lambda _p: shown.append(window.device_label.text()))
    with qtbot.waitSignal(services.semantic_ready, timeout=600_000):
        services.load_model()
    assert any("layers quantized" in text for text in shown), shown
    assert shown[0].startswith("Preparing the fast CPU model")
    assert window.device_label.text() == "model: BGE-M3 on CPU"
    assert services.encoder.precision == "int8"
