"""The first-run wizard walked like a user would, against a local HTTP server standing in for the hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop_search.core import hardware, models
from desktop_search.formatting import format_bytes
from desktop_search.gui.prefs import Key
from desktop_search.gui.wizard import SetupWizard, progress_text
from tests.model_server import ModelServer

REPO, REVISION = "test/tiny-bge-m3", "0" * 40


@pytest.fixture
def server(tiny_model_dir):
    with ModelServer(tiny_model_dir, REPO, REVISION) as srv:
        yield srv


@pytest.fixture
def fresh(make_window, prefs, tmp_path, tiny_model_dir):
    """A window whose model folder is empty (first launch), pointed at the tiny model's manifest."""
    prefs.set(Key.MODEL_DIR, str(tmp_path / "model"))
    services, window = make_window()
    services.manifest_path = tiny_model_dir / "manifest.json"
    return services, window


def walk_to(qtbot, wizard: SetupWizard, page) -> None:
    while wizard.currentPage() is not page:
        qtbot.mouseClick(wizard.button(SetupWizard.WizardButton.NextButton), Qt.MouseButton.LeftButton)


def test_wizard_downloads_verifies_and_finishes_into_semantic_search(fresh, qtbot, server, docs):
    services, window = fresh
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    assert "never leave" in wizard.currentPage().findChild(type(wizard.done_page.summary)).text()
    walk_to(qtbot, wizard, wizard.hardware_page)
    assert "CPU:" in wizard.hardware_page.info.text()
    walk_to(qtbot, wizard, wizard.model_page)
    page = wizard.model_page
    assert not page.verified() and page.download_btn.isEnabled()
    # Before pressing Download: how much it fetches, where to, and the space there.
    total = models.Manifest.load(services.manifest_path).total_bytes()
    assert f"{format_bytes(total)} to download" in page.status.text() and "GB free there" in page.status.text()
    page.endpoint.setText(server.url)
    with qtbot.waitSignal(services.model_done, timeout=120_000) as done:
        qtbot.mouseClick(page.download_btn, Qt.MouseButton.LeftButton)
    assert done.args[0] is True, done.args
    assert page.verified() and "verified" in page.status.text()
    assert services.prefs.get(Key.ENDPOINT) == server.url
    walk_to(qtbot, wizard, wizard.folders_page)
    wizard.folders_page.list.clear()  # defaults (Documents, Desktop) live under the test's HOME
    wizard.folders_page.add(str(docs))
    assert "7 documents" in wizard.folders_page.estimate.text()
    walk_to(qtbot, wizard, wizard.done_page)
    assert "Model: ready" in wizard.done_page.summary.text()
    with qtbot.waitSignal(services.semantic_ready, timeout=120_000):
        qtbot.mouseClick(wizard.button(SetupWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)
    assert services.prefs.get(Key.SETUP_COMPLETED) is True
    assert [f.path for f in services.prefs.folders()] == [str(docs)]
    qtbot.waitUntil(lambda: services.index_idle, timeout=120_000)
    assert services.store.count_vectors() > 0  # the catch-up pass encoded the keyword-indexed chunks
    # after setup nothing touches the network: the autouse guard would fail the test; the server saw only
    # the download's requests
    assert all(r.file for r in server.log)


def test_search_works_from_minute_one_while_the_model_downloads(fresh, qtbot, server, docs):
    services, window = fresh
    server.faults.throttle_bps["pytorch_model.bin"] = 64_000  # a slow line: minutes for the weights
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    walk_to(qtbot, wizard, wizard.model_page)
    wizard.model_page.endpoint.setText(server.url)
    wizard.model_page.start_download()
    assert services.model_busy
    walk_to(qtbot, wizard, wizard.folders_page)
    wizard.folders_page.list.clear()
    wizard.folders_page.add(str(docs))
    walk_to(qtbot, wizard, wizard.done_page)
    assert "downloading in the background" in wizard.done_page.summary.text()
    with qtbot.waitSignal(services.index_finished, timeout=120_000):
        qtbot.mouseClick(wizard.button(SetupWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)
    assert services.model_busy, "the download should still be running"
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        qtbot.keyClicks(window.search_field, "Hauptstadt")
    assert Path(window.model.paths()[0]).name == "berlin.txt"
    assert window.device_label.text().startswith("model: downloading")
    with qtbot.waitSignal(services.model_done, timeout=30_000) as done:
        services.cancel_model_job()
    assert done.args[0] is False


def test_pause_then_resume_continues_from_the_partial_file(fresh, qtbot, server):
    services, window = fresh
    server.faults.throttle_bps["pytorch_model.bin"] = 200_000
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    walk_to(qtbot, wizard, wizard.model_page)
    page = wizard.model_page
    page.endpoint.setText(server.url)
    page.start_download()
    part = Path(services.settings.model_dir) / "pytorch_model.bin.part"
    qtbot.waitUntil(lambda: part.exists() and part.stat().st_size > 100_000, timeout=60_000)
    with qtbot.waitSignal(services.model_done, timeout=30_000):
        qtbot.mouseClick(page.pause_btn, Qt.MouseButton.LeftButton)
    assert "Paused" in page.status.text() and page.download_btn.isEnabled()
    kept = part.stat().st_size
    server.faults.throttle_bps.clear()
    with qtbot.waitSignal(services.model_done, timeout=120_000) as done:
        qtbot.mouseClick(page.download_btn, Qt.MouseButton.LeftButton)
    assert done.args[0] is True
    starts = [r.range_start for r in server.requests_for("pytorch_model.bin")]
    assert starts[-1] is not None and starts[-1] >= kept * 0.9, starts


def test_a_file_that_never_matches_its_hash_is_named(fresh, qtbot, server):
    services, window = fresh
    server.faults.corrupt_always.add("sparse_linear.pt")
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    walk_to(qtbot, wizard, wizard.model_page)
    wizard.model_page.endpoint.setText(server.url)
    with qtbot.waitSignal(services.model_done, timeout=120_000) as done:
        wizard.model_page.start_download()
    assert done.args[0] is False
    assert "sparse_linear.pt" in wizard.model_page.detail.text()
    assert not wizard.model_page.verified()


def test_import_from_a_folder(fresh, qtbot, tiny_model_dir):
    services, window = fresh
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    walk_to(qtbot, wizard, wizard.model_page)
    with qtbot.waitSignal(services.model_done, timeout=120_000) as done:
        wizard.model_page.start_import(str(tiny_model_dir))
    assert done.args[0] is True and wizard.model_page.verified()


def test_progress_text_is_readable():
    from desktop_search.core.models import TransferProgress

    p = TransferProgress("download", "pytorch_model.bin", 10, 100, 412 * 1024**2, int(2.2 * 1024**3), 8.5 * 1024**2, 200.0, 1, 8)
    assert progress_text(p) == "downloading pytorch_model.bin — 412.0 MB of 2.2 GB · 8.5 MB/s · 3 min left"


def test_hardware_page_benchmarks_the_model_and_the_estimate_uses_it(make_window, qtbot, docs, tiny_encoder):
    services, window = make_window(encoder=tiny_encoder)
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    with qtbot.waitSignal(wizard.hardware_page.benchmark_done, timeout=60_000) as done:
        walk_to(qtbot, wizard, wizard.hardware_page)
    assert done.args[0] > 0
    assert "tokens per second" in wizard.hardware_page.speed.text()
    assert wizard.hardware_page.device() == "cpu"  # from prefs
    walk_to(qtbot, wizard, wizard.folders_page)
    wizard.folders_page.list.clear()
    wizard.folders_page.add(str(docs))
    text = wizard.folders_page.estimate.text()
    assert "7 documents" in text and "measured on this machine" in text and "GB" in text


def test_before_the_model_is_installed_a_gpu_machine_gets_the_gpu_estimate_unless_cpu_is_chosen(
        fresh, qtbot, docs, monkeypatch):
    from desktop_search.core import hardware

    monkeypatch.setattr(hardware, "_nvidia", lambda: ("NVIDIA GeForce RTX 4060 Laptop GPU", 8.0))
    services, window = fresh
    services.prefs.set(Key.DEVICE, "auto")
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    walk_to(qtbot, wizard, wizard.hardware_page)
    assert "RTX 4060" in wizard.hardware_page.info.text()
    assert "once the model is installed" in wizard.hardware_page.speed.text()
    walk_to(qtbot, wizard, wizard.folders_page)
    wizard.folders_page.list.clear()
    wizard.folders_page.add(str(docs))
    text = wizard.folders_page.estimate.text()
    assert "7 documents" in text and hardware.GPU_REFERENCE_CARD in text and "rough guess" in text
    wizard.hardware_page.radios["cpu"].setChecked(True)
    wizard.folders_page.update_estimate()
    text = wizard.folders_page.estimate.text()
    assert hardware.GPU_REFERENCE_CARD not in text and "rough guess until the model is installed" in text


def test_wizard_offers_ocr_models_installs_and_verifies_one_and_keeps_the_choice(make_window, qtbot, tmp_path):
    from tests.ocr_pack import write_test_pack

    services, window = make_window()
    served = tmp_path / "served"
    served.mkdir()
    manifest = write_test_pack(served)
    services.ocr_manifest_path = manifest
    services.settings = services.settings.with_(ocr_models_dir=tmp_path / "ocr")
    with ModelServer(served, "packages", "ab") as srv:
        wizard = window.open_wizard()
        qtbot.addWidget(wizard)
        walk_to(qtbot, wizard, wizard.ocr_page)
        page = wizard.ocr_page
        box = page.boxes["testpack"]
        assert "Test script" in box.text() and "Apache-2.0" in page.about["testpack"].text()
        assert not page.install_btn.isEnabled()
        box.setChecked(True)
        page.endpoint.setText(srv.url)
        with qtbot.waitSignal(services.ocr_models_done, timeout=120_000) as done:
            qtbot.mouseClick(page.install_btn, Qt.MouseButton.LeftButton)
    assert done.args[0] is True, done.args
    assert services.installed_ocr_packs() == {"testpack"} and "verified" in page.status.text()
    assert not box.isEnabled() and services.prefs.get(Key.OCR_ENDPOINT) == srv.url
    # The installed recogniser can be chosen to read every page first; the choice reaches indexing.
    page.primary.setCurrentIndex(page.primary.findData("testpack"))
    assert services.prefs.get(Key.OCR_PRIMARY) == "testpack" and services.settings.ocr_primary == "testpack"
    wizard.reject()


def test_the_ocr_page_with_the_shipped_packs_fits_the_wizard_without_widening_it(make_window, qtbot):
    _services, window = make_window()
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.waitExposed(wizard)
    width = wizard.width()
    walk_to(qtbot, wizard, wizard.ocr_page)
    page = wizard.ocr_page
    (about,) = page.about.values()  # the shipped pack: a long name, size and licence
    assert "PP-OCRv5" in about.text() and about.wordWrap()
    assert wizard.width() == width and page.minimumSizeHint().width() <= page.width()
    walk_to(qtbot, wizard, wizard.folders_page)
    assert wizard.width() == width
    wizard.reject()


def test_the_model_page_counts_an_earlier_partial_download_and_says_when_the_disk_is_too_full(fresh, qtbot,
                                                                                             monkeypatch):
    services, window = fresh
    manifest = models.Manifest.load(services.manifest_path)
    big = max(manifest.files, key=lambda f: f.size)
    folder = services.settings.model_dir
    folder.mkdir(parents=True)
    (folder / (big.path + models.PART_SUFFIX)).write_bytes(b"\0" * (big.size // 2))
    wizard = window.open_wizard()
    qtbot.addWidget(wizard)
    walk_to(qtbot, wizard, wizard.model_page)
    text = wizard.model_page.status.text()
    left = manifest.total_bytes() - big.size // 2
    assert f"{format_bytes(left)} to download (of {format_bytes(manifest.total_bytes())}" in text
    assert "earlier download" in text and "not enough" not in text
    monkeypatch.setattr(hardware, "free_gb", lambda _path: 0.0)
    assert "not enough: free some space" in wizard.model_page.plan()
    wizard.reject()
