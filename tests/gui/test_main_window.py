"""The search window as a user drives it (offscreen): typing, stages, filters, preview, opening, folders,
failures, settings, keyboard, and a responsive event loop while indexing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer

from desktop_search.core.search import Hit, SearchResult
from desktop_search.gui import opener
from tests.conftest import write
from tests.gui.conftest import wait_idle


def search(qtbot, window, text: str, stage: str = "keyword"):
    """Type like a user and wait for the given stage to be shown."""
    window.search_field.clear()
    with qtbot.waitSignal(window.results_shown, timeout=60_000, check_params_cb=lambda s: s == stage):
        if text.isascii():
            qtbot.keyClicks(window.search_field, text)
        else:  # QTest can only synthesise ASCII key events; CJK arrives via the input method, as one insert
            window.search_field.insert(text)


def shown_paths(window) -> list[str]:
    return window.model.paths()


def indexed_window(make_window, qtbot, docs, encoder=None):
    services, window = make_window([docs], encoder=encoder)
    if not encoder:
        services.index_folders(services.prefs.folders())
    wait_idle(qtbot, services)
    return services, window


def test_typing_a_query_shows_results(make_window, qtbot, docs):
    _s, window = indexed_window(make_window, qtbot, docs)
    search(qtbot, window, "Hauptstadt")
    assert [Path(p).name for p in shown_paths(window)] == ["berlin.txt"]
    assert "keyword" in window.stage_label.text()
    search(qtbot, window, "東京タワー")
    assert Path(shown_paths(window)[0]).name == "tokyo.txt"


def test_a_corrected_typo_is_said_above_the_results(make_window, qtbot, tmp_path):
    root = tmp_path / "typo"
    filler = "The weekly notes of the team are kept in this folder, and everyone reads them on Monday morning. "
    write(root / "ir.txt", filler + "Information retrieval systems rank documents by their relevance to a query.")
    write(root / "cook.txt", filler + "Slow cooking brings out the flavour of the vegetables.")
    _s, window = indexed_window(make_window, qtbot, root)
    search(qtbot, window, "retreival")
    assert [Path(p).name for p in shown_paths(window)] == ["ir.txt"]
    assert not window.correction_label.isHidden()
    assert window.correction_label.text() == "showing results for: retrieval"
    search(qtbot, window, "retrieval")  # a word that matches is never "corrected": the line goes away
    assert window.correction_label.isHidden()
    assert [Path(p).name for p in shown_paths(window)] == ["ir.txt"]


def test_progressive_stages_arrive_in_order(make_window, qtbot, docs, tiny_encoder):
    services, window = indexed_window(make_window, qtbot, docs, encoder=tiny_encoder)
    # Once the model is loaded the vectors are read into the query caches in the background, not on a search.
    qtbot.waitUntil(lambda: services.store.caches_built, timeout=10_000)
    stages = []
    window.results_shown.connect(stages.append)
    search(qtbot, window, "quantum entanglement", stage="reranked")
    assert stages == ["keyword", "hybrid", "reranked"]
    assert "reranked" in window.stage_label.text()
    assert "model: BGE-M3 on CPU" == window.device_label.text()


def test_refinement_keeps_the_selected_file_selected(make_window, qtbot, docs):
    _s, window = indexed_window(make_window, qtbot, docs)

    def hit(name):
        return Hit(str(docs / name), None, "t", "t", 1.0, {}, 0, 1, name)

    window._current_seq = 7
    window._on_stage(7, SearchResult("q", "hybrid", "keyword", [hit("a"), hit("b"), hit("c")]))
    window.view.setCurrentIndex(window.model.index(1, 0))
    window._on_stage(7, SearchResult("q", "hybrid", "reranked", [hit("c"), hit("a"), hit("x"), hit("b")]))
    assert window.current_hit().path == str(docs / "b")
    # results of an older query are ignored
    window._on_stage(6, SearchResult("old", "hybrid", "reranked", [hit("zzz")]))
    assert "zzz" not in [Path(p).name for p in shown_paths(window)]


def test_filters_narrow_results(make_window, qtbot, docs):
    _s, window = indexed_window(make_window, qtbot, docs)
    write(docs / "de" / "more.txt", "Ein Bericht über das Observatorium und die Photonen.")
    write(docs / "energy" / "wind.txt", "An observatory report about wind photons.")
    _s.index_folders(_s.prefs.folders())
    wait_idle(qtbot, _s)
    search(qtbot, window, "observatory")
    assert {Path(p).name for p in shown_paths(window)} >= {"observatory.pdf", "wind.txt"}
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.type_filter.setCurrentIndex(window.type_filter.findText("PDF"))
    assert [Path(p).name for p in shown_paths(window)] == ["observatory.pdf"]
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.type_filter.setCurrentIndex(window.type_filter.findText("Text"))
    assert [Path(p).name for p in shown_paths(window)] == ["wind.txt"]
    # modified-date filter: make wind.txt two years old
    old = time.time() - 2 * 365 * 86400
    os.utime(docs / "energy" / "wind.txt", (old, old))
    _s.index_folders(_s.prefs.folders())
    wait_idle(qtbot, _s)
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.date_filter.setCurrentIndex(3)  # past year
    assert shown_paths(window) == []


def test_preview_shows_the_matching_pdf_page_and_navigates(make_window, qtbot, docs):
    _s, window = indexed_window(make_window, qtbot, docs)
    search(qtbot, window, "entanglement")
    row = [Path(p).name for p in shown_paths(window)].index("observatory.pdf")
    with qtbot.waitSignal(window.preview.rendered, timeout=30_000) as blocker:
        window.view.setCurrentIndex(window.model.index(row, 0))
    assert blocker.args == [2]
    assert window.preview.page_box.value() == 2 and window.preview.page_count == 3
    assert not window.preview.image.pixmap().isNull()
    with qtbot.waitSignal(window.preview.rendered, timeout=30_000) as blocker:
        qtbot.mouseClick(window.preview.next_btn, Qt.MouseButton.LeftButton)
    assert blocker.args == [3]


def test_text_preview_shows_the_passage_in_context(make_window, qtbot, docs):
    _s, window = indexed_window(make_window, qtbot, docs)
    search(qtbot, window, "sourdough")
    with qtbot.waitSignal(window.preview.rendered, timeout=30_000):
        window.view.setCurrentIndex(window.model.index(0, 0))
    assert "Sourdough bread" in window.preview.text.toPlainText()


def test_open_uses_the_page_aware_viewer_or_system_handler(make_window, qtbot, docs, monkeypatch):
    _s, window = indexed_window(make_window, qtbot, docs)
    started, urls = [], []
    monkeypatch.setattr(opener.QProcess, "startDetached", lambda prog, args: started.append([prog, *args]) or True)
    monkeypatch.setattr(opener.QDesktopServices, "openUrl", lambda url: urls.append(url.toLocalFile()) or True)
    monkeypatch.setenv("DESKTOP_SEARCH_PDF_VIEWER", "myviewer --page {page} {file}")
    search(qtbot, window, "entanglement")
    row = [Path(p).name for p in shown_paths(window)].index("observatory.pdf")
    window.view.setCurrentIndex(window.model.index(row, 0))
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    assert started == [["myviewer", "--page", "2", str(docs / "reports" / "observatory.pdf")]]
    search(qtbot, window, "sourdough")
    window.view.setCurrentIndex(window.model.index(0, 0))
    window.open_current()
    assert urls == [str(docs / "kitchen" / "bread.md")]


def test_page_command_knows_common_viewers():
    which = lambda exe: f"/usr/bin/{exe}" if exe == "evince" else None
    assert opener.page_command("/d/a.pdf", 4, which) == ["/usr/bin/evince", "--page-index", "4", "/d/a.pdf"]
    assert opener.page_command("/d/a.txt", 4, which) is None
    assert opener.page_command("/d/a.pdf", None, which) is None


def test_keyboard_focus_navigation_and_escape(make_window, qtbot, docs):
    _s, window = indexed_window(make_window, qtbot, docs)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.search_field.hasFocus()
    search(qtbot, window, "the")
    qtbot.keyClick(window.search_field, Qt.Key.Key_Down)
    assert window.view.hasFocus() and window.view.currentIndex().row() == 0
    window.search_field.setFocus()
    qtbot.keyClick(window.search_field, Qt.Key.Key_Escape)
    assert window.search_field.text() == ""
    qtbot.waitUntil(lambda: window.model.rowCount() == 0, timeout=5000)


def test_adding_a_folder_indexes_it_and_counts_update(make_window, qtbot, tmp_path, corpus):
    folder = tmp_path / "newdocs"
    write(folder / "a.txt", "alpha document")
    write(folder / "b.txt", "beta document")
    (folder / "scan.pdf").write_bytes((corpus / "pdfs" / "pdfjs" / "issue6010_1.pdf").read_bytes())
    services, window = make_window()
    pending_seen = []
    services.index_progress.connect(lambda p: pending_seen.append(window.folders_panel.counts_for(str(folder))[2]))
    with qtbot.waitSignal(services.stats_ready, timeout=60_000, check_params_cb=lambda st: st["indexed"] == 2):
        window.add_folder(str(folder))
    assert max(pending_seen) >= 1, "files waiting to be indexed show as pending while the folder indexes"
    qtbot.waitUntil(lambda: window.folders_panel.counts_for(str(folder)) == (2, 1, 0), timeout=10_000)
    assert window.docs_label.text() == "2 documents"
    assert window.failed_btn.text() == "1 failed"
    assert [f.path for f in services.prefs.folders()] == [str(folder)]


def test_failures_view_lists_reasons_and_retry_works(make_window, qtbot, tmp_path):
    folder = tmp_path / "bad"
    write(folder / "ok.txt", "fine text")
    write(folder / "broken.pdf", "this is not a pdf")
    (folder / "empty.txt").write_bytes(b"")
    services, window = make_window([folder])
    with qtbot.waitSignal(services.stats_ready, timeout=60_000, check_params_cb=lambda st: st["failed"] == 2):
        services.index_folders(services.prefs.folders())
    dlg = window.show_failures()
    rows = {Path(p).name: (reason, detail) for p, reason, detail in dlg.rows()}
    assert rows["broken.pdf"][0] == "corrupt" and rows["empty.txt"][0] == "no_text"
    assert all(detail for _r, detail in rows.values())
    # fix the file and retry from the failures view
    write(folder / "empty.txt", "now it has words")
    dlg.table.selectRow([Path(p).name for p, _r, _d in dlg.rows()].index("empty.txt"))
    with qtbot.waitSignal(services.stats_ready, timeout=60_000, check_params_cb=lambda st: st["failed"] == 1):
        qtbot.mouseClick(dlg.retry_btn, Qt.MouseButton.LeftButton)
    assert [Path(p).name for p, _r, _d in dlg.rows()] == ["broken.pdf"]
    dlg.close()


def test_settings_persist(make_window, qtbot, prefs):
    from desktop_search.gui.prefs import Key, Prefs
    from desktop_search.gui.settings_dialog import SettingsDialog

    _s, window = make_window()
    assert prefs.to_settings().cpu_precision == "int8"  # the fast CPU encoder unless the user picks fp32
    dlg = SettingsDialog(prefs, window)
    assert dlg.cpu_precision.currentText() == "int8" and "fast" in dlg.cpu_precision_note.text()
    dlg.cpu_precision.setCurrentText("fp32")
    assert "exact" in dlg.cpu_precision_note.text()
    dlg.device.setCurrentText("cpu")
    dlg.weights[0].setValue(0.5)
    dlg.chunk.setValue(256)
    dlg.storage.setCurrentText("float16")
    assert "KB per token" in dlg.storage_cost.text()
    dlg.accept()
    again = Prefs(prefs.path)
    assert again.get(Key.WEIGHTS) == [0.5, 0.2, 0.4]
    assert again.get(Key.CHUNK_TOKENS) == 256 and again.get(Key.COLBERT_STORAGE) == "float16"
    s = again.to_settings()
    assert s.weights == (0.5, 0.2, 0.4) and s.chunk_tokens == 256
    assert s.cpu_precision == "fp32" and s.device == "cpu"  # what the encoder is loaded with at the next start
    assert "[General]" in prefs.path.read_text() or "weights" in prefs.path.read_text()


@pytest.mark.slow
def test_event_loop_stays_responsive_while_a_large_folder_indexes(make_window, qtbot, tmp_path, corpus, tiny_encoder):
    folder = tmp_path / "large"
    udhr = sorted((corpus / "multilingual_text_udhr" / "udhr2").glob("*.txt"))
    for i in range(150):
        src = udhr[i % len(udhr)]
        write(folder / f"doc{i:03d}.txt", src.read_text("utf-8")[(i * 97) % 2000 :][:6000])
    for name in ("tracemonkey.pdf", "TAMReview.pdf", "pdkids.pdf"):
        (folder / name).write_bytes((corpus / "pdfs" / "pdfjs" / name).read_bytes())
    services, window = make_window([folder], encoder=tiny_encoder)  # the encoder starts the indexing run
    gaps = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def beat():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(beat)
    timer.start()
    qtbot.waitUntil(lambda: services.indexing, timeout=10_000)
    wait_idle(qtbot, services, timeout=300_000)
    timer.stop()
    assert len(gaps) > 50, "indexing finished too fast to measure anything"
    assert max(gaps) < 100, f"event loop blocked for {max(gaps)} ms"
    assert services.store.count_vectors() > 0


def test_watched_folder_changes_show_up_in_search(make_window, qtbot, docs):
    services, window = indexed_window(make_window, qtbot, docs)
    qtbot.waitUntil(lambda: services.watcher is not None, timeout=10_000)
    assert "watching" in window.watch_label.text().lower()
    keyword = lambda q: [Path(h.path).name for h in services.searcher.search(q, mode="keyword").hits]
    write(docs / "space" / "comet.txt", "The comet Hale-Bopp was visible to the naked eye in 1997.")
    qtbot.waitUntil(lambda: keyword("Bopp") == ["comet.txt"], timeout=30_000)
    (docs / "space" / "comet.txt").rename(docs / "space" / "hale-bopp.txt")
    qtbot.waitUntil(lambda: keyword("Bopp") == ["hale-bopp.txt"], timeout=30_000)
    (docs / "space" / "hale-bopp.txt").unlink()
    qtbot.waitUntil(lambda: keyword("Bopp") == [], timeout=30_000)
    wait_idle(qtbot, services)
