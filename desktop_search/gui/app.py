"""The one place that wires settings -> services -> window.

The window is shown before anything heavy happens: the index opens in a worker, and the model stack loads in
the background after that, so the user can type (and get keyword results) while torch is still importing.
"""

from __future__ import annotations

import sys


def create(prefs=None, *, load_model: bool = True, start: bool = True):
    """Build (services, window) for an existing QApplication; tests call this with their own Prefs."""
    from desktop_search.gui.main_window import MainWindow
    from desktop_search.gui.prefs import Prefs
    from desktop_search.gui.services import Services

    prefs = prefs or Prefs()
    services = Services(prefs.to_settings(), prefs)
    window = MainWindow(services)
    if start:
        services.start(load_model=load_model)
    return services, window


def run(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("desktop_search")
    services, window = create(start=False)
    window.show()
    services.start()
    return app.exec()
