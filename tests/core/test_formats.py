"""Office, OpenDocument, e-book, web page, RTF and e-mail documents: each found by a word at the right position,
broken and password-protected ones failing with the right reason, none ever modified.

The documents are written by the libraries that write them (python-docx, python-pptx, openpyxl, odfpy, the
standard library's email package; EPUB and FB2 packages by hand) in several scripts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from desktop_search.core.extract import ExtractOptions, extract, registry
from desktop_search.core.render import text_context
from desktop_search.core.search import Searcher
from tests.conftest import make_pdf
from tests.core import doc_factory as f

S = f.SCRIPTS
NO_OCR = ExtractOptions(ocr=False)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _at(res, word: str) -> list[int | None]:
    """Numbers of the positions whose text holds ``word``."""
    assert res.ok, (res.reason, res.detail)
    return [p.number for p in res.pages if word in p.text]


def test_word_sections_tables_and_scripts(tmp_path):
    path = f.make_docx(tmp_path / "report.docx", [
        ("Introduction", S["latin"]),
        ("Einleitung", S["german"] + "\n" + S["cyrillic"]),
        ("结论", S["chinese"] + "\n" + S["arabic"]),
    ], table=[["Region", "Count"], ["Ζάκυνθος", "42"]])
    before = _digest(path)
    res = extract(path)
    assert res.kind == "document" and res.page_count == 3
    assert _at(res, "gannets") == [1]
    assert _at(res, "Basstölpel") == [2] and _at(res, "маяка") == [2]
    assert _at(res, "鲣鸟") == [3] and _at(res, "المنارة") == [3]
    assert _at(res, "Ζάκυνθος\t42") == [3]  # the table follows the last heading, cells tab-separated
    assert registry.for_path(path).position == "section"
    assert _digest(path) == before


def test_powerpoint_one_position_per_slide_with_notes_and_tables(tmp_path):
    path = f.make_pptx(tmp_path / "deck.pptx", [
        "Opening\n" + S["latin"],
        "Zweite Folie\n" + S["german"],
        "第三\n" + S["japanese"],
    ], notes={2: "Speaker note: mention the Kykladen ferry."}, table_on=3, table=[["Остров", "Паром"]])
    res = extract(path)
    assert res.kind == "presentation" and res.page_count == 3
    assert _at(res, "gannets") == [1]
    assert _at(res, "Kykladen") == [2]  # notes belong to their slide
    assert _at(res, "カツオドリ") == [3] and _at(res, "Паром") == [3]
    assert registry.for_path(path).position == "slide"


def test_spreadsheets_one_position_per_sheet(tmp_path):
    xlsx = f.make_xlsx(tmp_path / "budget.xlsx", {
        "Summary": [["Item", "Amount"], ["Leuchtturm", 1200.5], ["Total", 1200.5]],
        "Заметки": [["Смотритель", "маяка"], [None, "灯塔看守人"]],
    })
    res = extract(xlsx)
    assert res.kind == "spreadsheet" and res.page_count == 2
    assert _at(res, "Leuchtturm\t1200.5") == [1]
    assert res.pages[1].text.startswith("Заметки")  # the sheet name leads its text
    assert _at(res, "灯塔看守人") == [2]
    ods = f.make_ods(tmp_path / "plan.ods", {"One": [["alpha", "beta"]], "Two": [["σούλες", "gamma"]]})
    res = extract(ods)
    assert res.kind == "spreadsheet" and _at(res, "σούλες") == [2]


def test_opendocument_text_and_slides(tmp_path):
    odt = f.make_odt(tmp_path / "notes.odt", [("Intro", S["latin"]), ("Ελληνικά", S["greek"])])
    res = extract(odt)
    assert res.kind == "document" and res.page_count == 2
    assert _at(res, "gannets") == [1] and _at(res, "φαροφύλακας") == [2]
    odp = f.make_odp(tmp_path / "talk.odp", ["Slide one\n" + S["latin"], "Slide two\n" + S["chinese"]],
                     notes={1: "remember the Basstölpel"})
    res = extract(odp)
    assert res.kind == "presentation" and res.page_count == 2
    assert _at(res, "Basstölpel") == [1] and _at(res, "鲣鸟") == [2]


def test_ebooks_give_chapters(tmp_path):
    epub = f.make_epub(tmp_path / "book.epub", [S["latin"], S["cyrillic"], S["chinese"]])
    res = extract(epub, NO_OCR)
    assert res.kind == "ebook" and res.page_count == 3
    assert _at(res, "gannets") == [1] and _at(res, "маяка") == [2] and _at(res, "鲣鸟") == [3]
    assert registry.for_path(epub).position == "chapter"
    fb2 = f.make_fb2(tmp_path / "book.fb2", [S["cyrillic"], S["greek"]])
    res = extract(fb2, NO_OCR)
    assert res.ok and _at(res, "σούλες") != [] and _at(res, "маяка") != []


def test_web_page_visible_text_title_and_declared_charset(tmp_path):
    page = (
        '<!DOCTYPE html><html><head><meta charset="windows-1251"><title>Маяк и птицы</title>'
        "<style>.x { color: red }</style><script>var hidden = 'scriptword';</script></head>"
        "<body><h1>Заголовок</h1><p>Смотритель <b>маяка</b> писал.</p><noscript>noscriptword</noscript>"
        "<table><tr><td>cell one</td><td>cell two</td></tr></table></body></html>"
    )
    path = tmp_path / "page.html"
    path.write_bytes(page.encode("cp1251"))
    res = extract(path)
    assert res.kind == "web" and res.ok
    text = res.pages[0].text
    assert text.startswith("Маяк и птицы")  # the title is kept
    assert "Смотритель маяка писал." in text  # inline <b> does not split the sentence
    assert "scriptword" not in text and "color" not in text and "noscriptword" not in text
    assert "cell one\tcell two" in text


def test_rtf_in_a_cyrillic_code_page_and_unicode_escapes(tmp_path):
    rtf = (rb"{\rtf1\ansi\ansicpg1251{\fonttbl{\f0 Arial;}}\f0 Lighthouse \'cc\'e0\'ff\'ea\par "
           rb"\u28783?\u22612? keeper\par}")
    path = tmp_path / "letter.rtf"
    path.write_bytes(rtf)
    res = extract(path)
    assert res.kind == "document" and res.ok
    assert "Маяк" in res.pages[0].text and "灯塔" in res.pages[0].text and "fonttbl" not in res.pages[0].text


def test_email_with_attachments_and_mailbox(tmp_path):
    docx = f.make_docx(tmp_path / "src" / "minutes.docx", [("Minutes", "The committee approved the Zeppelin budget.")])
    pdf = make_pdf(tmp_path / "src" / "scan.pdf", ["first page", "The second page mentions the albatross."])
    message = f.make_email("Treffen am Leuchtturm", S["german"], attachments=[
        ("minutes.docx", docx.read_bytes(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("scan.pdf", pdf.read_bytes(), "application/pdf"),
        ("blob.bin", b"\x00\x01binary", "application/octet-stream"),
        ("broken.docx", b"PK\x03\x04 not a package", "application/octet-stream"),
        ("scan.pdf", pdf.read_bytes(), "application/pdf"),  # the same name twice: two documents
    ])
    eml = f.make_eml(tmp_path / "mail.eml", message)
    res = extract(eml, NO_OCR)
    assert res.kind == "email" and res.page_count == 1
    text = res.pages[0].text
    assert "Subject: Treffen am Leuchtturm" in text and "From: Anna <anna@example.org>" in text
    assert "Basstölpel" in text
    # The message names its attachments; their text is theirs, not the message's.
    assert "Attachment: minutes.docx" in text and "Zeppelin" not in text and "albatross" not in text
    assert "Attachment: blob.bin (not read)" in text and "Attachment: broken.docx (not readable)" in text
    members = {m.name: m.extraction for m in res.members}
    assert list(members) == ["minutes.docx", "scan.pdf", "broken.docx", "scan (2).pdf"]
    assert members["minutes.docx"].kind == "document" and _at(members["minutes.docx"], "Zeppelin") == [1]
    assert members["scan.pdf"].kind == "pdf" and _at(members["scan.pdf"], "albatross") == [2]
    assert not members["broken.docx"].ok and members["broken.docx"].reason == "corrupt"
    assert any("broken.docx: corrupt" in w for w in res.warnings)
    html_only = f.make_email("HTML only", "<p>Смотритель <i>маяка</i></p><script>x()</script>", html=True)
    second = f.make_email("Second", "From here on the albatross flies.\n" + S["chinese"])
    mbox = f.make_mbox(tmp_path / "archive.mbox", [message, html_only, second])
    res = extract(mbox, NO_OCR)
    assert res.kind == "email" and res.page_count == 3
    assert _at(res, "Treffen") == [1] and _at(res, "Смотритель маяка") == [2] and _at(res, "鲣鸟") == [3]
    assert "From here on the albatross" in res.pages[2].text  # mboxrd ">From" quoting undone
    assert [m.name for m in res.members] == ["minutes.docx", "scan.pdf", "broken.docx", "scan (2).pdf"]


def test_mail_attachment_names_stay_one_file_name():
    from desktop_search.core.extract import mail

    found = mail._Attachments()
    names = [found.add(n, extract(Path("x.unknown"))) for n in ["../etc/passwd", "a › b.txt", "", "A.txt", "a.txt"]]
    assert names == [".._etc_passwd", "a_b.txt", "attachment", "A.txt", "a (2).txt"]


@pytest.mark.parametrize("name", ["r.docx", "r.pptx", "r.xlsx"])
def test_password_protected_ooxml_is_encrypted(tmp_path, name):
    plain = {
        "r.docx": lambda p: f.make_docx(p, [("T", "secret text")]),
        "r.pptx": lambda p: f.make_pptx(p, ["T\nsecret text"]),
        "r.xlsx": lambda p: f.make_xlsx(p, {"S": [["secret text"]]}),
    }[name](tmp_path / "plain" / name)
    path = f.encrypt_ooxml(plain, tmp_path / name)
    before = _digest(path)
    res = extract(path)
    assert not res.ok and res.reason == "encrypted" and "password" in res.detail
    assert _digest(path) == before


@pytest.mark.parametrize("name,mime", [
    ("r.odt", "application/vnd.oasis.opendocument.text"),
    ("r.odp", "application/vnd.oasis.opendocument.presentation"),
    ("r.ods", "application/vnd.oasis.opendocument.spreadsheet"),
])
def test_password_protected_opendocument_is_encrypted(tmp_path, name, mime):
    res = extract(f.encrypted_odf(tmp_path / name, mime))
    assert not res.ok and res.reason == "encrypted"


@pytest.mark.parametrize("name", ["r.docx", "r.pptx", "r.xlsx", "r.odt", "r.epub", "r.eml", "r.ods"])
def test_truncated_or_garbage_documents_are_corrupt(tmp_path, name):
    make = {
        "r.docx": lambda p: f.make_docx(p, [("T", S["latin"] * 50)]),
        "r.pptx": lambda p: f.make_pptx(p, ["T\n" + S["latin"] * 50]),
        "r.xlsx": lambda p: f.make_xlsx(p, {"S": [[S["latin"]]] * 200}),
        "r.odt": lambda p: f.make_odt(p, [("T", S["latin"] * 50)]),
        "r.epub": lambda p: f.make_epub(p, [S["latin"] * 50]),
        "r.eml": lambda p: p.write_bytes(b"\x00\x01\x02 this is not a message \xff\xfe" * 10),
        "r.ods": lambda p: f.make_ods(p, {"S": [[S["latin"]]] * 200}),
    }
    path = tmp_path / name
    make[name](path)
    data = path.read_bytes()
    if name != "r.eml":
        path.write_bytes(data[: len(data) // 2])  # a download cut off half-way
    res = extract(path, NO_OCR)
    assert not res.ok and res.reason == "corrupt", (res.reason, res.detail)


def test_legacy_binary_office_files_are_unsupported_and_say_so(tmp_path):
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"WordDocument".ljust(600, b"\0")
    for name, word in (("old.doc", "Word 97-2003"), ("old.ppt", "PowerPoint 97-2003")):
        path = tmp_path / name
        path.write_bytes(ole)
        res = extract(path)
        assert not res.ok and res.reason == "unsupported", res.detail
        assert word in res.detail and "not supported" in res.detail
    # Word's "save as .doc" that is really RTF is read as what it is.
    rtf = tmp_path / "really-rtf.doc"
    rtf.write_bytes(rb"{\rtf1\ansi Lighthouse keeper's log\par}")
    res = extract(rtf)
    assert res.ok and "Lighthouse keeper" in res.pages[0].text


def test_size_and_time_limits_apply_to_every_kind(tmp_path):
    path = f.make_xlsx(tmp_path / "big.xlsx", {f"S{i}": [[S["latin"]]] * 20 for i in range(3)})
    res = extract(path, max_bytes=1000)
    assert not res.ok and res.reason == "too_large"
    res = extract(path, time_limit_s=0)
    assert not res.ok and res.reason == "timeout" and "sheets" in res.detail
    mbox = f.make_mbox(tmp_path / "m.mbox", [f.make_email(f"M{i}", "text") for i in range(3)])
    res = extract(mbox, time_limit_s=0)
    assert not res.ok and res.reason == "timeout" and "messages" in res.detail


def test_every_kind_is_indexed_in_the_pool_and_found_at_its_position(tmp_path):
    folder = tmp_path / "docs"
    f.make_docx(folder / "a.docx", [("One", "nothing here"), ("Two", "quetzal feathers")])
    f.make_pptx(folder / "b.pptx", ["One\nplain", "Two\nplain", "Three\naxolotl habitat"])
    f.make_xlsx(folder / "c.xlsx", {"A": [["plain"]], "B": [["capybara", 3]]})
    f.make_odt(folder / "d.odt", [("Eins", "nichts"), ("Zwei", "Pangolin Schuppen")])
    f.make_odp(folder / "e.odp", ["one", "okapi stripes"])
    f.make_epub(folder / "f.epub", ["plain chapter", "plain again", "narwhal tusk"])
    (folder / "g.html").write_text("<html><head><title>t</title></head><body><p>wombat burrow</p></body></html>")
    (folder / "h.rtf").write_bytes(rb"{\rtf1\ansi tapir snout\par}")
    f.make_eml(folder / "i.eml", f.make_email("Hello", "the dugong grazes"))
    f.make_mbox(folder / "j.mbox", [f.make_email("one", "plain"), f.make_email("two", "the kakapo sleeps")])
    (folder / "k.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000))
    store, report, restarts = f.index_in_pool(folder, tmp_path)
    assert report.indexed == 10 and report.failed == 1
    assert restarts == 0
    records = {Path(p).name: r for p, r in store.file_records().items()}
    assert records["k.doc"].reason == "unsupported"
    searcher = Searcher(store, None)
    expected = {"quetzal": ("a.docx", 2), "axolotl": ("b.pptx", 3), "capybara": ("c.xlsx", 2),
                "Pangolin": ("d.odt", 2), "okapi": ("e.odp", 2), "narwhal": ("f.epub", 3),
                "wombat": ("g.html", None), "tapir": ("h.rtf", None), "dugong": ("i.eml", 1),
                "kakapo": ("j.mbox", 2)}
    for word, (name, position) in expected.items():
        hits = searcher.search(word, mode="keyword").hits
        assert [(Path(h.path).name, h.page) for h in hits[:1]] == [(name, position)], word
    kinds = {records[n].kind for n in records}
    assert {"document", "presentation", "spreadsheet", "ebook", "web", "email"} <= kinds


def test_preview_shows_the_passage_of_its_slide(tmp_path):
    path = f.make_pptx(tmp_path / "deck.pptx", ["One\nthe first slide", "Two\nthe okapi has stripes"])
    res = extract(path)
    page = res.pages[1]
    start = page.text.index("okapi")
    ctx = text_context(path, start, start + 5, page=2)
    assert ctx.passage == "okapi" and "stripes" in ctx.after and "Two" in ctx.before
