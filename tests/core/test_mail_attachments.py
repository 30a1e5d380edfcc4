"""Mail attachments indexed as documents of their own: each supported attachment of an ``.eml`` / ``.mbox`` is its
own results entry ("message.eml › report.docx") with its own positions, found by a word only it holds, previewed
from its own text and opened through its message; a broken one fails alone; the attachments follow their message
when it changes, moves or goes. The messages are built with the standard library's ``email`` package carrying
files written by python-docx, openpyxl, python-pptx and PyMuPDF; none is ever modified.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from desktop_search.core import doctor
from desktop_search.core.extract import ExtractOptions
from desktop_search.core.query import SearchFilter
from desktop_search.core.render import text_context
from desktop_search.core.search import Searcher
from desktop_search.core.store import Store, fs_path, member_name
from tests.conftest import make_pdf
from tests.core import doc_factory as f

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def _attachments(src: Path) -> list[tuple[str, bytes, str]]:
    docx = f.make_docx(src / "report.docx", [("Intro", "nothing special"), ("Budget", "the quokka grant is approved")])
    xlsx = f.make_xlsx(src / "figures.xlsx", {"Plan": [["plain"]], "Actual": [["ocelot", 12]]})
    pptx = f.make_pptx(src / "talk.pptx", ["Title\nplain", "Findings\nthe marmoset colony grew"])
    pdf = make_pdf(src / "paper.pdf", ["first page", "the second page mentions the gharial"])
    return [
        ("report.docx", docx.read_bytes(), DOCX),
        ("figures.xlsx", xlsx.read_bytes(), XLSX),
        ("talk.pptx", pptx.read_bytes(), PPTX),
        ("paper.pdf", pdf.read_bytes(), "application/pdf"),
        ("notes.html", "<html><body><p>Полярная сова гнездится здесь</p></body></html>".encode(), "text/html"),
        ("readme.txt", "the binturong smells of popcorn".encode(), "text/plain"),
        ("broken.docx", b"PK\x03\x04 this is no Word file", "application/octet-stream"),
    ]


def _index(folder: Path, tmp_path: Path):
    store, report, _restarts = f.index_in_pool(folder, tmp_path, ocr=False)
    return store, report


def _top(store: Store, word: str, flt: SearchFilter | None = None) -> list[tuple[str, int | None]]:
    hits = Searcher(store, None).search(word, mode="keyword", flt=flt).hits
    return [(Path(h.path).name, h.page) for h in hits]


def test_attachments_are_documents_of_their_own(tmp_path):
    folder = tmp_path / "mail"
    eml = f.make_eml(folder / "message.eml", f.make_email("Quarterly figures", "See the attached files.",
                                                          attachments=_attachments(tmp_path / "src")))
    before = hashlib.sha256(eml.read_bytes()).hexdigest()
    store, report = _index(folder, tmp_path)
    assert report.indexed == 1 and report.failed == 0
    # The broken attachment fails with its reason; its message is indexed all the same.
    assert [(Path(p).name, r) for p, r, _d in report.failures] == [("message.eml › broken.docx", "corrupt")]
    record = store.file_records()[str(eml)]
    assert record.status == "indexed" and "broken.docx: corrupt" in record.warnings
    # Each attachment is its own entry, at its own position, found by a word only it holds.
    assert _top(store, "quokka") == [("message.eml › report.docx", 2)]
    assert _top(store, "ocelot") == [("message.eml › figures.xlsx", 2)]
    assert _top(store, "marmoset") == [("message.eml › talk.pptx", 2)]
    assert _top(store, "gharial") == [("message.eml › paper.pdf", 2)]
    assert _top(store, "сова") == [("message.eml › notes.html", None)]
    assert _top(store, "binturong") == [("message.eml › readme.txt", None)]
    assert _top(store, "Quarterly") == [("message.eml", 1)]  # the message itself does not hold their words
    # The type filter knows an attachment by its own kind, the folder filter by its message's folder.
    assert _top(store, "quokka", SearchFilter(kinds=("document",))) == [("message.eml › report.docx", 2)]
    assert _top(store, "quokka", SearchFilter(kinds=("email",))) == []
    assert _top(store, "gharial", SearchFilter(folders=(str(folder),))) == [("message.eml › paper.pdf", 2)]
    # Opening an attachment opens its message; its preview is its own passage in its own text.
    hit = Searcher(store, None).search("gharial", mode="keyword").hits[0]
    assert fs_path(hit.path) == str(eml) and member_name(hit.path) == "paper.pdf"
    ctx = text_context(fs_path(hit.path), hit.char_start, hit.char_end, page=hit.page, member=member_name(hit.path))
    assert "gharial" in ctx.passage + ctx.after and "first page" not in ctx.before + ctx.passage + ctx.after
    assert doctor.check(store.index_dir).ok  # attachment chunks belong to their message: no orphans
    assert hashlib.sha256(eml.read_bytes()).hexdigest() == before


def test_attachments_follow_their_message(tmp_path):
    folder = tmp_path / "mail"
    eml = f.make_eml(folder / "message.eml", f.make_email("Quarterly figures", "See the attached files.",
                                                          attachments=_attachments(tmp_path / "src")[:2]))
    store, _ = _index(folder, tmp_path)
    assert _top(store, "quokka") == [("message.eml › report.docx", 2)]
    # Moved: the attachments go with it (not read again).
    moved = folder / "archive" / "renamed.eml"
    moved.parent.mkdir()
    shutil.move(eml, moved)
    store, report = _index(folder, tmp_path)
    assert report.moved == 1
    assert _top(store, "quokka") == [("renamed.eml › report.docx", 2)]
    assert _top(store, "ocelot") == [("renamed.eml › figures.xlsx", 2)]
    assert doctor.check(store.index_dir).ok
    # Changed: an attachment no longer in the message is no longer found.
    f.make_eml(moved, f.make_email("Quarterly figures", "Only the sheet now.",
                                   attachments=_attachments(tmp_path / "src2")[1:2]))
    store, _ = _index(folder, tmp_path)
    assert _top(store, "quokka") == [] and _top(store, "ocelot") == [("renamed.eml › figures.xlsx", 2)]
    # Gone: so are its attachments.
    moved.unlink()
    store, _ = _index(folder, tmp_path)
    assert _top(store, "ocelot") == [] and store.count_chunks() == 0
    assert doctor.check(store.index_dir).ok


def test_mailbox_attachments_and_the_pool_limits(tmp_path):
    folder = tmp_path / "mail"
    parts = _attachments(tmp_path / "src")
    f.make_mbox(folder / "inbox.mbox", [f.make_email("one", "plain", attachments=parts[:1]),
                                        f.make_email("two", "the okapi", attachments=parts[5:6])])
    store, report = _index(folder, tmp_path)
    assert report.indexed == 1 and not report.failures
    assert _top(store, "quokka") == [("inbox.mbox › report.docx", 2)]
    assert _top(store, "binturong") == [("inbox.mbox › readme.txt", None)]
    assert _top(store, "okapi") == [("inbox.mbox", 2)]
    # Attachments are read inside the worker, within its message's time limit: out of time, each attachment
    # fails as a timeout of its own while the message itself is kept.
    from desktop_search.core.extract import extract

    res = extract(folder / "inbox.mbox", ExtractOptions(ocr=False, time_limit_s=0.0))
    assert not res.ok and res.reason == "timeout"  # a mailbox is cut between messages
    one = f.make_eml(tmp_path / "one.eml", f.make_email("one", "the okapi", attachments=parts[:2]))
    res = extract(one, ExtractOptions(ocr=False, time_limit_s=0.0))
    assert res.ok and "okapi" in res.pages[0].text
    assert [(m.name, m.extraction.reason) for m in res.members] == [("report.docx", "timeout"),
                                                                    ("figures.xlsx", "timeout")]
