"""Hostile and odd input: isolated PDF extraction (hang, crash, memory bomb), permissions, links, huge and empty
files, names in any script or no encoding at all, files that vanish or change while read. Each costs one file,
recorded with a reason, or is indexed correctly; nothing stops a batch, and no document is ever written."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from desktop_search.config import load_settings
from desktop_search.core.extract import base as extract_module
from desktop_search.core.extract import ExtractOptions, extract
from desktop_search.core.indexer import Indexer
from desktop_search.core.isolate import ExtractorPool, WorkerCrashed, WorkerTimeout, _extract_job
from desktop_search.core.search import Searcher
from desktop_search.core.store import Store, fs_path, path_key
from tests.conftest import REPO, make_pdf, write
from tests.core.index_snapshot import assert_same_index, snapshot


def _settings(tmp_path, **kw):
    return load_settings(index_dir=tmp_path / "index", model_dir=tmp_path / "no-model", extract_workers=1, **kw)


def _records(store: Store) -> dict[str, tuple[str, str | None]]:
    return {Path(p).name: (r.status, r.reason) for p, r in store.file_records().items()}


# -- isolation ------------------------------------------------------------------------------------------------
def simulated_job(path: str, options):
    """Runs in the worker: misbehaves the way MuPDF can, by file name; else the real extraction."""
    name = Path(path).name
    if name.startswith("hang"):
        time.sleep(3600)
    if name.startswith("crash"):
        os.abort()
    if name.startswith("oom"):
        bytearray(64 * 1024**3)  # far beyond the worker's memory cap: MemoryError at once
    return _extract_job(path, options)


def _repeated_deflate(prefix: bytes, block: bytes, times: int, suffix: bytes) -> bytes:
    """A zlib stream of prefix + block * times + suffix, built in milliseconds: each block is compressed once
    and ends in a full flush, so the same compressed bytes can follow each other."""
    def segment(data: bytes, final: bool = False) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + (c.flush() if final else c.flush(zlib.Z_FULL_FLUSH))

    check = zlib.adler32(prefix)
    for _ in range(times):
        check = zlib.adler32(block, check)
    check = zlib.adler32(suffix, check)
    body = segment(prefix) + segment(block) * times + segment(suffix, final=True)
    return b"\x78\xda" + body + struct.pack(">I", check & 0xFFFFFFFF)


def make_memory_bomb_pdf(path: Path, megabytes: int = 600) -> Path:
    """A 0.6 MB PDF whose page holds one 600 MB string: MuPDF's lexer doubles its buffer to 1 GB for it."""
    stream = _repeated_deflate(b"BT /F1 12 Tf 72 700 Td (", b"A" * (1 << 20), megabytes, b") Tj ET")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))
    return path


@pytest.fixture
def hostile_pool():
    pool = ExtractorPool(1, memory_limit=2 * 1024**3, grace_s=1.0, job=simulated_job)
    yield pool
    pool.close()


def test_pdf_hang_crash_and_memory_bombs_cost_one_file_and_are_not_retried(tmp_path, hostile_pool):
    folder = tmp_path / "pdfs"
    for name in ("good.pdf", "hang.pdf", "crash.pdf", "oom.pdf"):
        make_pdf(folder / name, [f"The {name[:-4]} document speaks about lighthouses."])
    settings = _settings(tmp_path, extract_time_limit_s=1.0)
    store = Store(settings.index_dir)
    indexer = Indexer(store, settings, None, extractor=hostile_pool)

    started = time.monotonic()
    rep = indexer.index([folder])
    recs = _records(store)
    assert recs["good.pdf"] == ("indexed", None)
    assert recs["hang.pdf"] == ("failed", "timeout")
    assert recs["crash.pdf"] == ("failed", "corrupt")
    assert recs["oom.pdf"] == ("failed", "too_large")
    details = {Path(p).name: d for p, _r, d in rep.failures}
    assert "crashed" in details["crash.pdf"] and "SIGABRT" in details["crash.pdf"]
    assert "memory" in details["oom.pdf"]
    assert hostile_pool.restarts == 2  # the hung and the crashed worker were replaced
    assert time.monotonic() - started < 120
    hits = Searcher(store, None).search("lighthouses", mode="keyword").hits
    assert [Path(h.path).name for h in hits] == ["good.pdf"]

    # Failed files with the same size and mtime are not tried again on the next start...
    rep = indexer.index([folder])
    assert rep.unchanged == 4 and rep.indexed == rep.failed == 0
    assert hostile_pool.restarts == 2
    # ...unless they changed.
    make_pdf(folder / "hang.pdf", ["A new version of the hanging file."])
    rep = indexer.index([folder])
    assert rep.failed == 1 and rep.unchanged == 3 and rep.failures[0][1] == "timeout"


