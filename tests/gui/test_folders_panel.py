"""Folders as a user manages them: nested folders, removing and rebuilding (asked first, never dropping files
another folder covers), true progress, a pause that takes effect, and `dir:` narrowing to any subfolder."""

from __future__ import annotations

from pathlib import Path

from desktop_search.core.indexer import Progress
from tests.gui.conftest import wait_idle
from tests.gui.test_main_window import indexed_window, search


def _answer(window, answer: bool) -> list[str]:
    asked: list[str] = []
    window.confirm = lambda title, text: asked.append(f"{title}: {text}") or answer
    return asked


def _indexed(qtbot, services) -> int:
    services.refresh_stats()
    with qtbot.waitSignal(services.stats_ready, timeout=30_000) as blocker:
        pass
    return blocker.args[0]["indexed"]


def test_removing_a_nested_folder_keeps_the_files_the_outer_folder_covers(make_window, qtbot, docs):
    services, window = indexed_window(make_window, qtbot, docs)
    before = _indexed(qtbot, services)
    asked = _answer(window, True)
    window.add_folder(str(docs / "de"))
    assert "is inside" in asked[-1] and str(docs) in asked[-1]
    wait_idle(qtbot, services)
    window.remove_folder(str(docs / "de"))
    assert asked[-1].startswith("Remove folder") and "stay searchable" in asked[-1]
    qtbot.waitUntil(lambda: [f.path for f in services.prefs.folders()] == [str(docs)], timeout=10_000)
    wait_idle(qtbot, services)
    assert _indexed(qtbot, services) == before
    search(qtbot, window, "Hauptstadt")
    assert [Path(p).name for p in window.model.paths()] == ["berlin.txt"]


def test_adding_a_folder_that_contains_a_watched_one_warns_and_can_be_cancelled(make_window, qtbot, docs):
    services, window = make_window([docs / "de"])
    asked = _answer(window, False)
    window.add_folder(str(docs))
    assert "contains" in asked[-1] and str(docs / "de") in asked[-1]
    assert [f.path for f in services.prefs.folders()] == [str(docs / "de")]


def test_remove_and_rebuild_ask_first_and_cancel_changes_nothing(make_window, qtbot, docs):
    services, window = indexed_window(make_window, qtbot, docs)
    before = _indexed(qtbot, services)
    asked = _answer(window, False)
    window.remove_folder(str(docs))
    window.rebuild_folder(str(docs))
    assert [a.split(":")[0] for a in asked] == ["Remove folder", "Rebuild folder"]
    assert [f.path for f in services.prefs.folders()] == [str(docs)]
    assert not services.indexing and _indexed(qtbot, services) == before
    _answer(window, True)
    window.remove_folder(str(docs))
    qtbot.waitUntil(lambda: window.docs_label.text() == "0 documents", timeout=30_000)


def test_pause_during_semantic_catch_up_takes_effect_and_says_so(make_window, qtbot, docs, tiny_encoder):
    services, window = indexed_window(make_window, qtbot, docs)  # keyword-indexed: nothing encoded yet
    texts: list[str] = []
    window.pause_btn.setVisible(True)
    window.pause_btn.setChecked(True)
    assert window.pause_btn.text() == "Pausing…" and window.progress_label.text() == "pausing…"
    services.index_progress.connect(lambda p: texts.append(window.progress_label.text()))
    services.use_encoder(tiny_encoder)  # the model became ready: catch-up encoding starts, paused
    qtbot.waitUntil(lambda: window.progress_label.text().startswith("paused"), timeout=30_000)
    assert window.pause_btn.text() == "Resume"
    assert services.store.vector_hashes() == set(), "nothing is encoded while paused"
    window.pause_btn.setChecked(False)
    wait_idle(qtbot, services)
    assert services.store.vector_hashes()
    assert any(t.startswith("encoding ") and "passages" in t for t in texts), texts
    assert not any("0/0" in t for t in texts), texts


