"""Word and PowerPoint (OOXML) -> sections and slides, with python-docx and python-pptx; legacy binaries refused.

``.docx``/``.docm``: the body in reading order (paragraphs and tables, cell by cell), split into sections at
top-level headings (Title, Heading 1, Heading 2, or outline levels 1-2), so a hit points at the part of the
document it is in; headers, footers and footnotes are left out (they repeat on every page). ``.pptx``/``.pptm``:
one position per slide, holding every text frame, table and grouped shape on it, then the speaker notes.
A password-protected OOXML file is an OLE2 container holding an ``EncryptionInfo`` stream: it fails as
``encrypted``. Legacy Word 97-2003 (``.doc``) and PowerPoint 97-2003 (``.ppt``) binaries fail as
``unsupported`` with a detail that says so and what to do. Both libraries parse the package from memory, so the
file is never written.
"""

from __future__ import annotations

import io
import re
from typing import Any, Callable, Iterator

from desktop_search.core.extract.base import Extraction, Page, clean_text, describe, ok
from desktop_search.core.extract.containers import OLE2, ole_is_encrypted_package, zip_member_names
from desktop_search.core.extract.registry import Extractor, Source
from desktop_search.core.failures import Reason

__all__ = ["EXTRACTORS", "read_docx", "read_pptx", "read_legacy"]

_HEADING = re.compile(r"^(title|heading [12])$", re.IGNORECASE)


def _ole_failure(src: Source, what: str, modern: str) -> Extraction | None:
    """The failure for an OLE2 file behind an OOXML name (encrypted package or legacy binary), else None."""
    if not src.data.startswith(OLE2):
        return None
    if ole_is_encrypted_package(src.data):
        return src.fail(Reason.ENCRYPTED, f"password-protected {what}; no password known")
    return src.fail(Reason.UNSUPPORTED, f"this is a legacy binary {what} (Office 97-2003) under a {modern} name; "
                                   f"save it as {modern} or PDF to make it searchable")


def _open(src: Source, what: str, modern: str, load: Callable[[io.BytesIO], Any]) -> Any:
    """The parsed package, or the failure (encrypted, legacy binary, damaged)."""
    failure = _ole_failure(src, what, modern)
    if failure is not None:
        return failure
    try:
        return load(io.BytesIO(src.data))
    except Exception as exc:  # noqa: BLE001 - PackageNotFoundError, BadZipFile, KeyError, XMLSyntaxError...
        return src.fail(Reason.CORRUPT, f"not a readable {what} ({describe(exc)})")


def read_docx(src: Source) -> Extraction:
    import docx

    document = _open(src, "Word document", ".docx", docx.Document)
    if isinstance(document, Extraction):
        return document
    sections: list[list[str]] = [[]]
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):
            sections[-1].append(_table_text(block))
            continue
        text = block.text
        if _is_heading(block) and any(s.strip() for s in sections[-1]):
            sections.append([])
        sections[-1].append(text)
    pages = [Page(i, clean_text("\n".join(lines)).strip()) for i, lines in enumerate(sections, 1)]
    return ok(src.path, src.kind, pages, len(pages), what="Word document")


def _is_heading(paragraph: Any) -> bool:
    try:
        if _HEADING.match(paragraph.style.name or ""):
            return True
        level = paragraph._p.pPr.outlineLvl if paragraph._p.pPr is not None else None
        return level is not None and int(level.val) <= 1
    except (AttributeError, ValueError, KeyError):
        return False


def _table_text(table: Any) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = cell.text.strip()
            if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                cells.append(text)
        if cells:
            rows.append("\t".join(cells))
    return "\n".join(rows)


def read_pptx(src: Source) -> Extraction:
    import pptx

    deck = _open(src, "PowerPoint presentation", ".pptx", pptx.Presentation)
    if isinstance(deck, Extraction):
        return deck
    pages = []
    slides = list(deck.slides)
    for number, slide in enumerate(slides, 1):
        parts = [t for shape in slide.shapes for t in _shape_texts(shape)]
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                parts.append(notes.text)
        pages.append(Page(number, clean_text("\n".join(p for p in parts if p.strip())).strip()))
    return ok(src.path, src.kind, pages, len(slides), what="presentation")


def _shape_texts(shape: Any) -> Iterator[str]:
    if getattr(shape, "shape_type", None) is not None and hasattr(shape, "shapes"):  # a group
        for inner in shape.shapes:
            yield from _shape_texts(inner)
        return
    if getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
        yield shape.text_frame.text
    if getattr(shape, "has_table", False):
        yield _table_text(shape.table)


def read_legacy(src: Source) -> Extraction:
    what = {".doc": ("Word 97-2003 document", ".docx"), ".ppt": ("PowerPoint 97-2003 presentation", ".pptx"),
            ".dot": ("Word 97-2003 template", ".docx"), ".pps": ("PowerPoint 97-2003 show", ".pptx")}
    name, modern = what.get(src.path.suffix.lower(), ("Office 97-2003 file", "a current Office format"))
    if ole_is_encrypted_package(src.data):
        return src.fail(Reason.ENCRYPTED, f"password-protected {name}; no password known")
    return src.fail(Reason.UNSUPPORTED, f"legacy binary {name} ({src.path.suffix.lower()}) files are not supported; "
                                   f"save it as {modern} or PDF to make it searchable")


def _has_part(prefix: str):
    return lambda data: any(n.startswith(prefix) for n in zip_member_names(data))


EXTRACTORS = (
    Extractor(
        name="docx", kind="document", extensions=(".docx", ".docm", ".dotx"), read=read_docx,
        description="Word document", position="section", preview="text", signatures=(OLE2,),
        sniff=_has_part("word/document"), tokens_per_byte=0.05,
        mime_types=("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
    ),
    Extractor(
        name="pptx", kind="presentation", extensions=(".pptx", ".pptm", ".ppsx"), read=read_pptx,
        description="PowerPoint presentation", position="slide", preview="text", signatures=(OLE2,),
        sniff=_has_part("ppt/presentation"), tokens_per_byte=0.01,
        mime_types=("application/vnd.openxmlformats-officedocument.presentationml.presentation",),
    ),
    Extractor(
        name="doc", kind="document", extensions=(".doc", ".dot"), read=read_legacy,
        description="Word 97-2003 document", position="", preview="text", signatures=(OLE2,),
        tokens_per_byte=0.0, mime_types=("application/msword",),
    ),
    Extractor(
        name="ppt", kind="presentation", extensions=(".ppt", ".pps"), read=read_legacy,
        description="PowerPoint 97-2003 presentation", position="", preview="text", signatures=(OLE2,),
        tokens_per_byte=0.0, mime_types=("application/vnd.ms-powerpoint",),
    ),
)
