"""Preview pane: the matching page with the matched terms and passage highlighted and page navigation, or the
passage in context (text files, slides, sheets, sections), as the extractor registry says for the file's kind. Rendering runs in the render pool; the pane only paints the result.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop_search.core.extract.registry import for_path
from desktop_search.gui.workers import Pools, Task


def _to_image(rendered) -> QImage:
    """RGB samples + highlight rectangles -> a finished QImage (done in the worker, QImage is thread-safe)."""
    img = QImage(rendered.samples, rendered.width, rendered.height, rendered.stride, QImage.Format.Format_RGB888).copy()
    painter = QPainter(img)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(255, 170, 0, 40))
    for x0, y0, x1, y1 in rendered.passage_rects:
        painter.drawRect(int(x0) - 2, int(y0) - 1, int(x1 - x0) + 4, int(y1 - y0) + 2)
    painter.setBrush(QColor(255, 224, 0, 110))
    for x0, y0, x1, y1 in rendered.term_rects:
        painter.drawRect(int(x0) - 1, int(y0), int(x1 - x0) + 2, int(y1 - y0))
    painter.end()
    return img


class PreviewPane(QWidget):
    rendered = Signal(int)  # page shown (1-based); for tests and the status bar

    def __init__(self, pools: Pools, parent=None) -> None:
        super().__init__(parent)
        self.pools = pools
        from desktop_search.core.pathmap import PathMap

        self.path_map = PathMap()  # a shared index's paths -> this machine's (the window sets it)
        self.hit = None
        self.terms: list[str] = []
        self.page_count = 0
        self.current_page = 0
        self.shown = None  # the RenderedPage on screen (its highlight boxes), for tests and diagnostics
        self._seq = 0

        self.title = QLabel("Select a result to preview it")
        self.title.setWordWrap(True)
        self.prev_btn = QPushButton("◀")
        self.next_btn = QPushButton("▶")
        self.page_box = QSpinBox()
        self.page_box.setMinimum(1)
        self.page_label = QLabel("")
        nav = QHBoxLayout()
        for w in (self.prev_btn, self.page_box, self.page_label, self.next_btn):
            nav.addWidget(w)
        nav.addStretch(1)
        self.nav = QWidget()
        self.nav.setLayout(nav)
        self.nav.setVisible(False)

        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.image)
        self.scroll.setWidgetResizable(True)
        self.text = QTextBrowser()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        for w in (self.message, self.scroll, self.text):
            self.stack.addWidget(w)

        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.nav)
        lay.addWidget(self.stack, 1)
        # Re-fit the page to the pane's width once the user stops resizing.
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(150)
        self._refit.timeout.connect(lambda: self.current_page and self.show_page(self.current_page))
        self._fitted_width = 0
        self.prev_btn.clicked.connect(lambda: self.show_page(self.current_page - 1))
        self.next_btn.clicked.connect(lambda: self.show_page(self.current_page + 1))
        self.page_box.editingFinished.connect(lambda: self.show_page(self.page_box.value()))

    def show_hit(self, hit, terms: list[str]) -> None:
        self.hit, self.terms = hit, terms
        self.title.setText(f"<b>{html.escape(hit.path.rsplit('/', 1)[-1])}</b><br><small>{html.escape(hit.path)}</small>")
        reader = for_path(hit.path)
        if reader is not None and reader.preview == "page":
            self.nav.setVisible(True)
            self.show_page(hit.page or 1)
        else:
            self.nav.setVisible(False)
            self._render_text(hit)

    def clear(self) -> None:
        self.hit = None
        self.title.setText("Select a result to preview it")
        self.nav.setVisible(False)
        self.message.setText("")
        self.stack.setCurrentWidget(self.message)

    def show_page(self, page: int) -> None:
        if self.hit is None:
            return
        if self.page_count:
            page = min(max(1, page), self.page_count)
        self._seq += 1
        seq, hit = self._seq, self.hit
        passage = hit.text if page == hit.page else ""
        # The stack always has the pane's real size; the scroll area's viewport is stale while hidden.
        self._fitted_width = self.stack.width()
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        width = max(200, self._fitted_width - bar - 8) * self.devicePixelRatioF()

        def run():
            from desktop_search.core.render import render_pdf_page

            r = render_pdf_page(self._local(hit.path), page, terms=self.terms, passage=passage, fit_width=int(width))
            return r, _to_image(r)

        task = Task(run)
        task.signals.result.connect(lambda out, s=seq: self._on_page(s, *out))
        task.signals.error.connect(lambda e, s=seq: self._on_error(s, e))
        self.pools.start(self.pools.render, task)

    def _on_page(self, seq: int, r, img: QImage) -> None:
        if seq != self._seq:
            return  # a later request superseded this one
        self.page_count, self.current_page, self.shown = r.page_count, r.page, r
        self.page_box.blockSignals(True)
        self.page_box.setMaximum(max(1, r.page_count))
        self.page_box.setValue(r.page)
        self.page_box.blockSignals(False)
        self.page_label.setText(f"of {r.page_count}" + (" · matching page" if self.hit and r.page == self.hit.page else ""))
        self.prev_btn.setEnabled(r.page > 1)
        self.next_btn.setEnabled(r.page < r.page_count)
        pix = QPixmap.fromImage(img)
        pix.setDevicePixelRatio(self.devicePixelRatioF())
        self.image.setPixmap(pix)
        self.stack.setCurrentWidget(self.scroll)
        if r.passage_rects:
            y = min(y0 for _x0, y0, _x1, _y1 in r.passage_rects)
            self.scroll.verticalScrollBar().setValue(max(0, int(y) - 60))
        self.rendered.emit(r.page)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        showing_pdf = self.hit is not None and self.stack.currentWidget() is self.scroll
        if showing_pdf and abs(self.stack.width() - self._fitted_width) > 8:
            self._refit.start()

    def _render_text(self, hit) -> None:
        self._seq += 1
        seq = self._seq

        def run():
            from desktop_search.core.render import text_context

            return text_context(self._local(hit.path), hit.char_start, hit.char_end, page=hit.page)

        task = Task(run)
        task.signals.result.connect(lambda ctx, s=seq: self._on_text(s, ctx))
        task.signals.error.connect(lambda e, s=seq: self._on_error(s, e))
        self.pools.start(self.pools.render, task)

    def _local(self, stored: str) -> str:
        """The file on this machine (worker thread); a file not reachable from here fails with the reason."""
        located = self.path_map.locate(stored)
        if located.problem:
            raise FileNotFoundError(located.problem)
        return located.local

    def _on_text(self, seq: int, ctx) -> None:
        if seq != self._seq:
            return
        passage = html.escape(ctx.passage)
        for t in sorted(self.terms, key=len, reverse=True):
            if len(t) >= 2:
                passage = passage.replace(html.escape(t), f"<span style='background:#ffe066'>{html.escape(t)}</span>")
        body = (
            f"<pre style='white-space:pre-wrap;font-family:sans-serif'>{html.escape(ctx.before)}"
            f"<a name='hit'></a><span style='background:#fff3d6'>{passage}</span>{html.escape(ctx.after)}</pre>"
        )
        self.text.setHtml(body)
        self.text.scrollToAnchor("hit")
        self.stack.setCurrentWidget(self.text)
        self.rendered.emit(0)

    def _on_error(self, seq: int, message: str) -> None:
        if seq != self._seq:
            return
        self.message.setText(f"Cannot preview this file: {message.splitlines()[0]}")
        self.stack.setCurrentWidget(self.message)
        self.rendered.emit(-1)
