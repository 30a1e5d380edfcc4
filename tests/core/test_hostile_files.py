"""Hostile but legal files, round two: pipes, devices and sockets named like documents, a flood of empty files,
a text file that would make hundreds of thousands of chunks, UTF-8 with a stray bad byte, and text in NFD. None
may hang a run, cost more than a stat, or hide text from search; each failure is recorded with its reason."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from desktop_search.config import load_settings
from desktop_search.core.extract import extract
from desktop_search.core.indexer import Indexer
from desktop_search.core.search import Searcher
from desktop_search.core.store import Store
from tests.conftest import REPO, write


def _settings(tmp_path, **kw):
    return load_settings(index_dir=tmp_path / "index", model_dir=tmp_path / "no-model", extract_workers=1, **kw)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desktop_search", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def _records(index_dir: Path) -> dict:
    return {Path(p).name: r for p, r in Store(index_dir, create=False).file_records().items()}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
def test_fifos_devices_and_sockets_named_like_documents_are_skipped_unread(tmp_path):
    folder = tmp_path / "special"
    write(folder / "normal.txt", "An ordinary note about lighthouses.")
    os.mkfifo(folder / "notes.txt")
    os.symlink("/dev/zero", folder / "zero.txt")
    os.symlink("/dev/urandom", folder / "random.md")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "socket.txt"))
    index_dir = tmp_path / "index"
    try:
        # Before: the FIFO blocked the open and /dev/zero was hashed forever; nothing was committed.
        res = _cli("index", str(folder), "--keyword-only", "--index-dir", str(index_dir), timeout=90)
        assert res.returncode == 0, res.stderr
        recs = _records(index_dir)
        assert recs["normal.txt"].status == "indexed"
        for name in ("notes.txt", "zero.txt", "random.md", "socket.txt"):
            assert (recs[name].status, recs[name].reason) == ("failed", "unsupported"), (name, recs[name])
            assert "not a regular file" in recs[name].detail
        # The watcher's path (named files) takes the same route.
        res = _cli("index", str(folder / "notes.txt"), str(folder / "zero.txt"), "--keyword-only",
                   "--index-dir", str(index_dir), timeout=60)
        assert res.returncode == 0, res.stderr
        assert _records(index_dir)["notes.txt"].reason == _records(index_dir)["zero.txt"].reason == "unsupported"
        st = Store(index_dir, create=False)
        rep = Indexer(st, _settings(tmp_path)).update_paths([folder / "notes.txt", folder / "zero.txt"])
        assert rep.failed == 0 and rep.unchanged == 2
    finally:
        sock.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
def test_a_fifo_swapped_in_after_the_stat_is_neither_waited_on_nor_read(tmp_path):
    """The check at open time (O_NONBLOCK + fstat), for a file replaced by a pipe after the type check."""
    import threading

    from desktop_search.core.extract import base as extract_module
    from desktop_search.core.indexer import NotRegularFile, sha256_file

    path = tmp_path / "late.txt"
    os.mkfifo(path)
    outcome: dict[str, BaseException] = {}

    def read() -> None:
        for name, fn in (("extract", lambda: extract_module._read_bytes(path, 100)), ("hash", lambda: sha256_file(path))):
            try:
                fn()
            except OSError as e:
                outcome[name] = e

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "opening a FIFO blocked"
    assert "not a regular file" in str(outcome["extract"]) and isinstance(outcome["hash"], NotRegularFile)


def test_sigterm_and_ctrl_c_stop_an_index_run_keeping_what_was_committed(tmp_path):
    folder = tmp_path / "many"
    for i in range(400):
        write(folder / f"doc{i:03}.txt", f"Document number {i} about harbours and tides.")
    index_dir = tmp_path / "index"
    # Each file takes 50 ms to read: the run lasts 20 s unless it is stopped.
    script = (
        "import sys, time\n"
        "from desktop_search.core.extract import base as ex\n"
        "real = ex._read_bytes\n"
        "def slow(p, limit):\n"
        "    time.sleep(0.05)\n"
        "    return real(p, limit)\n"
        "ex._read_bytes = slow\n"
        "from desktop_search.cli import main\n"
        f"sys.exit(main(['index', {str(folder)!r}, '--keyword-only', '--index-dir', {str(index_dir)!r}]))\n"
    )
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + 60
        while not (index_dir / "lance" / "files.lance").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3.0)
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"{sig.name} did not stop the run")
        assert proc.returncode == code, err
        assert "interrupted" in err and "Traceback" not in err
        from desktop_search.core.lock import IndexLock

        with IndexLock(index_dir):  # released
            pass
        recs = Store(index_dir, create=False).file_records()
        assert 0 < sum(r.status == "indexed" for r in recs.values()) < 400
    res = _cli("doctor", "--index-dir", str(index_dir))
    assert res.returncode == 0, res.stdout + res.stderr


def test_empty_files_are_recorded_from_their_stat_in_one_write(tmp_path):
    folder = tmp_path / "empties"
    folder.mkdir()
    for i in range(3000):
        (folder / f"empty{i:04}.txt").write_bytes(b"")
    write(folder / "real.txt", "The only text here is about glaciers.")
    settings = _settings(tmp_path)
    store = Store(settings.index_dir)
    before = store.files.version
    read: list[str] = []
    from desktop_search.core.extract import base as extract_module

    real = extract_module._read_bytes
    extract_module._read_bytes = lambda p, limit: (read.append(str(p)), real(p, limit))[1]
    try:
        rep = Indexer(store, settings).index([folder])
    finally:
        extract_module._read_bytes = real
    recs = store.file_records()
    assert rep.failed == 3000 and rep.indexed == 1
    assert {(r.reason, r.detail) for p, r in recs.items() if Path(p).name.startswith("empty")} == {("no_text", "empty file")}
    assert read == [str(folder / "real.txt")], "empty files were opened"
    # Before: one files-table write per group of 32 (94 versions for these 3000 files).
    assert store.files.version - before <= 6
    rep = Indexer(store, settings).index([folder])
    assert rep.unchanged == 3001 and rep.failed == 0
    # A file that became empty loses its chunks.
    (folder / "real.txt").write_bytes(b"")
    Indexer(store, settings).index([folder])
    assert store.count_chunks() == 0 and not Searcher(store, None).search("glaciers", mode="keyword").hits


def test_a_text_file_with_too_many_chunks_fails_too_large_without_being_chunked_whole(tmp_path):
    folder = tmp_path / "big"
    write(folder / "small.txt", "A small file about orchards.")
    # One line with no boundary to cut at: the shape that made 354,129 chunks out of 50 MB.
    write(folder / "oneline.txt", "orchard" + "x7q " * 40_000)
    settings = _settings(tmp_path, max_chunks_per_file=20)
    store = Store(settings.index_dir)
    rep = Indexer(store, settings).index([folder])
    recs = _records(settings.index_dir)
    assert recs["small.txt"].status == "indexed"
    assert recs["oneline.txt"].reason == "too_large"
    assert "more than 20 passages" in recs["oneline.txt"].detail
    assert rep.chunks_written == 1
    hits = Searcher(store, None).search("orchards", mode="keyword").hits
    assert [Path(h.path).name for h in hits] == ["small.txt"]


def test_text_files_over_the_text_size_limit_fail_too_large_before_being_read(tmp_path):
    folder = tmp_path / "big"
    write(folder / "large.log", "line about turbines\n" * 60_000)  # 1.2 MB
    settings = _settings(tmp_path, max_text_bytes=1024**2)
    Indexer(Store(settings.index_dir), settings).index([folder])
    rec = _records(settings.index_dir)["large.log"]
    assert rec.reason == "too_large" and "limit of 1.0 MB for text files" in rec.detail


def test_defaults_bound_a_text_file(tmp_path):
    settings = _settings(tmp_path)
    assert settings.max_text_bytes == 64 * 1024**2 and settings.max_chunks_per_file == 20_000


def test_utf8_with_a_few_bad_bytes_is_read_as_utf8(tmp_path):
    body = ("Le café et la crème brûlée; a naïve résumé. " * 20_000).encode("utf-8")
    path = tmp_path / "mostly-utf8.txt"
    path.write_bytes(body[:300_000] + b"\xff" + body[300_000:])
    ex = extract(path)
    assert ex.ok
    text = ex.pages[0].text
    assert "café" in text and "naïve" in text and "\ufffd" in text
    assert any("replaced" in w for w in ex.warnings)
    # A Latin-1 file with a single accented letter is still not taken for UTF-8.
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Un café noir, s'il vous plaît. ".encode("latin-1") * 50)
    ex = extract(latin)
    assert ex.ok and "café" in ex.pages[0].text and "\ufffd" not in ex.pages[0].text


def test_nfd_text_is_found_by_an_nfc_query_and_the_other_way_round(tmp_path):
    folder = tmp_path / "nf"
    write(folder / "decomposed.txt", unicodedata.normalize("NFD", "Notes from the café in Zürich"))
    write(folder / "composed.txt", unicodedata.normalize("NFC", "Anmerkungen zur Übersetzung"))
    settings = _settings(tmp_path)
    store = Store(settings.index_dir)
    Indexer(store, settings).index([folder])
    searcher = Searcher(store, None)
    for query, name in (("café", "decomposed.txt"), ("Zürich", "decomposed.txt"), ("Übersetzung", "composed.txt")):
        for form in ("NFC", "NFD"):
            hits = searcher.search(unicodedata.normalize(form, query), mode="keyword").hits
            assert [Path(h.path).name for h in hits] == [name], (query, form)
            assert "**" in hits[0].snippet


def test_a_planted_lock_file_link_is_refused_and_its_target_never_written(tmp_path):
    from desktop_search.core.lock import IndexLock, LockFileUnsafe

    index_dir = tmp_path / "index"
    index_dir.mkdir()
    victim = tmp_path / "precious.txt"
    victim.write_text("a user's file")
    os.symlink(victim, index_dir / "writer.lock")
    with pytest.raises(LockFileUnsafe, match="symbolic link"):
        with IndexLock(index_dir):
            pass
    assert victim.read_text() == "a user's file"
    # A hard link would be truncated through the other name just the same.
    os.unlink(index_dir / "writer.lock")
    os.link(victim, index_dir / "writer.lock")
    with pytest.raises(LockFileUnsafe, match="not a plain file of its own"):
        IndexLock(index_dir).acquire()
    assert victim.read_text() == "a user's file"
    # From the command line: one line naming the file, no traceback, the target untouched.
    os.unlink(index_dir / "writer.lock")
    os.symlink(victim, index_dir / "writer.lock")
    folder = tmp_path / "docs"
    write(folder / "a.txt", "text about kites")
    res = _cli("index", str(folder), "--keyword-only", "--index-dir", str(index_dir))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and "writer.lock is a symbolic link" in res.stderr
    assert victim.read_text() == "a user's file"


@pytest.mark.skipif(os.sep != "/", reason="POSIX file names are bytes")
def test_a_raw_byte_name_and_its_escaped_spelling_are_two_files(tmp_path):
    from desktop_search.core.store import fs_path, path_key

    folder = tmp_path / "names"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.txt")  # Latin-1 name: not UTF-8
    with open(raw, "wb") as fh:
        fh.write(b"espresso with the raw byte name")
    write(folder / "caf\\xe9.txt", "cappuccino with the literal backslash name")
    (folder / "sub\\dir").mkdir()
    with open(os.path.join(os.fsencode(folder), b"sub\\dir", b"r\xf6ot.txt"), "wb") as fh:
        fh.write(b"ristretto inside a folder with a backslash")
    settings = _settings(tmp_path)
    store = Store(settings.index_dir)
    # Before: both names were stored as caf\xe9.txt and every run died on "Ambiguous merge inserts".
    rep = Indexer(store, settings).index([folder])
    assert rep.indexed == 3 and rep.failed == 0, rep
    keys = set(store.file_records())
    assert len(keys) == 3
    searcher = Searcher(store, None)
    for word, on_disk in (("espresso", os.fsdecode(raw)), ("cappuccino", str(folder / "caf\\xe9.txt")),
                          ("ristretto", os.fsdecode(os.path.join(os.fsencode(folder), b"sub\\dir", b"r\xf6ot.txt")))):
        (hit,) = searcher.search(word, mode="keyword").hits
        assert hit.path == path_key(on_disk) and fs_path(hit.path) == on_disk
        assert word in Path(fs_path(hit.path)).read_text(errors="replace")
    rep = Indexer(store, settings).index([folder])
    assert rep.unchanged == 3 and rep.indexed == rep.removed == 0
    os.unlink(raw)
    rep = Indexer(store, settings).index([folder])
    assert rep.removed == 1 and [Path(fs_path(h.path)).name for h in searcher.search("cappuccino", mode="keyword").hits] == ["caf\\xe9.txt"]
