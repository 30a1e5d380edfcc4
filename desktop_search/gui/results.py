"""Search hits as a Qt item model: one row per file, its other matching passages as child rows.

The model is fed whole SearchResults (one per stage). Updating keeps rows that are still present in place
where possible so the list does not jump under the user's cursor: the selected file is re-selected by path
and the view keeps it at the same height. Snippets are rendered as HTML with the matched terms highlighted.
"""

from __future__ import annotations

import html
import os
import time
from dataclasses import dataclass

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QPalette, QTextDocument
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop_search.core.extract.registry import position_name

COLUMNS = ("Name", "Page", "Snippet", "Modified", "Folder")
COL_NAME, COL_PAGE, COL_SNIPPET, COL_MODIFIED, COL_FOLDER = range(5)
HIT_ROLE = Qt.ItemDataRole.UserRole + 1
SNIPPET_HTML_ROLE = Qt.ItemDataRole.UserRole + 2


def snippet_html(snippet: str) -> str:
    """``**term**`` markers -> highlighted spans, everything else escaped."""
    parts = snippet.split("**")
    out = []
    for i, part in enumerate(parts):
        esc = html.escape(part)
        out.append(f'<span style="background-color:#ffe066;color:#000">{esc}</span>' if i % 2 else esc)
    return "".join(out)


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

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        node: _Node = index.internalPointer()
        hit = node.hit
        col = index.column()
        if role == HIT_ROLE:
            return hit
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{hit.path}\n{why_it_matched(hit)}"
        if role == SNIPPET_HTML_ROLE and col == COL_SNIPPET:
            return snippet_html(hit.snippet)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        child = node.parent is not None
        if col == COL_NAME:
            if child:
                return f"  {position_name(hit.path) or 'page'} {hit.page}" if hit.page else "  passage"
            name = os.path.basename(hit.path)
            return f"{name}  (+{hit.more} more)" if hit.more else name
        if col == COL_PAGE:
            return str(hit.page) if hit.page else ""
        if col == COL_MODIFIED and not child:
            m = self._mtime(hit.path)
            return time.strftime("%Y-%m-%d %H:%M", time.localtime(m)) if m else ""
        if col == COL_SNIPPET:
            return hit.snippet.replace("**", "")
        if col == COL_FOLDER and not child:
            return os.path.dirname(hit.path)
        return None


class HtmlDelegate(QStyledItemDelegate):
    """Paints the snippet column as rich text (highlighted terms), elided to the cell."""

    def paint(self, painter, option, index) -> None:
        html_text = index.data(SNIPPET_HTML_ROLE)
        if html_text is None:
            return super().paint(painter, option, index)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        doc = QTextDocument()
        doc.setDefaultFont(opt.font)
        doc.setHtml(html_text)
        doc.setTextWidth(max(50, opt.rect.width()))
        painter.save()
        painter.translate(opt.rect.topLeft())
        painter.setClipRect(QRectF(0, 0, opt.rect.width(), opt.rect.height()))
        ctx = QAbstractTextDocumentLayout.PaintContext()
        if opt.state & QStyle.StateFlag.State_Selected:
            ctx.palette.setColor(QPalette.ColorRole.Text, opt.palette.color(QPalette.ColorRole.HighlightedText))
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        base = super().sizeHint(option, index)
        if index.data(SNIPPET_HTML_ROLE) is None:
            return base
        return QSize(base.width(), max(base.height(), option.fontMetrics.height() * 3 + 6))