def test_progress_text_names_the_phase_and_counts(make_window, qtbot):
    _s, window = make_window()
    window._on_index_started()
    text = window._progress_text
    assert text(Progress("scanning")) == "looking for changed files…"
    assert text(Progress("indexing", files_total=173, files_done=44)) == "indexing 44/173 files"
    p = Progress("encoding", files_total=173, files_done=44, chunks_encoded=120, chunks_to_encode=480)
    assert text(p).startswith("encoding 120/480+ passages · 44/173 files")  # +: files left may add passages
    assert text(Progress("indexing", files_total=9, files_done=2, note="scan.pdf: OCR page 3/40")).endswith("OCR page 3/40")
    assert text(Progress("encoding", chunks_encoded=10, chunks_to_encode=90)).startswith("encoding 10/90 passages")


def test_dir_in_the_query_narrows_to_any_subfolder(make_window, qtbot, docs):
    _s, window = indexed_window(make_window, qtbot, docs)
    search(qtbot, window, "observatory")
    assert "observatory.pdf" in [Path(p).name for p in window.model.paths()]
    search(qtbot, window, "observatory dir:reports")
    assert [Path(p).name for p in window.model.paths()] == ["observatory.pdf"]
    search(qtbot, window, "observatory dir:energy")
    assert window.model.paths() == []


def test_a_password_given_in_the_failures_list_indexes_the_protected_pdf_for_this_session(make_window, qtbot,
                                                                                         tmp_path, monkeypatch):
    import pymupdf
    from PySide6.QtCore import QItemSelectionModel, Qt
    from PySide6.QtWidgets import QInputDialog

    from tests.gui.test_main_window import shown_paths

    docs = tmp_path / "docs"
    docs.mkdir()
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Quarterly payslip for the lighthouse keeper", fontsize=12)
    doc.save(str(docs / "payslip.pdf"), encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret!", owner_pw="hr")
    services, window = make_window([docs])
    with qtbot.waitSignal(services.stats_ready, timeout=60_000, check_params_cb=lambda st: st["failed"] == 1):
        services.index_folders(services.prefs.folders())
    dlg = window.show_failures()
    assert [r[1] for r in dlg.rows()] == ["encrypted"] and not dlg.password_btn.isEnabled()
    dlg.table.selectionModel().select(dlg.model.index(0, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                                      | QItemSelectionModel.SelectionFlag.Rows)
    assert dlg.password_btn.isEnabled()
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("s3cret!", True)))
    with qtbot.waitSignal(services.stats_ready, timeout=60_000, check_params_cb=lambda st: st["failed"] == 0):
        qtbot.mouseClick(dlg.password_btn, Qt.MouseButton.LeftButton)
    assert dlg.rows() == []  # no longer a failure
    wait_idle(qtbot, services)
    search(qtbot, window, "payslip")
    assert [Path(p).name for p in shown_paths(window)] == ["payslip.pdf"]
    with qtbot.waitSignal(window.preview.rendered, timeout=60_000):  # the preview opens it with the password
        window.view.setCurrentIndex(window.model.index(0, 0))
    assert window.preview.shown.term_rects
    qtbot.waitUntil(lambda: window.preview.hit_pages == [1], timeout=30_000)  # F3 opens it too
    # Kept for this session only: not in the settings file.
    services.prefs._qs.sync()
    assert services.prefs.path.is_file() and "s3cret!" not in services.prefs.path.read_text("utf-8")
    dlg.close()
    # A later session (no password kept): the file stays indexed and found; its preview asks for the password.
    services.settings = services.settings.with_(document_passwords=())
    window.preview.clear()
    with qtbot.waitSignal(window.preview.rendered, timeout=60_000) as failed:
        window.preview.show_hit(window.model.hit_at(window.model.index(0, 0)), ["payslip"])
    assert failed.args == [-1] and 'href="password"' in window.preview.message.text()
    with qtbot.waitSignal(window.preview.rendered, timeout=60_000) as shown:
        window.preview.message.linkActivated.emit("password")
    assert shown.args == [1] and window.preview.shown.term_rects
    qtbot.waitUntil(lambda: window.preview.hit_pages == [1], timeout=30_000)
