"""Search hits as a Qt item model: one row per file, its other matching passages as child rows.

The model is fed whole SearchResults (one per stage). Updating keeps rows that are still present in place
where possible so the list does not jump under the user's cursor: the selected file is re-selected by path
and the view keeps it at the same height. Each result is drawn as a heading line (name, page, date, "+N more")
over its snippet, with the matched terms highlighted; the folder is a second, narrower column. A hit whose
watched folder is offline (an unplugged drive) stays listed, greyed and marked "offline", with the folder's
state in its tooltip.
"""

from __future__ import annotations

import html
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QPalette,
    QTextDocument,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop_search.core.extract.registry import position_name

COLUMNS = ("Result", "Folder")
COL_RESULT, COL_FOLDER = range(2)
HIT_ROLE = Qt.ItemDataRole.UserRole + 1
SNIPPET_HTML_ROLE = Qt.ItemDataRole.UserRole + 2
HEADING_ROLE = Qt.ItemDataRole.UserRole + 3  # (name, details, count): the first line of a result
OFFLINE_ROLE = Qt.ItemDataRole.UserRole + 4  # the offline folder's state (a sentence), or None
OFFLINE_MARK = "offline"
MARK_STYLE = "background-color:#ffe066;color:#000"


def snippet_html(snippet: str) -> str:
    """``**term**`` markers -> highlighted spans, everything else escaped."""
    parts = snippet.split("**")
    out = []
    for i, part in enumerate(parts):
        esc = html.escape(part)
        out.append(f'<span style="{MARK_STYLE}">{esc}</span>' if i % 2 else esc)
    return "".join(out)


def more_text(hit) -> str:
    """The count shown beside a file: exactly the passages its expansion lists."""
    n = len(hit.others)
    return f"+{n} more" if n else ""


def why_it_matched(hit) -> str:
    s = hit.scores
    fmt = lambda v: "—" if v is None else f"{v:.3f}"
    return (
        f"score {hit.score:.3f}\n"
        f"dense (meaning) {fmt(s.get('dense'))} · sparse (weighted words) {fmt(s.get('sparse'))}\n"
        f"ColBERT (token by token) {fmt(s.get('colbert'))} · BM25 (keywords) {fmt(s.get('bm25'))}"
    )


@dataclass
class _Node:
    hit: object
    parent: "_Node | None"
    row: int
    children: list["_Node"]


