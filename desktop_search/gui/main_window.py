"""The search window: query field with search-as-you-type, progressive results (keyword, then hybrid, then
ColBERT-reranked) that keep the selected file where it is, filters, preview pane, folders panel, failures
view and a status bar with indexing progress. Widgets only adapt the Services' signals and calls.
"""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from desktop_search.core.extract.registry import filter_choices
from desktop_search.core.paths import is_under
from desktop_search.core.progress import RecentRate
from desktop_search.core.query import SearchFilter, parse_query, split_dirs
from desktop_search.formatting import format_bytes
from desktop_search.gui import help as help_pages
from desktop_search.gui import opener
from desktop_search.gui.folders import FailuresDialog, FoldersPanel
from desktop_search.gui.prefs import Key, WatchedFolder
from desktop_search.gui.preview import PreviewPane
from desktop_search.gui.results import COL_FOLDER, COL_RESULT, ResultDelegate, ResultsModel

DEBOUNCE_MS = 250
NO_MODEL_TEXT = "no model — keyword search only"
EMPTY_HINT = ('<p style="font-size:large">Nothing to search yet.</p><p><a href="add">Add a folder</a> '
              "(File → Add folder…, or Add… in the Folders panel): its documents are indexed in the background "
              "and searchable by keyword at once.</p>")
GET_MODEL_TEXT = ("Semantic search needs the BGE-M3 model (2.3 GB, once): click here or use Help → Setup wizard "
                  "to download it or import it from a folder, or run `desktop-search model download` "
                  "(`desktop-search model import DIR` for a copy on a USB stick).")
STAGE_TEXT = {
    "keyword": "keyword matches",
    "hybrid": "semantic matches (refining…)",
    "reranked": "semantic matches, reranked",
}
DATE_RANGES = [("Any time", None), ("Past week", 7), ("Past month", 31), ("Past year", 365)]
TYPES = [("All types", ()), *filter_choices()]


def fs_path(stored: str) -> str:
    """The on-disk path of a stored result path (imported on use: the store pulls in Arrow)."""
    from desktop_search.core.store import fs_path as to_disk

    return to_disk(stored)


class ResultsView(QTreeView):
    open_requested = Signal()

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.open_requested.emit()
            return
        super().keyPressEvent(event)


class SearchField(QLineEdit):
    down_pressed = Signal()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Down:
            self.down_pressed.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.clear()
            return
        super().keyPressEvent(event)


