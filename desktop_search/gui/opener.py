"""Opening a hit: the system's handler for the file, at the matching page when a viewer that accepts a page
argument is installed (Okular, Evince, Zathura, qpdfview, SumatraPDF, Adobe Reader) and the extractor registry
says the kind has pages such viewers open; "show in folder".
The command is built by a plain function so it can be tested without launching anything.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from typing import Callable

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices

from desktop_search.core.extract.registry import for_path

# viewer executable -> arguments with the page (1-based) and the file
_PAGE_VIEWERS: list[tuple[str, Callable[[str, int], list[str]]]] = [
    ("okular", lambda p, n: ["--page", str(n), p]),
    ("evince", lambda p, n: ["--page-index", str(n), p]),
    ("zathura", lambda p, n: ["--page", str(n), p]),
    ("qpdfview", lambda p, n: [f"{p}#{n}"]),
    ("SumatraPDF", lambda p, n: ["-page", str(n), p]),
    ("AcroRd32", lambda p, n: ["/A", f"page={n}", p]),
]


def page_command(path: str, page: int | None, which: Callable[[str], str | None] = shutil.which) -> list[str] | None:
    """The command that opens ``path`` at ``page`` with an installed viewer, or None (use the system handler)."""
    reader = for_path(path)
    if not page or reader is None or not reader.viewer_pages:
        return None
    # A user's own viewer: a command template such as "myviewer --goto {page} {file}".
    template = os.environ.get("DESKTOP_SEARCH_PDF_VIEWER")
    if template:
        return [part.replace("{file}", path).replace("{page}", str(page)) for part in shlex.split(template)]
    for exe, args in _PAGE_VIEWERS:
        found = which(exe)
        if found:
            return [found, *args(path, page)]
    return None


def _detached(program: str, args: list[str]) -> bool:
    started = QProcess.startDetached(program, args)  # PySide6 returns (ok, pid)
    return bool(started[0] if isinstance(started, tuple) else started)


def open_document(path: str, page: int | None = None) -> bool:
    """Open ``path`` (at ``page``); False when no program took it (the window then says so)."""
    cmd = page_command(path, page)
    if cmd:
        return _detached(cmd[0], cmd[1:])
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def open_with(app: str, path: str) -> bool:
    """Open ``path`` with the program the user chose."""
    return _detached(app, [path])


def show_in_folder(path: str) -> bool:
    if sys.platform == "win32":
        return _detached("explorer", ["/select,", os.path.normpath(path)])
    if sys.platform == "darwin":
        return _detached("open", ["-R", path])
    return QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path)))
