"""The index folder under hostile conditions: a second writer with a stale view, a folder that is not ours (a
user's files, another program's LanceDB), links planted where the app writes, damaged data pages and deleted
search indexes. Nothing that is not provably the app's own is written or dropped; damage is found and repaired."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from desktop_search.config import load_settings
from desktop_search.core.doctor import check, repair
from desktop_search.core.indexer import Indexer
from desktop_search.core.search import Searcher
from desktop_search.core.store import META_FILE, IndexNotOurs, Store, write_meta
from tests.conftest import REPO, write
from tests.core.index_snapshot import assert_same_index, snapshot


def _settings(index_dir: Path, **kw):
    return load_settings(index_dir=index_dir, model_dir=index_dir.parent / "no-model", extract_workers=1, **kw)


def _docs(folder: Path, n: int = 60) -> Path:
    for i in range(n):
        write(folder / f"doc{i:02}.txt", f"Document {i} about harbours, tides and ferry number {i}.")
    return folder


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desktop_search", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


def test_a_second_writer_with_a_stale_view_adds_nothing_twice(tmp_path):
    docs = _docs(tmp_path / "docs")
    idx = tmp_path / "idx"
    first, second = Store(idx), Store(idx)  # both opened before either wrote (two processes started together)
    Indexer(first, _settings(idx)).index([docs])
    rep = Indexer(second, _settings(idx)).index([docs])  # gets the lock after the first one finished
    assert rep.unchanged == 60 and rep.indexed == 0
    rows = Store(idx).files.count_rows()
    assert rows == 60, f"{rows} files rows for 60 files"
    assert check(idx).ok


def _another_apps_lancedb(folder: Path) -> None:
    import lancedb

    db = lancedb.connect(str(folder / "lance"))
    db.create_table("files", pa.table({"path": ["a"], "owner": ["someone"], "size": [1]}))
    db.create_table("vectors", pa.table({"id": list(range(100)), "embedding": [[0.1, 0.2]] * 100}))


@pytest.mark.parametrize("kind", ["user-folder", "other-lancedb"])
def test_a_folder_that_is_not_an_index_is_never_written_or_repaired(tmp_path, kind):
    target = tmp_path / "target"
    target.mkdir()
    if kind == "user-folder":
        (target / "thesis.txt").write_text("my thesis")
        (target / (META_FILE + ".tmp")).write_text("a user's file that happens to have this name")
    else:
        _another_apps_lancedb(target)
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    docs = _docs(tmp_path / "docs", 3)

    with pytest.raises(IndexNotOurs, match="not a desktop-search index|not empty"):
        Store(target)
    for args in (("index", docs, "--keyword-only"), ("doctor",), ("doctor", "--repair"), ("status",),
                 ("search", "tides", "--mode", "keyword")):
        res = _cli(*args, "--index-dir", target)
        assert res.returncode == 1 and "Traceback" not in res.stderr, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    after = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before, "something was written into a folder that is not an index"
    if kind == "other-lancedb":
        import lancedb

        assert lancedb.connect(str(target / "lance")).open_table("vectors").count_rows() == 100


def test_an_index_without_its_description_file_is_still_recognised(tmp_path):
    docs = _docs(tmp_path / "docs", 5)
    idx = tmp_path / "idx"
    Indexer(Store(idx), _settings(idx)).index([docs])
    (idx / META_FILE).unlink()
    report = repair(idx)
    assert report.ok and any(p.code == "meta" and p.fixed for p in report.problems)
    assert Store(idx, create=False).count_chunks() == 5


def test_meta_tmp_link_is_replaced_not_written_through(tmp_path):
    idx = tmp_path / "idx"
    Store(idx)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, idx / (META_FILE + ".tmp"))
    write_meta(idx, {"schema_version": 1})
    assert victim.read_text() == "precious"
    assert not os.path.islink(idx / META_FILE) and Store(idx, create=False).meta == {"schema_version": 1}


def _garble_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    n = len(data)
    data[n // 4 : n // 2] = b"\xff" * (n // 2 - n // 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["chunks-data", "fts-index-deleted", "files-data"])
def test_doctor_finds_damage_that_breaks_search_and_repair_makes_it_whole(tmp_path, damage):
    docs = _docs(tmp_path / "docs", 20)
    idx = tmp_path / "idx"
    clean = tmp_path / "clean"
    Indexer(Store(clean), _settings(clean)).index([docs])
    Indexer(Store(idx), _settings(idx)).index([docs])
    if damage == "chunks-data":
        (data,) = (idx / "lance" / "chunks.lance" / "data").glob("*.lance")
        _garble_middle(data)
    elif damage == "files-data":
        (data,) = (idx / "lance" / "files.lance" / "data").glob("*.lance")
        _garble_middle(data)
    else:
        import shutil

        shutil.rmtree(idx / "lance" / "chunks.lance" / "_indices")
    report = check(idx)
    assert not report.ok, "doctor said ok about a damaged index"
    assert {p.code for p in report.errors} & {"table_unreadable", "broken_indexes"}
    repaired = repair(idx)
    assert repaired.ok, [(p.code, p.message) for p in repaired.problems]
    # What was lost is read again from the documents: the next run gives exactly the clean index.
    Indexer(Store(idx), _settings(idx)).index([docs])
    assert check(idx).ok
    assert_same_index(snapshot(idx), snapshot(clean))
    hits = Searcher(Store(idx, create=False), None).search("ferry", mode="keyword", k=50).hits
    assert len(hits) == 20


_KILL_DURING_REWRITE = r"""
import os, signal, sys
from pathlib import Path
from desktop_search.config import load_settings
from desktop_search.core.indexer import Indexer
from desktop_search.core.store import Store
from desktop_search.core.store import tables