def _fmt_duration(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"



class MainWindow(QMainWindow):
    results_shown = Signal(str)  # stage, after the results list was updated (tests, screenshots)

    def __init__(self, services, open_wizard=None) -> None:
        super().__init__()
        self.services = services
        self.prefs = services.prefs
        self._open_wizard = open_wizard
        self._current_seq = 0
        self._last_stats: dict = {}
        self._pending: dict[str, int] = {}
        self._failures_dialog: FailuresDialog | None = None
        self.setWindowTitle("desktop_search")
        self.resize(1280, 800)

        # search row
        self.search_field = SearchField()
        self.search_field.setPlaceholderText('Search your documents…   "exact phrase"   -exclude   dir:folder')
        self.search_field.setClearButtonEnabled(True)
        self.folder_filter = QComboBox()
        self.type_filter = QComboBox()
        for label, _ in TYPES:
            self.type_filter.addItem(label)
        self.date_filter = QComboBox()
        for label, _ in DATE_RANGES:
            self.date_filter.addItem(label)
        self.stage_label = QLabel("")
        self.stage_label.setObjectName("stage")
        # typo fallback: the query the results are for, when it is not the one typed
        self.correction_label = QLabel("")
        self.correction_label.setObjectName("correction")
        self.correction_label.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(self.search_field, 1)
        top.addWidget(self.folder_filter)
        top.addWidget(self.type_filter)
        top.addWidget(self.date_filter)

        # results + preview
        self.model = ResultsModel(self)
        self.model.offline_of = services.offline_folder_of  # hits in a folder that is offline are greyed
        self.view = ResultsView()
        self.view.setModel(self.model)
        self.view.setItemDelegateForColumn(COL_RESULT, ResultDelegate(self.view))
        self.view.setUniformRowHeights(False)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(True)
        header = self.view.header()
        header.setSectionResizeMode(COL_RESULT, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        self.view.setColumnWidth(COL_FOLDER, 150)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.preview = PreviewPane(services.pools)
        self.open_btn = QPushButton("Open")
        self.folder_btn = QPushButton("Show in folder")
        self.copy_btn = QPushButton("Copy path")
        actions = QHBoxLayout()
        for b in (self.open_btn, self.folder_btn, self.copy_btn):
            actions.addWidget(b)
        actions.addStretch(1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addLayout(actions)
        rl.addWidget(self.preview, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.stage_label)
        ll.addWidget(self.correction_label)
        self.empty_hint = QLabel(EMPTY_HINT)
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setVisible(False)
        self.empty_hint.linkActivated.connect(lambda _l: self.folders_panel._ask_add())
        ll.addWidget(self.empty_hint)
        ll.addWidget(self.view, 1)
        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setSizes([620, 440])
        self.splitter.setObjectName("results-preview")

        central = QWidget()
        cl = QVBoxLayout(central)
        cl.addLayout(top)
        cl.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        # folders dock
        self.folders_panel = FoldersPanel()
        self.folders_dock = QDockWidget("Folders", self)
        self.folders_dock.setObjectName("folders")
        self.folders_dock.setWidget(self.folders_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.folders_dock)

        # status bar
        self.docs_label = QLabel("opening index…")
        self.failed_btn = QPushButton("0 failed")
        self.failed_btn.setFlat(True)
        self.size_label = QLabel("")
        self.device_label = QLabel("model: checking…")
        self.device_label.linkActivated.connect(lambda _link: self.open_wizard())
        self.watch_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.progress_label = QLabel("")
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.setCheckable(True)
        self.pause_btn.setVisible(False)
        sb = self.statusBar()
        for w in (self.docs_label, self.failed_btn, self.size_label, self.device_label, self.watch_label):
            sb.addWidget(w)
        for w in (self.progress_label, self.progress, self.pause_btn):
            sb.addPermanentWidget(w)

        self._build_menus()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._wire()
        self._refresh_folder_filter()
        self.folders_panel.set_folders(self.prefs.folders())
        self.preview.path_map = services.settings.paths
        self.preview.indexed_passages = services.indexed_passages
        self.preview.passwords = lambda: services.settings.document_passwords
        self.preview.add_password = services.add_document_password
        if services.shared:  # search only: the team's indexing machine owns the folders
            self.folders_dock.hide()
            self.folders_dock.toggleViewAction().setEnabled(False)
            self.add_folder_action.setEnabled(False)
            self.setWindowTitle(f"{self.windowTitle()} — shared index {services.settings.index_uri}")
        self._restore_layout()

    # -- window layout, remembered between launches -------------------------------------------------------
    def _restore_layout(self) -> None:
        """Window size and position, dock, splitter and column widths as the user left them."""
        if geometry := self.prefs.get(Key.WINDOW_GEOMETRY):
            self.restoreGeometry(geometry)
        if state := self.prefs.get(Key.WINDOW_STATE):
            self.restoreState(state)
        else:  # first launch: a narrow folders panel leaves the results and the preview room at 1280x800
            QTimer.singleShot(0, lambda: self.resizeDocks([self.folders_dock], [250], Qt.Orientation.Horizontal))
        if sizes := self.prefs.get(Key.SPLITTER_SIZES):
            self.splitter.setSizes(sizes)
        if widths := self.prefs.get(Key.RESULTS_COLUMNS):
            for col, width in enumerate(widths[: self.model.columnCount()]):
                if col != COL_RESULT:  # the result column takes whatever is left
                    self.view.setColumnWidth(col, width)

    def save_layout(self) -> None:
        self.prefs.set(Key.WINDOW_GEOMETRY, bytes(self.saveGeometry()))
        self.prefs.set(Key.WINDOW_STATE, bytes(self.saveState()))
        self.prefs.set(Key.SPLITTER_SIZES, self.splitter.sizes())
        self.prefs.set(Key.RESULTS_COLUMNS, [self.view.columnWidth(c) for c in range(self.model.columnCount())])

    # -- construction -----------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self.add_folder_action = QAction("Add folder…", self)
        m.addAction(self.add_folder_action)
        self.shared_action = QAction("Connect to a shared index…", self)
        m.addAction(self.shared_action)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        m.addAction(quit_action)
        v = self.menuBar().addMenu("&View")
        self.failures_action = QAction("Failed files…", self)
        v.addAction(self.failures_action)
        v.addAction(self.folders_dock.toggleViewAction())
        t = self.menuBar().addMenu("&Tools")
        self.settings_action = QAction("Settings…", self)
        t.addAction(self.settings_action)
        h = self.menuBar().addMenu("&Help")
        self.wizard_action = QAction("Setup wizard…", self)
        h.addAction(self.wizard_action)
        h.addSeparator()
        for text, fn in (("Query syntax", help_pages.query_syntax_html), ("Keyboard shortcuts", help_pages.shortcuts_html),
                         ("About desktop_search", lambda: help_pages.about_html(self.services.settings))):
            action = QAction(text, self)
            action.triggered.connect(lambda _c=False, t=text, f=fn: self.show_help(t, f()))
            h.addAction(action)

    def show_help(self, title: str, body: str) -> QDialog:
        """A Help page in a small resizable window (text selectable, e.g. the paths in About)."""
        dlg = QDialog(self)
        dlg.setWindowTitle(title)
        view = QTextBrowser()
        view.setHtml(body)
        view.setOpenExternalLinks(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dlg.reject)
        lay = QVBoxLayout(dlg)
        lay.addWidget(view)
        lay.addWidget(buttons)
        dlg.resize(640, 460)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()
        self.help_dialog = dlg
        return dlg

    def _wire(self) -> None:
        s = self.services
        self.search_field.textChanged.connect(lambda _t: self._debounce.start())
        self.search_field.returnPressed.connect(self.run_search)
        self.search_field.down_pressed.connect(self._focus_results)
        self._debounce.timeout.connect(self.run_search)
        for combo in (self.folder_filter, self.type_filter, self.date_filter):
            combo.currentIndexChanged.connect(lambda _i: self.run_search())
        self.view.selectionModel().currentChanged.connect(self._on_current)
        self.view.doubleClicked.connect(lambda _i: self.open_current())
        self.view.open_requested.connect(self.open_current)
        self.open_btn.clicked.connect(self.open_current)
        self.folder_btn.clicked.connect(self._show_in_folder)
        self.copy_btn.clicked.connect(self._copy_path)
        self.failed_btn.clicked.connect(self.show_failures)
        self.failures_action.triggered.connect(self.show_failures)
        self.settings_action.triggered.connect(self.show_settings)
        self.shared_action.triggered.connect(self.show_shared_index)
        self.wizard_action.triggered.connect(self.open_wizard)
        self.add_folder_action.triggered.connect(self.folders_panel._ask_add)
        self.pause_btn.toggled.connect(self._on_pause)
        self.folders_panel.add_requested.connect(self.add_folder)
        self.folders_panel.remove_requested.connect(self.remove_folder)
        self.folders_panel.rebuild_requested.connect(self.rebuild_folder)
        self.folders_panel.patterns_changed.connect(self._on_patterns)
        for seq in ("Ctrl+F", "Ctrl+L"):
            QShortcut(QKeySequence(seq), self, activated=self._focus_search)
        # Preview keys work wherever the focus is (a window shortcut wins over the results tree's Ctrl++).
        pv = self.preview
        for keys, slot in (((QKeySequence.StandardKey.ZoomIn, "Ctrl+="), lambda: pv.zoom_by(1)),
                           ((QKeySequence.StandardKey.ZoomOut,), lambda: pv.zoom_by(-1)),
                           (("Ctrl+0",), lambda: pv.set_fit("width")),
                           (("F3",), lambda: pv.goto_hit(1)), (("Shift+F3",), lambda: pv.goto_hit(-1))):
            for key in keys:
                QShortcut(QKeySequence(key), self, activated=slot)

        s.store_ready.connect(self._on_store_ready)
        s.store_failed.connect(lambda e: self.docs_label.setText(f"index unavailable: {e.splitlines()[0]}"))
        s.semantic_ready.connect(lambda d: self.device_label.setText(f"model: BGE-M3 on {d.upper()}"))
        s.semantic_unavailable.connect(self._on_semantic_unavailable)
        s.search_stage.connect(self._on_stage)
        s.search_failed.connect(lambda seq, e: seq == self._current_seq and self.stage_label.setText(f"search failed: {e.splitlines()[0]}"))
        s.index_started.connect(self._on_index_started)
        s.index_progress.connect(self._on_index_progress)
        s.index_finished.connect(self._on_index_finished)
        s.index_failed.connect(lambda e: self.statusBar().showMessage(f"indexing stopped: {e.splitlines()[0]}", 10000))
        s.stats_ready.connect(self._on_stats)
        s.model_progress.connect(self._on_model_progress)
        s.encoder_progress.connect(lambda p: self.device_label.setText(p.text()))
        s.watch_status.connect(self._on_watch_status)
        s.offline_changed.connect(self._on_offline_changed)
        s.model_done.connect(self._on_model_done)

    def _on_offline_changed(self, folders) -> None:
        """Folders that went away or came back: their hits and their row in the folders panel say so."""
        self.model.refresh_offline()
        self.folders_panel.set_offline({f.path: f.describe() for f in folders})

    def _on_watch_status(self, status: str) -> None:
        short = status.split(":")[0] if len(status) > 60 else status
        self.watch_label.setText(short)
        self.watch_label.setToolTip(status)

    def set_wizard_opener(self, opener_fn) -> None:
        self._open_wizard = opener_fn

    def open_wizard(self):
        return self._open_wizard() if self._open_wizard else None

    def _on_model_progress(self, p) -> None:
        pct = int(100 * p.bytes_done / p.bytes_total) if p.bytes_total else 0
        self.device_label.setText(f"model: {'downloading' if p.phase == 'download' else 'verifying'} {pct}%")

    def _on_model_done(self, ok: bool, message: str) -> None:
        if ok:
            self.device_label.setText("model: verified, loading…")
        else:
            self.device_label.setText(f'<a href="model">{NO_MODEL_TEXT}</a>')
            self.device_label.setToolTip(f"{message}\n\n{GET_MODEL_TEXT}")
            self.statusBar().showMessage(f"model: {message.splitlines()[0]}", 15000)

    # -- search -----------------------------------------------------------------------------------------
    def current_filter(self, dirs: tuple[str, ...] = ()) -> SearchFilter:
        days = DATE_RANGES[self.date_filter.currentIndex()][1]
        folder = self.folder_filter.currentData()
        return SearchFilter(
            folders=(folder,) if folder else (),
            kinds=TYPES[self.type_filter.currentIndex()][1],
            modified_after=time.time() - days * 86400 if days else None,
            dirs=dirs,
        )

    def run_search(self) -> None:
        self._debounce.stop()
        query, dirs = split_dirs(self.search_field.text().strip())  # dir:papers narrows to any subfolder
        if not query:
            self._current_seq = -1  # drop results of queries still in flight
            self.model.clear()
            self.stage_label.setText("")
            self._show_correction(None)
            self.preview.clear()
            return
        self._terms = parse_query(query).terms
        self._current_seq = self.services.search(query, self.current_filter(dirs))

    def _on_stage(self, seq: int, result) -> None:
        if seq != self._current_seq:
            return  # an older query's results; the user has typed on
        anchor = self._anchor()
        self.model.set_result(result)
        self._restore_anchor(anchor)
        n = len(result.hits)
        self.stage_label.setText(f"{n} file{'s' if n != 1 else ''} · {STAGE_TEXT.get(result.stage, result.stage)}")
        self._show_correction(result.corrected)
        self.results_shown.emit(result.stage)

    def _show_correction(self, corrected: str | None) -> None:
        """Say which query the results are for when the typo fallback rewrote the one typed (as the CLI does);
        the preview then highlights the corrected words."""
        self.correction_label.setText(f"showing results for: {corrected}" if corrected else "")
        self.correction_label.setVisible(bool(corrected))
        if corrected:
            self._terms = parse_query(corrected).terms

    def _anchor(self):
        """The selected file and where it sits in the viewport, so a refinement can keep it there."""
        idx = self.view.currentIndex()
        if not idx.isValid():
            return None
        top = idx.parent() if idx.parent().isValid() else idx
        hit = self.model.hit_at(top)
        return hit.path, self.view.visualRect(top).top()

    def _restore_anchor(self, anchor) -> None:
        if anchor is None:
            return
        path, y = anchor
        row = self.model.row_of(path)
        if row < 0:
            return
        idx = self.model.index(row, 0)
        self.view.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        # scroll so the row stays at the same height in the viewport
        bar = self.view.verticalScrollBar()
        bar.setValue(bar.value() + self.view.visualRect(idx).top() - y)

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        hit = self.model.hit_at(current)
        if hit is not None:
            self.preview.show_hit(hit, getattr(self, "_terms", []))

    def current_hit(self):
        return self.model.hit_at(self.view.currentIndex())

    def _reachable(self, hit) -> str | None:
        """The hit's file on this machine (through the path mapping), or None after saying why it is not there."""
        folder = self.services.offline_folder_of(hit.path)
        if folder is not None:
            self._folder_offline(hit.path, folder)
            return None
        located = self.services.settings.paths.locate(hit.path)
        if located.problem:
            self.statusBar().showMessage(located.problem, 15000)
            return None
        return located.local

    def open_current(self) -> None:
        hit = self.current_hit()
        path = self._reachable(hit) if hit is not None else None
        if path is not None and not opener.open_document(path, hit.page):
            self._open_failed(path, "open")

    def _show_in_folder(self) -> None:
        hit = self.current_hit()
        path = self._reachable(hit) if hit is not None else None
        if path is not None and not opener.show_in_folder(path):
            self._open_failed(path, "folder")

    def _open_failed(self, path: str, what: str) -> QMessageBox:
        """No program took the file (or folder): say so here, not on stderr, and offer a way on."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Cannot open")
        target = "its folder" if what == "folder" else "this file"
        box.setText(f"No program on this computer would open {target}:\n{path}")
        box.setInformativeText("Copy the path, or choose the program to open it with.")
        copy = box.addButton("Copy path", QMessageBox.ButtonRole.ActionRole)
        choose = box.addButton("Open with…", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Close)
        copy.clicked.connect(lambda: self._copy_text(path))
        folder = os.path.dirname(path) if what == "folder" else path
        choose.clicked.connect(lambda: self._choose_app(folder))
        box.setModal(False)
        box.open()
        self.open_failure_box = box
        return box

    def _folder_offline(self, stored: str, folder) -> QMessageBox:
        """Open / Show in folder on a hit whose watched folder is offline: say so (not "no program would open
        it"), and offer the path."""
        path = fs_path(stored)
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Information)
        box.setWindowTitle("Folder offline")
        box.setText(f"This file cannot be opened now: its folder is offline.\n{path}")
        state = folder.describe()
        box.setInformativeText(f"{state[:1].upper()}{state[1:]}.")
        copy = box.addButton("Copy path", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Close)
        copy.clicked.connect(lambda: self._copy_text(path))
        box.setModal(False)
        box.open()
        self.statusBar().showMessage(f"folder offline: {folder.path}", 15000)
        self.open_failure_box = box
        return box

    def _choose_app(self, path: str) -> None:
        app, _ = QFileDialog.getOpenFileName(self, "Open with which program?")
        if app:
            self.open_with(path, app)

    def open_with(self, path: str, app: str) -> bool:
        ok = opener.open_with(app, path)
        if not ok:
            self.statusBar().showMessage(f"{os.path.basename(app)} could not be started", 8000)
        return ok

    def _copy_path(self) -> None:
        hit = self.current_hit()
        if hit is not None:
            self._copy_text(fs_path(self.services.settings.paths.to_local(hit.path)))

    def _copy_text(self, path: str) -> None:
        QGuiApplication.clipboard().setText(path)
        self.statusBar().showMessage("path copied", 2000)

    def _focus_search(self) -> None:
        self.search_field.setFocus()
        self.search_field.selectAll()

    def _focus_results(self) -> None:
        if self.model.rowCount():
            self.view.setFocus()
            if not self.view.currentIndex().isValid():
                self.view.setCurrentIndex(self.model.index(0, 0))

    # -- folders & indexing -----------------------------------------------------------------------------
    def _refresh_folder_filter(self) -> None:
        current = self.folder_filter.currentData()
        self.folder_filter.blockSignals(True)
        self.folder_filter.clear()
        self.folder_filter.addItem("All folders", None)
        for f in self.prefs.folders():
            self.folder_filter.addItem(os.path.basename(f.path.rstrip("/\\")) or f.path, f.path)
        i = self.folder_filter.findData(current)
        self.folder_filter.setCurrentIndex(max(0, i))
        self.folder_filter.blockSignals(False)

    def confirm(self, title: str, text: str) -> bool:
        """Ask before something the user may not have meant (tests answer through this one method)."""
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel
        return QMessageBox.question(self, title, text, buttons, QMessageBox.StandardButton.Cancel) == QMessageBox.StandardButton.Yes

    def add_folder(self, path: str) -> None:
        path = os.path.abspath(path)
        folders = self.prefs.folders()
        if any(f.path == path for f in folders):
            return
        outer = next((f.path for f in folders if is_under(path, f.path)), None)
        inner = [f.path for f in folders if is_under(f.path, path)]
        if outer is not None:
            note = f"{path}\nis inside {outer}, which is already searched: its files are in the index already."
        elif inner:
            note = f"{path}\ncontains {', '.join(inner)}, already searched: those files are in the index already."
        else:
            note = ""
        if note and not self.confirm("Folder already covered", note + "\n\nAdd it anyway (e.g. for its own patterns)?"):
            return
        folders.append(WatchedFolder(path))
        self.prefs.set_folders(folders)
        self._refresh_folder_filter()
        self.folders_panel.set_folders(folders, self._last_stats.get("folders"))
        self.services.index_folders([folders[-1]])
        self.services.watch_folders()

    def remove_folder(self, path: str) -> None:
        folders = [f for f in self.prefs.folders() if f.path != path]
        overlapping = [f for f in folders if is_under(f.path, path) or is_under(path, f.path)]
        kept = f"\nFiles also inside {', '.join(f.path for f in overlapping)} stay searchable." if overlapping else ""
        if not self.confirm("Remove folder", f"Stop searching {path}?\nIts files leave the index (your files are not "
                            f"touched).{kept}"):
            return
        self.prefs.set_folders(folders)
        self._refresh_folder_filter()
        # Forget only what no remaining folder covers, then let the overlapping folders reconcile (their own
        # include/exclude patterns decide what of the removed folder they keep).
        self.services.forget_paths([path], keep_under=[f.path for f in folders],
                                   then=lambda: self.services.index_folders(overlapping))
        self.services.watch_folders()

    def rebuild_folder(self, path: str) -> None:
        folder = next((f for f in self.prefs.folders() if f.path == path), None)
        if folder is None:
            return
        if not self.confirm("Rebuild folder", f"Rebuild the index of {path}?\nEvery file in it is read again; text "
                            "that was encoded before is not encoded again."):
            return
        self.services.forget_paths([path], then=lambda: self.services.index_folders([folder]))

    def _on_patterns(self, folder: WatchedFolder) -> None:
        folders = [folder if f.path == folder.path else f for f in self.prefs.folders()]
        self.prefs.set_folders(folders)
        self.services.index_folders([folder])
        self.services.watch_folders()

    def _on_pause(self, paused: bool) -> None:
        self.services.set_paused(paused)
        # "pausing…" until the indexer reports that it has stopped (within one file or encoder batch)
        self.pause_btn.setText("Pausing…" if paused else "Pause")
        if paused:
            self.progress_label.setText("pausing…")

    def _on_index_started(self) -> None:
        self.progress.setVisible(True)
        self.pause_btn.setVisible(True)
        self.progress.setRange(0, 0)
        self._files_rate, self._chunks_rate = RecentRate(), RecentRate()

    def _on_index_progress(self, p) -> None:
        watched = {f.path for f in self.prefs.folders()}
        job = [path for path in self.services.current_job_paths if path in watched]
        if len(job) == 1 and p.files_total:
            # files of the folder being indexed that are not done yet (unchanged ones were never pending)
            left = max(0, p.files_total - p.files_done)
            if self._pending.get(job[0]) != left:
                self._pending = {job[0]: left}
                self.folders_panel.set_folders(self.prefs.folders(), self._last_stats.get("folders"), self._pending)
        self.progress_label.setText(self._progress_text(p))
        encoding = p.phase == "encoding" and p.chunks_to_encode
        done, total = (p.chunks_encoded, p.chunks_to_encode) if encoding else (p.files_done, p.files_total)
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        else:
            self.progress.setRange(0, 0)  # busy, no count to show

    def _progress_text(self, p) -> str:
        """What the indexer is doing now, counts that move, and an ETA from the pace of the last seconds."""
        if not hasattr(self, "_files_rate"):
            self._files_rate, self._chunks_rate = RecentRate(), RecentRate()
        now = time.monotonic()
        self._files_rate.add(now, p.files_done)
        self._chunks_rate.add(now, p.chunks_encoded)
        files = f"{p.files_done}/{p.files_total} files" if p.files_total else ""
        if p.phase == "paused":
            self.pause_btn.setText("Resume")
            return "paused" + (f" · {files}" if files else "")
        if self.pause_btn.isChecked():
            return "pausing…"
        if p.phase == "scanning":
            return "looking for changed files…"
        if p.phase == "optimizing":
            return "tidying the index…"
        if p.phase == "encoding" and p.chunks_to_encode:
            left, rate = p.chunks_to_encode - p.chunks_encoded, self._chunks_rate
            more = "+" if p.files_done < p.files_total else ""  # files still to read may add passages
            what = f"encoding {p.chunks_encoded}/{p.chunks_to_encode}{more} passages" + (f" · {files}" if files else "")
        elif p.phase in ("indexing", "encoding"):
            left, rate = p.files_total - p.files_done, self._files_rate
            what = f"indexing {files}" if files else "indexing"
        else:  # a phase this window does not know yet (e.g. OCR): say it as the indexer names it
            return f"{p.phase} · {files}" if files else p.phase
        eta = rate.eta_s(left) if left > 0 else None
        note = f" · {p.note}" if p.note else ""  # e.g. "scan.pdf: OCR page 3/40"
        return what + (f" · about {_fmt_duration(eta)} left" if eta else "") + note

    def _on_index_finished(self, report) -> None:
        self._pending = {}
        if not self.services.indexing:
            self.progress.setVisible(False)
            self.pause_btn.setVisible(False)
            self.pause_btn.setChecked(False)
            self.progress_label.setText("")
        msg = f"indexed {report.indexed} files, {report.failed} failed, {report.unchanged} unchanged"
        self.statusBar().showMessage(msg, 8000)
        if self.search_field.text().strip():
            self.run_search()

    def _on_stats(self, stats: dict) -> None:
        self._last_stats = stats
        # An empty index and no folders: say how to start, in the place results would be.
        self.empty_hint.setVisible(stats["indexed"] == 0 and not self.prefs.folders())
        self.docs_label.setText(f"{stats['indexed']} documents")
        self.failed_btn.setText(f"{stats['failed']} failed")
        self.size_label.setText(f"index {format_bytes(stats['index_bytes'])}")
        self.folders_panel.set_folders(self.prefs.folders(), stats.get("folders"), self._pending)
        if self._failures_dialog is not None:
            self._failures_dialog.set_failures(stats["failures"])

    def _on_store_ready(self) -> None:
        self.docs_label.setText("index ready")
        if self.search_field.text().strip():
            # A query typed while the index opened: show its results before reconciling and watching start
            # competing for the CPU (or after a second at most).
            self.run_search()
            once = {"done": False}
            fallback = QTimer(self)  # stopped with the window (closeEvent) if the results never come
            fallback.setSingleShot(True)

            def start_background(*_args) -> None:
                if not once["done"]:
                    once["done"] = True
                    fallback.stop()
                    self.results_shown.disconnect(start_background)
                    self._start_background_work()

            self.results_shown.connect(start_background)
            fallback.timeout.connect(start_background)
            fallback.start(1000)
            self._background_fallback = fallback
        else:
            self._start_background_work()

    def _start_background_work(self) -> None:
        folders = self.prefs.folders()
        if folders:
            self.services.index_folders(folders)  # reconcile with changes made while the app was closed
        self.services.watch_folders()

    def _on_semantic_unavailable(self, why: str) -> None:
        from desktop_search.core.encoder import model_state

        state = model_state(self.services.settings.model_dir)
        if state == "not installed":
            self.device_label.setText(f'<a href="model">{NO_MODEL_TEXT}</a>')
            why = f"{why}\n\n{GET_MODEL_TEXT}"
        elif state != "ready":  # "incomplete" or "not verified": what it is, not always "missing"
            self.device_label.setText(f"model: {state} (keyword search)")
            why = f"{why}\n\n{GET_MODEL_TEXT}"
        else:  # installed, but it cannot run here: say why, not "not installed"
            self.device_label.setText("semantic search off (keyword search)")
            self.statusBar().showMessage(f"semantic search is off: {why.splitlines()[0]}")
        self.device_label.setToolTip(why)

    def show_failures(self) -> FailuresDialog:
        if self._failures_dialog is None:
            dlg = FailuresDialog(self)
            dlg.retry_requested.connect(self._retry)
            dlg.open_requested.connect(lambda p: opener.open_document(fs_path(p)))
            dlg.password_given.connect(self._unlock)
            self._failures_dialog = dlg
        self._failures_dialog.set_failures(self._last_stats.get("failures", []))
        self._failures_dialog.show()
        return self._failures_dialog

    def _unlock(self, password: str, paths: list[str]) -> None:
        """A password for protected files: tried on them now (and on any protected file for this session)."""
        self.services.add_document_password(password)
        self._retry(paths)

    def _retry(self, paths: list[str]) -> None:
        if paths:
            self.services.forget_paths(paths, then=lambda: self.services.index_paths(paths))

    def show_settings(self) -> None:
        from desktop_search.gui.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.prefs, self)
        if dlg.exec():
            self.services.set_weights(tuple(self.prefs.get(Key.WEIGHTS)))
            self.run_search()

    def show_shared_index(self) -> None:
        from desktop_search.gui.shared_dialog import SharedIndexDialog

        if SharedIndexDialog(self.prefs, self).exec():
            where = self.prefs.get(Key.SHARED_INDEX) or "your own index"
            self.statusBar().showMessage(f"{where} opens when the window is opened again", 15000)

    def closeEvent(self, event) -> None:
        if getattr(self, "_background_fallback", None) is not None:
            self._background_fallback.stop()
        self.save_layout()
        self.services.shutdown()
        super().closeEvent(event)
