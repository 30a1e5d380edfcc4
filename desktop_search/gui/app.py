"""The one place that wires settings -> services -> window (-> first-run wizard).

The window is shown before anything heavy happens: the index opens in a worker, and the model stack loads in
the background after that, so the user can type (and get keyword results) while torch is still importing.
On first launch the setup wizard opens over the window; Help → Setup wizard opens it again.
"""

from __future__ import annotations

import sys


def show_wizard(services, parent=None):
    from PySide6.QtCore import Qt

    from desktop_search.gui.wizard import SetupWizard

    wizard = SetupWizard(services, parent)
    wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    wizard.show()
    return wizard


def create(prefs=None, *, load_model: bool = True, start: bool = True):
    """Build (services, window) for an existing QApplication; tests call this with their own Prefs."""
    from desktop_search.gui.main_window import MainWindow
    from desktop_search.gui.prefs import Prefs
    from desktop_search.gui.services import Services

    prefs = prefs or Prefs()
    services = Services(prefs.to_settings(), prefs)
    window = MainWindow(services)
    window.set_wizard_opener(lambda: show_wizard(services, window))
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
    if not services.prefs.get("setup_completed"):
        show_wizard(services, window)
    return app.exec()
