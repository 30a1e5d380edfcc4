"""Preview pane: the matching page with the matched terms and passage highlighted, page navigation, next/previous
page with a match, zoom (Ctrl+wheel, Ctrl+±, fit width, fit page) and a text view of the page; or the passage in
context (text files, slides, sheets, sections), as the extractor registry says for the file's kind. Rendering runs
in the render pool; the pane only paints the result.
"""

from __future__ import annotations

import html
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from shiboken6 import isValid  # a render may finish after its pane was closed: its result is dropped
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


def marked_html(text: str, terms: list[str]) -> str:
    """``text`` escaped for rich text, with the words the highlight rule marks on a yellow background."""
    from desktop_search.core.highlight import mark  # the keyword analysis (regex): loaded by the first search

    body = html.escape(mark(text, terms, "\x00", "\x01"))
    return body.replace("\x00", "<span style='background:#ffe066'>").replace("\x01", "</span>")


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


class _PageScroll(QScrollArea):
    """The page's scroll area: Ctrl+wheel zooms instead of scrolling."""

    zoom_wheel = Signal(int)  # +1 in, -1 out

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_wheel.emit(1 if event.angleDelta().y() > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)


class PreviewPane(QWidget):
    rendered = Signal(int)  # page shown (1-based); for tests and the status bar

    ZOOM_STEP = 1.25

    def __init__(self, pools: Pools, parent=None) -> None:
        super().__init__(parent)
        self.pools = pools
        from desktop_search.core.pathmap import PathMap

        self.path_map = PathMap()  # a shared index's paths -> this machine's (the window sets it)
        # A file's passages as indexed, (page, text) (the window sets it): next/previous hit finds pages whose text
        # came from OCR there.
        self.indexed_passages: Callable[[str], list[tuple[int | None, str]]] | None = None
        self.passwords: Callable[[], tuple[str, ...]] = tuple  # the session's document passwords (the window sets it)
        self.add_password: Callable[[str], None] | None = None  # keeps one for the session (the window sets it)
        self.hit = None
        self.terms: list[str] = []
        self.page_count = 0
        self.current_page = 0
        self.hit_pages: list[int] = []  # pages where the query's words are marked
        self.fit = "width"  # "width" | "page" | "" (the zoom the user chose)
        self.zoom = 1.0  # pixels per PDF point of the page shown
        self.page_text = ""
        self.shown = None  # the RenderedPage on screen (its highlight boxes), for tests and diagnostics
        self._seq = 0

        self.title = QLabel("Select a result to preview it")
        self.title.setWordWrap(True)
        self.prev_btn = QPushButton("◀")
        self.next_btn = QPushButton("▶")
        self.page_box = QSpinBox()
        self.page_box.setMinimum(1)
        self.page_label = QLabel("")
        self.prev_hit_btn = QPushButton("◀ hit")
        self.next_hit_btn = QPushButton("hit ▶")
        self.prev_hit_btn.setToolTip("Previous page with a match (Shift+F3)")
        self.next_hit_btn.setToolTip("Next page with a match (F3)")
        self.zoom_out_btn = QPushButton("−")
        self.zoom_in_btn = QPushButton("+")
        self.zoom_out_btn.setToolTip("Zoom out (Ctrl+-, Ctrl+wheel)")
        self.zoom_in_btn.setToolTip("Zoom in (Ctrl++, Ctrl+wheel)")
        self.zoom_label = QLabel("")
        self.fit_width_btn = QPushButton("Fit width")
        self.fit_page_btn = QPushButton("Fit page")
        self.text_btn = QPushButton("Text")
        self.text_btn.setCheckable(True)
        self.text_btn.setToolTip("Show the page as text (copyable)")
        for b in (self.prev_btn, self.next_btn, self.zoom_out_btn, self.zoom_in_btn):
            b.setMaximumWidth(36)
        nav = QHBoxLayout()
        nav.setContentsMargins(0, 0, 0, 0)
        for w in (self.prev_btn, self.page_box, self.page_label, self.next_btn, self.prev_hit_btn, self.next_hit_btn):
            nav.addWidget(w)
        nav.addStretch(1)
        view = QHBoxLayout()
        view.setContentsMargins(0, 0, 0, 0)
        for w in (self.zoom_out_btn, self.zoom_label, self.zoom_in_btn, self.fit_width_btn, self.fit_page_btn,
                  self.text_btn):
            view.addWidget(w)
        view.addStretch(1)
        bars = QVBoxLayout()
        bars.setContentsMargins(0, 0, 0, 0)
        bars.addLayout(nav)
        bars.addLayout(view)
        self.nav = QWidget()
        self.nav.setLayout(bars)
        self.nav.setVisible(False)

        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.scroll = _PageScroll()
        self.scroll.setWidget(self.image)
        self.scroll.setWidgetResizable(True)
        self.text = QTextBrowser()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.linkActivated.connect(self._on_link)
        self.stack = QStackedWidget()
        for w in (self.message, self.scroll, self.text):
            self.stack.addWidget(w)

        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.nav)
        lay.addWidget(self.stack, 1)
        # Re-fit the page to the pane once the user stops resizing.
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(150)
        self._refit.timeout.connect(lambda: self.current_page and self.show_page(self.current_page))
        self._fitted_size = (0, 0)
        self.prev_btn.clicked.connect(lambda: self.show_page(self.current_page - 1))
        self.next_btn.clicked.connect(lambda: self.show_page(self.current_page + 1))
        self.page_box.editingFinished.connect(lambda: self.show_page(self.page_box.value()))
        self.prev_hit_btn.clicked.connect(lambda: self.goto_hit(-1))
        self.next_hit_btn.clicked.connect(lambda: self.goto_hit(1))
        self.zoom_in_btn.clicked.connect(lambda: self.zoom_by(1))
        self.zoom_out_btn.clicked.connect(lambda: self.zoom_by(-1))
        self.scroll.zoom_wheel.connect(self.zoom_by)
        self.fit_width_btn.clicked.connect(lambda: self.set_fit("width"))
        self.fit_page_btn.clicked.connect(lambda: self.set_fit("page"))
        self.text_btn.toggled.connect(lambda _on: self.current_page and self._show_current_view())

    # -- what to show -----------------------------------------------------------------------------------
    def show_hit(self, hit, terms: list[str]) -> None:
        self.hit, self.terms = hit, terms
        self.title.setText(f"<b>{html.escape(hit.path.rsplit('/', 1)[-1])}</b><br><small>{html.escape(hit.path)}</small>")
        from desktop_search.core.store.keys import member_name  # on use: the store pulls in Arrow

        reader = for_path(hit.path)
        if reader is not None and reader.preview == "page" and member_name(hit.path) is None:  # an attachment: text
            self.nav.setVisible(True)
            self.page_count = 0
            self.hit_pages = []
            self._find_hit_pages(hit, terms)
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

    # -- zoom -------------------------------------------------------------------------------------------
    def zoom_by(self, steps: int) -> None:
        """Zoom in (+) or out (-) from what is shown now; the page then keeps that zoom."""
        if self.hit is None or not self.current_page:
            return
        self.fit = ""
        self.zoom = self.zoom * self.ZOOM_STEP ** steps
        self.show_page(self.current_page)

    def set_fit(self, fit: str) -> None:
        self.fit = fit
        if self.current_page:
            self.show_page(self.current_page)

    # -- next / previous page with a match --------------------------------------------------------------
    def goto_hit(self, direction: int) -> None:
        pages = [p for p in self.hit_pages if (p > self.current_page if direction > 0 else p < self.current_page)]
        if pages:
            self.show_page(pages[0] if direction > 0 else pages[-1])

    def _find_hit_pages(self, hit, terms) -> None:
        passages, passwords = self.indexed_passages, self.passwords()

        def run():
            from desktop_search.core.render import pages_with_hits

            return pages_with_hits(self._local(hit.path), terms, passages(hit.path) if passages else (), passwords)

        task = Task(run)
        task.signals.result.connect(lambda pages, h=hit: isValid(self) and self._on_hit_pages(h, pages))
        self.pools.start(self.pools.render, task)

    def _on_hit_pages(self, hit, pages: list[int]) -> None:
        if hit is not self.hit:
            return  # another result was selected meanwhile
        self.hit_pages = pages
        self._update_nav()

    def _update_nav(self) -> None:
        page = self.current_page
        self.prev_btn.setEnabled(page > 1)
        self.next_btn.setEnabled(page < self.page_count)
        self.prev_hit_btn.setEnabled(any(p < page for p in self.hit_pages))
        self.next_hit_btn.setEnabled(any(p > page for p in self.hit_pages))
        n = len(self.hit_pages)
        self.next_hit_btn.setToolTip(f"Next page with a match (F3) · {n} page{'s' if n != 1 else ''} match")

    # -- rendering --------------------------------------------------------------------------------------
    def show_page(self, page: int) -> None:
        if self.hit is None:
            return
        if self.page_count:
            page = min(max(1, page), self.page_count)
        self._seq += 1
        seq, hit = self._seq, self.hit
        passage = hit.text if page == hit.page else ""
        # The stack always has the pane's real size; the scroll area's viewport is stale while hidden.
        self._fitted_size = (self.stack.width(), self.stack.height())
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        dpr = self.devicePixelRatioF()
        fit_w = int(max(200, self._fitted_size[0] - bar - 8) * dpr)
        fit_h = int(max(200, self._fitted_size[1] - 8) * dpr)
        kwargs = {"zoom": self.zoom * dpr}
        if self.fit:
            kwargs = {"fit_width": fit_w, "fit_height": fit_h if self.fit == "page" else None}
        terms, passwords = self.terms, self.passwords()

        def run():
            from desktop_search.core.render import render_pdf_page

            r = render_pdf_page(self._local(hit.path), page, terms=terms, passage=passage, passwords=passwords, **kwargs)
            return r, _to_image(r)

        task = Task(run)
        task.signals.result.connect(lambda out, s=seq: isValid(self) and self._on_page(s, *out))
        task.signals.error.connect(lambda e, s=seq: isValid(self) and self._on_error(s, e))
        self.pools.start(self.pools.render, task)

    def _on_page(self, seq: int, r, img: QImage) -> None:
        if seq != self._seq:
            return  # a later request superseded this one
        self.page_count, self.current_page, self.shown = r.page_count, r.page, r
        self.zoom = r.zoom / self.devicePixelRatioF()
        self.page_text = r.text
        self.page_box.blockSignals(True)
        self.page_box.setMaximum(max(1, r.page_count))
        self.page_box.setValue(r.page)
        self.page_box.blockSignals(False)
        self.page_label.setText(f"of {r.page_count}" + (" · matching page" if self.hit and r.page == self.hit.page else ""))
        self.zoom_label.setText(f"{round(self.zoom * 100)}%")
        self._update_nav()
        pix = QPixmap.fromImage(img)
        pix.setDevicePixelRatio(self.devicePixelRatioF())
        self.image.setPixmap(pix)
        self._show_current_view()
        if r.passage_rects or r.term_rects:
            y = min(y0 for _x0, y0, _x1, _y1 in (r.passage_rects or r.term_rects)) / self.devicePixelRatioF()
            self.scroll.verticalScrollBar().setValue(max(0, int(y) - 60))
        self.rendered.emit(r.page)

    def _show_current_view(self) -> None:
        """The rendered page, or (Text pressed) the page's text with the same words marked."""
        if self.text_btn.isChecked():
            body = marked_html(self.page_text, self.terms)
            self.text.setHtml(f"<pre style='white-space:pre-wrap;font-family:sans-serif'>{body}</pre>")
            self.stack.setCurrentWidget(self.text)
        else:
            self.stack.setCurrentWidget(self.scroll)

    def hideEvent(self, event) -> None:
        self._refit.stop()  # a pending re-fit of a pane nobody sees (the window closed) has nothing to do
        super().hideEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        showing_pdf = self.hit is not None and self.stack.currentWidget() is self.scroll and self.fit
        w, h = self._fitted_size
        if showing_pdf and (abs(self.stack.width() - w) > 8 or (self.fit == "page" and abs(self.stack.height() - h) > 8)):
            self._refit.start()

    def _render_text(self, hit) -> None:
        self._seq += 1
        seq = self._seq

        def run():
            from desktop_search.core.render import text_context
            from desktop_search.core.store.keys import member_name

            return text_context(self._local(hit.path), hit.char_start, hit.char_end, page=hit.page,
                                member=member_name(hit.path))

        task = Task(run)
        task.signals.result.connect(lambda ctx, s=seq: isValid(self) and self._on_text(s, ctx))
        task.signals.error.connect(lambda e, s=seq: isValid(self) and self._on_error(s, e))
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
        passage = marked_html(ctx.passage, self.terms)
        body = (
            f"<pre style='white-space:pre-wrap;font-family:sans-serif'>{html.escape(ctx.before)}"
            f"<a name='hit'></a><span style='background:#fff3d6'>{passage}</span>{html.escape(ctx.after)}</pre>"
        )
        self.text.setHtml(body)
        self.text.scrollToAnchor("hit")
        self.stack.setCurrentWidget(self.text)
        self.rendered.emit(0)

    def _on_link(self, link: str) -> None:
        if link != "password" or self.hit is None or self.add_password is None:
            return
        from PySide6.QtWidgets import QInputDialog, QLineEdit

        name = self.hit.path.rsplit("/", 1)[-1]
        password, ok = QInputDialog.getText(self, "Password", f"Password for {name}:", QLineEdit.EchoMode.Password)
        if ok and password:
            self.add_password(password)
            self.show_hit(self.hit, self.terms)

    def _on_error(self, seq: int, message: str) -> None:
        if seq != self._seq:
            return
        from desktop_search.core.render import PROTECTED

        text = f"Cannot preview this file: {message.splitlines()[0]}"
        ask = PROTECTED in message and self.add_password is not None
        # Indexed with a password in an earlier session (passwords are never kept): a link asks for it again.
        self.message.setTextFormat(Qt.TextFormat.RichText if ask else Qt.TextFormat.PlainText)
        self.message.setText(f'{html.escape(text)}<br><a href="password">Enter its password…</a>' if ask else text)
        self.stack.setCurrentWidget(self.message)
        self.rendered.emit(-1)
