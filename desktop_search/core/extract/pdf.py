"""PDF (and every fixed-layout format MuPDF opens) -> one position per page, with PyMuPDF.

Pages keep their 1-based numbers so search hits can point at a page, and the preview renders that page with the
matched words boxed. The document is opened from the bytes already read (never from disk), so a damaged PDF that
MuPDF repairs is repaired in memory only. Text is kept as extracted apart from cleaning: control characters out,
line endings to ``\\n``, runs of more than two blank lines shortened, and characters from the Arabic Presentation
Forms blocks (U+FB50-U+FDFF, U+FE70-U+FEFF), which some PDFs emit instead of ordinary Arabic letters,
NFKC-normalised to the base letters so that Arabic queries typed on a keyboard match them. Failures are values:
``encrypted`` (no password known), ``no_text`` (scanned or image-only, or fonts without Unicode mapping),
``corrupt``, ``timeout``. The time limit is checked between pages, so one pathologically slow page can overrun
it: the isolated pool (``isolate.py``) adds the hard limit. Calls are serialised by ``MUPDF_LOCK`` because
PyMuPDF is not thread-safe and its warning store is process-global.
"""

from __future__ import annotations

import io
import re
import sys
import threading
import unicodedata
from typing import Any, Callable, Sequence

from desktop_search.core.extract.base import (
    Extraction,
    Page,
    clean_text,
    compact,
    describe,
    have,
    ok,
    pages_phrase,
    shorten,
    squeeze_blank_lines,
)
from desktop_search.core.extract.registry import Extractor, Source
from desktop_search.core.failures import Reason

__all__ = ["EXTRACTORS", "MUPDF_LOCK", "pymupdf_module", "open_document", "read_pdf", "read_paged", "read_chapters"]

# PyMuPDF must not be used from several threads at once, and MuPDF's warning store is global:
# serialising keeps warnings attributed to the right file.
MUPDF_LOCK = threading.RLock()
_FLAGS: int | None = None


def pymupdf_module() -> Any:
    """PyMuPDF, imported on first use without its optional layout analyser."""
    # PyMuPDF imports its layout analyser (an ONNX model: ~0.5 s and ~100 MB per process) when it is installed;
    # text extraction never uses it, and every extraction worker process would pay for it.
    sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
    sys.modules.setdefault("pymupdf4llm", None)  # type: ignore[arg-type]
    import pymupdf

    return pymupdf


def warm_up() -> None:
    pymupdf_module()


def _text_flags() -> int:
    # TEXTFLAGS_TEXT minus two flags:
    #  - TEXT_PRESERVE_LIGATURES: off so MuPDF expands "ﬁ"/"ﬂ"/"ﬃ" into letters a user would type.
    #  - TEXT_CID_FOR_UNKNOWN_UNICODE: off so glyphs without a Unicode mapping become U+FFFD rather
    #    than their raw glyph ids, which otherwise look like real (random Greek/Latin) text and
    #    pollute the index.
    # TEXT_PRESERVE_IMAGES stays off: images are never decoded, so a decompression-bomb image page
    # costs nothing.
    global _FLAGS
    if _FLAGS is None:
        pymupdf = pymupdf_module()
        _FLAGS = (
            pymupdf.TEXTFLAGS_TEXT
            & ~pymupdf.TEXT_PRESERVE_LIGATURES
            & ~pymupdf.TEXT_CID_FOR_UNKNOWN_UNICODE
            & ~pymupdf.TEXT_PRESERVE_IMAGES
        )
    return _FLAGS


def _quiet_mupdf() -> None:
    # MuPDF prints errors/warnings to stderr by default; for a desktop app that is noise, and
    # the warnings are collected per file instead.
    pymupdf = pymupdf_module()
    pymupdf.TOOLS.mupdf_display_errors(False)
    if hasattr(pymupdf.TOOLS, "mupdf_display_warnings"):
        pymupdf.TOOLS.mupdf_display_warnings(False)


