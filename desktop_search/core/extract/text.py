"""Plain text and source code -> one position holding the whole file, in whatever encoding it was saved.

The encoding is taken from a byte-order mark, recognised as BOM-less UTF-16, tried as UTF-8 (also UTF-8 with a few
bad bytes, which become U+FFFD), and otherwise detected with charset-normalizer (Latin-1 guesses with C1 bytes become cp1252, which is what such files almost
always are). Binary data behind a text extension is refused as ``unsupported``; text that decodes to garbage as
``decode_error``. Text files are read in the indexing thread (``isolated=False``): nothing here runs foreign
C code, and a text file costs microseconds, less than a trip to a worker process. ``decode`` is shared with the
readers of other text-based formats (HTML, RTF, mail parts without a declared charset).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from desktop_search.core.extract.base import Extraction, Page, clean_text, compact
from desktop_search.core.extract.registry import Extractor, Source
from desktop_search.core.failures import Reason

__all__ = ["EXTRACTORS", "TEXT_EXTENSIONS", "Decoded", "NotText", "decode", "read_text"]

TEXT_EXTENSIONS: tuple[str, ...] = (
    ".txt", ".md", ".markdown", ".rst", ".csv", ".tsv", ".log", ".json", ".xml", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".tex",
    ".py", ".js", ".ts", ".c", ".h", ".cpp", ".hpp", ".java", ".go", ".rs", ".rb", ".php",
    ".sh", ".sql", ".css", ".kt", ".swift", ".cs", ".m", ".r", ".lua", ".pl",
)


_BOMS = (
    # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    guessed: bool = False
    warning: str = ""


@dataclass(frozen=True)
class NotText:
    reason: Reason
    detail: str


def read_text(src: Source) -> Extraction:
    data = src.data
    if not data.strip():
        return src.fail(Reason.NO_TEXT, "empty file", page_count=1)
    decoded = decode(data)
    if isinstance(decoded, NotText):
        return src.fail(decoded.reason, decoded.detail, page_count=1)
    text = clean_text(decoded.text.removeprefix("\ufeff"))
    if not text.strip():
        return src.fail(Reason.NO_TEXT, "empty file (only whitespace)", page_count=1)
    return Extraction(
        path=src.path, kind=src.kind, pages=(Page(number=None, text=text),), page_count=1, ok=True,
        reason=None,
        # Worth showing when search results look like mojibake, but not worth a warning.
        detail=f"text encoding detected as {decoded.encoding}" if decoded.guessed else "",
        warnings=compact([decoded.warning]),
    )


def decode(data: bytes) -> Decoded | NotText:
    """Bytes of unknown encoding -> text: BOM, UTF-16 without BOM, UTF-8, then charset detection."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body = data[len(bom):]
            try:
                return Decoded(body.decode(encoding), encoding)
            except UnicodeDecodeError:
                # The BOM is an explicit declaration: trust it and keep what decodes.
                text = body.decode(encoding, errors="replace")
                note = f"invalid {encoding} byte sequences were replaced by \ufffd"
                return Decoded(text, encoding, warning=note)

    wide = _utf16_without_bom(data)
    if wide:
        try:
            return Decoded(data.decode(wide), wide)
        except UnicodeDecodeError:
            pass

    if _looks_binary(data):
        return NotText(Reason.UNSUPPORTED, "binary data, not text (despite the file extension)")

    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    mostly = _mostly_utf8(data)
    if mostly is not None:
        return mostly

    from charset_normalizer import from_bytes  # on the first file that is not UTF-8 (the window lists kinds at start-up)

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        return NotText(Reason.DECODE_ERROR, "could not determine the text encoding (not UTF-8, "
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
        return NotText(Reason.DECODE_ERROR, f"decoded as {encoding}, but the result looks like "
                                        "binary data")
    return Decoded(text, encoding, guessed=True)


def _mostly_utf8(data: bytes) -> Decoded | None:
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
    return Decoded(text, "utf-8", warning=note)


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


EXTRACTORS = (
    Extractor(
        name="text", kind="text", extensions=TEXT_EXTENSIONS, read=read_text, description="text file",
        isolated=False, position="", preview="text", mime_types=("text/plain",), tokens_per_byte=0.25,
    ),
)
