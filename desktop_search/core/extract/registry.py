"""The one place that knows file kinds: which extractor reads a file, where it runs, and how its positions are shown.

Every extractor is declared once, in its own module of this package, as an :class:`Extractor` value: the kind it
files documents under (the type filter), the extensions it takes, the file signatures it recognises (so a
``.doc`` that is really RTF, or a ``.docx`` that is really a password-protected container, goes to the reader
that understands it), whether it runs in the isolated worker pool (``isolate.py``), what a position in it is
called (page, slide, sheet, section, chapter, message) and how the preview shows it (a rendered page with
highlight boxes, or the passage in its text). The indexer, the watcher, the estimate, the window's type filter,
the preview and the opener all ask this module; nothing else looks at suffixes. Adding a format is one new module
with an ``EXTRACTORS`` tuple, named in ``KIND_MODULES``, plus its tests. The kind modules import their libraries
only when a file is read, so asking the registry is cheap (the window asks it while it is still appearing).

Libraries, chosen for licence, size and speed (the bundle already carries AGPL PyMuPDF, so it opens whatever
MuPDF reads; elsewhere permissive libraries are preferred):

- PDF, XPS, EPUB, FB2, CBZ and images: PyMuPDF (AGPL-3.0, already bundled; C speed, reads from memory; WebP,
  which MuPDF cannot decode, through Pillow).
- OCR: rapidocr-onnxruntime 1.4 (Apache-2.0): PP-OCRv4 Chinese + English/Latin models inside the wheel, run on
  ONNX Runtime (already a dependency); with opencv-python-headless (no Qt plugins to clash with PySide6).
  Tesseract would need a system install; EasyOCR and docTR pull in torch models and are far slower on CPU.
- Word and PowerPoint (``.docx``, ``.pptx``): python-docx and python-pptx (MIT, pure Python on lxml, which the
  bundle has anyway); docx2python was the alternative but is slower and adds nothing we index.
- Spreadsheets (``.xlsx .xlsm .xlsb .xls .ods``): python-calamine (MIT, Rust): one wheel without dependencies,
  many times faster than openpyxl, and it reads legacy ``.xls`` and ``.ods`` too.
- OpenDocument text and slides: the ODF XML directly (zipfile + ElementTree), no dependency; odfpy (a GPL/LGPL/
  Apache tri-licence and a slow object tree) is only used by the tests to write documents.
- HTML: selectolax (MIT, Lexbor HTML5 parser in C): much faster than inscriptis/BeautifulSoup, one small wheel.
- RTF: striprtf (BSD-3-Clause, pure Python, tiny).
- E-mail: the standard library (``email`` with the modern policy; ``.mbox`` split here rather than with
  ``mailbox``, which opens the file for writing).
- Plain text and source code: the standard library + charset-normalizer (MIT) for the encoding.
- Legacy binary ``.doc``/``.ppt``: refused as ``unsupported`` (the only readers are GPL antiword/catdoc-style
  tools or LibreOffice); a ``.doc`` that is really RTF, HTML or OOXML is read by what its bytes are.
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from desktop_search.core.extract.base import (
    Extraction,
    ExtractOptions,
    fail,
    os_error,
    read_checked,
    describe,
)
from desktop_search.core.failures import Reason

__all__ = [
    "Extractor",
    "Source",
    "KIND_MODULES",
    "KIND_LABELS",
    "extractors",
    "for_path",
    "for_kind",
    "kind_of",
    "is_supported",
    "runs_isolated",
    "extensions",
    "filter_choices",
    "position_name",
    "extract",
    "read_data",
    "warm_up",
]

# The kind modules, in the order their extractors are consulted when a file's signature decides.
KIND_MODULES: tuple[str, ...] = (
    "pdf", "office", "sheets", "odf", "ebook", "rtf", "html", "mail", "ocr", "text",
)

# Kinds as the user sees them (type filter, status): kind -> label, in display order.
KIND_LABELS: dict[str, str] = {
    "pdf": "PDF",
    "document": "Documents",
    "spreadsheet": "Spreadsheets",
    "presentation": "Presentations",
    "ebook": "E-books",
    "web": "Web pages",
    "email": "E-mail",
    "image": "Images",
    "text": "Text",
}

Preview = Literal["page", "text"]


@dataclass(frozen=True)
class Source:
    """One file being read: its bytes (already read, size-checked) and what the reader needs besides."""

    path: Path
    data: bytes
    kind: str
    options: ExtractOptions
    started: float  # time.monotonic() when reading began
    progress: Callable[[str], None] | None = None  # "OCR page 3/40"-style notes for the user

    def fail(self, reason: Reason, detail: str, *warnings: str, page_count: int = 0) -> Extraction:
        return fail(self.path, self.kind, reason, detail, *warnings, page_count=page_count)

    def over_time(self) -> bool:
        return time.monotonic() - self.started > self.options.time_limit_s

    def note(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


@dataclass(frozen=True)
class Extractor:
    name: str  # unique: "pdf", "docx", ...
    kind: str  # a key of KIND_LABELS: what the type filter and the index call it
    extensions: tuple[str, ...]  # lower case, with the dot
    read: Callable[[Source], Extraction]
    description: str = ""  # "Word document", for messages
    isolated: bool = True  # read in the worker pool (time and memory limits); False: in the indexing thread
    position: str = "page"  # what one Page is: page | slide | sheet | section | chapter | message | "" (whole file)
    preview: Preview = "text"  # "page": the position rendered with boxes; "text": the passage in its text
    viewer_pages: bool = False  # page-aware viewers (opener.py) can open the file at the position
    signatures: tuple[bytes, ...] = ()  # leading bytes this reader understands (checked when non-empty)
    sniff: Callable[[bytes], bool] | None = None  # a finer content test (the whole file; must be cheap)
    mime_types: tuple[str, ...] = ()
    tokens_per_byte: float = 0.25  # for the indexing estimate
    ocr: bool = False  # pages may need OCR (the estimate counts it)

    def claims(self, data: bytes) -> bool:
        """Whether a file's bytes say it is this reader's format."""
        if self.signatures and any(data.startswith(s) for s in self.signatures):
            return True
        if self.sniff is None:
            return False
        try:
            return self.sniff(data)
        except Exception:  # noqa: BLE001 - a sniff that chokes on odd bytes just does not claim them
            return False


_LOADED: tuple[Extractor, ...] | None = None
_BY_EXT: dict[str, Extractor] = {}
_LOAD_LOCK = threading.Lock()


def extractors() -> tuple[Extractor, ...]:
    """Every registered extractor (imports the kind modules, not their libraries)."""
    global _LOADED
    if _LOADED is None:
        with _LOAD_LOCK:
            if _LOADED is None:
                found: list[Extractor] = []
                for name in KIND_MODULES:
                    module = importlib.import_module(f"desktop_search.core.extract.{name}")
                    found.extend(module.EXTRACTORS)
                by_ext: dict[str, Extractor] = {}
                for ex in found:
                    if ex.kind not in KIND_LABELS:
                        raise ValueError(f"extractor {ex.name!r} files under unknown kind {ex.kind!r}")
                    for ext in ex.extensions:
                        if ext in by_ext:
                            raise ValueError(f"{ext} is claimed by {by_ext[ext].name} and {ex.name}")
                        by_ext[ext] = ex
                _BY_EXT.update(by_ext)
                _LOADED = tuple(found)
    return _LOADED


def warm_up() -> None:
    """Import the libraries the isolated readers use (a worker does this before it takes jobs)."""
    extractors()
    for name in KIND_MODULES:
        module = importlib.import_module(f"desktop_search.core.extract.{name}")
        prepare = getattr(module, "warm_up", None)
        if prepare is not None:
            prepare()


def for_path(path: str | Path) -> Extractor | None:
    """The extractor for a file name (by its extension), or None when no extractor takes it."""
    extractors()
    name = str(path)
    dot = name.rfind(".")
    if dot < 0 or "/" in name[dot:] or "\\" in name[dot:]:
        return None
    return _BY_EXT.get(name[dot:].lower())


def for_kind(kind: str) -> tuple[Extractor, ...]:
    return tuple(ex for ex in extractors() if ex.kind == kind)


def kind_of(path: str | Path) -> str:
    ex = for_path(path)
    return ex.kind if ex else "other"


def is_supported(path: str | Path) -> bool:
    return for_path(path) is not None


def runs_isolated(path: str | Path) -> bool:
    ex = for_path(path)
    return ex is not None and ex.isolated


def extensions(kind: str | None = None) -> frozenset[str]:
    return frozenset(e for ex in extractors() if kind is None or ex.kind == kind for e in ex.extensions)


def filter_choices() -> list[tuple[str, tuple[str, ...]]]:
    """(label, kinds) pairs for a type filter: every kind that has an extractor, in display order."""
    present = {ex.kind for ex in extractors()}
    return [(label, (kind,)) for kind, label in KIND_LABELS.items() if kind in present]


def position_name(path: str | Path) -> str:
    """"page", "slide", ... for a file; "" when a file is one position."""
    ex = for_path(path)
    return ex.position if ex else ""


def by_content(original: Extractor, data: bytes) -> Extractor:
    # The extension chose a reader; when the bytes say otherwise (a ".doc" saved as RTF or HTML, a ".xls" that
    # is HTML), the reader that recognises them takes over. A file nobody recognises stays with the extension's
    # reader, which then reports it as damaged.
    if not original.signatures and original.sniff is None:
        return original
    if original.claims(data):
        return original
    for ex in extractors():
        if ex is not original and ex.isolated and ex.claims(data):
            return ex
    return original


def read_data(
    ex: Extractor,
    path: Path,
    data: bytes,
    options: ExtractOptions,
    *,
    started: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Extraction:
    """Run ``ex`` (or, for isolated kinds, the reader the bytes call for) on bytes already in memory; also how
    the mail reader reads attachments. May raise: ``extract`` turns exceptions into failures."""
    if ex.isolated:
        ex = by_content(ex, data)
    return ex.read(Source(path, data, ex.kind, options, time.monotonic() if started is None else started, progress))


def extract(
    path: Path,
    options: ExtractOptions | None = None,
    *,
    max_bytes: int | None = None,
    time_limit_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Extraction:
    """Read one file with the extractor its name (and, for isolated kinds, its content) calls for.

    Never raises for a bad file. Runs in the calling process: for kinds marked ``isolated`` callers that must
    survive hostile files use ``isolate.ExtractorPool.extract`` instead."""
    path = Path(path)
    options = ExtractOptions.given(options, max_bytes, time_limit_s)
    ex = for_path(path)
    kind = ex.kind if ex else "other"
    try:
        if ex is None:
            shown = f"'{path.suffix}'" if path.suffix else "no extension"
            return fail(path, kind, Reason.UNSUPPORTED, f"file type not supported ({shown})")
        started = time.monotonic()
        data = read_checked(path, kind, options.max_bytes)
        if isinstance(data, Extraction):
            return data
        return read_data(ex, path, data, options, started=started, progress=progress)
    except MemoryError:
        return fail(path, kind, Reason.TOO_LARGE, "ran out of memory while extracting this file")
    except OSError as exc:
        return os_error(path, kind, exc)
    except Exception as exc:  # noqa: BLE001 - a bad file must never stop a batch
        return fail(path, kind, Reason.CORRUPT, f"extraction failed: {describe(exc)}")
