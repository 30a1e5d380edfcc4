"""Indexing: every file ends indexed or failed with a reason, re-runs are incremental, the index stays small."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from desktop_search.core.indexer import Indexer
from desktop_search.core.search import Searcher
from desktop_search.core.store import Store
from tests.conftest import CountingEncoder, DOCS, write


def run(settings, paths, encoder=None, **kw):
    store = Store(settings.index_dir)
    return store, Indexer(store, settings, encoder).index([Path(p) for p in paths], **kw)


def paths_in(store: Store, status: str | None = None) -> set[str]:
    return {p for p, r in store.file_records().items() if status is None or r.status == status}


def test_first_run_indexes_everything_and_rerun_encodes_nothing(settings, docs, tiny_encoder):
    enc = CountingEncoder(tiny_encoder)
    store, rep = run(settings, [docs], enc)
    assert rep.indexed == len(DOCS) + 1 and rep.failed == 0
    assert rep.chunks_encoded == store.count_vectors() > 0
    first = len(enc.encoded)
    assert first == store.count_vectors()

    store, rep2 = run(settings, [docs], enc)
    assert rep2.unchanged == len(DOCS) + 1
    assert rep2.indexed == 0 and rep2.chunks_encoded == 0
    assert len(enc.encoded) == first, "a re-run must not re-encode anything"


def test_changed_file_is_replaced_deleted_file_removed(settings, docs, tiny_encoder):
    store, _ = run(settings, [docs], tiny_encoder)
    solar = docs / "energy" / "solar.txt"
    write(solar, "Wind turbines generate power from moving air on windy hills.")
    (docs / "kitchen" / "bread.md").unlink()
    store, rep = run(settings, [docs], tiny_encoder)
    assert rep.indexed == 1 and rep.removed == 1
    assert str(docs / "kitchen" / "bread.md") not in paths_in(store)
    s = Searcher(store, None)
    assert s.search("photovoltaic", mode="keyword").hits == []
    hits = s.search("turbines", mode="keyword").hits
    assert [h.path for h in hits] == [str(solar)]
    assert s.search("sourdough", mode="keyword").hits == []
    # vectors of text that no longer exists are dropped, not left to grow the index
    assert store.count_vectors() == len(store.all_chunk_hashes())


def test_touched_but_unchanged_and_renamed_files_are_not_reencoded(settings, docs, tiny_encoder):
    enc = CountingEncoder(tiny_encoder)
    run(settings, [docs], enc)
    n = len(enc.encoded)
    berlin = docs / "de" / "berlin.txt"
    os.utime(berlin, ns=(berlin.stat().st_atime_ns, berlin.stat().st_mtime_ns + 5_000_000_000))
    berlin.rename(docs / "de" / "berlin-renamed.txt")
    store, rep = run(settings, [docs], enc)
    assert rep.removed == 1 and rep.indexed == 1
    assert len(enc.encoded) == n, "same text under a new name must reuse its vectors"
    assert str(docs / "de" / "berlin-renamed.txt") in paths_in(store, "indexed")


def test_touch_without_change_is_detected_by_hash(settings, docs, tiny_encoder):
    enc = CountingEncoder(tiny_encoder)
    run(settings, [docs], enc)
    cairo = docs / "ar" / "cairo.txt"
    os.utime(cairo, ns=(cairo.stat().st_atime_ns, cairo.stat().st_mtime_ns + 10_000_000_000))
    store, rep = run(settings, [docs], enc)
    assert rep.unchanged == len(DOCS) + 1 and rep.indexed == 0
    assert store.file_records()[str(cairo)].mtime_ns == cairo.stat().st_mtime_ns


def test_index_does_not_grow_with_repeated_writes(settings, docs, tiny_encoder):
    run(settings, [docs], tiny_encoder)
    sizes = []
    for i in range(4):
        write(docs / "energy" / "solar.txt", f"Revision {i} of the solar notes: panels, cells, inverters.")
        store, _ = run(settings, [docs], tiny_encoder)
        sizes.append(store.index_bytes())
        versions = [len(t.list_versions()) for t in (store.files, store.chunks, store.vectors)]
        assert max(versions) <= 2, versions
    assert sizes[-1] < sizes[0] * 1.5, sizes


def test_keyword_only_index_then_model_catches_up(settings, docs, tiny_encoder):
    store, rep = run(settings, [docs], None)
    assert rep.indexed == len(DOCS) + 1 and store.count_vectors() == 0
    hits = Searcher(store, None).search("quantum entanglement", mode="keyword").hits
    assert hits and hits[0].page == 2
    store, rep = run(settings, [docs], tiny_encoder)
    assert rep.unchanged == len(DOCS) + 1
    assert rep.chunks_encoded == store.count_vectors() == len(store.all_chunk_hashes()) > 0


def test_cancel_stops_early_and_next_run_finishes(settings, tmp_path, tiny_encoder):
    folder = tmp_path / "many"
    for i in range(80):
        write(folder / f"note{i:03d}.txt", f"Note number {i} about topic {i % 7}. " * 20)
    cancel = threading.Event()

    def progress(p):
        if p.files_done >= 32:
            cancel.set()

    store, rep = run(settings, [folder], tiny_encoder, progress=progress, cancel=cancel)
    assert rep.cancelled
    done = paths_in(store, "indexed")
    assert 0 < len(done) < 80
    # everything marked indexed really has its chunks
    for p in done:
        assert store.chunks_of(p)
    store, rep = run(settings, [folder], tiny_encoder)
    assert len(paths_in(store, "indexed")) == 80
    assert rep.unchanged == len(done)


def test_failures_are_recorded_with_reasons_and_do_not_stop_the_batch(settings, tmp_path, corpus):
    folder = tmp_path / "mixed"
    write(folder / "good.txt", "A perfectly normal text file about gardening and tomatoes.")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "junk.pdf").write_bytes(os.urandom(3000))
    (folder / "locked.pdf").write_bytes((corpus / "pdfs" / "pdfjs" / "issue6010_1.pdf").read_bytes())
    store, rep = run(settings, [folder], None)
    recs = store.file_records()
    assert recs[str(folder / "good.txt")].status == "indexed"
    assert recs[str(folder / "empty.txt")].reason == "no_text"
    assert recs[str(folder / "junk.pdf")].reason == "corrupt"
    assert recs[str(folder / "locked.pdf")].reason == "encrypted"
    assert all(r.detail for r in recs.values() if r.status == "failed")


@pytest.mark.slow
def test_whole_pdf_corpus_indexes_without_crash_hang_or_writes(settings, corpus, tiny_encoder):
    pdf_root = corpus / "pdfs"
    manifest = [l.split("\t") for l in (pdf_root / "manifest.tsv").read_text("utf-8").splitlines()[1:] if l.strip()]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in pdf_root.rglob("*") if p.is_file()}
    store, rep = run(settings.with_(ocr=False), [pdf_root], tiny_encoder)
    recs = store.file_records()
    cats = {str(pdf_root / row[0]): row[1] for row in manifest}
    pdfs = [p for p in cats if p.endswith(".pdf")]
    assert len(pdfs) >= 120
    for p in pdfs:
        assert recs[p].status in ("indexed", "failed"), p
        if cats[p] == "encrypted_user_password":
            assert recs[p].reason == "encrypted", p
        if cats[p].startswith("text_") and cats[p] != "text_garbled":
            assert recs[p].status == "indexed", (p, recs[p].reason, recs[p].detail)
        if cats[p] == "scanned_image_only":
            # OCR is off here (tests/core/test_ocr.py covers it): a scan either has no text at all, or
            # (ocrmypdf/multipage.pdf) a partial OCR layer, in which case the pages without text are named
            assert recs[p].reason == "no_text" or "no text layer" in recs[p].warnings, p
    assert rep.chunks_encoded > 1000
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before}
    assert after == before, "a source document was modified"
    # a page-accurate hit inside the 352-page book
    hits = Searcher(store, None).search('"Free Culture"', mode="keyword", k=5).hits
    assert any(h.path.endswith("freeculture.pdf") and h.page for h in hits)


def test_a_file_that_failed_before_the_readers_improved_is_read_once_more(settings, tmp_path):
    from desktop_search.core.extract import READERS_IMPROVED_AT
    from desktop_search.core.store import FileRecord

    folder = tmp_path / "docs"
    write(folder / "plan.txt", "The harbour plan for the northern lighthouse")
    store, report = run(settings, [folder])
    assert report.indexed == 1
    (path, rec), = store.file_records().items()

    def failed_at(when: float) -> None:  # as an older version (or this one) recorded its failure
        store.upsert_files([FileRecord(**{**rec.as_row(), "status": "failed", "reason": "no_text", "detail": "x",
                                          "indexed_at": when})])

    # Failed before the readers learnt more (say, a page of outlined text): read again although unchanged.
    failed_at(READERS_IMPROVED_AT - 3600)
    store, report = run(settings, [folder])
    assert (report.indexed, report.unchanged) == (1, 0) and paths_in(store, "indexed") == {path}
    assert store.file_records()[path].indexed_at > READERS_IMPROVED_AT  # so only once
    store, report = run(settings, [folder])
    assert (report.indexed, report.unchanged) == (0, 1)
    # Failed since: an unchanged failed file is not read again.
    failed_at(READERS_IMPROVED_AT + 3600)
    store, report = run(settings, [folder])
    assert (report.indexed, report.unchanged) == (0, 1) and paths_in(store, "failed") == {path}
