"""The shared PDF corpus's ``scanned_image_only`` category with OCR off and on: which files become indexed.

Prints one JSON object: per file the outcome without OCR (the text layer only) and with OCR (reason, pages with
text, characters, OCR seconds, and the first words read), plus totals. ``python benchmarks/check_scanned_corpus.py``
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import emit, log, machine  # noqa: E402

CORPUS = Path(os.environ.get("DESKTOP_SEARCH_SHARED_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus")


def main() -> None:
    from desktop_search.core.extract import ExtractOptions, extract

    pdfs = CORPUS / "pdfs"
    rows = list(csv.DictReader(open(pdfs / "manifest.tsv", encoding="utf-8"), delimiter="\t"))
    files = {}
    info = machine()
    for row in rows:
        if row["category"] != "scanned_image_only":
            continue
        name = row["filename"]
        before = extract(pdfs / name, ExtractOptions(ocr=False))
        t = time.perf_counter()
        after = extract(pdfs / name, ExtractOptions(ocr=True), time_limit_s=600)
        seconds = time.perf_counter() - t
        text = " ".join(p.text for p in after.pages)
        files[name] = {
            "notes": row["notes"],
            "without_ocr": "indexed" if before.ok else before.reason,
            "with_ocr": "indexed" if after.ok else after.reason,
            "pages": after.page_count,
            "pages_with_text": len(after.pages),
            "ocr_pages": after.ocr_pages,
            "characters": sum(ch.isalnum() for ch in text),
            "seconds": round(seconds, 1),
            "start": " ".join(text.split())[:120],
            "warnings": list(after.warnings),
        }
        log(f"{name}: {files[name]['without_ocr']} -> {files[name]['with_ocr']} ({seconds:.0f} s)")
    emit({
        "benchmark": "scanned_corpus",
        "files": len(files),
        "indexed_without_ocr": sum(v["without_ocr"] == "indexed" for v in files.values()),
        "indexed_with_ocr": sum(v["with_ocr"] == "indexed" for v in files.values()),
        "per_file": files,
        "machine": info,
    })


if __name__ == "__main__":
    main()