def open_document(data: bytes, filetype: str) -> Any:
    """A MuPDF document from bytes (never from the file). WebP, which MuPDF cannot decode, goes through Pillow."""
    pymupdf = pymupdf_module()
    if filetype == "webp":
        from PIL import Image

        out = io.BytesIO()
        with Image.open(io.BytesIO(data)) as image:
            image.convert("RGB").save(out, "PNG")
        data, filetype = out.getvalue(), "png"
    return pymupdf.open(stream=data, filetype=filetype)


def read_pdf(src: Source) -> Extraction:
    return read_paged(src, "pdf", "PDF")


def read_paged(src: Source, filetype: str, label: str) -> Extraction:
    """A fixed-layout document (PDF, XPS, CBZ, images): one position per page; pages without text are OCR'd."""
    return _with_document(src, filetype, label, _read_pages)


def read_chapters(src: Source, filetype: str, label: str) -> Extraction:
    """A reflowable document (EPUB, FB2): one position per chapter, laid out by MuPDF."""
    return _with_document(src, filetype, label, _read_chapters)


def _with_document(src: Source, filetype: str, label: str, read: Callable[[Source, Any, str], Extraction]
                   ) -> Extraction:
    pymupdf = pymupdf_module()
    with MUPDF_LOCK:
        _quiet_mupdf()
        pymupdf.TOOLS.reset_mupdf_warnings()
        if len(src.data) == 0:
            return src.fail(Reason.NO_TEXT, "empty file (0 bytes)")
        try:
            doc = open_document(src.data, filetype)
        except Exception as exc:  # noqa: BLE001 - FileDataError, RuntimeError, ValueError...
            return src.fail(Reason.CORRUPT, f"not a readable {label} ({describe(exc)})", mupdf_warning_note())
        try:
            return read(src, doc, label)
        finally:
            doc.close()


def unlock(doc: Any, passwords: Sequence[str] = ()) -> bool:
    """Open a protected document with the empty password (owner-password-only files: MuPDF normally does that
    itself, this covers files where it does not) or one of the user's, as typed and as AES-256 (revision 6)
    files expect it after SASLprep, which MuPDF does not apply (a soft hyphen dropped, "ª" read as "a");
    False when none opens it."""
    if not doc.needs_pass:
        return True
    tries = dict.fromkeys(("", *passwords, *(_saslprep(p) for p in passwords)))
    return any(doc.authenticate(p) for p in tries)


def _saslprep(password: str) -> str:
    """RFC 4013's mapping and normalisation (without its prohibition checks: a wrong password just fails)."""
    import stringprep

    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    return unicodedata.normalize("NFKC", mapped)


def _read_chapters(src: Source, doc: Any, label: str) -> Extraction:
    if not unlock(doc, src.options.passwords):
        return src.fail(Reason.ENCRYPTED, f"this {label} is protected (DRM or password); it cannot be read")
    pages: list[Page] = []
    flags = _text_flags()
    count = doc.chapter_count
    for chapter in range(count):
        if src.over_time():
            return src.fail(Reason.TIMEOUT, f"stopped after {chapter} of {count} chapters "
                                       f"(time limit {src.options.time_limit_s:g} s)", page_count=count)
        texts = [doc.load_page((chapter, n)).get_text("text", flags=flags, sort=False)
                 for n in range(doc.chapter_page_count(chapter))]
        pages.append(Page(chapter + 1, _clean_pdf_text("\n".join(texts)).strip()))
    return ok(src.path, src.kind, pages, count, what=label, warnings=[mupdf_warning_note()])


