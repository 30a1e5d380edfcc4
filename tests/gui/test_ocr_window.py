"""OCR in the window: a scanned PDF is indexed in the background, found, and its preview highlights the words on
the page image; the OCR engine's OpenCV is the headless build, and the window works with it loaded."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

from tests.core.test_ocr import SCANNED_LINES, make_scanned_pdf
from tests.gui.conftest import wait_idle
from tests.gui.test_main_window import search, shown_paths


def test_opencv_is_the_headless_build_without_qt_plugins():
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("opencv-python")  # the GUI build ships Qt plugins of its own
    spec = importlib.util.find_spec("cv2")
    folder = Path(spec.origin).parent
    assert not list(folder.rglob("libqxcb*")) and not (folder / "qt").exists()


def test_scanned_pdf_is_found_and_highlighted_in_the_window(make_window, qtbot, tmp_path):
    # OpenCV loaded into the window's own process (as when the pool cannot start and OCR runs in-process): a
    # cv2 with Qt plugins would point Qt at them here; the headless one changes nothing.
    import cv2  # noqa: F401
    import rapidocr_onnxruntime  # noqa: F401

    docs = tmp_path / "docs"
    make_scanned_pdf(docs / "scan.pdf", "A typed cover page about the harbour.", SCANNED_LINES)
    services, window = make_window([docs])
    services.index_folders(services.prefs.folders())
    wait_idle(qtbot, services, timeout=300_000)
    search(qtbot, window, "gannets")
    assert [Path(p).name for p in shown_paths(window)] == ["scan.pdf"]
    with qtbot.waitSignal(window.preview.rendered, timeout=60_000) as blocker:
        window.view.setCurrentIndex(window.model.index(0, 0))
    assert blocker.args == [2]  # the scanned page, not the typed cover
    assert len(window.preview.shown.term_rects) == 1 and window.preview.shown.passage_rects
    # Next/previous hit knows the scanned page matches (from the index: it has no text layer to search).
    qtbot.waitUntil(lambda: window.preview.hit_pages == [2], timeout=30_000)
    assert "1 page match" in window.preview.next_hit_btn.toolTip()
    search(qtbot, window, "harbour")
    with qtbot.waitSignal(window.preview.rendered, timeout=60_000):
        window.view.setCurrentIndex(window.model.index(0, 0))
    qtbot.waitUntil(lambda: window.preview.hit_pages == [1], timeout=30_000)  # the typed page's own layer
