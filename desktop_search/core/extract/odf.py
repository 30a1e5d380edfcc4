"""OpenDocument text and presentations (``.odt .ott .odp .otp``) -> sections and slides, read from the ODF XML.

An ODF file is a ZIP package whose ``content.xml`` holds the document; it is parsed directly with the standard
library (zipfile + ElementTree, whose expat parser refuses entity-expansion bombs), which needs no extra
dependency and is faster than odfpy's object tree. Text documents are split into sections at headings of
outline level 1-2 (as ``office.py`` does for Word); presentations give one position per slide (``draw:page``)
with its speaker notes last. Spaces (``text:s``), tabs and line breaks are kept as the author typed them.
A password-protected package (its manifest lists ``encryption-data``) fails as ``encrypted``; ODF spreadsheets
are read by ``sheets.py``.
"""

from __future__ import annotations

import io
import zipfile
import xml.etree.ElementTree as ET
from typing import Iterator

from desktop_search.core.extract.base import Extraction, Page, clean_text, describe, ok
from desktop_search.core.extract.containers import MemberTooLarge, odf_is_encrypted, read_member, zip_mimetype
from desktop_search.core.extract.registry import Extractor, Source
from desktop_search.core.failures import Reason

__all__ = ["EXTRACTORS", "read_odf"]

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
}


def _q(prefix: str, name: str) -> str:
    return f"{{{_NS[prefix]}}}{name}"


_P, _H, _S, _TAB, _BR = _q("text", "p"), _q("text", "h"), _q("text", "s"), _q("text", "tab"), _q("text", "line-break")
_ROW, _CELL = _q("table", "table-row"), _q("table", "table-cell")
_NOTES = _q("presentation", "notes")
_SKIP = {_q("office", "annotation"), _q("text", "tracked-changes"), _q("text", "note-citation")}

TEXT_TYPES = ("application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.text-template")
SLIDE_TYPES = ("application/vnd.oasis.opendocument.presentation",
               "application/vnd.oasis.opendocument.presentation-template")


def read_odf(src: Source) -> Extraction:
    try:
        zf = zipfile.ZipFile(io.BytesIO(src.data))
    except (zipfile.BadZipFile, ValueError) as exc:
        return src.fail(Reason.CORRUPT, f"not a readable OpenDocument file ({describe(exc)})")
    with zf:
        if odf_is_encrypted(zf):
            return src.fail(Reason.ENCRYPTED, "password-protected OpenDocument file; no password known")
        try:
            root = ET.fromstring(read_member(zf, "content.xml"))
        except KeyError:
            return src.fail(Reason.CORRUPT, "not a readable OpenDocument file (content.xml is missing)")
        except MemberTooLarge as exc:
            return src.fail(Reason.TOO_LARGE, f"the document's content is too large to read ({exc})")
        except ET.ParseError as exc:
            return src.fail(Reason.CORRUPT, f"not a readable OpenDocument file ({describe(exc)})")
    body = root.find(_q("office", "body"))
    if body is None:
        return src.fail(Reason.CORRUPT, "not a readable OpenDocument file (no document body)")
    slides = body.find(_q("office", "presentation"))
    if slides is not None:
        pages = []
        for number, slide in enumerate(slides.iter(_q("draw", "page")), 1):
            notes = [_text(p) for n in slide.iter(_NOTES) for p in n.iter(_P)]
            main = [_text(p) for p in _paragraphs(slide, skip_notes=True)]
            pages.append(Page(number, clean_text("\n".join(t for t in main + notes if t.strip()))))
        return ok(src.path, src.kind, pages, len(pages), what="presentation")
    text = body.find(_q("office", "text"))
    if text is None:
        return src.fail(Reason.UNSUPPORTED, "this OpenDocument file holds neither text nor slides")
    sections: list[list[str]] = [[]]
    for block in text:
        if block.tag == _H and _outline_level(block) <= 2 and any(s.strip() for s in sections[-1]):
            sections.append([])
        sections[-1].extend(_block_lines(block))
    pages = [Page(i, clean_text("\n".join(lines)).strip()) for i, lines in enumerate(sections, 1)]
    return ok(src.path, src.kind, pages, len(pages), what="document")


def _outline_level(heading: ET.Element) -> int:
    try:
        return int(heading.get(_q("text", "outline-level"), "1"))
    except ValueError:
        return 1


def _block_lines(block: ET.Element) -> list[str]:
    if block.tag in (_P, _H):
        return [_text(block)]
    if block.tag in _SKIP:
        return []
    if block.tag == _ROW:
        return ["\t".join(t for t in (" ".join(_text(p) for p in c.iter(_P)) for c in block.iter(_CELL)) if t)]
    lines: list[str] = []
    for child in block:
        lines.extend(_block_lines(child))
    return lines


def _paragraphs(elem: ET.Element, skip_notes: bool) -> Iterator[ET.Element]:
    for child in elem:
        if skip_notes and child.tag == _NOTES:
            continue
        if child.tag in (_P, _H):
            yield child
        elif child.tag not in _SKIP:
            yield from _paragraphs(child, skip_notes)


def _text(elem: ET.Element) -> str:
    parts: list[str] = [elem.text or ""]
    for child in elem:
        if child.tag == _S:
            parts.append(" " * _count(child))
        elif child.tag == _TAB:
            parts.append("\t")
        elif child.tag == _BR:
            parts.append("\n")
        elif child.tag not in _SKIP:
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _count(elem: ET.Element) -> int:
    try:
        return max(1, min(1000, int(elem.get(_q("text", "c"), "1"))))
    except ValueError:
        return 1


EXTRACTORS = (
    Extractor(
        name="odt", kind="document", extensions=(".odt", ".ott"), read=read_odf,
        description="OpenDocument text", position="section", preview="text",
        sniff=lambda data: zip_mimetype(data) in TEXT_TYPES, tokens_per_byte=0.05, mime_types=TEXT_TYPES,
    ),
    Extractor(
        name="odp", kind="presentation", extensions=(".odp", ".otp"), read=read_odf,
        description="OpenDocument presentation", position="slide", preview="text",
        sniff=lambda data: zip_mimetype(data) in SLIDE_TYPES, tokens_per_byte=0.01, mime_types=SLIDE_TYPES,
    ),
)