def test_memory_bomb_pdf_is_stopped_by_the_memory_cap(tmp_path):
    bomb = make_memory_bomb_pdf(tmp_path / "bomb.pdf")
    assert bomb.stat().st_size < 1_000_000
    pool = ExtractorPool(1, memory_limit=1536 * 1024**2)  # the real extraction, capped
    try:
        ex = pool.extract(bomb, time_limit_s=120)
        assert (ex.ok, ex.reason) == (False, "too_large"), (ex.reason, ex.detail, ex.warnings)
        assert "memory" in ex.detail
        # The worker survived its failed allocation and serves the next file.
        good = pool.extract(make_pdf(tmp_path / "good.pdf", ["Harmless page about kites."]))
        assert good.ok and "kites" in good.pages[0].text
    finally:
        pool.close()


def test_pool_reports_timeouts_crashes_and_recovers(hostile_pool):
    with pytest.raises(WorkerTimeout):
        hostile_pool.call(time.sleep, 60, timeout_s=0.5)
    with pytest.raises(WorkerCrashed) as crashed:
        hostile_pool.call(os._exit, 3, timeout_s=60)
    assert crashed.value.exitcode == 3
    pid = hostile_pool.call(os.getpid, timeout_s=60)
    assert pid != os.getpid() and hostile_pool.call(os.getpid, timeout_s=60) == pid  # kept warm
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        hostile_pool.call(divmod, 1, 0, timeout_s=60)
    assert hostile_pool.call(os.getpid, timeout_s=60) == pid  # an exception in a job is not a crash


def test_pdf_corpus_under_isolation_matches_in_process_and_is_never_written(corpus):
    root = corpus / "pdfs"
    rows = [l.split("\t") for l in (root / "manifest.tsv").read_text("utf-8").splitlines()[1:] if l.strip()]
    pdfs = [root / r[0] for r in rows if r[0].endswith(".pdf")]
    assert len(pdfs) >= 120 and any(r[1] == "pathological" for r in rows)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    stat_before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in before}
    pool = ExtractorPool(2)
    text_layer = ExtractOptions(ocr=False)  # OCR under isolation: tests/core/test_ocr.py (seconds per page)
    try:
        for p in pdfs:
            isolated, local = pool.extract(p, text_layer), extract(p, text_layer)
            assert (isolated.ok, isolated.reason, isolated.page_count) == (local.ok, local.reason, local.page_count), p
            assert isolated.pages == local.pages, p
        assert pool.restarts == 0
    finally:
        pool.close()
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before} == before
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in before} == stat_before
    assert sorted(p for p in root.rglob("*") if p.is_file()) == sorted(before), "files appeared or vanished"


# -- permissions ----------------------------------------------------------------------------------------------
def _drop_file_capabilities() -> None:  # runs in the child between fork and exec
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: what lets root ignore file permissions
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone for the exec'd program too
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _unprivileged_preexec(probe: Path):
    """A preexec_fn under which file permissions apply, or None when the tests already run unprivileged."""
    if os.geteuid() != 0:
        return None
    proc = subprocess.run(["cat", str(probe)], preexec_fn=_drop_file_capabilities, capture_output=True)
    assert proc.returncode != 0, "dropping CAP_DAC_OVERRIDE did not make a mode-000 file unreadable"
    return _drop_file_capabilities


