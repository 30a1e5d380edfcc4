"""Live folders: changes reach search within seconds, coalesced and debounced; moves keep their chunks; temporary
files are ignored; polling takes over where native watching fails; restarts reconcile without rereading."""

from __future__ import annotations

import errno
import os
import random
import shutil
import threading
from pathlib import Path

import pytest

from desktop_search.config import load_settings
from desktop_search.core import indexer as indexer_module
from desktop_search.core import watcher as watcher_module
from desktop_search.core.indexer import Indexer
from desktop_search.core.search import Searcher
from desktop_search.core.store import Store
from desktop_search.core.watcher import ChangeBatch, FolderWatcher
from tests.conftest import CountingEncoder, REPO, write
from tests.core.index_snapshot import assert_same_index, snapshot, wait_until


class Live:
    """An index kept up to date by a FolderWatcher, counting what it reads."""

    def __init__(self, tmp_path: Path, folder: Path, encoder=None, model_dir: Path | None = None, **watch) -> None:
        self.folder = folder
        self.settings = load_settings(index_dir=tmp_path / "index", model_dir=model_dir or tmp_path / "no-model",
                                      extract_workers=1)
        self.store = Store(self.settings.index_dir)
        self.indexer = Indexer(self.store, self.settings, encoder)
        self.prepared: list[str] = []
        self.batches: list[ChangeBatch] = []
        self.errors: list[BaseException] = []
        real_prepare = self.indexer._prepare

        def counting_prepare(path, st):
            self.prepared.append(path.name)
            return real_prepare(path, st)

        self.indexer._prepare = counting_prepare
        watch.setdefault("debounce_s", 0.3)
        watch.setdefault("max_delay_s", 2.0)
        self.watcher = FolderWatcher([folder], self._apply, ignore_dirs=[self.settings.index_dir],
                                     on_error=self.errors.append, **watch)

    def _apply(self, batch: ChangeBatch) -> None:
        self.batches.append(batch)
        self.indexer.update_paths([Path(p) for p in batch.paths])

    def start(self) -> "Live":
        self.indexer.index([self.folder])
        self.watcher.start()
        return self

    def names(self, query: str) -> list[str]:
        return sorted(Path(h.path).name for h in Searcher(self.store, None).search(query, mode="keyword", k=50).hits)

    def indexed(self) -> set[str]:
        return {os.path.relpath(p, self.folder) for p, r in self.store.file_records().items() if r.status == "indexed"}

    def wait_quiet(self) -> None:
        """Everything seen so far has been handed out and applied."""
        self.watcher.flush()
        wait_until(lambda: self.watcher.idle, 30, what="watcher idle")


@pytest.fixture
def live_factory(tmp_path):
    made: list[Live] = []

    def make(folder: Path, **kw) -> Live:
        live = Live(tmp_path, folder, **kw)
        made.append(live)
        return live

    yield make
    for live in made:
        live.watcher.stop()
        assert not live.errors, live.errors


def test_create_modify_delete_rename_reach_search_within_seconds(tmp_path, live_factory):
    folder = tmp_path / "docs"
    write(folder / "keep.txt", "A note about herons and marshes.")
    write(folder / "old.txt", "An old note about bicycles.")
    live = live_factory(folder).start()
    assert live.watcher.mode == "native" and "watching 1 folder" in live.watcher.status

    write(folder / "sub" / "new.txt", "Fresh words about kangaroos.")
    wait_until(lambda: live.names("kangaroos") == ["new.txt"], 15, what="created file searchable")
    write(folder / "keep.txt", "A note about herons, marshes and now also flamingos.")
    wait_until(lambda: live.names("flamingos") == ["keep.txt"], 15, what="modified file searchable")
    (folder / "old.txt").unlink()
    wait_until(lambda: live.names("bicycles") == [], 15, what="deleted file gone")
    (folder / "sub" / "new.txt").rename(folder / "renamed.txt")
    wait_until(lambda: live.indexed() == {"keep.txt", "renamed.txt"}, 15, what="rename reflected")
    assert live.names("kangaroos") == ["renamed.txt"]
    shutil.rmtree(folder / "sub")
    write(folder / "deep" / "er" / "x.md", "Nested folder created at once: quokkas.")
    wait_until(lambda: live.names("quokkas") == ["x.md"], 15, what="file in a new nested folder")


def test_moves_keep_chunks_without_reading_or_encoding_again(tmp_path, live_factory, tiny_encoder, tiny_model_dir):
    folder = tmp_path / "docs"
    for i in range(6):
        write(folder / "projects" / f"p{i}.txt", f"Project {i} plans the bridge over river number {i}. " * 8)
    write(folder / "single.txt", "A single file about lighthouses that will be renamed.")
    encoder = CountingEncoder(tiny_encoder)
    live = live_factory(folder, encoder=encoder, model_dir=tiny_model_dir).start()
    encoded, prepared = len(encoder.encoded), len(live.prepared)
    assert encoded > 0 and prepared == 7

    (folder / "single.txt").rename(folder / "lighthouse notes.txt")
    (folder / "projects").rename(folder / "archive")  # a folder move: six files at once
    expected = {"lighthouse notes.txt", *(f"archive/p{i}.txt" for i in range(6))}
    wait_until(lambda: live.indexed() == expected, 20, what="moves reflected")
    live.wait_quiet()
    assert len(live.prepared) == prepared, f"moved files were read again: {live.prepared[prepared:]}"
    assert len(encoder.encoded) == encoded, "moved files were encoded again"
    assert live.names("lighthouses") == ["lighthouse notes.txt"]
    store = live.store
    assert not store.chunks_of(str(folder / 'single.txt'))
    assert store.count_vectors() == len(store.all_chunk_hashes())


