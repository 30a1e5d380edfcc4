"""Text extraction: the first step of indexing, turning one file path into pages of text.

``extract(path)`` reads a PDF (page by page with PyMuPDF, keeping 1-based page numbers so search
hits can point at a page) or a plain-text/source file (decoded to one "page" with ``number=None``)
and returns an ``Extraction`` value. Following the house rule "errors are data", nothing here raises
for a bad input file: every failure (encrypted, scanned without text layer, corrupt, too large,
too slow, unreadable, undecodable, unsupported) comes back as ``ok=False`` with a reason code from
``REASONS`` and a human-readable ``detail``, so the indexer can record it per file and the GUI can
show it. The source file is only ever read (its bytes are read once into memory and MuPDF works on
that copy), so a damaged PDF that MuPDF repairs is repaired in memory, never on disk. Text is kept
as extracted, apart from cleaning: NUL and other control characters are removed (except newline and
tab), line endings become ``\\n``, PDF pages lose runs of more than two blank lines, and characters
from the Arabic Presentation Forms blocks (U+FB50-U+FDFF, U+FE70-U+FEFF), which some PDFs emit
instead of ordinary Arabic letters, are NFKC-normalised to the base letters (U+0600 block) so that
Arabic queries typed on a keyboard match them; all text is NFC-normalised (composed), as queries are. The time
limit is checked between pages, so one pathologically slow page can overrun it; callers that need
a hard limit must run extraction in a separate process. Calls are serialised by a module lock
because PyMuPDF is not thread-safe and its warning store is process-global.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import sys
import stat
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

# PyMuPDF imports its optional layout analyser (an ONNX model: ~0.5 s and ~100 MB per process) when it is
# installed; text extraction never uses it, and every extraction worker process would pay for it.
sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
sys.modules.setdefault("pymupdf4llm", None)  # type: ignore[arg-type]
import pymupdf  # noqa: E402
from charset_normalizer import from_bytes

from desktop_search.formatting import format_bytes

__all__ = [
    "REASONS",
    "TEXT_EXTENSIONS",
    "PDF_EXTENSIONS",
    "Page",
    "Extraction",
    "is_supported",
    "extract",
]

REASONS = (
    "encrypted",
    "no_text",
    "corrupt",
    "unsupported",
    "too_large",
    "timeout",
    "permission_denied",
    "decode_error",
)

TEXT_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".txt", ".md", ".markdown", ".rst", ".csv", ".tsv", ".log", ".json", ".xml", ".html",
        ".htm", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".tex",
        ".py", ".js", ".ts", ".c", ".h", ".cpp", ".hpp", ".java", ".go", ".rs", ".rb", ".php",
        ".sh", ".sql", ".css", ".kt", ".swift", ".cs", ".m", ".r", ".lua", ".pl",
    }
)
PDF_EXTENSIONS: frozenset[str] = frozenset({".pdf"})


@dataclass(frozen=True)
class Page:
    number: int | None  # 1-based PDF page number; None for text files (one page holding all text)
    text: str


@dataclass(frozen=True)
class Extraction:
    path: Path
    kind: str  # "pdf" | "text"; "other" for files whose extension is not supported
    pages: tuple[Page, ...]  # only pages with non-whitespace text; empty when not ok
    page_count: int  # pages in the document (1 for text files, 0 if it could not be opened)
    ok: bool  # True -> the file will be indexed
    reason: str | None  # one of REASONS when not ok, None when ok
    detail: str  # human-readable explanation, "" when there is nothing to say
    warnings: tuple[str, ...]  # non-fatal notes for the user


def is_supported(path: Path) -> bool:
    suffix = Path(path).suffix.lower()
    return suffix in PDF_EXTENSIONS or suffix in TEXT_EXTENSIONS


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

# PyMuPDF must not be used from several threads at once, and MuPDF's warning store is global:
# serialising keeps warnings attributed to the right file.
_LOCK = threading.Lock()


def extract(
    path: Path, *, max_bytes: int = 512 * 1024**2, time_limit_s: float = 120.0
) -> Extraction:
    path = Path(path)
    suffix = path.suffix.lower()
    kind = "pdf" if suffix in PDF_EXTENSIONS else "text" if suffix in TEXT_EXTENSIONS else "other"
    try:
        if kind == "other":
            shown = f"'{path.suffix}'" if path.suffix else "no extension"
            return _fail(path, kind, "unsupported", f"file type not supported ({shown})")
        with _LOCK:
            started = time.monotonic()
            data = _read_checked(path, kind, max_bytes)
            if isinstance(data, Extraction):
                return data
            if kind == "pdf":
                return _extract_pdf(path, data, started, time_limit_s)
            return _extract_text(path, data)
    except MemoryError:
        return _fail(path, kind, "too_large", "ran out of memory while extracting this file")
    except OSError as exc:
        return _os_error(path, kind, exc)
    except Exception as exc:  # noqa: BLE001 - a bad file must never stop a batch
        return _fail(path, kind, "corrupt", f"extraction failed: {_describe(exc)}")


def _read_bytes(path: Path, limit: int) -> bytes:
    # Single place where source files are read (tests replace it to simulate I/O errors).
    # Reading limit+1 bytes detects a file that grew past the limit after stat().
    # O_NONBLOCK and the fstat: a FIFO or device swapped in after the caller's stat neither blocks the open nor
    # is read (a pipe would wait for a writer, /dev/zero never ends).
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (device, pipe or socket)", str(path))
        return fh.read(limit + 1)


def _read_checked(path: Path, kind: str, max_bytes: int) -> bytes | Extraction:
    try:
        st = os.stat(path)  # follows symlinks on purpose
        if stat.S_ISDIR(st.st_mode):
            return _fail(path, kind, "unsupported", "is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            # Opening a FIFO or device would block or read forever.
            return _fail(path, kind, "unsupported", "not a regular file (device, pipe or socket)")
        if st.st_size > max_bytes:
            return _fail(
                path, kind, "too_large",
                f"file is {format_bytes(st.st_size)}, "
                f"larger than the limit of {format_bytes(max_bytes)}",
            )
        data = _read_bytes(path, max_bytes)
    except OSError as exc:
        return _os_error(path, kind, exc)
    if len(data) > max_bytes:
        return _fail(
            path, kind, "too_large",
            f"file grew beyond the limit of {format_bytes(max_bytes)} while being read",
        )
    return data


def _os_error(path: Path, kind: str, exc: OSError) -> Extraction:
    if isinstance(exc, PermissionError):
        return _fail(path, kind, "permission_denied",
                     f"permission denied: cannot read this file ({_describe(exc)})")
    if isinstance(exc, FileNotFoundError):
        # Not a separate reason: for the user it is a file that could not be read as a whole.
        return _fail(path, kind, "corrupt", "file disappeared while reading")
    if isinstance(exc, IsADirectoryError):
        return _fail(path, kind, "unsupported", "is a folder, not a file")
    if exc.errno == errno.EIO:
        return _fail(path, kind, "corrupt", f"read error from the disk ({_describe(exc)})")
    return _fail(path, kind, "unsupported", f"cannot read this file ({_describe(exc)})")


# --------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------

# TEXTFLAGS_TEXT minus two flags:
#  - TEXT_PRESERVE_LIGATURES: off so MuPDF expands "ﬁ"/"ﬂ"/"ﬃ" into letters a user would type.
#  - TEXT_CID_FOR_UNKNOWN_UNICODE: off so glyphs without a Unicode mapping become U+FFFD rather
#    than their raw glyph ids, which otherwise look like real (random Greek/Latin) text and
#    pollute the index.
# TEXT_PRESERVE_IMAGES stays off: images are never decoded, so a decompression-bomb image page
# costs nothing.
_PDF_TEXT_FLAGS = (
    pymupdf.TEXTFLAGS_TEXT
    & ~pymupdf.TEXT_PRESERVE_LIGATURES
    & ~pymupdf.TEXT_CID_FOR_UNKNOWN_UNICODE
    & ~pymupdf.TEXT_PRESERVE_IMAGES
)


def _quiet_mupdf() -> None:
    # MuPDF prints errors/warnings to stderr by default; for a desktop app that is noise, and
    # the warnings are collected per file instead.
    pymupdf.TOOLS.mupdf_display_errors(False)
    if hasattr(pymupdf.TOOLS, "mupdf_display_warnings"):
        pymupdf.TOOLS.mupdf_display_warnings(False)


def _extract_pdf(path: Path, data: bytes, started: float, time_limit_s: float) -> Extraction:
    _quiet_mupdf()
    pymupdf.TOOLS.reset_mupdf_warnings()
    if len(data) == 0:
        return _fail(path, "pdf", "no_text", "empty file (0 bytes)")
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # noqa: BLE001 - FileDataError, RuntimeError, ValueError...
        return _fail(path, "pdf", "corrupt", f"not a readable PDF ({_describe(exc)})",
                     _mupdf_warning_note())
    try:
        return _read_pdf(path, doc, started, time_limit_s)
    finally:
        doc.close()


def _read_pdf(path: Path, doc: pymupdf.Document, started: float, time_limit_s: float) -> Extraction:
    warnings: list[str] = []
    if doc.needs_pass:
        # Owner-password-only files open with the empty user password; MuPDF normally does that
        # itself, this covers files where it does not.
        if not doc.authenticate(""):
            method = _encryption_name(doc)
            method = f" ({method})" if method else ""
            return _fail(path, "pdf", "encrypted",
                         f"password-protected PDF{method}; no password known",
                         _mupdf_warning_note())
    try:
        page_count = doc.page_count
    except Exception as exc:  # noqa: BLE001
        return _fail(path, "pdf", "corrupt", f"page tree unreadable ({_describe(exc)})",
                     *warnings, _mupdf_warning_note())
    if page_count <= 0:
        return _fail(path, "pdf", "corrupt", "no pages could be read", *warnings,
                     _mupdf_warning_note())

    pages: list[Page] = []
    textless: list[int] = []  # nothing at all: scanned images, drawings, blank
    glyphs_only: list[int] = []  # text whose font has no Unicode mapping: only U+FFFD
    failed: list[int] = []
    first_error = ""
    unmapped = 0
    for index in range(page_count):
        # Checked between pages (a MuPDF call cannot be interrupted); a document whose last page
        # finishes late is complete, so only stopping early counts as a timeout.
        if index and time.monotonic() - started > time_limit_s:
            return Extraction(
                path=path, kind="pdf", pages=(), page_count=page_count, ok=False,
                reason="timeout",
                detail=f"stopped after {index} of {page_count} pages "
                       f"(time limit {time_limit_s:g} s)",
                warnings=_compact(warnings + [_mupdf_warning_note()]),
            )
        number = index + 1
        try:
            raw = doc[index].get_text("text", flags=_PDF_TEXT_FLAGS, sort=False)
        except Exception as exc:  # noqa: BLE001 - one broken page must not lose the others
            failed.append(number)
            first_error = first_error or _describe(exc)
            continue
        text = _clean_pdf_text(raw)
        unmapped += text.count("\ufffd")
        if text.replace("\ufffd", "").strip():
            pages.append(Page(number=number, text=text))
        elif text.strip():
            glyphs_only.append(number)
        else:
            textless.append(number)

    # Checked after the pages: MuPDF may only notice a broken xref while loading them.
    if doc.is_repaired:
        warnings.insert(0, "recovered from damaged file (xref rebuilt)")
    if failed:
        warnings.append(f"{_pages(failed)} could not be read ({first_error})")
    if unmapped:
        warnings.append(
            f"{unmapped} characters have no Unicode mapping in their font and appear as \ufffd"
        )

    if not pages:
        if failed and not (textless or glyphs_only):
            reason, detail = "corrupt", f"none of the {page_count} pages could be read"
        elif glyphs_only:
            reason = "no_text"
            detail = ("the text cannot be read: its fonts have no Unicode mapping "
                      f"({unmapped} characters)")
        elif doc.is_repaired and not _has_images(doc, textless):
            # Empty pages salvaged from a broken file: calling it "scanned" would mislead.
            reason = "corrupt"
            recovered = ("the recovered page contains" if page_count == 1
                         else f"the {page_count} recovered pages contain")
            detail = f"damaged file; {recovered} neither text nor images"
        else:
            of_pages = "the only page" if page_count == 1 else f"any of {page_count} pages"
            reason = "no_text"
            detail = (f"no text layer on {of_pages} "
                      "(scanned or image-only; OCR is not supported yet)")
        return _fail(path, "pdf", reason, detail, *warnings, _mupdf_warning_note(),
                     page_count=page_count)

    # Partial: indexed, but the user should know which pages search cannot see.
    if glyphs_only:
        warnings.append(f"{_pages(glyphs_only)} {_have(glyphs_only)} only text that cannot be "
                        "converted to Unicode (font without character mapping)")
    if textless:
        warnings.append(f"{_pages(textless)} {_have(textless)} no text layer (scanned images?)")
    missing = len(textless) + len(glyphs_only)
    detail = ""
    if missing:
        detail = f"{missing} of {page_count} pages {_have(missing)} no readable text (scanned?)"
    return Extraction(
        path=path, kind="pdf", pages=tuple(pages), page_count=page_count, ok=True, reason=None,
        detail=detail, warnings=_compact(warnings + [_mupdf_warning_note()]),
    )


def _has_images(doc: pymupdf.Document, numbers: list[int]) -> bool:
    # Lists image references only; nothing is decoded.
    for number in numbers:
        try:
            if doc[number - 1].get_images():
                return True
        except Exception:  # noqa: BLE001
            continue
    return False


def _encryption_name(doc: pymupdf.Document) -> str:
    # Best effort, for the user's benefit only: the /Encrypt dictionary is never encrypted itself.
    try:
        kind, value = doc.xref_get_key(-1, "Encrypt")
        if kind == "xref":
            xref = int(value.split()[0])

            def key(name: str) -> str:
                return doc.xref_get_key(xref, name)[1]
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


def _mupdf_warning_note() -> str:
    """Summarise (and reset) what MuPDF complained about while handling the current file."""
    try:
        raw = pymupdf.TOOLS.mupdf_warnings()  # also resets the store
    except Exception:  # noqa: BLE001
        return ""
    lines: list[str] = []
    for line in _clean_text(raw).splitlines():
        line = line.strip()
        if line and not _MUPDF_NOISE.match(line) and line not in lines:
            lines.append(line)
    if not lines:
        return ""
    shown = "; ".join(_shorten(line, 100) for line in lines[:3])
    more = f" (+{len(lines) - 3} more)" if len(lines) > 3 else ""
    return f"PDF reader warnings: {shown}{more}"


# --------------------------------------------------------------------------------------------
# Plain text
# --------------------------------------------------------------------------------------------

_BOMS = (
    # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class _Decoded:
    text: str
    encoding: str
    guessed: bool = False
    warning: str = ""


@dataclass(frozen=True)
class _NotText:
    reason: str
    detail: str


def _extract_text(path: Path, data: bytes) -> Extraction:
    if not data.strip():
        return _fail(path, "text", "no_text", "empty file", page_count=1)
    decoded = _decode(data)
    if isinstance(decoded, _NotText):
        return _fail(path, "text", decoded.reason, decoded.detail, page_count=1)
    text = _clean_text(decoded.text.removeprefix("\ufeff"))
    if not text.strip():
        return _fail(path, "text", "no_text", "empty file (only whitespace)", page_count=1)
    return Extraction(
        path=path, kind="text", pages=(Page(number=None, text=text),), page_count=1, ok=True,
        reason=None,
        # Worth showing when search results look like mojibake, but not worth a warning.
        detail=f"text encoding detected as {decoded.encoding}" if decoded.guessed else "",
        warnings=_compact([decoded.warning]),
    )


def _decode(data: bytes) -> _Decoded | _NotText:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body = data[len(bom):]
            try:
                return _Decoded(body.decode(encoding), encoding)
            except UnicodeDecodeError:
                # The BOM is an explicit declaration: trust it and keep what decodes.
                text = body.decode(encoding, errors="replace")
                note = f"invalid {encoding} byte sequences were replaced by \ufffd"
                return _Decoded(text, encoding, warning=note)

    wide = _utf16_without_bom(data)
    if wide:
        try:
            return _Decoded(data.decode(wide), wide)
        except UnicodeDecodeError:
            pass

    if _looks_binary(data):
        return _NotText("unsupported", "binary data, not text (despite the file extension)")

    try:
        return _Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    mostly = _mostly_utf8(data)
    if mostly is not None:
        return mostly

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        return _NotText("decode_error", "could not determine the text encoding (not UTF-8, "
                                        "and no other encoding fits)")
    encoding = best.encoding
    text = str(best)
    if encoding in ("latin_1", "iso8859_1", "ascii") and re.search("[\x80-\x9f]", text):
        # Bytes 0x80-0x9F are C1 controls in Latin-1 but curly quotes, dashes and the euro sign
        # in cp1252, which is what such files almost always are (browsers treat them alike).
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    if _control_ratio(text) > 0.05:
        return _NotText("decode_error", f"decoded as {encoding}, but the result looks like "
                                        "binary data")
    return _Decoded(text, encoding, guessed=True)


def _mostly_utf8(data: bytes) -> _Decoded | None:
    """UTF-8 with a few invalid bytes (a truncated download, one stray byte in a 40 MB log) is UTF-8: decoded
    with U+FFFD for the bad bytes rather than handed to a guesser, which would read the whole file as some
    single-byte code page and garble every accented letter. "A few": at most one bad sequence per 1,000 bytes,
    and more valid multi-byte characters than bad sequences (a Latin-1 file has no valid multi-byte ones)."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    if bad <= 0 or bad * 1000 > len(data):
        return None
    valid_multibyte = len(text) - len(text.encode("ascii", "ignore")) - bad
    if valid_multibyte <= bad:
        return None
    note = f"{bad} invalid UTF-8 byte sequence{'s were' if bad > 1 else ' was'} replaced by \ufffd"
    return _Decoded(text, "utf-8", warning=note)