def _read_pages(src: Source, doc: Any, label: str) -> Extraction:
    warnings: list[str] = []
    if doc.needs_pass and not unlock(doc, src.options.passwords):
        method = _encryption_name(doc)
        method = f" ({method})" if method else ""
        count = len(src.options.passwords)
        tried = ("no password known" if not count else "the password given does not open it" if count == 1
                 else f"none of the {count} passwords given opens it")
        return src.fail(Reason.ENCRYPTED, f"password-protected {label}{method}; {tried}", mupdf_warning_note())
    try:
        page_count = doc.page_count
    except Exception as exc:  # noqa: BLE001
        return src.fail(Reason.CORRUPT, f"page tree unreadable ({describe(exc)})", *warnings, mupdf_warning_note())
    if page_count <= 0:
        return src.fail(Reason.CORRUPT, "no pages could be read", *warnings, mupdf_warning_note())

    pages: list[Page] = []
    textless: list[int] = []  # nothing at all: scanned images, drawings, blank
    glyphs_only: list[int] = []  # text whose font has no Unicode mapping: only U+FFFD
    garbage: list[int] = []  # a text layer that is not language (a bad OCR layer, broken encodings)
    failed: list[int] = []
    first_error = ""
    unmapped_on: dict[int, int] = {}  # U+FFFD per page: glyphs whose font has no Unicode mapping
    for index in range(page_count):
        # Checked between pages (a MuPDF call cannot be interrupted); a document whose last page
        # finishes late is complete, so only stopping early counts as a timeout.
        if index and src.over_time():
            return Extraction(
                path=src.path, kind=src.kind, pages=(), page_count=page_count, ok=False,
                reason=Reason.TIMEOUT,
                detail=f"stopped after {index} of {page_count} pages "
                       f"(time limit {src.options.time_limit_s:g} s)",
                warnings=compact(warnings + [mupdf_warning_note()]),
            )
        number = index + 1
        try:
            text = page_layer(doc[index])
        except Exception as exc:  # noqa: BLE001 - one broken page must not lose the others
            failed.append(number)
            first_error = first_error or describe(exc)
            continue
        unmapped_on[number] = text.count("\ufffd")
        if text.replace("\ufffd", "").strip():
            pages.append(Page(number=number, text=text))
            if _is_garbage(text):
                garbage.append(number)
        elif text.strip():
            glyphs_only.append(number)
        else:
            textless.append(number)

    ocr_done: list[int] = []
    wanted: list[int] = []
    if src.options.ocr:
        # OCR'd: pages with no text but an image (scans) or many drawn shapes (text converted to outlines), pages
        # whose fonts cannot be mapped to Unicode (MuPDF still draws the glyphs), and pages whose text layer is
        # garbage over an image (a bad OCR layer).
        wanted = sorted(set(glyphs_only) | {n for n in textless + garbage if not doc.is_pdf or _has_images(doc, [n])
                                            or (n in textless and _drawn_like_text(doc, n))})
        stats = _ocr_pages(src, doc, wanted, pages, warnings)
        ocr_done = stats[0]
        textless = [n for n in textless if n not in ocr_done]
        glyphs_only = [n for n in glyphs_only if n not in ocr_done]
        ocr_fresh, ocr_cached = stats[1], stats[2]
    else:
        ocr_fresh = ocr_cached = 0

    unmapped = sum(count for number, count in unmapped_on.items() if number not in ocr_done)
    # Checked after the pages: MuPDF may only notice a broken xref while loading them.
    if doc.is_repaired:
        warnings.insert(0, "recovered from damaged file (xref rebuilt)")
    if failed:
        warnings.append(f"{pages_phrase(failed)} could not be read ({first_error})")
    if unmapped:
        warnings.append(
            f"{unmapped} characters have no Unicode mapping in their font and appear as \ufffd"
        )

    if not pages:
        if failed and not (textless or glyphs_only):
            reason, detail = Reason.CORRUPT, f"none of the {page_count} pages could be read"
        elif glyphs_only:
            reason = Reason.NO_TEXT
            detail = ("the text cannot be read: its fonts have no Unicode mapping "
                      f"({unmapped} characters)")
        elif doc.is_repaired and not _has_images(doc, textless):
            # Empty pages salvaged from a broken file: calling it "scanned" would mislead.
            reason = Reason.CORRUPT
            recovered = ("the recovered page contains" if page_count == 1
                         else f"the {page_count} recovered pages contain")
            detail = f"damaged file; {recovered} neither text nor images"
        else:
            of_pages = "the only page" if page_count == 1 else f"any of {page_count} pages"
            reason = Reason.NO_TEXT
            if src.options.ocr and not wanted:  # nothing drawn that OCR could read: not a scan
                blank = "the only page is" if page_count == 1 else f"all {page_count} pages are"
                detail = f"{blank} blank: no text, no image, nothing drawn that could be text"
            else:
                why = "OCR found no text it could read" if src.options.ocr else "OCR is turned off"
                detail = f"no text layer on {of_pages} (scanned or image-only; {why})"
        return src.fail(reason, detail, *warnings, mupdf_warning_note(), page_count=page_count)

    # Partial: indexed, but the user should know which pages search cannot see.
    if glyphs_only:
        warnings.append(f"{pages_phrase(glyphs_only)} {have(glyphs_only)} only text that cannot be "
                        "converted to Unicode (font without character mapping)")
    if textless:
        warnings.append(f"{pages_phrase(textless)} {have(textless)} no text layer (scanned images?)")
    missing = len(textless) + len(glyphs_only)
    details = []
    if ocr_done:
        details.append(f"text of {pages_phrase(ocr_done)} recognised by OCR")
    if missing:
        details.append(f"{missing} of {page_count} pages {have(missing)} no readable text (scanned?)")
    pages.sort(key=lambda p: p.number or 0)
    return Extraction(
        path=src.path, kind=src.kind, pages=tuple(pages), page_count=page_count, ok=True, reason=None,
        detail="; ".join(details), warnings=compact(warnings + [mupdf_warning_note()]),
        ocr_pages=ocr_fresh, ocr_cached=ocr_cached,
    )


