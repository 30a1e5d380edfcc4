"""OCR speed (seconds per A4 page at 200 dpi) and accuracy (character error rate) of the app's OCR path.

Pages are made from known text: the Universal Declaration of Human Rights in ``../shared/corpus/
multilingual_text_udhr`` (English, French, German and Spanish for Latin script, Simplified Chinese) is laid out
on A4 pages, the pages are rasterised at 200 dpi and the pixels become an image-only PDF page, as a scanner
would produce. Each page then goes through ``desktop_search.core.extract.ocr.recognise`` (the same call the
isolated workers make: MuPDF render, RapidOCR PP-OCRv4, no cache). The reference for the error rate is the text
layer of the page before it was rasterised (what actually fit on the page), compared after removing whitespace
(Chinese has no spaces, and OCR line breaks differ), with a plain Levenshtein distance.

``python benchmarks/bench_ocr.py [--pages 1] [--threads 0] [--langs eng,fra,deu,spa,cmn_hans]``
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import emit, load_avg, log, machine, parser  # noqa: E402

A4 = (595, 842)
CORPUS = Path(os.environ.get("DESKTOP_SEARCH_SHARED_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus")
UDHR = CORPUS / "multilingual_text_udhr" / "udhr2"


def _pages_of(lang: str, count: int) -> list[tuple[str, bytes]]:
    """(reference text, image-only PDF bytes) for ``count`` A4 pages of the language's declaration."""
    import pymupdf

    text = (UDHR / f"{lang}.txt").read_text("utf-8")
    paras = [" ".join(p.split()) for p in text.splitlines() if p.strip()]
    out = []
    cjk = lang.startswith(("cmn", "jpn", "kor"))
    start = 0
    for _ in range(count):
        doc = pymupdf.open()
        page = doc.new_page(width=A4[0], height=A4[1])
        page.insert_font(fontname="cjk", fontbuffer=pymupdf.Font("cjk").buffer)
        # Paragraphs are added while they fit: the page is full, as a real page would be.
        y = 60.0
        while start < len(paras) and y < A4[1] - 80:
            rect = pymupdf.Rect(60, y, A4[0] - 60, A4[1] - 60)
            spare = page.insert_textbox(rect, paras[start], fontsize=11, fontname="cjk",
                                        lineheight=1.4 if cjk else 1.3)
            if spare < 0:
                break
            y = A4[1] - 60 - spare + 8
            start += 1
        reference = page.get_text("text")
        pix = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
        scan = pymupdf.open()
        scan.new_page(width=A4[0], height=A4[1]).insert_image(pymupdf.Rect(0, 0, *A4), pixmap=pix)
        out.append((reference, scan.tobytes()))
    return out


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _squash(text: str) -> str:
    return "".join(text.split())


def measure(langs: list[str], pages: int, threads: int, models_dir: str | None = None,
            primary: str = "") -> tuple[dict, list[float], list[float]]:
    """Per language: pages, seconds and CPU seconds per page, characters, CER; and every page's times."""
    import pymupdf

    from desktop_search.core.extract import ocr

    results = {}
    all_s: list[float] = []
    all_cpu: list[float] = []
    for lang in langs:
        seconds, cpu, errors, chars = [], [], 0, 0
        for reference, pdf in _pages_of(lang, pages):
            doc = pymupdf.open(stream=pdf, filetype="pdf")
            t, c = time.perf_counter(), time.process_time()
            page = ocr.recognise(doc[0], cache_dir=None, threads=threads, models_dir=models_dir, primary=primary)
            seconds.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)  # CPU seconds of all threads: what the page costs on any machine
            ref, hyp = _squash(reference), _squash(page.text)
            errors += _levenshtein(ref, hyp)
            chars += len(ref)
            log(f"{lang}: {seconds[-1]:.1f} s ({cpu[-1]:.1f} CPU s), {len(ref)} characters, "
                f"unreadable lines {page.unreadable}, read by {page.rec} (tried {', '.join(page.tried)})")
        all_s += seconds
        all_cpu += cpu
        results[lang] = {
            "pages": len(seconds),
            "s_per_page": round(sum(seconds) / len(seconds), 2),
            "cpu_s_per_page": round(sum(cpu) / len(cpu), 2),
            "characters": chars,
            "cer": round(errors / max(chars, 1), 4),
        }
    return results, all_s, all_cpu


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1, help="A4 pages per language (default 1)")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default, all cores)")
    ap.add_argument("--langs", default="eng,fra,deu,spa,cmn_hans")
    args = ap.parse_args()

    from desktop_search.core.extract import ocr

    info = machine()
    t0 = time.perf_counter()
    ocr._engine(args.threads)
    load_s = time.perf_counter() - t0
    results, all_s, all_cpu = measure(args.langs.split(","), args.pages, args.threads)
    latin = [v for k, v in results.items() if not k.startswith(("cmn", "jpn", "kor"))]
    emit({
        "benchmark": "ocr",
        "engine": ocr.ENGINE_ID,
        "dpi": 200,
        "threads": args.threads or "onnxruntime default",
        "engine_load_s": round(load_s, 2),
        "s_per_a4_page_mean": round(sum(all_s) / len(all_s), 2),
        "cpu_s_per_a4_page_mean": round(sum(all_cpu) / len(all_cpu), 2),
        "cer_latin": round(sum(v["cer"] * v["characters"] for v in latin) / max(sum(v["characters"] for v in latin), 1), 4)
        if latin else None,
        "per_language": results,
        "machine": {**info, "load_avg_end": load_avg()},
    })


if __name__ == "__main__":
    main()