def _utf16_without_bom(data: bytes) -> str | None:
    # Mostly-ASCII UTF-16 has a NUL in every other byte; which half holds them gives the byte
    # order. CJK-only UTF-16 without BOM is left to charset-normalizer.
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2], data[1::2]
    even_nul = even.count(0) / len(even)
    odd_nul = odd.count(0) / len(odd)
    if odd_nul > 0.3 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.3 and odd_nul < 0.05:
        return "utf-16-be"
    return None


_BINARY_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\v\x1b")


def _looks_binary(data: bytes) -> bool:
    sample = data[: 64 * 1024]
    if sample.count(0) > max(1, len(sample) // 1000):
        return True
    controls = len(sample) - len(sample.translate(None, _BINARY_BYTES))
    return controls > len(sample) * 0.1


def _control_ratio(text: str) -> float:
    sample = text[: 64 * 1024]
    if not sample:
        return 0.0
    allowed = "\t\n\r\f\v\x1b"
    bad = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in allowed)
    return bad / len(sample)


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------

# Form feed / vertical tab separate lines; dropping them would glue words together.
_LINE_BREAKS = re.compile(r"\r\n|[\r\f\v\x85\u2028\u2029]")
# C0 and C1 controls (except \t and \n) and DEL carry no text and upset tokenizers.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MANY_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){3,}")
_ARABIC_PRESENTATION = re.compile(r"[\ufb50-\ufdff\ufe70-\ufeff]+")


