"""The one place that wires settings -> services -> window. A placeholder window until the full app lands."""

from __future__ import annotations

import sys


def run(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    window = QMainWindow()
    window.setWindowTitle("desktop_search")
    label = QLabel("desktop_search: the search window is not built yet.\nUse `desktop-search index` and `desktop-search search` meanwhile.")
    label.setMargin(24)
    window.setCentralWidget(label)
    window.resize(640, 200)
    window.show()
    return app.exec()
