"""``desktop-search --self-test --model-dir M``: proves an installation (a frozen bundle above all) works.

Loads the model from ``M`` through the normal verified path, indexes a small sample folder it writes itself
(multilingual text files, a PDF made with PyMuPDF, and one file of every other kind the extractor registry
reads: Word, PowerPoint, Excel, OpenDocument, EPUB, HTML, RTF, e-mail, and an image that only OCR can read),
runs a hybrid search and checks that every hit carries dense, sparse and ColBERT scores, runs keyword searches
for a word only each sample holds, and prints one JSON line. Exit code 0 means every step passed. Nothing is
written outside a temporary folder. In a frozen bundle this proves the readers' libraries, their data files
and the OCR models were all packed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

SAMPLES = {
    "notes/solar.txt": "Photovoltaic panels convert sunlight into electricity; inverters feed the grid.",
    "notes/berlin.txt": "Berlin ist die Hauptstadt Deutschlands. Die Mauer fiel 1989.",
    "notes/tokyo.txt": "東京は日本の首都です。東京タワーは有名な観光地です。",
    "notes/cairo.txt": "القاهرة هي عاصمة مصر ويمر بها نهر النيل.",
}
PDF_PAGES = ["Cover page of the observatory report.", "The telescope measured quantum entanglement of photons."]


# One word per sample file of each other kind, found by a keyword search (file, position).
KIND_WORDS = {
    "quetzal": ("kinds/minutes.docx", 1),
    "axolotl": ("kinds/talk.pptx", 2),
    "capybara": ("kinds/budget.xlsx", 1),
    "pangolin": ("kinds/notes.odt", 1),
    "narwhal": ("kinds/book.epub", 2),
    "wombat": ("kinds/page.html", None),
    "tapir": ("kinds/letter.rtf", None),
    "dugong": ("kinds/mail.eml", 1),
    "kakapo": ("kinds/scan.png", 1),
}


def _zip(path: Path, members: dict[str, str]) -> None:
    """A package whose first member, when it is ``mimetype``, is stored uncompressed (ODF and EPUB require it)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in members.items():
            z.writestr(name, text, compress_type=zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED)


def write_epub(path: Path, chapters: list[str]) -> Path:
    """A minimal valid EPUB 3: mimetype first, container, package document, one XHTML file per chapter."""
    items = "".join(f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(len(chapters)))
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    members = {
        "mimetype": "application/epub+zip",
        "META-INF/container.xml": '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
        'media-type="application/oebps-package+xml"/></rootfiles></container>',
        "OEBPS/content.opf": '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Book</dc:title>'
        '<dc:identifier id="id">urn:sample</dc:identifier><dc:language>en</dc:language></metadata>'
        f"<manifest>{items}</manifest><spine>{spine}</spine></package>",
    }
    for i, text in enumerate(chapters):
        paras = "".join(f"<p>{p}</p>" for p in text.split("\n"))
        members[f"OEBPS/c{i}.xhtml"] = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/'
                                       f'xhtml"><head><title>Chapter {i + 1}</title></head><body><h1>Chapter {i + 1}'
                                       f"</h1>{paras}</body></html>")
    _zip(path, members)
    return path


def _write_kinds(root: Path) -> None:
    import docx
    import pptx
    import pymupdf

    root.mkdir(parents=True, exist_ok=True)
    document = docx.Document()
    document.add_heading("Minutes", 1)
    document.add_paragraph("The committee admired the quetzal feathers.")
    document.save(str(root / "minutes.docx"))
    deck = pptx.Presentation()
    for text in ("Opening slide", "The axolotl habitat"):
        deck.slides.add_slide(deck.slide_layouts[1]).shapes.title.text = text
    deck.save(str(root / "talk.pptx"))
    _zip(root / "budget.xlsx", {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
        '+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
        'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet '
        'name="Budget" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
        'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>capybara</t></is></c>'
        '<c r="B1"><v>3</v></c></row></sheetData></worksheet>',
    })
    _zip(root / "notes.odt", {
        "mimetype": "application/vnd.oasis.opendocument.text",
        "META-INF/manifest.xml": '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
        'opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type='
        '"application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" '
        'manifest:media-type="text/xml"/></manifest:manifest>',
        "content.xml": '<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:'
        'xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
        "<text:p>The pangolin has scales.</text:p></office:text></office:body></office:document-content>",
    })
    write_epub(root / "book.epub", ["A plain first chapter.", "The narwhal tusk chapter."])
    (root / "page.html").write_text("<html><head><title>Zoo</title><script>var x;</script></head>"
                                    "<body><p>The wombat digs a burrow.</p></body></html>", "utf-8")
    (root / "letter.rtf").write_bytes(rb"{\rtf1\ansi The tapir has a snout.\par}")
    (root / "mail.eml").write_text("Subject: Hello\nFrom: anna@example.org\nTo: ben@example.org\n"
                                   "Content-Type: text/plain; charset=utf-8\n\nThe dugong grazes on seagrass.\n")
    paper = pymupdf.open()
    page = paper.new_page(width=420, height=200)
    page.insert_text((30, 100), "The kakapo is a night parrot", fontsize=20)
    page.get_pixmap(dpi=150).save(str(root / "scan.png"))  # pixels only: OCR must read it


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
    _write_kinds(root / "kinds")