def test_editor_saves_and_temporary_files(tmp_path, live_factory):
    folder = tmp_path / "docs"
    write(folder / "notes.txt", "First draft about owls.")
    live = live_factory(folder).start()
    prepared = len(live.prepared)

    # An editor's safe save: swap file, write a temporary copy, rename it over the original, remove the swap.
    write(folder / ".notes.txt.swp", "swap")
    write(folder / "notes.txt.tmp", "Second draft about owls and nightjars.")
    os.replace(folder / "notes.txt.tmp", folder / "notes.txt")
    (folder / ".notes.txt.swp").unlink()
    # Files that are never documents of their own.
    for name in ("~$notes.txt", "download.txt.part", "movie.txt.crdownload", ".~lock.notes.txt#", ".hidden.txt",
                 "backup.txt~"):
        write(folder / name, "temporary content nightjars")
    write(folder / ".git" / "info.txt", "nightjars in a hidden folder")
    write(folder / "sentinel.txt", "The last change of this test: nightjars.")
    wait_until(lambda: live.names("nightjars") == ["notes.txt", "sentinel.txt"], 15, what="save reflected")
    live.wait_quiet()
    assert live.prepared[prepared:].count("notes.txt") == 1, live.prepared[prepared:]
    assert live.indexed() == {"notes.txt", "sentinel.txt"}
    seen = {Path(p).name for b in live.batches for p in b.paths}
    assert seen <= {"notes.txt", "sentinel.txt"}, seen


class _LimitedObserver:
    """Stands in for the native observer on a system whose inotify watch limit is exhausted."""

    def __init__(self, *a, **kw) -> None:
        self.emitters: set = set()

    def start(self) -> None:
        pass

    def schedule(self, *a, **kw):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    def stop(self) -> None:
        pass

    def join(self, timeout=None) -> None:
        pass


@pytest.mark.parametrize("cause", ["watch_limit", "network_share"])
def test_polling_takes_over_where_native_watching_is_unavailable(tmp_path, live_factory, monkeypatch, cause):
    if cause == "watch_limit":
        monkeypatch.setattr(watcher_module, "Observer", _LimitedObserver)
    else:
        monkeypatch.setattr(watcher_module, "_mount_fstype", lambda path: "nfs4")
    folder = tmp_path / "docs"
    write(folder / "a.txt", "Polling finds walruses.")
    statuses: list[str] = []
    live = live_factory(folder, poll_interval_s=0.3, on_status=statuses.append).start()
    assert live.watcher.mode == "polling" and live.watcher.modes[str(folder)] == "polling"
    needle = "inotify watch limit reached" if cause == "watch_limit" else "network file system"
    assert needle in live.watcher.status and "polling every 0.3 s" in live.watcher.status
    assert statuses == [live.watcher.status]
    write(folder / "b.txt", "Polling also finds narwhals.")
    (folder / "a.txt").rename(folder / "c.txt")
    wait_until(lambda: live.indexed() == {"b.txt", "c.txt"}, 15, what="polled changes reflected")
    assert live.names("narwhals") == ["b.txt"]


def test_a_native_watch_that_dies_is_replaced_by_polling_and_a_rescan(tmp_path, live_factory):
    folder = tmp_path / "docs"
    write(folder / "a.txt", "Before the watch died: puffins.")
    live = live_factory(folder, poll_interval_s=0.3).start()
    assert live.watcher.mode == "native"
    native = live.watcher._native
    watch = live.watcher._native_watches[str(folder)]
    write(folder / "missed.txt", "Written while nobody watched: albatrosses.")
    native.unschedule(watch)  # the emitter thread ends, as when inotify fails under it
    wait_until(lambda: live.watcher.mode == "polling", 15, what="fallback to polling")
    assert "native watching stopped" in live.watcher.status
    wait_until(lambda: live.names("albatrosses") == ["missed.txt"], 15, what="rescan after fallback")
    write(folder / "later.txt", "After the fallback: cormorants.")
    wait_until(lambda: live.names("cormorants") == ["later.txt"], 15, what="polled change")