def _clean_text(text: str) -> str:
    # NFC: the same word typed on a keyboard (composed) and written by macOS or some editors (decomposed, NFD)
    # must be the same text for search; queries are normalised the same way (search.py).
    return unicodedata.normalize("NFC", _CONTROLS.sub("", _LINE_BREAKS.sub("\n", text)))


def _clean_pdf_text(text: str) -> str:
    text = _clean_text(text)
    text = _MANY_BLANK_LINES.sub("\n\n\n", text)
    # The BOM/ZWNBSP U+FEFF sits in that range but NFKC leaves it unchanged.
    return _ARABIC_PRESENTATION.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def _fail(path: Path, kind: str, reason: str, detail: str, *warnings: str,
          page_count: int = 0) -> Extraction:
    return Extraction(path=path, kind=kind, pages=(), page_count=page_count, ok=False,
                      reason=reason, detail=detail, warnings=_compact(list(warnings)))


def _compact(warnings: list[str]) -> tuple[str, ...]:
    return tuple(w for w in warnings if w)


def _describe(exc: BaseException) -> str:
    message = str(exc).strip()
    name = exc.__class__.__name__
    return _shorten(f"{name}: {message}" if message else name, 200)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pages(numbers: list[int]) -> str:
    """[2] -> "page 2"; [3, 4, 5, 9] -> "pages 3-5, 9"."""
    return f"{'page' if len(numbers) == 1 else 'pages'} {_compress_ranges(numbers)}"


def _have(count: int | list[int]) -> str:
    n = count if isinstance(count, int) else len(count)
    return "has" if n == 1 else "have"


def _compress_ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"."""
    parts: list[str] = []
    run_start = prev = None
    for n in sorted(numbers):
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if run_start is not None:
            parts.append(str(run_start) if run_start == prev else f"{run_start}-{prev}")
        run_start = prev = n
    if run_start is not None:
        parts.append(str(run_start) if run_start == prev else f"{run_start}-{prev}")
    return ", ".join(parts)