def _ocr_pages(src: Source, doc: Any, numbers: list[int], pages: list[Page],
               warnings: list[str]) -> tuple[list[int], int, int]:
    """Recognise ``numbers``; their text replaces what ``pages`` had. -> (pages with text, fresh, from cache)."""
    if not numbers:
        return [], 0, 0
    from desktop_search.core.extract import ocr

    if not ocr.available():
        warnings.append(f"{pages_phrase(numbers)} need OCR, but the OCR engine could not be loaded")
        return [], 0, 0
    done: list[int] = []
    fresh = cached = 0
    unreadable: list[int] = []
    by_number = {p.number: i for i, p in enumerate(pages)}
    for i, number in enumerate(numbers, 1):
        src.note(f"OCR page {i}/{len(numbers)}")
        try:
            result = ocr.recognise(doc[number - 1], src.options.ocr_cache_dir, src.options.ocr_threads,
                                   heartbeat=lambda: src.note(f"OCR page {i}/{len(numbers)}, another pass"),
                                   models_dir=src.options.ocr_models_dir, primary=src.options.ocr_primary,
                                   manifest=src.options.ocr_manifest)
        except Exception as exc:  # noqa: BLE001 - one page the engine chokes on must not lose the others
            warnings.append(f"OCR failed on page {number} ({describe(exc)})")
            continue
        cached += result.cached
        fresh += not result.cached
        if result.unreadable:
            unreadable.append(number)
        text = _clean_pdf_text(result.text).strip()
        if not text:
            continue
        done.append(number)
        page = Page(number=number, text=text)
        if number in by_number:
            pages[by_number[number]] = page
        else:
            pages.append(page)
    if unreadable:
        warnings.append(f"OCR could not read some lines on {pages_phrase(unreadable)} (a script the installed "
                        "OCR models do not cover, or too blurred); they are not indexed")
    return done, fresh, cached


_WORDLIKE = re.compile(r"[^\W\d_]", re.UNICODE)


def unreadable_layer(text: str) -> bool:
    """A page text layer the extractor may replace by OCR (when the page can be recognised): nothing but white
    space and U+FFFD (no layer, or fonts without a Unicode mapping), or not language at all (a bad OCR layer)."""
    return not text.replace("\ufffd", "").strip() or _is_garbage(text)


def page_layer(page: Any) -> str:
    """A MuPDF page's text layer as the extractor reads it."""
    return _clean_pdf_text(page.get_text("text", flags=_text_flags(), sort=False))


