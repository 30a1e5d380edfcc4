"""Documents of every kind, written by the libraries that write them (python-docx, python-pptx, openpyxl, odfpy,
the standard library for e-mail, EPUB and FB2 packages by hand), for the extraction and indexing tests.

Each builder takes the texts of its positions (sections, slides, sheets, chapters, messages) so a test can put a
word at a known position and check that search finds it there.
"""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

# One sentence per script, each with a word no other sentence has.
SCRIPTS = {
    "latin": "The lighthouse keeper wrote about the northern gannets.",
    "german": "Der Leuchtturmwärter schrieb über die Basstölpel im Norden.",
    "cyrillic": "Смотритель маяка писал о северных олушах.",
    "greek": "Ο φαροφύλακας έγραψε για τους βόρειους σούλες.",
    "arabic": "كتب حارس المنارة عن طيور الأطيش الشمالية.",
    "chinese": "灯塔看守人写了关于北方鲣鸟的文章。",
    "japanese": "灯台守は北のカツオドリについて書いた。",
}


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def make_docx(path: Path, sections: list[tuple[str, str]], table: list[list[str]] | None = None) -> Path:
    """``sections``: (heading, body) pairs; each heading is a Heading 1, so each pair is one position."""
    import docx

    document = docx.Document()
    for heading, body in sections:
        document.add_heading(heading, level=1)
        for para in body.split("\n"):
            document.add_paragraph(para)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(_parent(path)))
    return path


