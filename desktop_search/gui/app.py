"""The one place that wires settings -> services -> window (-> first-run wizard).

The window is shown before anything heavy happens: the index opens in a worker, and the model stack loads in
the background after that, so the user can type (and get keyword results) while torch is still importing.
On first launch the setup wizard opens over the window; Help → Setup wizard opens it again.
"""

from __future__ import annotations

import sys
import threading


def preload_index_stack() -> threading.Thread:
    """Start importing what opening the index needs (numpy, Arrow, LanceDB: ~1 s, far more on a busy machine)
    on a helper thread while the main thread imports Qt and builds the window, so keyword search is ready
    sooner. The worker that opens the index simply finds the modules imported (or waits on the import lock)."""

    def run() -> None:
        try:
            from desktop_search.core.lancedb_import import import_lancedb

            import_lancedb()
            import desktop_search.core.search  # noqa: F401
            import desktop_search.core.watcher  # noqa: F401  (else imported on the GUI thread once the index is open)
        except Exception:  # noqa: BLE001 - the worker that opens the index reports any real failure
            pass

    t = threading.Thread(target=run, name="preload-index-stack", daemon=True)
    t.start()
    return t


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

    from desktop_search.gui.prefs import Key

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("desktop_search")
    services, window = create(start=False)
    window.show()
    services.start()
    if not services.prefs.get(Key.SETUP_COMPLETED):
        show_wizard(services, window)
    return app.exec()