def run_self_test(model_dir: Path, device: str = "cpu") -> int:
    from desktop_search.config import load_settings
    from desktop_search.core.encoder import Encoder
    from desktop_search.core.indexer import Indexer
    from desktop_search.core.search import Searcher
    from desktop_search.core.store import Store

    steps: dict[str, Any] = {}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="desktop-search-selftest-") as tmp:
        root = Path(tmp)
        docs = root / "docs"
        _write_samples(docs)
        settings = load_settings(index_dir=root / "index", model_dir=model_dir, device=device,
                                 ocr_cache_dir=root / "ocr-cache")
        # The int8 copy (CPU) is built into the temporary folder too: a self-test leaves nothing behind.
        encoder = Encoder(settings.model_dir, settings.device, precision=settings.cpu_precision, cache_dir=root / "cache")
        steps["model"] = {"device": encoder.device, "dim": encoder.dim, "precision": encoder.precision,
                          "precision_note": encoder.precision_note}
        store = Store(settings.index_dir)
        report = Indexer(store, settings, encoder).index([docs])
        steps["index"] = {"indexed": report.indexed, "failed": report.failed, "encoded": report.chunks_encoded}
        ok = report.indexed == len(SAMPLES) + 1 + len(KIND_WORDS) and report.failed == 0 and report.chunks_encoded > 0
        if report.failures:
            steps["index"]["failures"] = report.failures
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
        kinds = {}
        for word, (rel, position) in KIND_WORDS.items():
            hits = searcher.search(word, k=1, mode="keyword").hits
            kinds[rel.rsplit("/", 1)[-1]] = bool(hits) and hits[0].path.endswith(rel) and hits[0].page == position
        steps["kinds"] = kinds
        ok = ok and modes_ok and kw_ok and pdf_hit is not None and pdf_hit.page == 2 and all(kinds.values())
    steps["ok"] = ok
    steps["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps({"self_test": steps}, ensure_ascii=False))
    return 0 if ok else 1


def _since_start() -> float:
    """Seconds since this process started (what a user waits, interpreter start-up included)."""
    now = time.time()  # before importing psutil, whose import is not part of what is measured
    try:
        import psutil

        return now - float(psutil.Process().create_time())
    except Exception:  # psutil missing: time since this module was imported
        return time.monotonic() - _IMPORTED

_IMPORTED = time.monotonic()


def gui_smoke(seconds: float, query: str = "", wait_model: bool = False) -> int:
    """Open the real window and quit once it is ready; exit code 0 if that happened. Prints when (seconds since
    process start) the window was shown, the index open, and, with ``query`` typed at once as an impatient user
    would, when its first keyword results were on screen; with ``wait_model``, when semantic search was ready."""
    from desktop_search.gui.app import create, preload_index_stack, skip_feature_scan

    skip_feature_scan()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    services, window = create(start=False)
    window.show()
    app.processEvents()
    cpu = time.process_time()  # CPU seconds of the whole process so far (every thread), next to each wall time
    state: dict[str, object] = {"ready": False, "window_shown_cpu_s": round(cpu, 3),
                                "window_shown_s": round(_since_start(), 3)}
    preload_index_stack()
    waiting = {"index"} | ({"results"} if query else set()) | ({"model"} if wait_model else set())

    def done(what: str, key: str) -> None:
        state.setdefault(key[:-2] + "_cpu_s", round(time.process_time(), 3))
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
