"""Folders panel (watched folders with include/exclude patterns and per-folder counts, add/remove/rebuild) and
the failures view (every failed file with its reason and detail; retry, open).
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QPushButton,
    QTableView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_search.gui.prefs import WatchedFolder

REASON_TEXT = {
    "encrypted": "password-protected",
    "no_text": "no text (scanned or empty)",
    "corrupt": "damaged file",
    "unsupported": "unsupported type",
    "too_large": "too large",
    "timeout": "took too long",
    "permission_denied": "no permission",
    "decode_error": "unknown text encoding",
}


def _patterns(text: str) -> list[str]:
    return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]


class FolderDialog(QDialog):
    """Edit one watched folder's include/exclude patterns."""

    def __init__(self, folder: WatchedFolder, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Folder: {folder.path}")
        self.include = QLineEdit(", ".join(folder.include))
        self.include.setPlaceholderText("all supported files (e.g. *.pdf, *.md)")
        self.exclude = QLineEdit(", ".join(folder.exclude))
        self.exclude.setPlaceholderText("nothing (e.g. drafts/*, *.log)")
        form = QFormLayout(self)
        form.addRow("Include", self.include)
        form.addRow("Exclude", self.exclude)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.setMinimumWidth(560)  # room for a few patterns and the placeholder examples
        self.folder = folder

    def result_folder(self) -> WatchedFolder:
        return WatchedFolder(self.folder.path, _patterns(self.include.text()), _patterns(self.exclude.text()))


class FoldersPanel(QWidget):
    """The list of watched folders. Emits what the user asked for; the window wires it to the services."""

    add_requested = Signal(str)
    remove_requested = Signal(str)
    rebuild_requested = Signal(str)
    patterns_changed = Signal(object)  # WatchedFolder

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Folder", "Indexed", "Failed", "Pending"])
        self.tree.setRootIsDecorated(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setStretchLastSection(False)
        for col in (1, 2, 3):
            self.tree.header().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.add_btn = QPushButton("Add…")
        self.remove_btn = QPushButton("Remove")
        self.edit_btn = QPushButton("Patterns…")
        self.rebuild_btn = QPushButton("Rebuild")
        row = QGridLayout()  # two by two: the panel stays narrow enough for results and preview at 1280 px
        for i, b in enumerate((self.add_btn, self.remove_btn, self.edit_btn, self.rebuild_btn)):
            row.addWidget(b, i // 2, i % 2)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tree, 1)
        lay.addLayout(row)
        self._folders: list[WatchedFolder] = []
        self._offline: dict[str, str] = {}  # folder path -> its state, said in the tooltip
        self.add_btn.clicked.connect(self._ask_add)
        self.remove_btn.clicked.connect(lambda: self._with_selected(self.remove_requested.emit))
        self.rebuild_btn.clicked.connect(lambda: self._with_selected(self.rebuild_requested.emit))
        self.edit_btn.clicked.connect(self._edit)

    def set_folders(self, folders: list[WatchedFolder], counts: dict[str, dict[str, int]] | None = None,
                    pending: dict[str, int] | None = None) -> None:
        self._folders = list(folders)
        selected = self.selected_path()
        self.tree.clear()
        for f in folders:
            c = (counts or {}).get(f.path, {})
            item = QTreeWidgetItem([f.path, str(c.get("indexed", 0)), str(c.get("failed", 0)),
                                    str((pending or {}).get(f.path, c.get("pending", 0)))])
            pats = []
            if f.include:
                pats.append("include " + ", ".join(f.include))
            if f.exclude:
                pats.append("exclude " + ", ".join(f.exclude))
            item.setToolTip(0, f.path + "\n" + ("; ".join(pats) or "all supported files"))
            self._mark_offline(item)
            self.tree.addTopLevelItem(item)
            if f.path == selected:
                self.tree.setCurrentItem(item)

    def set_offline(self, states: dict[str, str]) -> None:
        """Grey the watched folders that are not there now (``states``: path -> the folder's state in one line);
        the others are drawn as usual again."""
        self._offline = dict(states)
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            if it is not None:
                self._mark_offline(it)

    def is_marked_offline(self, path: str) -> bool:
        return any(it is not None and it.text(0) == path and it.data(0, Qt.ItemDataRole.UserRole)
                   for it in (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())))

    def _mark_offline(self, item: QTreeWidgetItem) -> None:
        state = self._offline.get(item.text(0))
        tip = item.toolTip(0).split("\n\n", 1)[0]
        item.setData(0, Qt.ItemDataRole.UserRole, state)
        item.setToolTip(0, tip + ("\n\n" + state if state else ""))
        brush = self.palette().brush(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text) if state else QBrush()
        for col in range(self.tree.columnCount()):
            item.setForeground(col, brush)

    def counts_for(self, path: str) -> tuple[int, int, int]:
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            if it is not None and it.text(0) == path:
                return int(it.text(1)), int(it.text(2)), int(it.text(3))
        raise KeyError(path)

    def selected_path(self) -> str | None:
        it = self.tree.currentItem()
        return it.text(0) if it else None

    def _with_selected(self, fn) -> None:
        path = self.selected_path()
        if path:
            fn(path)

    def _ask_add(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder to search")
        if path:
            self.add_requested.emit(path)

    def _edit(self) -> None:
        path = self.selected_path()
        folder = next((f for f in self._folders if f.path == path), None)
        if folder is None:
            return
        dlg = FolderDialog(folder, self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.patterns_changed.emit(dlg.result_folder())


class FailuresDialog(QDialog):
    """Every file that could not be indexed, why, and what can be done."""

    retry_requested = Signal(list)
    open_requested = Signal(str)
    password_given = Signal(str, list)  # a password for the selected protected files, and those files

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Files that could not be indexed")
        self.resize(900, 420)
        self.model = QStandardItemModel(0, 3)
        self.model.setHorizontalHeaderLabels(["File", "Reason", "Detail"])
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.retry_btn = QPushButton("Retry selected")
        self.open_btn = QPushButton("Open")
        self.password_btn = QPushButton("Enter password…")
        self.password_btn.setToolTip("Open the selected password-protected PDFs with their password and index "
                                     "them (the password is kept for this session only, never written anywhere)")
        self.password_btn.setEnabled(False)
        close = QPushButton("Close")
        row = QHBoxLayout()
        row.addWidget(self.retry_btn)
        row.addWidget(self.open_btn)
        row.addWidget(self.password_btn)
        row.addStretch(1)
        row.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addLayout(row)
        close.clicked.connect(self.accept)
        self.retry_btn.clicked.connect(lambda: self.retry_requested.emit(self.selected_paths()))
        self.open_btn.clicked.connect(self._open)
        self.password_btn.clicked.connect(self._ask_password)
        self.table.doubleClicked.connect(lambda _i: self._open())
        self.table.selectionModel().selectionChanged.connect(lambda *_: self.password_btn.setEnabled(
            bool(self.locked_paths())))

    def set_failures(self, failures: list[tuple[str, str, str]]) -> None:
        self.model.removeRows(0, self.model.rowCount())
        for path, reason, detail in failures:
            name = QStandardItem(os.path.basename(path))
            name.setToolTip(path)
            name.setData(path, Qt.ItemDataRole.UserRole)
            r = QStandardItem(REASON_TEXT.get(reason, reason))
            r.setData(reason, Qt.ItemDataRole.UserRole)
            self.model.appendRow([name, r, QStandardItem(detail)])
        self.table.resizeColumnsToContents()

    def rows(self) -> list[tuple[str, str, str]]:
        return [
            (self.model.item(i, 0).data(Qt.ItemDataRole.UserRole), self.model.item(i, 1).data(Qt.ItemDataRole.UserRole),
             self.model.item(i, 2).text())
            for i in range(self.model.rowCount())
        ]

    def selected_paths(self, reason: str | None = None) -> list[str]:
        """The selected files (those that failed for ``reason`` only, when given)."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in rows
                if reason is None or self.model.item(r, 1).data(Qt.ItemDataRole.UserRole) == reason]

    def locked_paths(self) -> list[str]:
        """The selected files that failed as password-protected."""
        return self.selected_paths("encrypted")

    def _ask_password(self) -> None:
        paths = self.locked_paths()
        if not paths:
            return
        what = os.path.basename(paths[0]) if len(paths) == 1 else f"the {len(paths)} selected files"
        password, ok = QInputDialog.getText(self, "Password", f"Password for {what}:", QLineEdit.EchoMode.Password)
        if ok and password:
            self.password_given.emit(password, paths)

    def _open(self) -> None:
        paths = self.selected_paths()
        if paths:
            self.open_requested.emit(paths[0])
