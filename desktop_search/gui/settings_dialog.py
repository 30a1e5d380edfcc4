"""Settings dialog: device, CPU encoder precision, hybrid weights, chunk size, index and model locations, the
model manifest to verify against, ColBERT storage precision with its disk cost, OCR of scanned pages and images.
Values are read from and saved to Prefs (INI); the window applies what can change live.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop_search import config
from desktop_search.gui.prefs import Key, Prefs

# Bytes per indexed token for the ColBERT vectors of BGE-M3 (1024 dimensions).
# Figures from benchmarks/bench_size.py (bytes per indexed token, ColBERT part; top-10 agreement vs fp32).
COLBERT_COST = {
    "int8": (1024 + 4, "1 byte per dimension + a scale per token; hybrid top-10 identical to full precision"),
    "float16": (2048, "2 bytes per dimension; scores practically identical to full precision"),
    "pooled": (514, "similar tokens merged, then int8; ColBERT top-10 agreement 99.5%"),
    "binary": (130, "1 bit per dimension + a scale; smallest; ColBERT top-10 agreement 98.5%"),
}


# The CPU encoder (figures from benchmarks/bench_encode.py and bench_query.py, 2 cores, full-size BGE-M3).
CPU_PRECISION_TEXT = {
    "int8": "int8 — fast: about 3x the tokens/s of fp32, 32-token queries in ~45 ms; checked against fp32 at "
            "every load (dense cosine >= 0.99), fp32 is used instead if the check fails",
    "fp32": "fp32 — exact FlagEmbedding forward pass: scores identical to BGEM3FlagModel, about 3x slower",
}


def colbert_cost_text(storage: str) -> str:
    per_token, note = COLBERT_COST.get(storage, (None, ""))
    if per_token is None:
        return note
    return f"≈ {per_token / 1024:.1f} KB per token, ≈ {per_token * 350 / 1e6:.2f} MB per 1000-word document — {note}"


class SettingsDialog(QDialog):
    def __init__(self, prefs: Prefs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.prefs = prefs
        self.device = QComboBox()
        self.device.addItems(list(config.DEVICES))
        self.device.setCurrentText(prefs.get(Key.DEVICE))
        self.cpu_precision = QComboBox()
        self.cpu_precision.addItems(list(config.CPU_PRECISIONS))
        self.cpu_precision.setCurrentText(prefs.get(Key.CPU_PRECISION) or config.load_settings().cpu_precision)
        self.cpu_precision_note = QLabel(CPU_PRECISION_TEXT.get(self.cpu_precision.currentText(), ""))
        self.cpu_precision_note.setWordWrap(True)
        self.cpu_precision.currentTextChanged.connect(
            lambda p: self.cpu_precision_note.setText(CPU_PRECISION_TEXT.get(p, ""))
        )
        self.weights = []
        wrow = QHBoxLayout()
        for label, value in zip(("dense", "sparse", "ColBERT"), prefs.get(Key.WEIGHTS)):
            box = QDoubleSpinBox()
            box.setRange(0.0, 1.0)
            box.setSingleStep(0.05)
            box.setDecimals(2)
            box.setValue(float(value))
            self.weights.append(box)
            wrow.addWidget(QLabel(label))
            wrow.addWidget(box)
        wbox = QWidget()
        wbox.setLayout(wrow)
        self.chunk = QSpinBox()
        self.chunk.setRange(64, 8192)
        self.chunk.setSingleStep(64)
        self.chunk.setValue(prefs.get(Key.CHUNK_TOKENS))
        self.index_dir = self._dir_field(prefs.get(Key.INDEX_DIR) or str(config.default_index_dir()))
        self.model_dir = self._dir_field(prefs.get(Key.MODEL_DIR) or str(config.default_model_dir()))
        self.manifest = self._dir_field(prefs.get(Key.MANIFEST), file=True)
        self.manifest[1].setPlaceholderText("the bundled BGE-M3 manifest (pinned revision)")
        self.manifest[1].setToolTip("Files, sizes and SHA-256 the model must match: a mirror's manifest or a "
                                    "fine-tuned BGE-M3's (`desktop-search model manifest DIR` writes one)")
        self.storage = QComboBox()
        self.storage.addItems(list(config.COLBERT_STORAGE))
        self.storage.setCurrentText(prefs.get(Key.COLBERT_STORAGE))
        self.storage_cost = QLabel(colbert_cost_text(self.storage.currentText()))
        self.storage_cost.setWordWrap(True)
        self.storage.currentTextChanged.connect(lambda s: self.storage_cost.setText(colbert_cost_text(s)))

        self.ocr = QCheckBox("Recognise text in scanned pages and images (OCR; Latin script and Chinese)")
        self.ocr.setChecked(bool(prefs.get(Key.OCR)))

        form = QFormLayout(self)
        form.addRow("Device", self.device)
        form.addRow("CPU encoder", self.cpu_precision)
        form.addRow("", self.cpu_precision_note)
        form.addRow("Hybrid weights", wbox)
        form.addRow("Chunk size (tokens)", self.chunk)
        form.addRow("Index folder", self.index_dir[0])
        form.addRow("Model folder", self.model_dir[0])
        form.addRow("Model manifest", self.manifest[0])
        form.addRow("ColBERT storage", self.storage)
        form.addRow("", self.storage_cost)
        form.addRow("OCR", self.ocr)
        form.addRow(QLabel("Device and encoder changes apply after a restart; folder, chunk size and storage "
                           "changes to newly indexed files."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _dir_field(self, value: str, *, file: bool = False) -> tuple[QWidget, QLineEdit]:
        edit = QLineEdit(value)
        browse = QPushButton("…")
        if file:
            browse.clicked.connect(lambda: edit.setText(
                QFileDialog.getOpenFileName(self, "Choose a manifest", edit.text(), "Manifest (*.json)")[0] or edit.text()))
        else:
            browse.clicked.connect(lambda: edit.setText(
                QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text()) or edit.text()))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(browse)
        w = QWidget()
        w.setLayout(row)
        return w, edit

    def save(self) -> None:
        weights = [b.value() for b in self.weights]
        if sum(weights) <= 0:
            weights = list(config.Settings().weights)
        self.prefs.set(Key.DEVICE, self.device.currentText())
        self.prefs.set(Key.CPU_PRECISION, self.cpu_precision.currentText())
        self.prefs.set(Key.WEIGHTS, weights)
        self.prefs.set(Key.CHUNK_TOKENS, self.chunk.value())
        self.prefs.set(Key.COLBERT_STORAGE, self.storage.currentText())
        self.prefs.set(Key.OCR, self.ocr.isChecked())
        default_index, default_model = str(config.default_index_dir()), str(config.default_model_dir())
        self.prefs.set(Key.INDEX_DIR, "" if self.index_dir[1].text() == default_index else self.index_dir[1].text())
        self.prefs.set(Key.MODEL_DIR, "" if self.model_dir[1].text() == default_model else self.model_dir[1].text())
        self.prefs.set(Key.MANIFEST, self.manifest[1].text().strip())

    def accept(self) -> None:
        self.save()
        super().accept()