@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
def test_churn_ends_in_the_index_a_fresh_run_builds(tmp_path, live_factory, polling):
    rng = random.Random(1234 + polling)
    folder = tmp_path / "churn"
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()

    def text() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(5, 60))) + f" tag{rng.randint(0, 10**6)}"

    files: list[Path] = []
    for i in range(120):
        files.append(write(folder / f"d{i % 4}" / f"f{i}.txt", text()))
    live = live_factory(folder, force_polling=polling, poll_interval_s=0.3).start()
    assert live.watcher.mode == ("polling" if polling else "native")

    ops = 0
    next_name = 1000
    for step in range(400):
        op = rng.random()
        if op < 0.25 or not files:
            files.append(write(folder / f"d{rng.randint(0, 5)}" / f"f{next_name}.txt", text()))
            next_name += 1
        elif op < 0.5:
            write(rng.choice(files), text())
        elif op < 0.62:
            victim = files.pop(rng.randrange(len(files)))
            victim.unlink()
        elif op < 0.8:
            src = files.pop(rng.randrange(len(files)))
            dest = folder / f"d{rng.randint(0, 5)}" / f"m{next_name}.txt"
            next_name += 1
            dest.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dest)
            files.append(dest)
        elif op < 0.97:
            # Save through a temporary file, as editors do.
            target = rng.choice(files)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(text())
            os.replace(tmp, target)
        else:
            # Rename a whole folder.
            sub = folder / f"d{rng.randint(0, 5)}"
            if sub.is_dir():
                new = folder / f"d{rng.randint(6, 9)}x{step}"
                sub.rename(new)
                files = [new / f.name if f.parent == sub else f for f in files]
        ops += 1
    assert ops == 400

    fresh_settings = load_settings(index_dir=tmp_path / "fresh", model_dir=tmp_path / "no-model", extract_workers=1)
    Indexer(Store(fresh_settings.index_dir), fresh_settings, None).index([folder])
    expected = snapshot(fresh_settings.index_dir)
    assert len(expected["files"]) == len(files)
    wait_until(lambda: assert_same_index(snapshot(live.settings.index_dir), expected) or True, 60,
               interval=0.5, what="watched index equal to a fresh index of the final tree")
    assert live.batches and sum(b.events for b in live.batches) >= 100


def test_restart_reconciles_changes_made_while_closed_without_rereading_unchanged_files(tmp_path, monkeypatch):
    folder = tmp_path / "docs"
    for i in range(30):
        write(folder / f"n{i}.txt", f"Unchanged note {i} about weather stations number {i}.")
    settings = load_settings(index_dir=tmp_path / "index", model_dir=tmp_path / "no-model", extract_workers=1)
    Indexer(Store(settings.index_dir), settings, None).index([folder])

    # While the app is closed: one edit, one deletion, one rename, one new file, one touched-only file.
    write(folder / "n1.txt", "Edited note about barometers, longer than before.")
    (folder / "n2.txt").unlink()
    (folder / "n3.txt").rename(folder / "n3-renamed.txt")
    write(folder / "brand-new.txt", "A note written while the app was closed: hygrometers.")
    n4 = folder / "n4.txt"
    os.utime(n4, ns=(n4.stat().st_atime_ns, n4.stat().st_mtime_ns + 7_000_000_000))

    read: list[str] = []
    real_sha = indexer_module.sha256_file
    monkeypatch.setattr(indexer_module, "sha256_file", lambda p, *a, **kw: read.append(Path(p).name) or real_sha(p, *a, **kw))
    store = Store(settings.index_dir)
    indexer = Indexer(store, settings, None)
    prepared: list[str] = []
    real_prepare = indexer._prepare
    indexer._prepare = lambda p, st: prepared.append(p.name) or real_prepare(p, st)
    rep = indexer.index([folder])

    assert sorted(prepared) == ["brand-new.txt", "n1.txt"], "only new and edited files are extracted"
    assert set(read) <= {"brand-new.txt", "n1.txt", "n3-renamed.txt", "n4.txt"}, read
    assert rep.unchanged == 27 and rep.removed == 2 and rep.moved == 1 and rep.indexed == 3
    names = {Path(p).name for p in store.file_records()}
    assert "n2.txt" not in names and "n3.txt" not in names and {"n3-renamed.txt", "brand-new.txt"} <= names
    clean = load_settings(index_dir=tmp_path / "clean", model_dir=tmp_path / "no-model", extract_workers=1)
    Indexer(Store(clean.index_dir), clean, None).index([folder])
    assert_same_index(snapshot(settings.index_dir), snapshot(clean.index_dir))


def test_batches_group_paths_by_watched_folder():
    batch = ChangeBatch(("/a/x/1.txt", "/a/y", "/b/2.txt", "/elsewhere/3.txt"))
    assert batch.by_root(["/a", "/b"]) == {"/a": ["/a/x/1.txt", "/a/y"], "/b": ["/b/2.txt"]}


def test_coalescing_keeps_only_outermost_paths(tmp_path):
    got: list[ChangeBatch] = []
    done = threading.Event()
    w = FolderWatcher([tmp_path], lambda b: (got.append(b), done.set()), debounce_s=0.05)
    w.start()
    try:
        with w._cond:
            for p in (tmp_path / "a" / "b.txt", tmp_path / "a", tmp_path / "c.txt", tmp_path / "a" / "d" / "e.txt"):
                w._add(str(p))
            w._pending.events = 4
        w.flush()
        assert done.wait(10)
    finally:
        w.stop()
    assert got[0].paths == (str(tmp_path / "a"), str(tmp_path / "c.txt"))