point, docs, idx = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
real_replace, real_upsert = tables.Tables.replace_chunks, tables.Tables.upsert_files

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def replace_chunks(self, paths, rows):
    if point == "after-delete":
        real_replace(self, paths, [])  # the old chunks are gone, the new ones not written yet
        die()
    real_replace(self, paths, rows)
    if point == "after-add":
        die()

def upsert_files(self, records):
    if point == "after-intent" and any(r.status == "pending" for r in records):
        real_upsert(self, records)
        die()
    real_upsert(self, records)

tables.Tables.replace_chunks = replace_chunks
tables.Tables.upsert_files = upsert_files
settings = load_settings(index_dir=idx, model_dir=idx.parent / "no-model", extract_workers=1)
Indexer(Store(idx), settings).index([docs])
"""


@pytest.mark.parametrize("point", ["after-intent", "after-delete", "after-add"])
def test_a_kill_while_modified_files_are_rewritten_loses_nothing(tmp_path, point):
    docs = _docs(tmp_path / "docs", 40)
    idx = tmp_path / "idx"
    Indexer(Store(idx), _settings(idx)).index([docs])
    for i in range(0, 40, 3):  # modified: new text, new size
        write(docs / f"doc{i:02}.txt", f"Document {i} rewritten about lighthouses and storms, version two.")
    res = subprocess.run([sys.executable, "-c", _KILL_DURING_REWRITE, point, str(docs), str(idx)], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert res.returncode == -9, res.stderr
    # Right after the kill: no file is marked indexed without its chunks (doctor agrees), the rest is "pending".
    report = check(idx)
    assert report.ok, [(p.code, p.examples) for p in report.errors]
    snap = snapshot(idx)
    chunked = {c[0] for c in snap["chunks"]}
    assert all(row[4] != "indexed" or path in chunked for path, row in snap["files"].items())
    # The next run makes it exactly a clean index of the modified tree.
    Indexer(Store(idx), _settings(idx)).index([docs])
    clean = tmp_path / "clean"
    Indexer(Store(clean), _settings(clean)).index([docs])
    assert_same_index(snapshot(idx), snapshot(clean))
    hits = Searcher(Store(idx, create=False), None).search("lighthouses", mode="keyword", k=50).hits
    assert len(hits) == 14


def test_doctor_finds_an_indexed_file_whose_chunks_are_missing(tmp_path):
    docs = _docs(tmp_path / "docs", 5)
    idx = tmp_path / "idx"
    store = Store(idx)
    Indexer(store, _settings(idx)).index([docs])
    victim = str(docs / "doc03.txt")
    store.replace_chunks([victim], [])
    report = check(idx)
    assert [p.examples for p in report.errors if p.code == "missing_chunks"] == [[victim]]
    assert repair(idx).ok
    Indexer(Store(idx), _settings(idx)).index([docs])
    assert len(Searcher(Store(idx, create=False), None).search("ferry", mode="keyword", k=50).hits) == 5


def _unique_word(i: int) -> str:  # a word no other file has, nor one a typo away
    import hashlib

    return "q" + "".join(chr(97 + b % 26) for b in hashlib.sha1(str(i).encode()).digest()[:9])


_KILL_AFTER_GROUPS = r"""
import os, signal, sys
from pathlib import Path
from desktop_search.config import load_settings
from desktop_search.core import indexer

groups, docs, idx = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
real_commit, done = indexer.Indexer._commit, []

def commit(self, *args, **kw):
    real_commit(self, *args, **kw)
    done.append(1)
    if len(done) == groups:
        os.kill(os.getpid(), signal.SIGKILL)  # a hard kill between two groups of a first run

