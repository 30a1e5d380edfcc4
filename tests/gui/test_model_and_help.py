"""The model as a new user meets it (no model, a failed import, one installed from the command line meanwhile,
another manifest) and the small things: Help pages, the empty-index hint, the Patterns dialog, the hardware
page after an import."""

from __future__ import annotations

import shutil
import subprocess
import sys

from PySide6.QtCore import Qt

from desktop_search.core import models
from desktop_search.core.encoder import model_problem
from desktop_search.gui.folders import FolderDialog
from desktop_search.gui.main_window import NO_MODEL_TEXT
from desktop_search.gui.prefs import Key, WatchedFolder
from tests.conftest import REPO
from tests.gui.test_wizard import walk_to


def _copy_model(src, dst, *, keep_marker=False):
    shutil.copytree(src, dst, ignore=None if keep_marker else shutil.ignore_patterns(models.MARKER))
    return dst


def _fresh(make_window, prefs, tmp_path, tiny_model_dir):
    prefs.set(Key.MODEL_DIR, str(tmp_path / "model"))
    prefs.set(Key.CPU_PRECISION, "fp32")  # the exact path: no int8 copy to build in a test
    prefs.set(Key.MANIFEST, str(tiny_model_dir / "manifest.json"))
    return make_window()


def test_first_launch_without_a_model_says_keyword_only_and_how_to_get_one(make_window, prefs, tmp_path, tiny_model_dir):
    services, window = _fresh(make_window, prefs, tmp_path, tiny_model_dir)
    assert services.manifest_path == tiny_model_dir / "manifest.json"  # Settings → Model manifest
    services.load_model()
    assert NO_MODEL_TEXT in window.device_label.text()
    assert "desktop-search model download" in window.device_label.toolTip()
    assert "Setup wizard" in window.device_label.toolTip()


def test_a_model_installed_from_the_command_line_is_noticed(make_window, prefs, qtbot, tmp_path, tiny_model_dir):
    services, window = _fresh(make_window, prefs, tmp_path, tiny_model_dir)
    services.load_model()
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    walk_to(qtbot, wizard, wizard.model_page)
    wizard.model_page.detail.setText("an old error")
    proc = subprocess.run([sys.executable, "-m", "desktop_search", "model", "import", str(tiny_model_dir),
                           "--manifest", str(tiny_model_dir / "manifest.json"), "--model-dir", str(tmp_path / "model")],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with qtbot.waitSignal(services.semantic_ready, timeout=120_000):
        pass
    assert window.device_label.text() == "model: BGE-M3 on CPU"
    assert "installed and verified" in wizard.model_page.status.text()
    assert wizard.model_page.detail.text() == ""


def test_a_failed_import_names_the_file_in_one_line_with_details_on_demand(make_window, prefs, qtbot, tmp_path,
                                                                          tiny_model_dir):
    services, window = _fresh(make_window, prefs, tmp_path, tiny_model_dir)
    src = _copy_model(tiny_model_dir, tmp_path / "usb")
    (src / "sparse_linear.pt").write_bytes(b"not the weights")
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    walk_to(qtbot, wizard, wizard.model_page)
    page = wizard.model_page
    with qtbot.waitSignal(services.model_done, timeout=120_000) as done:
        page.start_import(str(src))
    assert done.args[0] is False
    assert "\n" not in page.detail.text() and "sparse_linear.pt" in page.detail.text()
    assert "expected sha256" not in page.detail.text() and page.bar.value() == 0
    assert page.details_btn.isVisible() and not page.failure_details.isVisible()
    qtbot.mouseClick(page.details_btn, Qt.MouseButton.LeftButton)
    assert page.failure_details.isVisible() and "expected sha256" in page.failure_details.text()


def test_model_manifest_command_writes_one_that_import_accepts(tmp_path, tiny_model_dir, capsys):
    from desktop_search.cli import main

    src = _copy_model(tiny_model_dir, tmp_path / "finetuned")
    (src / "manifest.json").unlink()
    out = tmp_path / "finetuned.json"
    assert main(["model", "manifest", str(src), "--out", str(out), "--repo", "me/bge-m3-ft"]) == 0
    assert "manifest written" in capsys.readouterr().out
    assert models.Manifest.load(out).repo == "me/bge-m3-ft"
    target = tmp_path / "installed"
    assert main(["model", "import", str(src), "--manifest", str(out), "--model-dir", str(target)]) == 0
    assert model_problem(target) is None
    assert main(["model", "manifest", str(tmp_path / "nowhere")]) != 0
    assert "no such folder" in capsys.readouterr().err


def test_index_with_unverified_model_files_says_what_to_run(tmp_path, tiny_model_dir, docs, capsys):
    from desktop_search.cli import main

    unverified = _copy_model(tiny_model_dir, tmp_path / "copied")
    code = main(["index", str(docs), "--index-dir", str(tmp_path / "idx"), "--model-dir", str(unverified)])
    err = capsys.readouterr().err
    assert code == 0  # keyword index built (semantic catches up once the model is verified)
    assert "have not been verified" in err and f"desktop-search model import {unverified}" in err


def test_help_menu_about_query_syntax_and_shortcuts(make_window):
    services, window = make_window()
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    texts = {a.text(): a for a in menu.actions()}
    texts["About desktop_search"].trigger()
    about = window.help_dialog.findChild(type(window.preview.text)).toPlainText()
    assert "AGPL" in about and "lancedb" in about and "pymupdf" in about
    assert str(services.settings.index_dir) in about and str(services.settings.model_dir) in about
    texts["Query syntax"].trigger()
    assert "dir:papers" in window.help_dialog.findChild(type(window.preview.text)).toPlainText()
    texts["Keyboard shortcuts"].trigger()
    assert "Shift+F3" in window.help_dialog.findChild(type(window.preview.text)).toPlainText()


def test_empty_index_hint_until_a_folder_is_added(make_window, qtbot, docs):
    services, window = make_window()
    services.refresh_stats()
    qtbot.waitUntil(lambda: window.empty_hint.isVisibleTo(window), timeout=30_000)
    assert "Add a folder" in window.empty_hint.text()
    window.add_folder(str(docs))
    qtbot.waitUntil(lambda: not window.empty_hint.isVisibleTo(window), timeout=60_000)


def test_patterns_dialog_is_wide_enough(qtbot):
    dlg = FolderDialog(WatchedFolder("/home/me/Documents", ["*.pdf"], ["drafts/*"]))
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.width() >= 560 and dlg.exclude.width() > 350


def test_hardware_page_measures_once_a_model_is_installed(make_window, qtbot, tiny_encoder):
    services, window = make_window()
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    walk_to(qtbot, wizard, wizard.hardware_page)
    assert "once the model is installed" in wizard.hardware_page.speed.text()
    with qtbot.waitSignal(wizard.hardware_page.benchmark_done, timeout=60_000):
        services.use_encoder(tiny_encoder)  # e.g. imported on the model page
    assert "tokens per second" in wizard.hardware_page.speed.text()
