"""OCR: text from scanned pages and images, with word positions, cached by page content; and the image kind.

The engine is RapidOCR (``rapidocr-onnxruntime`` 1.4, Apache-2.0): PP-OCRv4 detection and recognition models for
Chinese and English/Latin script that ship inside its wheel and run on ONNX Runtime, which the app already has,
so OCR works offline right after ``pip install`` (it needs OpenCV; the headless build, without Qt plugins that
could clash with PySide6's). A page is rendered by MuPDF at 200 dpi (a long side of 1600-2000 pixels: what the
detector sees anyway), recognised line by line with a box per character, and the result is kept in a cache keyed
by the SHA-256 of the rendered pixels and the engine, so a rename, a re-index or a settings change never OCRs
the same page twice, and the preview finds the word boxes to highlight without running the engine. Lines the
recogniser is not confident about (mostly scripts its models do not cover: Cyrillic, Arabic, Devanagari...)
are counted and reported instead of being indexed as invented text. Each page is recognised in the isolated
worker process that reads the document, so OCR has the pool's memory cap and a deadline per page.

More scripts come from the recognition models the wizard installs (``core/ocr_models.py``: pinned, SHA-256-
verified packs). Only packs whose verification record still matches their files are loaded. The recogniser is
chosen per page by what it finds: the user's preferred pack (``ExtractOptions.ocr_primary``) or the bundled models
read the page first; when lines stay unreadable or are read with low confidence (a script they do not cover, or
only partly: kanji without kana), each other installed pack reads the page, and the reading with the most
confidently read characters is kept. The cache entry records which recognisers were tried, so installing a pack
re-reads exactly the pages that were in doubt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from desktop_search.core.extract.base import Extraction
from desktop_search.core.extract.registry import Extractor, Source

__all__ = ["EXTRACTORS", "OcrLine", "OcrPage", "ENGINE_ID", "BUNDLED", "Recogniser", "recognisers", "recognise",
           "cached_page", "available"]

ENGINE_ID = "rapidocr-onnxruntime-1.4/PP-OCRv4-ch-en/r3"  # part of every cache key
DPI = 200
MIN_LONG_SIDE, MAX_LONG_SIDE = 1600, 2000  # pixels; the detector shrinks anything larger to 2000 itself
MIN_CONFIDENCE = 0.5  # below this a line is reported as unreadable, not indexed
# A page whose lines are mostly unreadable is tried once more upside down: the per-line angle classifier the
# engine offers misreads upright lines often enough to lose several lines of a clean page, so it stays off and
# orientation is decided per page instead.
RETRY_BELOW = 0.5  # share of confidently read lines
CONFIDENT = 0.9  # mean confidence per character below which installed packs read the page too
BUNDLED = "bundled"  # the recogniser inside the engine's wheel (Chinese + English/Latin)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class OcrLine:
    text: str
    box: Box  # in page coordinates (points at 72 per inch, as the page is shown: rotation applied)
    chars: tuple[tuple[float, float], ...]  # x0, x1 of each character of ``text`` (empty when unknown)


@dataclass(frozen=True)
class OcrPage:
    lines: tuple[OcrLine, ...]
    unreadable: int  # lines found on the page that the installed models could not read
    cached: bool = False  # came from the cache: the engine did not run
    rec: str = BUNDLED  # the recogniser whose reading this is
    tried: tuple[str, ...] = (BUNDLED,)  # every recogniser that read the page, the first one first
    score: float = 0.0  # sum over the read lines of confidence x characters: how much was read, how surely

    @property
    def doubtful(self) -> bool:
        """Lines left unreadable, or read with low confidence (kanji read, kana dropped): another recogniser may
        do better."""
        chars = sum(len(line.text) for line in self.lines)
        return bool(self.unreadable) or (chars > 0 and self.score / chars < CONFIDENT)

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def find(self, term: str) -> list[Box]:
        """Boxes (page coordinates) of every occurrence of ``term`` on the page, case-insensitively."""
        needle = term.casefold().strip()
        out: list[Box] = []
        if not needle:
            return out
        for line in self.lines:
            hay = line.text.casefold()
            if len(hay) != len(line.text):  # casefold changed lengths (ß -> ss): character boxes no longer align
                hay = line.text.lower()
            start = hay.find(needle)
            while start >= 0:
                end = start + len(needle)
                if len(line.chars) == len(line.text) and end <= len(line.chars):
                    first, last = line.chars[start], line.chars[end - 1]
                    out.append((min(first[0], last[0]), line.box[1], max(first[1], last[1]), line.box[3]))
                else:
                    out.append(line.box)
                start = hay.find(needle, end)
        return out

    def to_json(self) -> str:
        lines = [[ln.text, list(ln.box), [list(c) for c in ln.chars]] for ln in self.lines]
        return json.dumps({"engine": ENGINE_ID, "lines": lines, "unreadable": self.unreadable, "rec": self.rec,
                           "tried": list(self.tried), "score": self.score}, ensure_ascii=False)

    @staticmethod
    def from_json(raw: str) -> "OcrPage":
        data = json.loads(raw)
        lines = tuple(OcrLine(t, tuple(b), tuple(tuple(c) for c in cs)) for t, b, cs in data["lines"])
        return OcrPage(lines, int(data.get("unreadable", 0)), cached=True, rec=str(data.get("rec", BUNDLED)),
                       tried=tuple(str(t) for t in data.get("tried", [BUNDLED])), score=float(data.get("score", 0.0)))


def available() -> bool:
    """Whether the OCR engine can be imported (it is a regular dependency; a broken install disables OCR)."""
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or OpenCV failing to load its libraries
        return False
    return True


# -- rendering and the cache ------------------------------------------------------------------------------------

def _render(page: Any) -> Any:
    pymupdf = _pymupdf()
    rect = page.rect
    long_side = max(rect.width, rect.height, 1.0)
    zoom = DPI / 72
    zoom = max(zoom, MIN_LONG_SIDE / long_side)
    zoom = min(zoom, MAX_LONG_SIDE / long_side)
    return page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace=pymupdf.csRGB), zoom


def _key(pix: Any) -> str:
    digest = hashlib.sha256(ENGINE_ID.encode())
    digest.update(f"{pix.width}x{pix.height}x{pix.n}".encode())
    digest.update(pix.samples_mv if hasattr(pix, "samples_mv") else pix.samples)
    return digest.hexdigest()


def _cache_file(cache_dir: str, key: str) -> Path:
    return Path(cache_dir) / key[:2] / f"{key}.json"


def _cache_get(cache_dir: str | None, key: str) -> OcrPage | None:
    if not cache_dir:
        return None
    try:
        return OcrPage.from_json(_cache_file(cache_dir, key).read_text("utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or damaged: recognise again


def _cache_put(cache_dir: str | None, key: str, page: OcrPage) -> None:
    if not cache_dir:
        return
    target = _cache_file(cache_dir, key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ocr-", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page.to_json())
        os.replace(tmp, target)  # readers never see half a file
    except OSError:
        pass  # a full or read-only cache only costs speed


def cached_page(page: Any, cache_dir: str | None) -> tuple[OcrPage | None, float]:
    """The cached OCR of a MuPDF page (None when it was never recognised) and the render zoom it was made at;
    for the preview, which never runs the engine."""
    pix, zoom = _render(page)
    return _cache_get(cache_dir, _key(pix)), zoom


# -- the engine -------------------------------------------------------------------------------------------------

_ENGINES: dict[tuple[str, int], Any] = {}
_ENGINE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Recogniser:
    id: str  # BUNDLED or an OCR model pack's id
    folder: str = ""  # the pack's verified folder (rec.onnx, keys.txt); "" for the bundled models


def recognisers(models_dir: str | None, primary: str = "", manifest: str | None = None) -> tuple[Recogniser, ...]:
    """The recognisers a page may be read with, in order: the preferred pack (when installed), the bundled models,
    then every other installed pack. Only packs of ``manifest`` (default: ``ocr_models.default_manifest_path()``)
    whose verification record matches their files count."""
    found: list[Recogniser] = []
    if models_dir:
        from desktop_search.core import ocr_models
        from desktop_search.core.models import ModelError

        try:
            packs = ocr_models.installed(Path(models_dir), _packs(manifest))
        except ModelError:  # a damaged manifest: the bundled models only
            packs = ()
        found = [Recogniser(p.id, str(Path(models_dir) / p.id)) for p in packs]
    first = [r for r in found if r.id == primary]
    return (*first, Recogniser(BUNDLED), *[r for r in found if r.id != primary])


_PACKS: dict[str, Any] = {}  # manifest path -> its packs


def _packs(manifest: str | None = None) -> Any:
    from desktop_search.core import ocr_models

    path = str(manifest or ocr_models.default_manifest_path())
    if path not in _PACKS:
        _PACKS[path] = ocr_models.load_packs(Path(path))
    return _PACKS[path]


def _engine(threads: int, rec: Recogniser = Recogniser(BUNDLED)) -> Any:
    with _ENGINE_LOCK:
        key = (rec.folder, threads)
        if key not in _ENGINES:
            from rapidocr_onnxruntime import RapidOCR

            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
            kwargs: dict[str, Any] = {"intra_op_num_threads": threads} if threads > 0 else {}
            if rec.folder:
                kwargs.update(rec_model_path=str(Path(rec.folder) / "rec.onnx"),
                              rec_keys_path=str(Path(rec.folder) / "keys.txt"))
            _ENGINES[key] = RapidOCR(**kwargs)
        return _ENGINES[key]


def recognise(page: Any, cache_dir: str | None, threads: int = 0,
              heartbeat: Callable[[], None] | None = None, *, models_dir: str | None = None,
              primary: str = "", manifest: str | None = None) -> OcrPage:
    """OCR one MuPDF page (from the cache when this exact page was recognised before by the same recognisers).
    ``heartbeat`` is called before each further pass (upside down, another recogniser), so the pool's per-step
    deadline restarts."""
    import numpy as np

    order = recognisers(models_dir, primary, manifest)
    pix, zoom = _render(page)
    key = _key(pix)
    hit = _cache_get(cache_dir, key)
    if hit is not None and hit.tried[:1] == (order[0].id,) and (
            not hit.doubtful or {r.id for r in order} <= set(hit.tried)):
        return hit
    image = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)
    image = np.ascontiguousarray(image[:, :, ::-1])  # the engine expects OpenCV's BGR order
    page_result = _read(image, zoom, threads, flipped=False, rec=order[0])
    found = len(page_result.lines) + page_result.unreadable
    flipped = False
    if found and len(page_result.lines) < RETRY_BELOW * found:
        if heartbeat is not None:
            heartbeat()
        turned = _read(np.ascontiguousarray(image[::-1, ::-1]), zoom, threads, flipped=True, rec=order[0])
        if len(turned.lines) > len(page_result.lines):
            page_result, flipped = turned, True
    tried = [order[0].id]
    for rec in order[1:]:
        if not page_result.doubtful:
            break
        if heartbeat is not None:
            heartbeat()
        upright = image[::-1, ::-1] if flipped else image
        other = _read(np.ascontiguousarray(upright), zoom, threads, flipped=flipped, rec=rec)
        tried.append(rec.id)
        if other.score > page_result.score:
            page_result = other
    page_result = replace(page_result, tried=tuple(tried))
    _cache_put(cache_dir, key, page_result)
    return page_result


def _read(image: Any, zoom: float, threads: int, flipped: bool, rec: Recogniser = Recogniser(BUNDLED)) -> OcrPage:
    result, _elapsed = _engine(threads, rec)(image, use_cls=False, return_word_box=True, text_score=0.0)
    height, width = image.shape[:2]
    lines: list[OcrLine] = []
    unreadable = 0
    total = 0.0
    for item in result or []:
        quad, text, score = item[0], str(item[1]), float(item[2])
        if not text.strip():
            continue
        if score < MIN_CONFIDENCE or _misread(text):
            unreadable += 1
            continue
        points = [(width - x, height - y) if flipped else (x, y) for x, y in quad]
        xs = [p[0] / zoom for p in points]
        ys = [p[1] / zoom for p in points]
        box = (min(xs), min(ys), max(xs), max(ys))
        spans = _char_spans(item, text, zoom)
        if flipped:
            spans = tuple((width / zoom - x1, width / zoom - x0) for x0, x1 in spans)
        lines.append(OcrLine(text, box, spans))
        total += score * len(text)
    if flipped:
        lines.sort(key=lambda ln: (ln.box[1], ln.box[0]))  # reading order of the turned page
    return OcrPage(tuple(lines), unreadable, rec=rec.id, score=round(total, 3))


_LONG_WORD = re.compile(r"[A-Za-z0-9]{4,}")
_CASE_FLIP = re.compile(r"[a-z][A-Z]|[A-Za-z][0-9][A-Za-z]")


def _misread(text: str) -> bool:
    """A line of a script the models do not cover, read as Latin look-alikes ("TeXHHyeCKoro" for "техническо"):
    most of its words switch case or mix in digits mid-word, which real words almost never do."""
    words = _LONG_WORD.findall(text)
    return len(words) >= 1 and sum(bool(_CASE_FLIP.search(w)) for w in words) > 0.5 * len(words)


def _char_spans(item: list[Any], text: str, zoom: float) -> tuple[tuple[float, float], ...]:
    # With return_word_box the engine adds a box per recognised character and the characters themselves.
    if len(item) < 5 or not item[3] or not item[4]:
        return ()
    boxes, chars = item[3], item[4]
    if "".join(chars) != text or len(boxes) != len(chars):
        return ()
    spans = []
    for quad in boxes:
        xs = [p[0] / zoom for p in quad]
        spans.append((min(xs), max(xs)))
    return tuple(spans)


def _pymupdf() -> Any:
    from desktop_search.core.extract.pdf import pymupdf_module

    return pymupdf_module()


# -- the image kind ---------------------------------------------------------------------------------------------

_IMAGE_TYPES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp",
                ".webp": "webp"}
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")


def read_image(src: Source) -> Extraction:
    from desktop_search.core.extract.pdf import read_paged

    filetype = _IMAGE_TYPES.get(src.path.suffix.lower(), "png")
    if src.data.startswith(_SIGNATURES[:1]):
        filetype = "png"
    elif src.data.startswith(_SIGNATURES[1:2]):
        filetype = "jpeg"
    elif src.data.startswith(_SIGNATURES[2:4]):
        filetype = "tiff"
    elif re.match(rb"RIFF....WEBP", src.data[:12], re.DOTALL):
        filetype = "webp"
    return read_paged(src, filetype, "image")


EXTRACTORS = (
    Extractor(
        name="image", kind="image", extensions=tuple(_IMAGE_TYPES), read=read_image, description="image",
        position="page", preview="page", signatures=_SIGNATURES,
        sniff=lambda data: re.match(rb"RIFF....WEBP", data[:12], re.DOTALL) is not None,
        mime_types=("image/png", "image/jpeg", "image/tiff", "image/bmp", "image/webp"), tokens_per_byte=0.0005,
        ocr=True,
    ),
)