class ResultsModel(QAbstractItemModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._roots: list[_Node] = []
        self._mtimes: dict[str, float] = {}
        self.stage = ""
        # stored path -> the offline folder it is in (core.watcher.OfflineFolder), or None; set by the window
        self.offline_of: Callable[[str], Any] = lambda _path: None

    def refresh_offline(self) -> None:
        """Watched folders went offline or came back: redraw every row's mark."""
        for node in self._roots:
            last = len(COLUMNS) - 1
            self.dataChanged.emit(self.createIndex(node.row, 0, node), self.createIndex(node.row, last, node))
            if node.children:
                first, end = node.children[0], node.children[-1]
                self.dataChanged.emit(self.createIndex(first.row, 0, first), self.createIndex(end.row, last, end))

    # -- feeding ----------------------------------------------------------------------------------------
    def set_result(self, result) -> None:
        self.stage = result.stage
        self.beginResetModel()
        self._roots = []
        for i, hit in enumerate(result.hits):
            node = _Node(hit, None, i, [])
            node.children = [_Node(o, node, j, []) for j, o in enumerate(hit.others)]
            self._roots.append(node)
        self._mtimes = {}
        self.endResetModel()

    def clear(self) -> None:
        self.beginResetModel()
        self._roots = []
        self.stage = ""
        self.endResetModel()

    def paths(self) -> list[str]:
        return [n.hit.path for n in self._roots]

    def row_of(self, path: str) -> int:
        for n in self._roots:
            if n.hit.path == path:
                return n.row
        return -1

    def hit_at(self, index: QModelIndex):
        return index.internalPointer().hit if index.isValid() else None

    # -- Qt model API -----------------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: QModelIndex = QModelIndex()) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        nodes = parent.internalPointer().children if parent.isValid() else self._roots
        return self.createIndex(row, column, nodes[row])

    def parent(self, index: QModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        node: _Node = index.internalPointer()
        if node.parent is None:
            return QModelIndex()
        return self.createIndex(node.parent.row, 0, node.parent)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        if parent.column() > 0:
            return 0
        if not parent.isValid():
            return len(self._roots)
        return len(parent.internalPointer().children)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def _mtime(self, path: str) -> float | None:
        if path not in self._mtimes:
            try:
                self._mtimes[path] = os.stat(path).st_mtime
            except OSError:
                self._mtimes[path] = None  # type: ignore[assignment]
        return self._mtimes[path]

    def _date(self, path: str) -> str:
        m = self._mtime(path)
        return time.strftime("%Y-%m-%d", time.localtime(m)) if m else ""

    def heading(self, index: QModelIndex) -> tuple[str, str, str]:
        """(name, details, count) of a result's first line; a child row (another passage) has no name."""
        node: _Node = index.internalPointer()
        hit = node.hit
        page = f"{position_name(hit.path) or 'page'} {hit.page}" if hit.page else ""
        offline = OFFLINE_MARK if self.offline_of(hit.path) is not None else ""
        if node.parent is not None:
            return "", " · ".join(x for x in (page or "passage", offline) if x), ""
        details = " · ".join(x for x in (page, self._date(hit.path), offline) if x)
        return os.path.basename(hit.path), details, more_text(hit)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        node: _Node = index.internalPointer()
        hit = node.hit
        col = index.column()
        if role == HIT_ROLE:
            return hit
        if role == OFFLINE_ROLE:
            folder = self.offline_of(hit.path)
            return folder.describe() if folder is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            folder = self.offline_of(hit.path)
            state = f"{folder.describe()}\n" if folder is not None else ""
            return f"{state}{hit.path}\n{why_it_matched(hit)}"
        if role == Qt.ItemDataRole.ForegroundRole and self.offline_of(hit.path) is not None:
            return QGuiApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if col == COL_RESULT and role == SNIPPET_HTML_ROLE:
            return snippet_html(hit.snippet)
        if col == COL_RESULT and role == HEADING_ROLE:
            return self.heading(index)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if col == COL_RESULT:  # plain text (accessibility, copy): the heading, then the snippet
            name, details, count = self.heading(index)
            first = "  ".join(x for x in (name, details, count) if x)
            return f"{first}\n{hit.snippet.replace('**', '')}"
        if col == COL_FOLDER and node.parent is None:
            return os.path.dirname(hit.path)
        return None


class ResultDelegate(QStyledItemDelegate):
    """Paints a result as a search engine does: the file name, page and date (and "+N more") on one line, the
    highlighted snippet on the lines below, wrapped to the column's width. The name is elided in the middle
    only as much as the line needs; the count always stays visible."""

    SNIPPET_LINES = 2
    PAD = 3

    def paint(self, painter, option, index) -> None:
        heading = index.data(HEADING_ROLE)
        if heading is None:
            return super().paint(painter, option, index)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        offline = index.data(OFFLINE_ROLE) is not None  # greyed: found, but its folder is not there now
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        text_color = opt.palette.color(QPalette.ColorGroup.Disabled, role) if offline else opt.palette.color(role)
        dim = QColor(text_color)
        dim.setAlpha(170)
        rect = opt.rect.adjusted(self.PAD, self.PAD, -self.PAD, -self.PAD)
        name, details, count = heading
        bold = QFont(opt.font)
        bold.setBold(True)
        fm, bfm = QFontMetrics(opt.font), QFontMetrics(bold)
        gap = fm.horizontalAdvance("  ")
        right = fm.horizontalAdvance(count) if count else 0
        x, line_h = rect.left(), max(fm.height(), bfm.height())
        painter.save()
        if name:
            shown = self.shown_name(heading, rect.width(), opt.font)
            painter.setFont(bold)
            painter.setPen(text_color)
            painter.drawText(QRect(x, rect.top(), rect.width(), line_h), Qt.AlignmentFlag.AlignLeft, shown)
            x += bfm.horizontalAdvance(shown) + gap
        painter.setFont(opt.font)
        painter.setPen(dim)
        if details:
            painter.drawText(QRect(x, rect.top(), max(0, rect.right() - x - right), line_h),
                             Qt.AlignmentFlag.AlignLeft, fm.elidedText(details, Qt.TextElideMode.ElideRight, max(0, rect.right() - x - right)))
        if count:
            painter.drawText(QRect(rect.right() - right, rect.top(), right + 1, line_h), Qt.AlignmentFlag.AlignLeft, count)
        hit = index.data(HIT_ROLE)
        doc = self.snippet_document(hit.snippet if hit is not None else "", rect.width(), opt.font)
        top = rect.top() + line_h + 1
        painter.translate(rect.left(), top)
        # Clip after the last whole line: a third line's highlights must not peek in as stray underlines.
        layout = doc.firstBlock().layout()
        height = rect.bottom() - top + 1
        if layout is not None and layout.lineCount() > self.SNIPPET_LINES:
            last = layout.lineAt(self.SNIPPET_LINES - 1)
            height = min(height, int(last.y() + last.height()))
        painter.setClipRect(QRectF(0, 0, rect.width(), height))
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.palette.setColor(QPalette.ColorRole.Text, text_color)
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    @classmethod
    def snippet_document(cls, snippet: str, width: int, font: QFont) -> QTextDocument:
        """The snippet laid out as drawn in a column ``width`` pixels wide. Only its first lines are shown, so when
        its first matched term would fall below them (a long passage whose match comes late) the snippet starts
        a little before that term instead, after "…": a result never shows lines without the words it matched."""

        def laid_out(text: str) -> QTextDocument:
            doc = QTextDocument()
            doc.setDefaultFont(font)
            doc.setDocumentMargin(0)
            doc.setHtml(snippet_html(text))
            doc.setTextWidth(max(50, width))
            doc.documentLayout().documentSize()  # lays the text out (lazily done otherwise: no lines to ask about)
            return doc

        text = " ".join(snippet.split())  # as HTML shows it: runs of white space are one space
        doc = laid_out(text)
        first = text.find("**")  # no marker before it: its offset is the term's position in the drawn text
        layout = doc.firstBlock().layout()
        if first < 0 or layout is None or layout.lineCount() <= cls.SNIPPET_LINES:
            return doc
        if layout.lineForTextPosition(first).lineNumber() < cls.SNIPPET_LINES:
            return doc
        per_line = layout.lineAt(0).textLength()
        # A third of a line of context before the term, more where the snippet ends soon after it (the lines shown
        # stay full), never past the term.
        start = max(0, min(first - per_line // 3, len(text) - per_line * (cls.SNIPPET_LINES - 1) - per_line * 9 // 10))
        space = text.rfind(" ", 0, start + 1)
        start = space + 1 if space >= 0 else start
        return laid_out("… " + text[start:])

    @classmethod
    def visible_text(cls, snippet: str, width: int, font: QFont) -> str:
        """The snippet's text on the lines a result shows (plain text, for tests and accessibility checks)."""
        doc = cls.snippet_document(snippet, width, font)
        layout, plain = doc.firstBlock().layout(), doc.toPlainText()
        lines = [layout.lineAt(i) for i in range(min(layout.lineCount(), cls.SNIPPET_LINES))]
        return " ".join(plain[ln.textStart():ln.textStart() + ln.textLength()].strip() for ln in lines)

    @staticmethod
    def shown_name(heading: tuple[str, str, str], width: int, font: QFont) -> str:
        """The file name as drawn in a line ``width`` pixels wide: whole when it fits beside the details and the
        count, else elided in the middle (the count and the extension stay visible)."""
        name, details, count = heading
        bold = QFont(font)
        bold.setBold(True)
        fm, bfm = QFontMetrics(font), QFontMetrics(bold)
        gap = fm.horizontalAdvance("  ")
        avail = width - (gap + fm.horizontalAdvance(count) if count else 0)
        if bfm.horizontalAdvance(name) + (gap + fm.horizontalAdvance(details) if details else 0) > avail:
            avail -= gap + min(fm.horizontalAdvance(details), width // 4) if details else 0  # details give way first
        return bfm.elidedText(name, Qt.TextElideMode.ElideMiddle, max(avail, bfm.horizontalAdvance("…") * 4))

    def sizeHint(self, option, index) -> QSize:
        base = super().sizeHint(option, index)
        if index.data(HEADING_ROLE) is None:
            return base
        line = QFontMetrics(option.font).height()
        return QSize(base.width(), line * (1 + self.SNIPPET_LINES) + 2 * self.PAD + 2)
