"""Regenerate the README screenshots from a real window under Xvfb.

    python packaging/screenshots.py            # writes resources/screenshots/*.png
    python packaging/screenshots.py --out DIR  # somewhere else (e.g. a before/after comparison)

Builds a demo library in a temporary folder (PDFs and multilingual texts from ../shared/corpus), a tiny random
BGE-M3-shaped model (the real weights cannot be downloaded everywhere; rankings in the pictures therefore come
from keyword and lexical matching more than from meaning), indexes it through the app itself, and captures the
main window at its default size (1280x800) with results and preview, the folders panel and the setup wizard.
Re-executes itself under ``xvfb-run`` when no display is available.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "resources" / "screenshots"
CORPUS = Path(os.environ.get("DESKTOP_SEARCH_SHARED_CORPUS", REPO.parent / "shared" / "corpus"))
PDFS = ["pdfjs/tracemonkey.pdf", "pdfjs/TAMReview.pdf", "pdfjs/pdkids.pdf", "pypdf_sample_files/habibi.pdf",
        "pdfjs/issue8570.pdf", "pdfjs/issue2840.pdf", "pdfjs/issue6010_1.pdf", "ocrmypdf/invalid.pdf"]
TEXTS = ["eng", "deu", "fra", "rus", "jpn", "cmn_hans", "arb", "hin"]


def _ensure_display() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return
    xvfb = shutil.which("xvfb-run")
    if not xvfb:
        sys.exit("no display and no xvfb-run: apt-get install xvfb (or set QT_QPA_PLATFORM=offscreen)")
    os.execv(xvfb, [xvfb, "-a", "-s", "-screen 0 1600x1000x24", sys.executable, *sys.argv])


def _demo_library(root: Path) -> Path:
    docs = root / "Documents"
    (docs / "papers").mkdir(parents=True)
    (docs / "notes").mkdir()
    for rel in PDFS:
        src = CORPUS / "pdfs" / rel
        if src.is_file():
            shutil.copy(src, docs / "papers" / Path(rel).name)
    for lang in TEXTS:
        src = CORPUS / "multilingual_text_udhr" / "udhr2" / f"{lang}.txt"
        if src.is_file():
            (docs / "notes" / f"human-rights-{lang}.txt").write_text(src.read_text("utf-8")[:12000], "utf-8")
    return docs


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (default: resources/screenshots)")
    out = ap.parse_args().out
    from desktop_search.environment import prepare_process

    _ensure_display()
    prepare_process()
    work = Path(tempfile.mkdtemp(prefix="ds-shots-"))
    os.environ["DESKTOP_SEARCH_DATA_DIR"] = str(work / "data")
    os.environ["DESKTOP_SEARCH_CONFIG_DIR"] = str(work / "config")
    os.environ["HOME"] = str(work)

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    app.setApplicationName("desktop_search")

    from desktop_search.core.models import Manifest, verify_model, write_manifest_for
    from desktop_search.devtools.random_bge_m3 import build_random_bge_m3
    from desktop_search.gui.app import create
    from desktop_search.gui.prefs import Key, Prefs, WatchedFolder

    docs = _demo_library(work)
    model = build_random_bge_m3(work / "model", size="tiny")
    verify_model(Manifest.load(write_manifest_for(model)), model)
    prefs = Prefs()
    prefs.set(Key.MODEL_DIR, str(model))
    prefs.set(Key.DEVICE, "cpu")
    prefs.set(Key.SETUP_COMPLETED, True)
    prefs.set_folders([WatchedFolder(str(docs))])

    def wait_for(signal, timeout_ms=300_000, check=lambda *a: True):
        loop = QEventLoop()
        result = []

        def on(*args):
            if check(*args):
                result.append(args)
                loop.quit()

        signal.connect(on)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()
        signal.disconnect(on)
        if not result:
            raise SystemExit(f"timed out waiting for {signal}")
        return result[0]

    def settle(ms=400):
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    services, window = create(prefs, start=False)
    window.resize(1280, 800)  # the default size a new user meets
    window.show()
    services.start()
    wait_for(services.semantic_ready)
    wait_for(services.index_finished)
    while services.indexing or services._index_queue:
        wait_for(services.index_finished)
    services.refresh_stats()
    wait_for(services.stats_ready)

    out.mkdir(parents=True, exist_ok=True)
    window.search_field.setText("trace compilation of JavaScript loops")
    wait_for(window.results_shown, check=lambda stage: stage == "reranked")
    row = next((i for i, p in enumerate(window.model.paths()) if p.endswith(".pdf")), 0)
    window.view.setCurrentIndex(window.model.index(row, 0))
    window.view.expand(window.model.index(row, 0))
    wait_for(window.preview.rendered)
    settle()
    window.grab().save(str(out / "main_window.png"))

    window.folders_dock.resize(520, 300)
    settle()
    window.folders_dock.grab().save(str(out / "folders_panel.png"))
    failures = window.show_failures()
    settle()
    failures.grab().save(str(out / "failures.png"))
    failures.close()

    wizard = window.open_wizard()
    wizard.next()
    wizard.next()
    settle(800)
    wizard.grab().save(str(out / "wizard_model.png"))
    wizard.close()
    services.shutdown()
    for p in sorted(out.glob("*.png")):
        print(p, p.stat().st_size, "bytes")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