def test_permission_denied_files_and_folders_are_recorded(tmp_path):
    folder = tmp_path / "perm"
    write(folder / "open.txt", "Readable notes about orchards and apple trees.")
    locked = write(folder / "locked.txt", "Secret notes nobody may read.")
    locked_pdf = make_pdf(folder / "locked.pdf", ["A locked report."])
    inner = write(folder / "closed" / "inner.txt", "Inside a folder nobody may open.")
    for p in (locked, locked_pdf):
        p.chmod(0)
    inner.parent.chmod(0)
    try:
        preexec = _unprivileged_preexec(locked)
        env = {**os.environ, "DESKTOP_SEARCH_MODEL_DIR": str(tmp_path / "no-model")}
        proc = subprocess.run(
            [sys.executable, "-m", "desktop_search", "index", str(folder), "--index-dir", str(tmp_path / "idx"),
             "--keyword-only", "--json"],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=180, preexec_fn=preexec,
        )
    finally:
        inner.parent.chmod(0o755)
        for p in (locked, locked_pdf):
            p.chmod(0o644)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    failures = {Path(p).name: (reason, detail) for p, reason, detail in report["failures"]}
    assert failures["locked.txt"][0] == "permission_denied"
    assert failures["locked.pdf"][0] == "permission_denied"
    assert failures["closed"][0] == "permission_denied" and "folder" in failures["closed"][1]
    assert report["indexed"] == 1
    recs = _records(Store(tmp_path / "idx"))
    assert recs["open.txt"] == ("indexed", None) and recs["closed"] == ("failed", "permission_denied")
    assert "inner.txt" not in recs


# -- links, sizes, names --------------------------------------------------------------------------------------
def test_symlink_loops_dangling_links_and_outside_targets(tmp_path):
    folder = tmp_path / "links"
    write(folder / "real.txt", "Genuine text about glaciers.")
    outside = write(tmp_path / "outside" / "target.txt", "Text reached through a link about volcanoes.")
    (folder / "sub").mkdir()
    os.symlink(folder, folder / "sub" / "loop")  # folder link back up: must not be followed forever
    os.symlink(folder / "b.txt", folder / "a.txt")
    os.symlink(folder / "a.txt", folder / "b.txt")  # a.txt <-> b.txt
    os.symlink(tmp_path / "nowhere.txt", folder / "dangling.txt")
    os.symlink(outside, folder / "via-link.txt")
    settings = _settings(tmp_path)
    store = Store(settings.index_dir)
    rep = Indexer(store, settings, None).index([folder])
    recs = {Path(p).name: r for p, r in store.file_records().items()}
    assert recs["real.txt"].status == recs["via-link.txt"].status == "indexed"
    assert recs["a.txt"].reason == recs["b.txt"].reason == "unsupported"
    assert "loop" in recs["a.txt"].detail
    assert recs["dangling.txt"].reason == "unsupported" and "broken symbolic link" in recs["dangling.txt"].detail
    assert not any("/loop/" in p for p in store.file_records()), "a folder link loop was followed"
    assert rep.failed == 3
    assert [Path(h.path).name for h in Searcher(store, None).search("volcanoes", mode="keyword").hits] == ["via-link.txt"]
    assert outside.read_text() == "Text reached through a link about volcanoes."