indexer.Indexer._commit = commit
settings = load_settings(index_dir=idx, model_dir=idx.parent / "no-model", extract_workers=1)
indexer.Indexer(indexer.Store(idx), settings).index([docs])
"""


def test_a_first_run_killed_midway_leaves_its_committed_files_in_the_keyword_index(tmp_path):
    """Before: the BM25 index was built only by the run's final optimize, so after a kill (or while a first run
    went on) committed files were outside it: doctor said the keyword index was missing, and every keyword query
    scanned the whole table."""
    folder = tmp_path / "docs"
    for i in range(150):
        write(folder / f"doc{i:03}.txt", f"Document {i} about harbours. Unique word {_unique_word(i)}.")
    idx = tmp_path / "idx"
    res = subprocess.run([sys.executable, "-c", _KILL_AFTER_GROUPS, "3", str(folder), str(idx)], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert res.returncode == -9, res.stderr
    store = Store(idx, create=False)
    indexed = [p for p, r in store.file_records().items() if r.status == "indexed"]
    assert len(indexed) == 96  # three groups of 32 committed, then the kill
    coverage = store.fulltext_coverage()
    assert coverage is not None, "no full-text index after three committed groups"
    assert coverage.indexed >= 32 and coverage.indexed + coverage.unindexed == store.count_chunks() == 96
    report = check(idx)
    assert "missing_indexes" not in {p.code for p in report.problems}, [(p.code, p.examples) for p in report.problems]
    searcher = Searcher(store, None)
    for path in indexed:
        hits = searcher.search(_unique_word(int(Path(path).stem[3:])), mode="keyword").hits
        assert [h.path for h in hits] == [path]


def test_the_keyword_index_is_extended_as_groups_commit(tmp_path, monkeypatch):
    """Rows committed after the index was built are scanned by every keyword query until they are added to it:
    past a bound (50,000 chunks; 40 here) a commit adds them, so a long first run never leaves an ever-growing
    unindexed tail."""
    from desktop_search.core.store import maintenance

    monkeypatch.setattr(maintenance, "FTS_MAX_UNINDEXED", 40)
    folder = tmp_path / "docs"
    for i in range(200):
        write(folder / f"doc{i:03}.txt", f"Document {i} about harbours. Unique word {_unique_word(i)}.")
    idx = tmp_path / "idx"
    seen: dict[int, object] = {}

    def progress(p) -> None:
        if p.phase != "indexing" or not p.files_done or p.files_done in seen:
            return
        # From another reader, as the window or a `search` process would, right after a group committed.
        reader = Store(idx, create=False)
        seen[p.files_done] = (reader.fulltext_coverage(), reader.count_chunks())

    Indexer(Store(idx), _settings(idx)).index([folder], progress=progress)
    assert len(seen) >= 5, seen
    for files_done, (coverage, chunks) in seen.items():
        assert coverage is not None, f"no full-text index after {files_done} files committed"
        assert coverage.indexed + coverage.unindexed == chunks
        assert coverage.unindexed <= 40, (files_done, coverage)
    assert max(c.indexed for c, _n in seen.values()) > 32  # extended, not only built once after the first group



def test_disk_full_then_space_back_doctor_repairs_and_index_finishes(tmp_path):
    from tests.core.test_crash_safety import _mount_tmpfs, make_tree

    tree = make_tree(tmp_path / "tree", 300, seed=5, words=(200, 400))
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "1m"):
        pytest.skip("needs root to mount a 1 MB tmpfs (the injected variant is in test_crash_safety)")
    idx = disk / "idx"
    try:
        res = _cli("index", tree, "--keyword-only", "--index-dir", idx)
        assert res.returncode == 1 and "disk is full" in res.stderr and "Traceback" not in res.stderr
        committed = {p for p, r in Store(idx, create=False).file_records().items() if r.status == "indexed"}
        assert committed
        # While the disk is still full: doctor answers (one line or a report), never a traceback.
        for args in (("doctor",), ("doctor", "--repair"), ("status",), ("search", "river", "--mode", "keyword")):
            res = _cli(*args, "--index-dir", idx)
            assert "Traceback" not in res.stderr, (args, res.stderr)
            assert res.returncode in (0, 1), (args, res.returncode, res.stderr)
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        res = _cli("doctor", "--repair", "--index-dir", idx)
        assert res.returncode == 0, res.stdout + res.stderr
        res = _cli("index", tree, "--keyword-only", "--index-dir", idx)
        assert res.returncode == 0, res.stderr
        final = snapshot(idx)
        assert committed <= {p for p, row in final["files"].items() if row[4] == "indexed"}
        assert _cli("doctor", "--index-dir", idx).returncode == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    clean = tmp_path / "clean"
    Indexer(Store(clean), _settings(clean)).index([tree])
    assert_same_index(final, snapshot(clean))
