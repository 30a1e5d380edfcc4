"""E-mail (``.eml`` messages, ``.mbox`` mailboxes) -> one position per message, with the standard library.

A message's text is its headers that people search by (Subject, From, To, Cc, Date), then its body (the plain
text part; an HTML-only message through ``html.py``'s visible-text conversion), then each attachment of a kind
the registry reads (a PDF, a Word file, a spreadsheet, another message...), extracted from memory by its own
reader and set under a line ``Attachment: name (page 2)`` so a hit says where it is. Attachments of other kinds
are named but not read. An ``.mbox`` is split on its ``From`` lines here (the ``mailbox`` module would open the
file for writing), each message one position, with mboxrd ``>From`` quoting undone. Headers in any charset
(RFC 2047) and bodies in their declared charset are decoded by ``email``'s modern policy.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

from desktop_search.core.extract.base import Extraction, Page, clean_text, describe, ok, squeeze_blank_lines
from desktop_search.core.extract.registry import Extractor, Source, for_path, read_data
from desktop_search.core.failures import Reason

__all__ = ["EXTRACTORS", "read_eml", "read_mbox", "message_text"]

_HEADERS = ("Subject", "From", "To", "Cc", "Date")
_MAX_DEPTH = 3  # messages attached to messages attached to messages
_FROM_LINE = re.compile(rb"^From [^\r\n]*\r?\n", re.MULTILINE)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


def read_eml(src: Source) -> Extraction:
    warnings: list[str] = []
    message = email.message_from_bytes(src.data, policy=email.policy.default)
    if not any(message.get(h) for h in (*_HEADERS, "Message-ID", "MIME-Version", "Received")):
        return src.fail(Reason.CORRUPT, "not an e-mail message (no mail headers)")
    text = message_text(message, src, warnings, 0)
    return ok(src.path, src.kind, [Page(1, text)], 1, what="message", warnings=warnings)


def read_mbox(src: Source) -> Extraction:
    starts = [m.start() for m in _FROM_LINE.finditer(src.data)]
    if not starts:
        return src.fail(Reason.CORRUPT, "not a mailbox (no 'From ' line separates messages)")
    pages: list[Page] = []
    warnings: list[str] = []
    ends = starts[1:] + [len(src.data)]
    for number, (start, end) in enumerate(zip(starts, ends), 1):
        if src.over_time():
            return src.fail(Reason.TIMEOUT, f"stopped after {number - 1} of {len(starts)} messages "
                                       f"(time limit {src.options.time_limit_s:g} s)", page_count=len(starts))
        raw = src.data[start:end]
        raw = _QUOTED_FROM.sub(rb"\1", raw[raw.index(b"\n") + 1:])
        try:
            message = email.message_from_bytes(raw, policy=email.policy.default)
            pages.append(Page(number, message_text(message, src, warnings, 0)))
        except Exception as exc:  # noqa: BLE001 - one broken message must not lose the mailbox
            warnings.append(f"message {number} could not be read ({describe(exc)})")
    return ok(src.path, src.kind, pages, len(starts), what="mailbox", warnings=warnings)


def message_text(message: EmailMessage, src: Source, warnings: list[str], depth: int) -> str:
    lines = [f"{h}: {message[h]}" for h in _HEADERS if message.get(h)]
    body = _body(message)
    if body:
        lines += ["", body]
    for part in message.iter_attachments():
        lines += ["", *_attachment(part, src, warnings, depth)]
    return squeeze_blank_lines(clean_text("\n".join(lines))).strip()


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset or a broken transfer encoding
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        from desktop_search.core.extract.html import html_to_text

        return html_to_text(content)[1]
    return content


def _attachment(part: EmailMessage, src: Source, warnings: list[str], depth: int) -> list[str]:
    name = part.get_filename() or ""
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if isinstance(inner, EmailMessage) and depth < _MAX_DEPTH:
            return [f"Attached message: {name or inner.get('Subject', '')}".rstrip(),
                    message_text(inner, src, warnings, depth + 1)]
        return [f"Attached message: {name}".rstrip()]
    if not name:
        return []
    reader = for_path(name)
    data = part.get_payload(decode=True) or b""
    if reader is None or depth >= _MAX_DEPTH or not data:
        return [f"Attachment: {name} (not read)"]
    try:
        inner = read_data(reader, Path(name), data, src.options, started=src.started, progress=src.progress)
    except Exception as exc:  # noqa: BLE001 - a bad attachment must not lose the message
        inner = None
        warnings.append(f"attachment {name} could not be read ({describe(exc)})")
    if inner is None or not inner.ok:
        if inner is not None:
            warnings.append(f"attachment {name}: {inner.reason} ({inner.detail})")
        return [f"Attachment: {name} (not readable)"]
    out: list[str] = []
    for page in inner.pages:
        where = f" ({reader.position} {page.number})" if page.number is not None and reader.position else ""
        out += [f"Attachment: {name}{where}", page.text]
    return out


def _looks_like_mbox(data: bytes) -> bool:
    return data.startswith(b"From ") and b"\n" in data[:1024]


EXTRACTORS = (
    Extractor(
        name="eml", kind="email", extensions=(".eml",), read=read_eml, description="e-mail message",
        position="message", preview="text", tokens_per_byte=0.15, mime_types=("message/rfc822",),
    ),
    Extractor(
        name="mbox", kind="email", extensions=(".mbox", ".mbx"), read=read_mbox, description="mailbox",
        position="message", preview="text", sniff=_looks_like_mbox, tokens_per_byte=0.15,
        mime_types=("application/mbox",),
    ),
)
