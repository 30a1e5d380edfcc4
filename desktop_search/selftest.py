"""``desktop-search --self-test --model-dir M``: proves an installation (a frozen bundle above all) works.

Loads the model from ``M`` through the normal verified path, indexes a small sample folder it writes itself
(multilingual text files and a PDF made with PyMuPDF), runs a hybrid search and checks that every hit carries
dense, sparse and ColBERT scores, runs a keyword search, and prints one JSON line. Exit code 0 means every step
passed. Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

SAMPLES = {
    "notes/solar.txt": "Photovoltaic panels convert sunlight into electricity; inverters feed the grid.",
    "notes/berlin.txt": "Berlin ist die Hauptstadt Deutschlands. Die Mauer fiel 1989.",
    "notes/tokyo.txt": "東京は日本の首都です。東京タワーは有名な観光地です。",
    "notes/cairo.txt": "القاهرة هي عاصمة مصر ويمر بها نهر النيل.",
}
PDF_PAGES = ["Cover page of the observatory report.", "The telescope measured quantum entanglement of photons."]


def _write_samples(root: Path) -> None:
    import pymupdf

    for rel, text in SAMPLES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, "utf-8")
    doc = pymupdf.open()
    for text in PDF_PAGES:
        doc.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 770), text, fontsize=11)
    doc.save(str(root / "report.pdf"))
    doc.close()


def run_self_test(model_dir: Path, device: str = "cpu") -> int:
    from desktop_search.config import load_settings
    from desktop_search.core.encoder import Encoder
    from desktop_search.core.indexer import Indexer
    from desktop_search.core.search import Searcher
    from desktop_search.core.store import Store

    steps: dict[str, object] = {}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="desktop-search-selftest-") as tmp:
        root = Path(tmp)
        docs = root / "docs"
        _write_samples(docs)
        settings = load_settings(index_dir=root / "index", model_dir=model_dir, device=device)
        # The int8 copy (CPU) is built into the temporary folder too: a self-test leaves nothing behind.
        encoder = Encoder(settings.model_dir, settings.device, precision=settings.cpu_precision, cache_dir=root / "cache")
        steps["model"] = {"device": encoder.device, "dim": encoder.dim, "precision": encoder.precision,
                          "precision_note": encoder.precision_note}
        store = Store(settings.index_dir)
        report = Indexer(store, settings, encoder).index([docs])
        steps["index"] = {"indexed": report.indexed, "failed": report.failed, "encoded": report.chunks_encoded}
        ok = report.indexed == len(SAMPLES) + 1 and report.failed == 0 and report.chunks_encoded > 0
        searcher = Searcher(store, encoder, weights=settings.weights)
        hybrid = searcher.search("quantum entanglement", k=3)
        modes_ok = bool(hybrid.hits) and all(
            all(isinstance(h.scores.get(m), float) for m in ("dense", "sparse", "colbert")) for h in hybrid.hits
        )
        pdf_hit = next((h for h in hybrid.hits if h.path.endswith("report.pdf")), None)
        steps["hybrid"] = {"hits": len(hybrid.hits), "all_modes": modes_ok, "pdf_page": pdf_hit.page if pdf_hit else None}
        keyword = searcher.search("Hauptstadt", k=3, mode="keyword")
        kw_ok = bool(keyword.hits) and keyword.hits[0].path.endswith("berlin.txt")
        steps["keyword"] = {"hits": len(keyword.hits), "top": Path(keyword.hits[0].path).name if keyword.hits else None}
        ok = ok and modes_ok and kw_ok and pdf_hit is not None and pdf_hit.page == 2
    steps["ok"] = ok
    steps["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps({"self_test": steps}, ensure_ascii=False))
    return 0 if ok else 1


def _since_start() -> float:
    """Seconds since this process started (what a user waits, interpreter start-up included)."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # psutil missing: time since this module was imported
        return time.monotonic() - _IMPORTED

_IMPORTED = time.monotonic()


def gui_smoke(seconds: float, query: str = "", wait_model: bool = False) -> int:
    """Open the real window and quit once it is ready; exit code 0 if that happened. Prints when (seconds since
    process start) the window was shown, the index open, and, with ``query`` typed at once as an impatient user
    would, when its first keyword results were on screen; with ``wait_model``, when semantic search was ready."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop_search.gui.app import create

    app = QApplication.instance() or QApplication(sys.argv[:1])
    services, window = create(start=False)
    window.show()
    app.processEvents()
    state: dict[str, object] = {"ready": False, "window_shown_s": round(_since_start(), 3)}
    waiting = {"index"} | ({"results"} if query else set()) | ({"model"} if wait_model else set())

    def done(what: str, key: str) -> None:
        state.setdefault(key, round(_since_start(), 3))
        waiting.discard(what)
        if not waiting:
            QTimer.singleShot(200, window.close)

    def ready() -> None:
        state["ready"] = True
        done("index", "index_ready_s")

    def shown(_stage: str) -> None:
        if window.model.rowCount():
            done("results", "first_results_s")

    services.store_ready.connect(ready)
    services.store_failed.connect(lambda e: (print(f"index failed: {e}", file=sys.stderr), window.close()))
    services.semantic_ready.connect(lambda _d: done("model", "model_ready_s"))
    services.semantic_unavailable.connect(lambda why: (print(f"no model: {why}", file=sys.stderr), window.close()))
    window.results_shown.connect(shown)
    window.destroyed.connect(app.quit)
    QTimer.singleShot(int(seconds * 1000), window.close)
    if query:
        window.search_field.setText(query)
    services.start(load_model=wait_model)
    app.exec()
    services.shutdown()
    print(json.dumps({"gui_smoke": {"window_shown": True, "index_ready": state["ready"],
                                    **{k: v for k, v in state.items() if k.endswith("_s")},
                                    "index_ready_s": state.get("index_ready_s")}}))
    return 0 if state["ready"] and not waiting else 1