def test_empty_huge_and_sparse_files(tmp_path):
    folder = tmp_path / "sizes"
    (folder).mkdir()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "empty.pdf").write_bytes(b"")
    write(folder / "normal.txt", "A normal sized file about rivers.")
    with open(folder / "huge.log", "wb") as fh:  # 200 MB of real text, written in about a second
        line = b"2024-01-01 12:00:00 INFO request served in 12 ms from the cache layer\n" * 16_384
        for _ in range(200 * 1024**2 // len(line)):
            fh.write(line)
    with open(folder / "sparse.txt", "wb") as fh:  # 200 MB of NUL bytes that take no disk space
        fh.truncate(200 * 1024**2)
    settings = _settings(tmp_path, max_file_bytes=64 * 1024**2)
    store = Store(settings.index_dir)
    started = time.monotonic()
    rep = Indexer(store, settings, None).index([folder])
    recs = {Path(p).name: r for p, r in store.file_records().items()}
    assert recs["normal.txt"].status == "indexed"
    assert recs["empty.txt"].reason == "no_text" and recs["empty.pdf"].reason == "no_text"
    assert recs["huge.log"].reason == "too_large" and "larger than the limit of 64.0 MB" in recs["huge.log"].detail
    assert recs["sparse.txt"].reason == "too_large"
    # Under a limit that lets it through, the 200 MB sparse file is read, recognised as binary and refused.
    settings = settings.with_(max_file_bytes=256 * 1024**2, max_text_bytes=256 * 1024**2,
                              index_dir=tmp_path / "index2")
    (folder / "huge.log").unlink()
    Indexer(Store(settings.index_dir), settings, None).index([folder])
    recs = {Path(p).name: r for p, r in Store(settings.index_dir).file_records().items()}
    assert recs["sparse.txt"].reason == "unsupported" and "binary" in recs["sparse.txt"].detail
    assert rep.failed == 4 and time.monotonic() - started < 90


NAMES = {
    "日本語の文書.txt": "富士山の登山記録",
    "عربي.txt": "مكتبة الإسكندرية",
    "Ελληνικά.md": "Ακρόπολη Αθηνών",
    "emoji 🚀 notes.txt": "rocketlaunch checklist",
    "क्षेत्र.txt": "हिमालय पर्वत",
    "Ünïcödé — spaces & 'quotes'.txt": "quotedname marker",
}
RAW_NAMES = {b"latin1-caf\xe9.txt": "espresso macchiato", b"\xff\xfe-raw.txt": "undecodable bytesname"}


def test_file_names_in_any_script_and_invalid_encodings(tmp_path):
    folder = tmp_path / "names"
    for name, text in NAMES.items():
        write(folder / name, text)
    for raw, text in RAW_NAMES.items():
        with open(os.path.join(os.fsencode(folder), raw), "wb") as fh:
            fh.write(text.encode())
    settings = _settings(tmp_path)
    store = Store(settings.index_dir)
    rep = Indexer(store, settings, None).index([folder])
    assert rep.failed == 0 and rep.indexed == len(NAMES) + len(RAW_NAMES)
    searcher = Searcher(store, None)
    for name, text in NAMES.items():
        hits = searcher.search(text.split()[0], mode="keyword").hits
        assert hits and Path(hits[0].path).name == name, (name, [h.path for h in hits])
    for raw, text in RAW_NAMES.items():
        hits = searcher.search(text.split()[1], mode="keyword").hits
        on_disk = os.fsdecode(os.path.join(os.fsencode(folder), raw))
        assert hits and hits[0].path == path_key(on_disk) and "\\x" in hits[0].path
        assert fs_path(hits[0].path) == on_disk and Path(fs_path(hits[0].path)).read_text() == text
    rep = Indexer(store, settings, None).index([folder])
    assert rep.unchanged == len(NAMES) + len(RAW_NAMES) and rep.indexed == rep.removed == 0
    os.unlink(os.path.join(os.fsencode(folder), b"\xff\xfe-raw.txt"))
    rep = Indexer(store, settings, None).index([folder])
    assert rep.removed == 1 and not searcher.search("bytesname", mode="keyword").hits


def test_files_that_vanish_or_change_while_being_read(tmp_path, monkeypatch):
    folder = tmp_path / "moving"
    write(folder / "steady.txt", "Steady text about meadows.")
    vanish = write(folder / "vanish.txt", "This file will be deleted while it is read.")
    change = write(folder / "change.txt", "First version about deserts.")
    real_read = extract_module._read_bytes

    def racing_read(path, limit):
        if path.name == "vanish.txt":
            path.unlink()
            raise FileNotFoundError(2, "No such file or directory", str(path))
        data = real_read(path, limit)
        if path.name == "change.txt" and b"First" in data:
            path.write_text("Second version about oceans, longer than the first one.")
            os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000_000))
        return data

    monkeypatch.setattr(extract_module, "_read_bytes", racing_read)
    settings = _settings(tmp_path)
    store = Store(settings.index_dir)
    indexer = Indexer(store, settings, None)
    rep = indexer.index([folder])
    recs = {Path(p).name: r for p, r in store.file_records().items()}
    assert recs["vanish.txt"].reason == "corrupt" and "disappeared" in recs["vanish.txt"].detail
    assert recs["steady.txt"].status == recs["change.txt"].status == "indexed"
    assert not vanish.exists() and "Second version" in change.read_text()
    # The next pass sees the newer version and the deletion; the result is a clean index of what is there.
    rep = indexer.index([folder])
    assert rep.removed == 1 and rep.indexed == 1
    assert Searcher(store, None).search("oceans", mode="keyword").hits
    clean = _settings(tmp_path / "clean")
    Indexer(Store(clean.index_dir), clean, None).index([folder])
    assert_same_index(snapshot(settings.index_dir), snapshot(clean.index_dir))
