"""A watched folder that goes offline while the window is open (a USB drive unplugged, a share dropped): its
documents stay in the results, greyed and marked "offline" with the folder's state; Open says the folder is
offline instead of failing; once the folder is back the marks go and Open works again."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import qGray

from desktop_search.gui import opener
from desktop_search.gui.results import COL_FOLDER, COL_RESULT, HEADING_ROLE, OFFLINE_ROLE
from tests.conftest import write
from tests.gui.conftest import wait_idle
from tests.gui.test_main_window import search


def _darkest_heading_pixel(window, row: int) -> int:
    """The darkest grey level in a result's first line (name and details): text drawn greyed is lighter."""
    window.view.setCurrentIndex(QModelIndex())  # no selection colours
    window.view.clearSelection()
    rect = window.view.visualRect(window.model.index(row, COL_RESULT))
    image = window.view.viewport().grab(rect.adjusted(0, 0, 0, -2 * rect.height() // 3)).toImage()
    return min(qGray(image.pixel(x, y)) for x in range(image.width()) for y in range(image.height()))


def _names(window) -> list[str]:
    return [Path(p).name for p in window.model.paths()]


def test_hits_from_an_offline_folder_are_greyed_marked_and_not_opened(make_window, qtbot, tmp_path, monkeypatch):
    usb = tmp_path / "usb"
    write(usb / "ferries.txt", "Timetable of the ferries to the islands.")
    write(usb / "sub" / "tides.txt", "Notes about ferries and the tides of the strait.")
    services, window = make_window([usb])
    services.offline_retry_s, services.offline_retry_max_s = 0.3, 1.0  # look for it again quickly
    services.index_folders(services.prefs.folders())
    wait_idle(qtbot, services)
    services.watch_folders()
    window.show()
    qtbot.waitExposed(window)
    opened: list[str] = []
    monkeypatch.setattr(opener, "open_document", lambda path, page=None: opened.append(path) or True)

    search(qtbot, window, "ferries")
    assert sorted(_names(window)) == ["ferries.txt", "tides.txt"]
    first = window.model.index(0, COL_RESULT)
    assert first.data(OFFLINE_ROLE) is None and "offline" not in first.data(HEADING_ROLE)[1]
    online_dark = _darkest_heading_pixel(window, 0)

    os.rename(usb, tmp_path / "unplugged")  # the drive goes away; no file of it is deleted
    qtbot.waitUntil(lambda: window.model.index(0, COL_RESULT).data(OFFLINE_ROLE) is not None, timeout=20_000)
    assert "offline" in window.watch_label.text()
    for row in range(2):  # every hit of the folder, marked where the user reads it
        index = window.model.index(row, COL_RESULT)
        state = index.data(OFFLINE_ROLE)
        assert "offline since" in state and str(usb) in state
        assert index.data(HEADING_ROLE)[1].endswith("offline")
        assert "offline" in index.data(Qt.ItemDataRole.DisplayRole).splitlines()[0]
        assert state in index.data(Qt.ItemDataRole.ToolTipRole)
        assert window.model.index(row, COL_FOLDER).data(Qt.ItemDataRole.ForegroundRole) is not None
    assert _darkest_heading_pixel(window, 0) > online_dark + 60, "the offline hit is not drawn greyed"
    # the folders panel says it too: the folder's row greyed, its state in the tooltip
    panel = window.folders_panel
    assert panel.is_marked_offline(str(usb))
    row = panel.tree.topLevelItem(0)
    assert "offline since" in row.toolTip(0) and row.foreground(0).color() != panel.palette().text().color()

    # Still searchable while offline (a new query, not only the list shown before).
    search(qtbot, window, "strait")
    assert _names(window) == ["tides.txt"]
    assert window.model.index(0, COL_RESULT).data(OFFLINE_ROLE) is not None

    # Open says the folder is offline; nothing is launched.
    window.view.setCurrentIndex(window.model.index(0, COL_RESULT))
    window.open_current()
    box = window.open_failure_box
    assert opened == []
    assert box.windowTitle() == "Folder offline" and "offline" in box.text() and "tides.txt" in box.text()
    assert str(usb) in box.informativeText() and "offline since" in box.informativeText()
    box.close()

    os.rename(tmp_path / "unplugged", usb)  # plugged back in
    qtbot.waitUntil(lambda: window.model.rowCount() and window.model.index(0, COL_RESULT).data(OFFLINE_ROLE) is None,
                    timeout=20_000)
    qtbot.waitUntil(lambda: "offline" not in window.watch_label.text(), timeout=10_000)
    assert not panel.is_marked_offline(str(usb)) and "offline since" not in panel.tree.topLevelItem(0).toolTip(0)
    wait_idle(qtbot, services)  # the folder is reconciled when it is back
    assert "offline" not in window.model.index(0, COL_RESULT).data(HEADING_ROLE)[1]
    window.view.setCurrentIndex(window.model.index(0, COL_RESULT))
    window.open_current()
    assert opened == [str(usb / "sub" / "tides.txt")]
    qtbot.waitUntil(lambda: services.pools.active() == 0, timeout=30_000)


def test_a_folder_offline_when_the_window_starts_is_marked_and_watched_again(make_window, qtbot, tmp_path):
    usb = tmp_path / "usb"
    write(usb / "lighthouse.txt", "The lighthouse keeper's log of storms.")
    services, window = make_window([usb])
    services.index_folders(services.prefs.folders())
    wait_idle(qtbot, services)
    services.stop_watching()
    os.rename(usb, tmp_path / "unplugged")  # unplugged before the window (its watcher) starts
    services.offline_retry_s, services.offline_retry_max_s = 0.3, 1.0
    services.watch_folders()
    qtbot.waitUntil(lambda: [f.path for f in services.offline] == [str(usb)], timeout=10_000)
    assert "offline" in window.watch_label.text()
    search(qtbot, window, "lighthouse")
    assert _names(window) == ["lighthouse.txt"]
    assert window.model.index(0, COL_RESULT).data(OFFLINE_ROLE) is not None
    os.rename(tmp_path / "unplugged", usb)
    write(usb / "harbour.txt", "Harbour lights seen from the lighthouse.")  # added while it was away
    qtbot.waitUntil(lambda: services.offline == (), timeout=20_000)
    wait_idle(qtbot, services)  # reconciled: the window searches again when indexing ends
    qtbot.waitUntil(lambda: sorted(_names(window)) == ["harbour.txt", "lighthouse.txt"], timeout=30_000)
    assert all(window.model.index(r, COL_RESULT).data(OFFLINE_ROLE) is None for r in range(2))
    qtbot.waitUntil(lambda: services.pools.active() == 0, timeout=30_000)
