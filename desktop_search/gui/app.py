"""The one place that wires settings -> services -> window (-> first-run wizard).

The window is shown before anything heavy happens: only then do the index libraries start importing on a helper
thread (imports hold the GIL, so importing them beside the window's own imports only delays the window) while the
index opens in a worker and the model loads beside it, so the user can type (and get keyword results) while the
model is still loading. On first launch the setup wizard opens over the window; Help → Setup wizard opens it again.

PySide6 checks every module imported after it for ``from __feature__ import`` (snake_case / true_property) by
reading the module's source (``inspect.getsource``): ~0.35 s of CPU for the ~700 modules of LanceDB, Arrow and
numpy alone. :func:`skip_feature_scan` answers that question without reading: this app selects no feature
anywhere, so only PySide's own modules and the window's count as PySide users, as PySide would find.
"""

from __future__ import annotations

import sys
import threading


PYSIDE_USERS = ("PySide6", "shiboken6", "desktop_search.gui")  # the packages whose modules may use PySide6


def skip_feature_scan() -> None:
    """Import PySide6 and narrow its per-import source scan for ``__feature__`` users (see the module docstring)
    to the modules that can be users: Python files of PySide6 itself and of the window. Every other module (the
    Qt-free core, the index and model libraries) is ignored for feature switching without its source being read,
    which is what the scan finds for them."""
    import PySide6  # noqa: F401  (installs the import hook and its feature module)

    feature = sys.modules.get("PySide6.support.feature")
    scan = getattr(feature, "_mod_uses_pyside", None)
    if scan is None or hasattr(scan, "full_scan"):
        return

    def uses_pyside(module) -> bool:
        name, file = str(getattr(module, "__name__", "")), str(getattr(module, "__file__", None) or "")
        return name.startswith(PYSIDE_USERS) and file.endswith(".py") and scan(module)

    uses_pyside.full_scan = scan  # type: ignore[attr-defined]
    feature._mod_uses_pyside = uses_pyside  # type: ignore[union-attr]


def preload_index_stack() -> threading.Thread:
    """Start importing what opening the index needs (numpy, Arrow, LanceDB: ~0.5 s, far more on a busy machine)
    on a helper thread once the window is shown, so the first search finds them loaded; the worker that opens
    the index meanwhile simply waits on the import lock."""

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
    skip_feature_scan()
    from PySide6.QtWidgets import QApplication

    from desktop_search.gui.prefs import Key

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("desktop_search")
    services, window = create(start=False)
    window.show()
    preload_index_stack()
    services.start()
    if not services.prefs.get(Key.SETUP_COMPLETED):
        show_wizard(services, window)
    return app.exec()