def _is_garbage(text: str) -> bool:
    # Real text in any script is mostly letters; a broken OCR layer or encoding is mostly symbols and digits.
    visible = [c for c in text if not c.isspace()]
    if len(visible) < 40:
        return False
    letters = len(_WORDLIKE.findall(text))
    return letters / len(visible) < 0.45


# A page without text is recognised when it draws at least this many path segments: text turned into outlines
# draws thousands (5-20 curves a glyph; the corpus's vector.pdf 2,452), a rule or a frame a handful.
DRAWN_TEXT_SEGMENTS = 200


def _drawn_like_text(doc: Any, number: int) -> bool:
    try:
        return sum(len(path["items"]) for path in doc[number - 1].get_cdrawings()) >= DRAWN_TEXT_SEGMENTS
    except Exception:  # noqa: BLE001 - a page whose drawing cannot be listed is simply not recognised
        return False


def _has_images(doc: Any, numbers: list[int]) -> bool:
    # Lists image references only; nothing is decoded.
    for number in numbers:
        try:
            if doc[number - 1].get_images():
                return True
        except Exception:  # noqa: BLE001
            continue
    return False


def _encryption_name(doc: Any) -> str:
    # Best effort, for the user's benefit only: the /Encrypt dictionary is never encrypted itself.
    try:
        kind, value = doc.xref_get_key(-1, "Encrypt")
        if kind == "xref":
            xref = int(value.split()[0])

            def key(name: str) -> str:
                return str(doc.xref_get_key(xref, name)[1])
        elif kind == "dict":
            def key(name: str) -> str:
                last = re.escape(name.split("/")[-1])
                match = re.search(r"/" + last + r"(?!\w)\s*/?([\w.+-]+)", value)
                return match.group(1) if match else "null"
        else:
            return ""
        handler = key("Filter").lstrip("/")
        if handler and handler not in ("Standard", "null"):
            return f"{handler} security handler"
        version = key("V")
        cfm = key("CF/StdCF/CFM").lstrip("/")
        if version == "5" or cfm == "AESV3":
            return "AES-256"
        if cfm == "AESV2":
            return "AES-128"
        length = key("Length")
        bits = length if length.isdigit() else ("40" if version in ("1", "null") else "128")
        return f"RC4 {bits}-bit"
    except Exception:  # noqa: BLE001 - naming the cipher is cosmetic
        return ""


_MUPDF_NOISE = re.compile(r"^\.\.\. repeated \d+ times\.\.\.$")


def mupdf_warning_note() -> str:
    """Summarise (and reset) what MuPDF complained about while handling the current file."""
    try:
        raw = pymupdf_module().TOOLS.mupdf_warnings()  # also resets the store
    except Exception:  # noqa: BLE001
        return ""
    lines: list[str] = []
    for line in clean_text(raw).splitlines():
        line = line.strip()
        if line and not _MUPDF_NOISE.match(line) and line not in lines:
            lines.append(line)
    if not lines:
        return ""
    shown = "; ".join(shorten(line, 100) for line in lines[:3])
    more = f" (+{len(lines) - 3} more)" if len(lines) > 3 else ""
    return f"PDF reader warnings: {shown}{more}"


_ARABIC_PRESENTATION = re.compile(r"[\ufb50-\ufdff\ufe70-\ufeff]+")


def _clean_pdf_text(text: str) -> str:
    text = squeeze_blank_lines(clean_text(text))
    # The BOM/ZWNBSP U+FEFF sits in that range but NFKC leaves it unchanged.
    return _ARABIC_PRESENTATION.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)


EXTRACTORS = (
    Extractor(
        name="pdf", kind="pdf", extensions=(".pdf",), read=read_pdf, description="PDF document",
        isolated=True, position="page", preview="page", viewer_pages=True, signatures=(b"%PDF",),
        sniff=lambda data: b"%PDF-" in data[:1024], mime_types=("application/pdf",), tokens_per_byte=0.012,
        ocr=True,
    ),
)
