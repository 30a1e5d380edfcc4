"""The preview as a user drives it: zoom (keys, wheel, fit width/page), highlight boxes that stay on the
words at every zoom, next/previous page with a match, the page as text, and opening failures said in the window."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QMessageBox

from desktop_search.gui import opener
from tests.conftest import make_pdf
from tests.gui.test_main_window import indexed_window, search

PAGES = [
    "Cover. Nothing about the subject here.",
    "The tracer records a trace of every loop; traceable traces are kept.",
    "An interlude with no matches at all.",
    "Another trace appears on this page, near the end.",
]


def _show_pdf(make_window, qtbot, docs):
    make_pdf(docs / "papers" / "loops.pdf", PAGES)
    _s, window = indexed_window(make_window, qtbot, docs)
    window.show()
    search(qtbot, window, "trace")
    row = [Path(p).name for p in window.model.paths()].index("loops.pdf")
    with qtbot.waitSignal(window.preview.rendered, timeout=30_000):
        window.view.setCurrentIndex(window.model.index(row, 0))
    return window, window.preview


def _words_marked(pv) -> list[str]:
    """The words under the highlight boxes of the page shown, read back from the PDF at the box positions."""
    import pymupdf

    r = pv.shown
    with pymupdf.open(r.path) as doc:
        pg = doc[r.page - 1]
        return [pg.get_textbox(pymupdf.Rect(x0 / r.zoom, y0 / r.zoom, x1 / r.zoom, y1 / r.zoom)).strip()
                for x0, y0, x1, y1 in r.term_rects]


def test_zoom_with_keys_wheel_and_fit_keeps_boxes_on_the_words(make_window, qtbot, docs):
    window, pv = _show_pdf(make_window, qtbot, docs)
    assert _words_marked(pv) == ["trace"]  # not "tracer", "traceable" or "traces"
    fit_zoom = pv.zoom
    with qtbot.waitSignal(pv.rendered, timeout=30_000):
        qtbot.keyClick(window.view, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)  # focus in the list
    assert pv.zoom > fit_zoom * 1.2 and pv.zoom_label.text() == f"{round(pv.zoom * 100)}%"
    assert window.model.rowCount(window.view.currentIndex()) == 0 or not window.view.isExpanded(window.view.currentIndex())
    assert _words_marked(pv) == ["trace"]
    zoomed = pv.zoom
    wheel = QWheelEvent(QPointF(50, 50), QPointF(50, 50), QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    with qtbot.waitSignal(pv.rendered, timeout=30_000):
        pv.scroll.wheelEvent(wheel)
    assert pv.zoom < zoomed and _words_marked(pv) == ["trace"]
    with qtbot.waitSignal(pv.rendered, timeout=30_000):
        qtbot.mouseClick(pv.fit_page_btn, Qt.MouseButton.LeftButton)
    assert pv.image.pixmap().height() <= pv.stack.height() and _words_marked(pv) == ["trace"]
    with qtbot.waitSignal(pv.rendered, timeout=30_000):
        qtbot.mouseClick(pv.fit_width_btn, Qt.MouseButton.LeftButton)
    assert pv.stack.width() - 40 <= pv.image.pixmap().width() <= pv.stack.width()


def test_next_and_previous_page_with_a_match_and_the_text_view(make_window, qtbot, docs):
    _w, pv = _show_pdf(make_window, qtbot, docs)
    qtbot.waitUntil(lambda: pv.hit_pages == [2, 4], timeout=30_000)
    # a render of the first page shown may still be on its way: wait for page 1 itself (on a loaded machine the
    # earlier render arrives late and would be taken for this one)
    with qtbot.waitSignal(pv.rendered, timeout=30_000, check_params_cb=lambda page: page == 1):
        pv.show_page(1)
    assert not pv.prev_hit_btn.isEnabled() and pv.next_hit_btn.isEnabled()
    for page in (2, 4):
        with qtbot.waitSignal(pv.rendered, timeout=30_000) as blocker:
            qtbot.mouseClick(pv.next_hit_btn, Qt.MouseButton.LeftButton)
        assert blocker.args == [page]
    assert not pv.next_hit_btn.isEnabled()
    with qtbot.waitSignal(pv.rendered, timeout=30_000) as blocker:
        qtbot.keyClick(pv, Qt.Key.Key_F3, Qt.KeyboardModifier.ShiftModifier)
    assert blocker.args == [2]
    qtbot.mouseClick(pv.text_btn, Qt.MouseButton.LeftButton)
    assert pv.stack.currentWidget() is pv.text
    assert "traceable traces are kept" in pv.text.toPlainText()
    assert ">trace</span>" in pv.text.toHtml() and ">traceable</span>" not in pv.text.toHtml()


def test_open_failure_is_said_in_the_window_with_copy_and_open_with(make_window, qtbot, docs, monkeypatch):
    _s, window = indexed_window(make_window, qtbot, docs)
    monkeypatch.setattr(opener.QDesktopServices, "openUrl", lambda url: False)  # no handler installed
    started = []
    monkeypatch.setattr(opener.QProcess, "startDetached", lambda prog, args: started.append([prog, *args]) or (True, 1))
    search(qtbot, window, "sourdough")
    window.view.setCurrentIndex(window.model.index(0, 0))
    window.open_current()
    box = window.open_failure_box
    path = str(docs / "kitchen" / "bread.md")
    assert box.isVisible() and path in box.text() and "No program" in box.text()
    copy = next(b for b in box.buttons() if b.text() == "Copy path")
    qtbot.mouseClick(copy, Qt.MouseButton.LeftButton)
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == path
    assert window.open_with(path, "/usr/bin/mousepad") and started == [["/usr/bin/mousepad", path]]
    window._show_in_folder()
    assert "its folder" in window.open_failure_box.text()
    window.open_failure_box.done(QMessageBox.StandardButton.Close)
