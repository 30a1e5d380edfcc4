"""First-run wizard: welcome, hardware, model (download or import, verified), OCR models for more scripts, folders,
done.

Pages fill themselves in ``initializePage`` and check in ``validatePage``; everything is saved on finish, with
the persisted ``setup_completed`` flag (Picard's setup wizard pattern). The download runs in the Services'
model pool, not in the wizard, so it carries on after the wizard closes: the chosen folders are keyword-indexed
at once and semantic encoding catches up when the model is verified. Re-openable from Help → Setup wizard.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QStandardPaths, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QStyle,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from desktop_search import config
from desktop_search.formatting import format_bytes, format_duration
from desktop_search.gui.prefs import Key, WatchedFolder
from desktop_search.gui.workers import Task

if TYPE_CHECKING:  # the page imports it when shown (start-up stays light)
    from desktop_search.core.hardware import Hardware


def progress_text(p) -> str:
    """'412.0 MB of 2.2 GB · 8.5 MB/s · 3 min left · pytorch_model.bin'"""
    eta = f" · {format_duration(p.eta_s)} left" if p.eta_s else ""
    verb = {"verify": "checking", "import": "copying", "download": "downloading"}.get(p.phase, p.phase)
    return (f"{verb} {p.file} — {format_bytes(p.bytes_done)} of {format_bytes(p.bytes_total)}"
            f" · {format_bytes(p.speed_bps)}/s{eta}")


class WelcomePage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Welcome to desktop_search")
        text = QLabel(
            "Search your own documents by meaning, in any language — PDFs page by page and text files.<br><br>"
            "<b>Your documents never leave this computer.</b> Everything — reading, understanding and "
            "searching — runs locally. The only download is the language model (once, about 2.3 GB), which is "
            "checked file by file against published SHA-256 hashes before it is used.<br><br>"
            "You can search by keywords right away; semantic search starts when the model is ready."
        )
        text.setWordWrap(True)
        QVBoxLayout(self).addWidget(text)


class HardwarePage(QWizardPage):
    benchmark_done = Signal(float)

    def __init__(self, services) -> None:
        super().__init__()
        self.services = services
        self.setTitle("Your computer")
        self.info = QLabel("Looking at your hardware…")
        self.info.setWordWrap(True)
        self.choice = QButtonGroup(self)
        self.radios = {}
        box = QVBoxLayout()
        for key, label in (("auto", "Automatic (GPU when available)"), ("cuda", "GPU (NVIDIA CUDA)"),
                           ("mps", "GPU (Apple Metal)"), ("cpu", "CPU only")):
            r = QRadioButton(label)
            self.radios[key] = r
            self.choice.addButton(r)
            box.addWidget(r)
        self.speed = QLabel("")
        self.speed.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.info)
        lay.addWidget(QLabel("Run the model on:"))
        lay.addLayout(box)
        lay.addWidget(self.speed)
        self.tokens_per_s: float | None = None
        self.hardware: Hardware | None = None  # what initializePage found: GPU name, cores, RAM, disks
        self._waiting_for_model = False

    def initializePage(self) -> None:
        from desktop_search.core import hardware

        s = self.services.settings
        hw = hardware.detect({"the index folder": s.index_dir, "the model folder": s.model_dir})
        self.hardware = hw
        self.info.setText(html.escape(hw.summary()).replace("\n", "<br>"))
        self.radios["cuda"].setEnabled(bool(hw.gpu_name))
        self.radios["mps"].setEnabled(hw.apple_silicon)
        self.radios.get(self.services.prefs.get(Key.DEVICE), self.radios["auto"]).setChecked(True)
        if self.services.encoder is not None and self.tokens_per_s is None:
            self.speed.setText("Measuring how fast this computer runs the model…")
            task = Task(hardware.benchmark_encoder, self.services.encoder, 2.0)
            task.signals.result.connect(self._on_speed)
            self.services.pools.start(self.services.pools.model, task)
        elif self.tokens_per_s is None:
            self.speed.setText("The indexing speed will be measured once the model is installed.")
            if not self._waiting_for_model:  # e.g. imported on the next page: measure as soon as it is loaded
                self._waiting_for_model = True
                self.services.semantic_ready.connect(self._on_model_ready)

    def _on_model_ready(self, _device: str) -> None:
        self.services.semantic_ready.disconnect(self._on_model_ready)
        self._waiting_for_model = False
        if self.tokens_per_s is None:
            self.initializePage()

    def _on_speed(self, tps: float) -> None:
        self.tokens_per_s = tps
        self.speed.setText(f"Measured: ≈ {tps:.0f} tokens per second on {self.services.device.upper()}.")
        self.benchmark_done.emit(tps)

    def device(self) -> str:
        for key, r in self.radios.items():
            if r.isChecked():
                return key
        return "auto"


class ModelPage(QWizardPage):
    def __init__(self, services) -> None:
        super().__init__()
        self.services = services
        self.setTitle("Language model")
        self.setSubTitle("BGE-M3 (BAAI), pinned revision, every file verified by SHA-256 before use.")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.endpoint = QLineEdit(services.prefs.get(Key.ENDPOINT))
        self.endpoint.setPlaceholderText("https://huggingface.co (or your mirror)")
        self.proxy = QLineEdit(services.prefs.get(Key.PROXY))
        self.proxy.setPlaceholderText("none (e.g. http://proxy.example:3128)")
        self.download_btn = QPushButton("Download")
        self.pause_btn = QPushButton("Pause")
        self.import_btn = QPushButton("Import from folder…")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_btn = QPushButton("Details…")
        self.details_btn.setCheckable(True)
        self.details_btn.setVisible(False)
        self.failure_details = QLabel("")
        self.failure_details.setWordWrap(True)
        self.failure_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.failure_details.setVisible(False)
        self.details_btn.toggled.connect(self.failure_details.setVisible)
        form = QFormLayout()
        form.addRow("Download from", self.endpoint)
        form.addRow("HTTP proxy", self.proxy)
        row = QHBoxLayout()
        for b in (self.download_btn, self.pause_btn, self.import_btn):
            row.addWidget(b)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addLayout(form)
        lay.addLayout(row)
        lay.addWidget(self.bar)
        lay.addWidget(self.detail)
        lay.addWidget(self.details_btn, 0, Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.failure_details)
        lay.addStretch(1)
        lay.addWidget(QLabel("You can continue while the model downloads: keyword search works meanwhile."))
        self.download_btn.clicked.connect(self.start_download)
        self.pause_btn.clicked.connect(self.services.cancel_model_job)
        self.import_btn.clicked.connect(self._ask_import)
        services.model_progress.connect(self._on_progress)
        services.model_done.connect(self._on_done)

    def initializePage(self) -> None:
        if not self.verified() and not self.services.model_busy:
            self.status.setText(self.plan())
        self._refresh()

    def plan(self) -> str:
        """What pressing Download will fetch, where it goes and whether it fits there."""
        from desktop_search.core.hardware import free_gb

        where = self.services.settings.model_dir
        size = self.services.model_download_size()
        if size is None:
            return f"The model is not installed yet. It will be stored in {where}."
        left, total = size
        text = f"The model is not installed yet: {format_bytes(left)} to download"
        if left < total:
            text += f" (of {format_bytes(total)}: the rest is here from an earlier download)"
        text += f", stored in {where}"
        free = free_gb(where)
        if free is None:
            return text + "."
        text += f" ({free:.1f} GB free there)."
        if free * 1024**3 < left:
            text += " That is not enough: free some space, or choose another model folder in Settings."
        return text

    def verified(self) -> bool:
        from desktop_search.core.models import verification_problem

        return verification_problem(self.services.settings.model_dir) is None

    def _refresh(self) -> None:
        busy = self.services.model_busy
        if self.verified():
            self.status.setText("✔ The model is installed and verified.")
            self.bar.setValue(1000)
        self.download_btn.setEnabled(not busy and not self.verified())
        self.import_btn.setEnabled(not busy and not self.verified())
        self.pause_btn.setEnabled(busy)

    def start_download(self) -> None:
        self.services.prefs.set(Key.ENDPOINT, self.endpoint.text().strip())
        self.services.prefs.set(Key.PROXY, self.proxy.text().strip())
        self.detail.setText("")
        self.status.setText("Downloading… (you can pause and resume later; finished files are kept)")
        self.services.download_model(self.endpoint.text().strip() or None, self.proxy.text().strip() or None)
        self._refresh()

    def _ask_import(self) -> None:
        src = QFileDialog.getExistingDirectory(self, "Folder holding the BGE-M3 files")
        if src:
            self.start_import(src)

    def start_import(self, src: str) -> None:
        self.detail.setText("")
        self.status.setText(f"Importing from {src}…")
        self.services.import_model(src)
        self._refresh()

    def _show_failure(self, message: str) -> None:
        """One line saying which file failed (the command-line hints pointed at this page's fields); every
        hash behind "Details…"."""
        first, _, rest = message.partition("\n")
        for cli, field in (("a mirror with --endpoint", "a mirror in “Download from” above"),
                           ("another mirror with --endpoint", "another mirror in “Download from” above"),
                           ("a proxy with --proxy", "a proxy in “HTTP proxy” above")):
            first = first.replace(cli, field)
        self.detail.setText(first)
        self.failure_details.setText(rest)
        self.details_btn.setChecked(False)
        self.details_btn.setVisible(bool(rest))
        if message:
            self.bar.setValue(0)  # not a full bar under a failure

    @staticmethod
    def _paused(message: str) -> bool:
        return any(w in message.lower() for w in ("cancel", "paused", "stopped"))

    def _on_progress(self, p) -> None:
        if p.bytes_total:
            self.bar.setValue(int(1000 * p.bytes_done / p.bytes_total))
        self.detail.setText(progress_text(p))

    def _on_done(self, ok: bool, message: str) -> None:
        self._show_failure("")
        if ok:
            self.status.setText(f"✔ {message[:1].upper()}{message[1:]}.")
            self.detail.setText("")
        elif self._paused(message):
            self.status.setText("Paused. Press Download to resume where it stopped.")
        else:
            self.status.setText("The model could not be installed:")
            self._show_failure(message)
        self._refresh()
        self.completeChanged.emit()


class OcrModelsPage(QWizardPage):
    """Recognition models for scripts the bundled OCR models do not read, downloaded like the language model:
    pinned, resumable, every file verified by SHA-256 before OCR loads it (core/ocr_models.py). Optional."""

    def __init__(self, services) -> None:
        super().__init__()
        self.services = services
        self.setTitle("More scripts for scanned pages (optional)")
        self.setSubTitle("Scanned pages and images are read in Chinese and English out of the box. Recognition "
                         "models for more scripts are downloaded here, pinned and verified by SHA-256.")
        self.boxes: dict[str, QCheckBox] = {}
        self.about: dict[str, QLabel] = {}  # under each box: the recogniser, download size and licence (wrapped)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.endpoint = QLineEdit(services.prefs.get(Key.OCR_ENDPOINT))
        self.endpoint.setPlaceholderText("the package index's file host, or your mirror")
        self.primary = QComboBox()
        # A pack's label is long: the box must not widen the wizard (nor make it jump wider on this page).
        self.primary.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.primary.setMinimumContentsLength(24)
        self.install_btn = QPushButton("Install selected")
        self.stop_btn = QPushButton("Pause")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        lay = QVBoxLayout(self)
        try:
            packs = services.ocr_packs()
        except Exception as e:  # noqa: BLE001 - a damaged manifest must not stop the wizard
            packs = ()
            self.status.setText(f"The list of OCR models cannot be read: {e}")
        self.packs = packs
        indent = self.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth) + \
            self.style().pixelMetric(QStyle.PixelMetric.PM_CheckBoxLabelSpacing)
        for pack in packs:
            scripts, _, engine = pack.label.partition(": ")  # "Japanese, Greek …: PP-OCRv5 recogniser"
            box = QCheckBox(scripts)
            about = QLabel(f"{engine + ' — ' if engine else ''}{format_bytes(pack.size)} download · {pack.licence}")
            about.setWordWrap(True)
            about.setContentsMargins(indent, 0, 0, 0)
            box.setAccessibleDescription(about.text())
            self.boxes[pack.id], self.about[pack.id] = box, about
            box.toggled.connect(lambda _on: self._update_install())
            lay.addWidget(box)
            lay.addWidget(about)
        form = QFormLayout()
        form.addRow("Download from", self.endpoint)
        form.addRow("Read every page first with", self.primary)
        lay.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.install_btn)
        row.addWidget(self.stop_btn)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        lay.addWidget(self.detail)
        lay.addStretch(1)
        lay.addWidget(QLabel("Pages in a script no installed model reads are reported, never filled with guesses."))
        self.install_btn.clicked.connect(self.start_install)
        self.stop_btn.clicked.connect(services.cancel_ocr_models)
        self.primary.currentIndexChanged.connect(self._save_primary)
        services.ocr_models_progress.connect(self._on_progress)
        services.ocr_models_done.connect(self._on_done)

    def initializePage(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        installed = self.services.installed_ocr_packs()
        busy = self.services.ocr_models_busy
        for pack_id, box in self.boxes.items():
            box.setEnabled(not busy and pack_id not in installed)
            box.setChecked(pack_id in installed or (box.isChecked() and not busy))
            box.setToolTip("installed and verified" if pack_id in installed else "")
        self._update_install()
        self.stop_btn.setEnabled(busy)
        self.primary.blockSignals(True)
        self.primary.clear()
        self.primary.addItem("the bundled models (Chinese, English)", "")
        for pack in self.packs:
            if pack.id in installed:
                self.primary.addItem(pack.label, pack.id)
        index = self.primary.findData(self.services.prefs.get(Key.OCR_PRIMARY))
        self.primary.setCurrentIndex(max(0, index))
        self.primary.blockSignals(False)
        if installed and not busy:
            self.status.setText(f"✔ Installed and verified: {', '.join(sorted(installed))}.")

    def _update_install(self) -> None:
        self.install_btn.setEnabled(not self.services.ocr_models_busy and bool(self.chosen()))

    def _save_primary(self, _index: int) -> None:
        value = self.primary.currentData() or ""
        self.services.prefs.set(Key.OCR_PRIMARY, value)
        self.services.settings = self.services.settings.with_(ocr_primary=value)

    def chosen(self) -> list[str]:
        return [pack_id for pack_id, box in self.boxes.items() if box.isChecked() and box.isEnabled()]

    def start_install(self) -> None:
        endpoint = self.endpoint.text().strip()
        self.services.prefs.set(Key.OCR_ENDPOINT, endpoint)
        self.status.setText("Downloading… (you can pause and resume later)")
        self.detail.setText("")
        self.services.install_ocr_models(self.chosen(), endpoint or None, self.services.prefs.get(Key.PROXY) or None)
        self._refresh()

    def _on_progress(self, p) -> None:
        if p.bytes_total:
            self.bar.setValue(int(1000 * p.bytes_done / p.bytes_total))
        self.detail.setText(progress_text(p))

    def _on_done(self, ok: bool, message: str) -> None:
        self.detail.setText("")
        self.status.setText(f"✔ {message}." if ok else f"The OCR models could not be installed: {message}")
        if not ok:
            self.bar.setValue(0)
        self._refresh()


def default_folders() -> list[str]:
    out = []
    for loc in (QStandardPaths.StandardLocation.DocumentsLocation, QStandardPaths.StandardLocation.DesktopLocation):
        path = QStandardPaths.writableLocation(loc)
        if path and os.path.isdir(path) and path not in out:
            out.append(path)
    return out


class FoldersPage(QWizardPage):
    def __init__(self, services, hardware_page: HardwarePage) -> None:
        super().__init__()
        self.services = services
        self.hardware_page = hardware_page
        self.setTitle("Folders to search")
        self.setSubTitle("They are indexed in the background and watched for changes.")
        self.list = QListWidget()
        self.add_btn = QPushButton("Add…")
        self.remove_btn = QPushButton("Remove")
        self.include = QLineEdit()
        self.include.setPlaceholderText("all supported files (e.g. *.pdf, *.md)")
        self.exclude = QLineEdit()
        self.exclude.setPlaceholderText("nothing (e.g. node_modules/*, *.log)")
        self.estimate = QLabel("")
        self.estimate.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.add_btn)
        row.addWidget(self.remove_btn)
        row.addStretch(1)
        form = QFormLayout()
        form.addRow("Include", self.include)
        form.addRow("Exclude", self.exclude)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list, 1)
        lay.addLayout(row)
        lay.addLayout(form)
        lay.addWidget(self.estimate)
        self.add_btn.clicked.connect(self._ask_add)
        self.remove_btn.clicked.connect(self._remove)
        hardware_page.benchmark_done.connect(lambda _t: self.update_estimate())

    def initializePage(self) -> None:
        existing = [f.path for f in self.services.prefs.folders()]
        if self.list.count() == 0:
            for path in existing or default_folders():
                self.list.addItem(path)
        self.update_estimate()

    def folders(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def add(self, path: str) -> None:
        path = os.path.abspath(path)
        if path not in self.folders():
            self.list.addItem(path)
            self.update_estimate()

    def _ask_add(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder to search")
        if path:
            self.add(path)

    def _remove(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self.update_estimate()

    def update_estimate(self) -> None:
        from desktop_search.core import hardware

        # Before the model is installed the speed is a guess: a GPU's unless the user chose the CPU.
        page = self.hardware_page
        gpu = page.hardware.gpu_name if page.hardware is not None and page.device() in ("auto", "cuda") else None
        est = hardware.estimate([Path(p) for p in self.folders()], page.tokens_per_s, gpu_name=gpu)
        self.estimate.setText(est.describe())

    def patterns(self) -> tuple[list[str], list[str]]:
        split = lambda t: [p.strip() for p in t.replace(";", ",").split(",") if p.strip()]
        return split(self.include.text()), split(self.exclude.text())


class DonePage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("All set")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        QVBoxLayout(self).addWidget(self.summary)

    def initializePage(self) -> None:
        w: SetupWizard = self.wizard()  # type: ignore[assignment]
        folders = w.folders_page.folders()
        model = "ready" if w.model_page.verified() else (
            "downloading in the background" if w.services.model_busy else "not installed (keyword search only)")
        self.summary.setText(
            f"Indexing of {len(folders)} folder{'s' if len(folders) != 1 else ''} starts in the background when you "
            f"press Finish.<br><br>Model: {model}.<br>Device: {w.hardware_page.device()}.<br><br>"
            "You can change all of this later in Settings, or run this wizard again from the Help menu."
        )


class SetupWizard(QWizard):
    def __init__(self, services, parent=None) -> None:
        super().__init__(parent)
        self.services = services
        self.setWindowTitle("Set up desktop_search")
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.hardware_page = HardwarePage(services)
        self.model_page = ModelPage(services)
        self.ocr_page = OcrModelsPage(services)
        self.folders_page = FoldersPage(services, self.hardware_page)
        self.done_page = DonePage()
        for page in (WelcomePage(), self.hardware_page, self.model_page, self.ocr_page, self.folders_page,
                     self.done_page):
            self.addPage(page)
        self.resize(720, 560)

    def accept(self) -> None:
        prefs = self.services.prefs
        include, exclude = self.folders_page.patterns()
        folders = [WatchedFolder(p, include, exclude) for p in self.folders_page.folders()]
        prefs.set_folders(folders)
        device = self.hardware_page.device()
        if device != prefs.get(Key.DEVICE):
            prefs.set(Key.DEVICE, device)
            self.services.settings = self.services.settings.with_(device=device)
        prefs.set(Key.SETUP_COMPLETED, True)
        super().accept()
        # Search from minute one: keyword-index now; the model (if still downloading) catches up later.
        self.services.index_folders(folders)
        self.services.watch_folders()