def make_pptx(path: Path, slides: list[str], notes: dict[int, str] | None = None,
              table_on: int | None = None, table: list[list[str]] | None = None) -> Path:
    """One slide per text (title + body); ``notes`` by 1-based slide number; an optional table on a slide."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for number, text in enumerate(slides, 1):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        title, _, body = text.partition("\n")
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes and number in notes:
            slide.notes_slide.notes_text_frame.text = notes[number]
        if table and table_on == number:
            shape = slide.shapes.add_table(len(table), len(table[0]), Inches(1), Inches(4), Inches(6), Inches(1))
            for r, row in enumerate(table):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = value
    deck.save(str(_parent(path)))
    return path


def make_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(str(_parent(path)))
    return path


def make_odt(path: Path, sections: list[tuple[str, str]]) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    for heading, body in sections:
        document.text.addElement(H(outlinelevel=1, text=heading))
        for para in body.split("\n"):
            document.text.addElement(P(text=para))
    document.save(str(_parent(path)))
    return path


def make_odp(path: Path, slides: list[str], notes: dict[int, str] | None = None) -> Path:
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.presentation import Notes
    from odf.style import MasterPage, PageLayout, Style
    from odf.text import P

    document = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    frame_style = Style(name="frame", family="presentation")
    document.automaticstyles.addElement(frame_style)
    for number, text in enumerate(slides, 1):
        page = Page(name=f"slide{number}", masterpagename=master)
        frame = Frame(stylename=frame_style, width="20cm", height="10cm", x="1cm", y="1cm")
        box = TextBox()
        for line in text.split("\n"):
            box.addElement(P(text=line))
        frame.addElement(box)
        page.addElement(frame)
        if notes and number in notes:
            note = Notes()
            note_frame = Frame(stylename=frame_style, width="20cm", height="5cm", x="1cm", y="12cm")
            note_box = TextBox()
            note_box.addElement(P(text=notes[number]))
            note_frame.addElement(note_box)
            note.addElement(note_frame)
            page.addElement(note)
        document.presentation.addElement(page)
    document.save(str(_parent(path)))
    return path


def make_ods(path: Path, sheets: dict[str, list[list[str]]]) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        table = Table(name=name)
        for row in rows:
            tr = TableRow()
            for value in row:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=str(value)))
                tr.addElement(cell)
            table.addElement(tr)
        document.spreadsheet.addElement(table)
    document.save(str(_parent(path)))
    return path


def make_epub(path: Path, chapters: list[str]) -> Path:
    """A minimal valid EPUB 3 (the self-test's builder: mimetype first, container, package, XHTML chapters)."""
    from desktop_search.selftest import write_epub

    return write_epub(_parent(path), chapters)


def make_fb2(path: Path, sections: list[str]) -> Path:
    body = "".join(f"<section><title><p>Part {i + 1}</p></title><p>{text}</p></section>"
                   for i, text in enumerate(sections))
    _parent(path).write_text(
        '<?xml version="1.0" encoding="utf-8"?><FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0">'
        "<description><title-info><book-title>Book</book-title><lang>ru</lang></title-info></description>"
        f"<body>{body}</body></FictionBook>",
        encoding="utf-8",
    )
    return path


def make_email(subject: str, body: str, sender: str = "Anna <anna@example.org>",
               attachments: list[tuple[str, bytes, str]] = (), html: bool = False) -> EmailMessage:
    """A message; ``attachments`` are (file name, bytes, MIME type)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = "Ben <ben@example.org>"
    message["Date"] = "Tue, 03 Mar 2026 10:00:00 +0100"
    if html:
        message.set_content(body, subtype="html")
    else:
        message.set_content(body)
    for name, data, mime in attachments:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


def make_eml(path: Path, message: EmailMessage) -> Path:
    _parent(path).write_bytes(bytes(message))
    return path


def make_mbox(path: Path, messages: list[EmailMessage]) -> Path:
    out = io.BytesIO()
    for message in messages:
        raw = bytes(message).replace(b"\r\n", b"\n")
        # mboxrd quoting: body lines starting with "From " get a ">".
        raw = b"\n".join(b">" + line if line.startswith(b"From ") else line for line in raw.split(b"\n"))
        out.write(b"From anna@example.org Tue Mar  3 10:00:00 2026\n" + raw.rstrip(b"\n") + b"\n\n")
    _parent(path).write_bytes(out.getvalue())
    return path


def encrypt_ooxml(plain: Path, out: Path, password: str = "secret") -> Path:
    """The password-protected version Office writes (an encrypted package inside an OLE2 container)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    with open(plain, "rb") as src, open(_parent(out), "wb") as dst:
        OOXMLFile(src).encrypt(password, dst)
    return out


def encrypted_odf(path: Path, mimetype: str = "application/vnd.oasis.opendocument.text") -> Path:
    """An OpenDocument package as LibreOffice writes it with a password: members encrypted, the manifest says so."""
    import os

    with zipfile.ZipFile(_parent(path), "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        z.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
            f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml" '
            'manifest:size="5000"><manifest:encryption-data manifest:checksum-type="SHA256/1K" '
            'manifest:checksum="AAAA"><manifest:algorithm manifest:algorithm-name='
            '"http://www.w3.org/2001/04/xmlenc#aes256-cbc" manifest:initialisation-vector="AAAA"/>'
            '<manifest:key-derivation manifest:key-derivation-name="PBKDF2" manifest:key-size="32" '
            'manifest:iteration-count="100000" manifest:salt="AAAA"/></manifest:encryption-data>'
            "</manifest:file-entry></manifest:manifest>",
        )
        z.writestr("content.xml", os.urandom(5000))
    return path


def index_in_pool(folder: Path, tmp_path: Path, **settings):
    """Index ``folder`` as the app does (isolated kinds in a one-worker pool, no model) into ``tmp_path/index``:
    (store, report, pool restarts)."""
    from desktop_search.config import load_settings
    from desktop_search.core.indexer import Indexer
    from desktop_search.core.isolate import ExtractorPool
    from desktop_search.core.store import Store

    loaded = load_settings(index_dir=tmp_path / "index", model_dir=tmp_path / "no-model", extract_workers=1,
                           **settings)
    store = Store(loaded.index_dir)
    pool = ExtractorPool(1)
    try:
        report = Indexer(store, loaded, None, extractor=pool).index([folder])
    finally:
        pool.close()
    return store, report, pool.restarts
