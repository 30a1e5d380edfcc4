"""Web pages (``.html .htm .xhtml .shtml``) -> their visible text as one position, with selectolax (Lexbor).

The title is kept as the first line; scripts, styles, templates and other invisible elements are dropped; block
elements (paragraphs, headings, list items, table rows, ``<br>``) end a line while inline ones (``<b>``, ``<a>``)
do not, so a phrase that is bold in the middle stays one phrase; table cells are separated by tabs. The charset
comes from the document (byte-order mark, ``<meta charset>``/``http-equiv``, XML declaration), then UTF-8, then
detection, as a browser would do. selectolax (MIT) wraps the Lexbor HTML5 parser: C speed and one small wheel.
``html_to_text`` is shared with the mail reader for HTML-only messages.
"""

from __future__ import annotations

import codecs
import re

from desktop_search.core.extract.base import Extraction, Page, clean_text, ok
from desktop_search.core.extract.registry import Extractor, Source
from desktop_search.core.extract.text import NotText, decode
from desktop_search.core.failures import Reason

__all__ = ["EXTRACTORS", "html_to_text", "decode_html", "read_html"]

_DROP = {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object", "canvas", "select"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "dialog", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "html", "legend", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody",
    "tfoot", "thead", "tr", "ul", "option",
}
_CELLS = {"td", "th"}
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")


def decode_html(data: bytes) -> str | None:
    """The document's text in the charset it declares (or detected); None when it is not text at all."""
    head = data[:8192]
    if not head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        declared = _META_CHARSET.search(head) or _XML_ENCODING.search(head.lstrip())
        if declared:
            name = declared.group(1).decode("ascii", "replace").lower()
            # Browsers read ISO-8859-1 and US-ASCII as windows-1252 (the WHATWG encoding standard).
            name = {"iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252"}.get(name, name)
            try:
                codecs.lookup(name)
                return data.decode(name, errors="replace")
            except LookupError:
                pass
    decoded = decode(data)
    return None if isinstance(decoded, NotText) else decoded.text.removeprefix("\ufeff")


def html_to_text(markup: str) -> tuple[str, str]:
    """(title, visible text) of an HTML document."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    title_node = tree.css_first("title")
    title = _SPACES.sub(" ", title_node.text()).strip() if title_node is not None else ""
    root = tree.body or tree.root
    out: list[str] = []
    if root is None:
        return title, ""
    # An explicit stack (not recursion): hostile pages nest elements thousands deep.
    stack: list[tuple[object, bool]] = [(root, False)]
    preformatted = 0
    while stack:
        node, closing = stack.pop()
        tag = node.tag  # type: ignore[attr-defined]
        if closing:
            if tag == "pre":
                preformatted -= 1
            if tag in _BLOCK:
                out.append("\n")
            continue
        if tag == "-text":
            text = node.text_content or ""  # type: ignore[attr-defined]
            out.append(text if preformatted else _SPACES.sub(" ", text))
            continue
        if tag in _DROP or tag in ("-comment", "!doctype"):
            continue
        if tag in _BLOCK:
            out.append("\n")
        elif tag in _CELLS:
            out.append("\t")
        if tag == "pre":
            preformatted += 1
        stack.append((node, True))
        children = list(node.iter(include_text=True))  # type: ignore[attr-defined]
        stack.extend((child, False) for child in reversed(children))
    lines = [line.strip(" ") for line in "".join(out).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return title, text


def read_html(src: Source) -> Extraction:
    markup = decode_html(src.data)
    if markup is None:
        return src.fail(Reason.DECODE_ERROR, "could not determine the text encoding of this web page")
    title, text = html_to_text(markup)
    text = clean_text("\n".join(t for t in (title, text) if t))
    return ok(src.path, src.kind, [Page(None, text)], 1, what="web page")


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:256]


EXTRACTORS = (
    Extractor(
        name="html", kind="web", extensions=(".html", ".htm", ".xhtml", ".shtml"), read=read_html,
        description="web page", position="", preview="text", sniff=_looks_like_html, tokens_per_byte=0.08,
        mime_types=("text/html", "application/xhtml+xml"),
    ),
)
