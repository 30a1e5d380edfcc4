"""What every extractor shares: the ``Page``/``Extraction`` values, the options, reading a file safely, failures.

An extractor (one module per kind, see ``registry.py``) turns the bytes of one file into positions of text
(``Page``: a PDF page, a slide, a sheet, a section, a message) and returns an ``Extraction``. Following the house
rule "errors are data", nothing raises for a bad input file: every failure comes back as ``ok=False`` with a
``Reason`` (``failures.py``) and a human-readable ``detail`` (together: ``Extraction.failure``). Source files are only ever read: the bytes are read
once into memory (``read_checked``, which also enforces the size limit and refuses folders, pipes and devices)
and every library works on that copy, so a damaged document that a library repairs is repaired in memory, never
on disk. The cleaning helpers (control characters out, line endings to ``\\n``, NFC composition) are shared so
every kind yields text the chunker and the tokenizer can rely on.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

from desktop_search.core.failures import REASONS, Failure, Reason  # REASONS re-exported: the codes of Reason
from desktop_search.formatting import format_bytes

__all__ = [
    "REASONS",
    "Page",
    "Extraction",
    "Member",
    "ExtractOptions",
    "read_checked",
    "os_error",
    "fail",
    "ok",
    "clean_text",
    "compact",
    "describe",
    "shorten",
    "pages_phrase",
    "have",
]

@dataclass(frozen=True)
class Page:
    """One position of a document: ``number`` is 1-based (page, slide, sheet, section, message, chapter: the
    extractor's ``position`` says which) or None when the whole file is one position (a text file)."""

    number: int | None
    text: str


@dataclass(frozen=True)
class Extraction:
    path: Path
    kind: str  # the registry kind ("pdf", "text", "document", ...); "other" for files no extractor takes
    pages: tuple[Page, ...]  # only positions with non-whitespace text; empty when not ok
    page_count: int  # positions in the document (1 for text files, 0 if it could not be opened)
    ok: bool  # True -> the file will be indexed
    reason: Reason | None  # why it is not ok; None when ok
    detail: str  # human-readable explanation, "" when there is nothing to say
    warnings: tuple[str, ...]  # non-fatal notes for the user
    ocr_pages: int = 0  # pages the OCR engine recognised for this extraction
    ocr_cached: int = 0  # pages whose OCR text came from the cache (the engine did not run)
    members: tuple["Member", ...] = ()  # documents inside this one that are indexed on their own (attachments)

    @property
    def failure(self) -> Failure | None:
        """Why the file cannot be indexed, as the indexer records it; None when it can."""
        if self.ok:
            return None
        return Failure(self.reason or Reason.CORRUPT, self.detail)


@dataclass(frozen=True)
class Member:
    """A document carried inside another (a mail attachment), read by its own extractor and indexed as a document
    of its own under ``store.keys.member_key(owner, name)``; ``extraction`` says how reading it went (a broken
    attachment fails here with its reason, not its message)."""

    name: str  # unique within the owner, no path separators ("report.docx", "report (2).docx")
    extraction: Extraction


# When the readers last learnt to read files they failed on before (a Unix time): a file that failed before then
# is read once more on the next run, even unchanged; its new record is newer, so once. Moved forward with each such
# change: 2026-11-26 18:00 UTC, text drawn as vector outlines recognised, protected PDFs opened with passwords.
READERS_IMPROVED_AT = 1_795_716_000.0


@dataclass(frozen=True)
class ExtractOptions:
    """How one file is read; picklable, so it travels to the isolated workers with the job."""

    max_bytes: int = 512 * 1024**2
    time_limit_s: float = 120.0  # for reading the document; each OCR'd page then gets as long again
    ocr: bool = True  # recognise text in scanned pages and images
    ocr_cache_dir: str | None = None  # where recognised pages are kept by content hash (None: no cache)
    ocr_threads: int = 0  # ONNX Runtime threads per OCR engine; 0: its default (all cores)
    ocr_models_dir: str | None = None  # where the wizard installs extra recognition models (ocr_models.py)
    ocr_primary: str = ""  # the installed pack that reads every page first ("": the bundled models)
    # The packs' manifest (None: ocr_models.default_manifest_path()): resolved by the caller, since a worker
    # process may have been started before the caller's environment named another one.
    ocr_manifest: str | None = None
    # Passwords the user gave for protected documents, tried in turn on a PDF that needs one (never in a repr).
    passwords: tuple[str, ...] = field(default=(), repr=False)

    @staticmethod
    def given(options: "ExtractOptions | None", max_bytes: int | None = None,
              time_limit_s: float | None = None) -> "ExtractOptions":
        """``options`` (or the defaults) with the limits a caller passed by keyword."""
        options = options or ExtractOptions()
        if max_bytes is not None:
            options = replace(options, max_bytes=max_bytes)
        if time_limit_s is not None:
            options = replace(options, time_limit_s=time_limit_s)
        return options


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

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


def read_checked(path: Path, kind: str, max_bytes: int) -> bytes | Extraction:
    """The file's bytes, or a failure (folder, device, too large, unreadable)."""
    try:
        st = os.stat(path)  # follows symlinks on purpose
        if stat.S_ISDIR(st.st_mode):
            return fail(path, kind, Reason.UNSUPPORTED, "is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            # Opening a FIFO or device would block or read forever.
            return fail(path, kind, Reason.UNSUPPORTED, "not a regular file (device, pipe or socket)")
        if st.st_size > max_bytes:
            return fail(
                path, kind, Reason.TOO_LARGE,
                f"file is {format_bytes(st.st_size)}, "
                f"larger than the limit of {format_bytes(max_bytes)}",
            )
        data = _read_bytes(path, max_bytes)
    except OSError as exc:
        return os_error(path, kind, exc)
    if len(data) > max_bytes:
        return fail(
            path, kind, Reason.TOO_LARGE,
            f"file grew beyond the limit of {format_bytes(max_bytes)} while being read",
        )
    return data


def os_error(path: Path, kind: str, exc: OSError) -> Extraction:
    if isinstance(exc, PermissionError):
        return fail(path, kind, Reason.PERMISSION_DENIED,
                    f"permission denied: cannot read this file ({describe(exc)})")
    if isinstance(exc, FileNotFoundError):
        # Not a separate reason: for the user it is a file that could not be read as a whole.
        return fail(path, kind, Reason.CORRUPT, "file disappeared while reading")
    if isinstance(exc, IsADirectoryError):
        return fail(path, kind, Reason.UNSUPPORTED, "is a folder, not a file")
    if exc.errno == errno.EIO:
        return fail(path, kind, Reason.CORRUPT, f"read error from the disk ({describe(exc)})")
    return fail(path, kind, Reason.UNSUPPORTED, f"cannot read this file ({describe(exc)})")


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

def fail(path: Path, kind: str, reason: Reason, detail: str, *warnings: str,
         page_count: int = 0) -> Extraction:
    return Extraction(path=path, kind=kind, pages=(), page_count=page_count, ok=False,
                      reason=Reason(reason), detail=detail, warnings=compact(list(warnings)))


def ok(path: Path, kind: str, pages: list[Page], page_count: int, *, what: str = "document",
       detail: str = "", warnings: list[str] | None = None) -> Extraction:
    """An extraction of the positions that hold text; ``no_text`` when none does."""
    kept = tuple(p for p in pages if p.text.strip())
    if not kept:
        return fail(path, kind, Reason.NO_TEXT, f"no text found in this {what}", *(warnings or []),
                    page_count=page_count)
    return Extraction(path=path, kind=kind, pages=kept, page_count=page_count, ok=True, reason=None,
                      detail=detail, warnings=compact(list(warnings or [])))


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------

# Form feed / vertical tab separate lines; dropping them would glue words together.
_LINE_BREAKS = re.compile(r"\r\n|[\r\f\v\x85\u2028\u2029]")
# C0 and C1 controls (except \t and \n) and DEL carry no text and upset tokenizers.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MANY_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){3,}")


def clean_text(text: str) -> str:
    # NFC: the same word typed on a keyboard (composed) and written by macOS or some editors (decomposed, NFD)
    # must be the same text for search; queries are normalised the same way (search.py).
    return unicodedata.normalize("NFC", _CONTROLS.sub("", _LINE_BREAKS.sub("\n", text)))


def squeeze_blank_lines(text: str) -> str:
    return _MANY_BLANK_LINES.sub("\n\n\n", text)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def compact(warnings: list[str]) -> tuple[str, ...]:
    return tuple(w for w in warnings if w)


def describe(exc: BaseException) -> str:
    message = str(exc).strip()
    name = exc.__class__.__name__
    return shorten(f"{name}: {message}" if message else name, 200)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pages_phrase(numbers: list[int], noun: str = "page") -> str:
    """[2] -> "page 2"; [3, 4, 5, 9] -> "pages 3-5, 9"."""
    return f"{noun if len(numbers) == 1 else noun + 's'} {_compress_ranges(numbers)}"


def have(count: int | list[int]) -> str:
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
