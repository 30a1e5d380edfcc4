"""Rich Text Format (``.rtf``) -> its text as one position, with striprtf.

striprtf (BSD-3-Clause, pure Python, no dependencies) removes the control words and groups (font tables,
pictures, styles) and decodes ``\\'xx`` escapes in the code page the document declares (``\\ansicpg1251``)
and ``\\uN`` escapes as Unicode, so Cyrillic, Greek or CJK RTF from any Windows locale reads correctly. Word
often saves ``.doc`` files as RTF: the registry sends those here by their ``{\\rtf`` signature.
"""

from __future__ import annotations

import codecs
import re

from desktop_search.core.extract.base import Extraction, Page, clean_text, ok, squeeze_blank_lines
from desktop_search.core.extract.registry import Extractor, Source
from desktop_search.core.failures import Reason

__all__ = ["EXTRACTORS", "read_rtf"]

_CODEPAGE = re.compile(rb"\\ansicpg(\d+)")


def read_rtf(src: Source) -> Extraction:
    from striprtf.striprtf import rtf_to_text

    if not src.data.lstrip().startswith(b"{\\rtf"):
        return src.fail(Reason.CORRUPT, "not an RTF document (it does not start with {\\rtf)")
    match = _CODEPAGE.search(src.data[:4096])
    encoding = f"cp{int(match.group(1))}" if match else "cp1252"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "cp1252"
    # RTF is 7-bit ASCII with escapes; latin-1 maps every byte, so nothing fails to decode here.
    text = rtf_to_text(src.data.decode("latin-1"), encoding=encoding, errors="replace")
    text = squeeze_blank_lines(clean_text(text)).strip()
    return ok(src.path, src.kind, [Page(None, text)], 1, what="RTF document")


EXTRACTORS = (
    Extractor(
        name="rtf", kind="document", extensions=(".rtf",), read=read_rtf, description="RTF document",
        position="", preview="text", signatures=(b"{\\rtf",), tokens_per_byte=0.1,
        mime_types=("application/rtf", "text/rtf"),
    ),
)
