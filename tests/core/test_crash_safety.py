"""Crash safety: SIGKILL at any moment loses nothing and duplicates nothing; one writer per index while any
number of readers search; a full disk stops indexing with a clear error and leaves a readable index."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from desktop_search.cli import main
from desktop_search.config import load_settings
from desktop_search.core import doctor
from desktop_search.core.indexer import Indexer, IndexWriteError
from desktop_search.core.lock import IndexBusy, IndexLock, holder
from desktop_search.core.search import Searcher
from desktop_search.core.store import Store
from tests.conftest import REPO, make_pdf, write
from tests.core.index_snapshot import assert_same_index, snapshot, wait_until

WORDS = ("river mountain lantern orchard copper harbor meadow signal thunder velvet quarry saddle "
         "compass falcon glacier timber anchor beacon canyon ember").split()


def make_tree(root: Path, n: int, seed: int = 7, words: tuple[int, int] = (8, 40)) -> Path:
    rng = random.Random(seed)
    for i in range(n):
        # Short texts by default: a chunk each, so encoding with the tiny model stays fast.
        write(root / f"group{i % 7}" / f"doc{i:04d}.txt",
              "Document %d. " % i + " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words))))
    for k in range(3):
        make_pdf(root / "pdf" / f"report{k}.pdf", [f"Report {k} page {p} about {WORDS[(k + p) % 20]}." for p in range(3)])
    return root


def check_invariants(index_dir: Path) -> dict:
    """What must hold after a kill at any moment: nothing marked indexed without all its chunks, no chunk
    without a files row, no duplicates, and the index opens and answers a keyword query."""
    snap = snapshot(index_dir)
    files, chunks = snap["files"], snap["chunks"]
    assert snap["file_rows"] == len(files), "duplicate files rows"
    assert len({c[:2] for c in chunks}) == len(chunks), "duplicate chunks"
    per_path: dict[str, int] = {}
    for c in chunks:
        per_path[c[0]] = per_path.get(c[0], 0) + 1
    assert not set(per_path) - set(files), "chunks without a files row"
    for path, row in files.items():
        if row[4] == "indexed":
            assert per_path.get(path) == row[6], f"{path} marked indexed without its {row[6]} chunks"
    assert len(set(snap["vectors"])) == len(snap["vectors"]), "duplicate vectors"
    Searcher(Store(index_dir, create=False), None).search("river", mode="keyword")
    # doctor agrees: at most work the next run does (files to index, texts to encode, the BM25 index to build).
    problems = {p.code for p in doctor.check(index_dir).problems}
    assert problems <= {"pending_files", "missing_vectors", "missing_indexes"}, problems
    return snap


# A CLI process that also logs the hash of every text it encodes (the encoder is wrapped, nothing else changes).
ENCODE_LOGGING_CLI = """
import os, sys
from desktop_search.core import encoder
from desktop_search.core.store import text_hash
real = encoder.Encoder.encode
def encode(self, texts, **kw):
    out = real(self, texts, **kw)
    with open(os.environ["ENCODE_LOG"], "a") as fh:
        fh.write("".join(text_hash(t) + "\\n" for t in texts))
    return out
encoder.Encoder.encode = encode
from desktop_search.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.update(int(x) for x in fh.read().split())
    except OSError:
        pass
    return out


def _versions(index_dir: Path) -> int:
    d = index_dir / "lance" / "chunks.lance" / "_versions"
    return len(os.listdir(d)) if d.is_dir() else 0


def test_sigkill_at_any_moment_then_rerun_equals_a_clean_index(tmp_path, tiny_model_dir, tiny_encoder):
    tree = make_tree(tmp_path / "tree", 400)
    idx, log = tmp_path / "idx", tmp_path / "encoded.log"
    base_cmd = [sys.executable, "-c", ENCODE_LOGGING_CLI, "index", str(tree), "--index-dir", str(idx),
                "--model-dir", str(tiny_model_dir), "--device", "cpu", "--precision", "fp32", "--json"]
    env = {**os.environ, "ENCODE_LOG": str(log)}
    rng = random.Random(42)
    committed: set[str] = set()
    kills = []
    # Kill moments: during start-up, then after n commits of chunks plus a random delay, which lands in every
    # phase of a group (intent rows, chunks, encoding, vectors, files rows) or in the final optimize. Most
    # runs are keyword-only, which starts in seconds instead of loading the model; one kill hits a run that
    # encodes.
    plans = [("startup", rng.uniform(0.3, 1.5), True), ("commits", 2, True), ("commits", 5, True),
             ("commits", 3, False)]
    for kind, arg, keyword_only in plans:
        log.write_text("")
        cmd = base_cmd + (["--keyword-only"] if keyword_only else [])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
        try:
            if kind == "startup":
                time.sleep(arg)
            else:
                base = _versions(idx)
                wait_until(lambda: _versions(idx) >= base + arg or proc.poll() is not None, 180, 0.01,
                           what="commits")
                time.sleep(rng.uniform(0, 0.2))
            workers = _children(proc.pid)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.communicate(timeout=60)
        kills.append((kind, arg, proc.returncode))
        # No extraction worker outlives its parent.
        wait_until(lambda: not any(_alive(w) for w in workers), 20, what="worker processes exit")
        encoded = set(log.read_text().split())
        assert not encoded & committed, "text whose vectors were committed was encoded again"
        if (idx / "desktop_search_index.json").exists():
            now = set(check_invariants(idx)["vectors"])
            assert committed <= now, "committed vectors were lost"
            committed = now
    assert sum(1 for k in kills if k[2] == -signal.SIGKILL) >= 3, kills
    assert committed, "the run with the model was killed before it committed any vectors"

    log.write_text("")
    done = subprocess.run(base_cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    encoded = log.read_text().split()
    assert not set(encoded) & committed, "the final run re-encoded committed text"
    assert len(encoded) == len(set(encoded)) == report["chunks_encoded"] > 0

    settings = load_settings(index_dir=tmp_path / "clean", model_dir=tiny_model_dir, device="cpu")
    Indexer(Store(settings.index_dir), settings, tiny_encoder).index([tree])
    final = check_invariants(idx)
    assert_same_index(final, snapshot(settings.index_dir))
    assert len(final["files"]) == 403 and all(r[4] == "indexed" for r in final["files"].values())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False


# -- one writer, many readers ---------------------------------------------------------------------------------
class WatchProcess:
    def __init__(self, tree: Path, idx: Path, tmp_path: Path) -> None:
        env = {**os.environ, "DESKTOP_SEARCH_MODEL_DIR": str(tmp_path / "no-model")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "desktop_search", "watch", str(tree), "--index-dir", str(idx), "--keyword-only",
             "--debounce", "0.3"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until(lambda: any("press Ctrl+C" in l for l in self.lines) or self.proc.poll() is not None, 120,
                   what="watch ready")
        assert self.proc.poll() is None, "".join(self.lines)

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(60)
        self._reader.join(10)
        self.proc.stderr.close()
        return code


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_writer_many_readers_and_clean_shutdown(tmp_path, capsys):
    tree = make_tree(tmp_path / "tree", 150, seed=3)
    idx = tmp_path / "idx"
    watch = WatchProcess(tree, idx, tmp_path)
    try:
        # A second writer is refused with the holder's PID, in one line; so is a repair.
        code, out, err = cli(capsys, "index", tree, "--index-dir", idx, "--keyword-only")
        assert code == 1 and f"in use by PID {watch.proc.pid} (desktop-search watch)" in err
        assert err.count("\n") == 1 and "Traceback" not in err
        code, out, err = cli(capsys, "doctor", "--repair", "--index-dir", idx)
        assert code == 1 and f"PID {watch.proc.pid}" in err
        with pytest.raises(IndexBusy):
            IndexLock(idx).acquire()
        assert holder(idx)["pid"] == watch.proc.pid

        # Readers are never blocked, also while the watcher writes.
        stop = threading.Event()

        def churn() -> None:
            rng = random.Random(9)
            i = 0
            while not stop.is_set():
                i += 1
                target = tree / f"group{i % 7}" / f"live{i % 40}.txt"
                if rng.random() < 0.2 and target.exists():
                    target.unlink()
                else:
                    write(target, f"Live edit {i}: " + " ".join(rng.choice(WORDS) for _ in range(30)) + " zeppelin")
                time.sleep(0.005)

        writer = threading.Thread(target=churn)
        writer.start()
        try:
            deadline = time.monotonic() + 4
            reads = 0
            while time.monotonic() < deadline:
                code, out, err = cli(capsys, "search", "zeppelin", "--mode", "keyword", "--json", "--index-dir", idx)
                assert code == 0, err
                assert json.loads(out)["mode"] == "keyword"
                code, out, err = cli(capsys, "status", "--json", "--index-dir", idx, "--model-dir", tmp_path / "nm")
                assert code == 0, err
                assert json.loads(out)["files"]["total"] >= 150
                reads += 1
        finally:
            stop.set()
            writer.join()
        assert reads >= 3
        fresh = load_settings(index_dir=tmp_path / "fresh", model_dir=tmp_path / "no-model")
        Indexer(Store(fresh.index_dir), fresh, None).index([tree])
        expected = snapshot(fresh.index_dir)
        wait_until(lambda: assert_same_index(snapshot(idx), expected) or True, 60, 0.5,
                   what="watcher caught up with the churn")
    finally:
        code = watch.stop(signal.SIGTERM)
    assert code == 0, "".join(watch.lines)
    assert "stopped watching" in watch.lines[-1]

    # Ctrl+C ends it cleanly too; a killed watcher's lock is taken over by the next writer.
    watch = WatchProcess(tree, idx, tmp_path)
    assert watch.stop(signal.SIGINT) == 0, "".join(watch.lines)
    watch = WatchProcess(tree, idx, tmp_path)
    assert watch.stop(signal.SIGKILL) == -signal.SIGKILL
    assert holder(idx)["pid"] == watch.proc.pid  # stale: the file still names the dead process
    code, out, err = cli(capsys, "index", tree, "--index-dir", idx, "--keyword-only")
    assert code == 0, err
    assert "0 removed" in out


def test_lock_is_reentrant_in_a_process_and_taken_over_from_dead_ones(tmp_path):
    idx = tmp_path / "idx"
    with IndexLock(idx):
        with IndexLock(idx):  # nested holders in one process share the lock
            pass
        assert holder(idx)["pid"] == os.getpid()
    # A lock file left by a process that no longer exists does not block.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (idx / "writer.lock").write_text(json.dumps({"pid": int(dead.stdout), "command": "ghost", "since": 0}))
    with IndexLock(idx):
        assert holder(idx)["pid"] == os.getpid()
    # A live holder in another process blocks, and is named; once it dies the lock is free.
    code = ("import sys, time\nfrom desktop_search.core.lock import IndexLock\n"
            f"IndexLock({str(idx)!r}, command='holder test').acquire()\nprint('held', flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(IndexBusy, match=rf"in use by PID {proc.pid} \(holder test\)"):
            IndexLock(idx).acquire()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    with IndexLock(idx):
        pass


# -- disk full ------------------------------------------------------------------------------------------------
def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("disk_kind", ["tmpfs", "injected"])
def test_disk_full_stops_with_a_clear_error_and_keeps_the_index_readable(tmp_path, monkeypatch, capsys, disk_kind):
    tree = make_tree(tmp_path / "tree", 400, seed=11, words=(200, 400))  # ~1 MB of text for a 1 MB disk
    disk = tmp_path / "disk"
    # A real 1 MB file system where one can be mounted (root in a container); else, and also always once,
    # the failure LanceDB reports on a full disk is injected into the store's writes.
    real_disk = disk_kind == "tmpfs" and _mount_tmpfs(disk, "1m")
    idx = disk / "idx"
    settings = load_settings(index_dir=idx, model_dir=tmp_path / "no-model", extract_workers=1)
    try:
        if not real_disk:
            # No tmpfs here: the store's writes start failing the way LanceDB reports ENOSPC.
            calls = {"n": 0}
            real_replace = Store.replace_chunks

            def filling_disk(self, paths, rows):
                calls["n"] += 1
                if calls["n"] > 4:
                    raise RuntimeError("lance error: LanceError(IO): Generic LocalFileSystem error: Unable to copy "
                                       "data to file: No space left on device (os error 28)")
                return real_replace(self, paths, rows)

            monkeypatch.setattr(Store, "replace_chunks", filling_disk)
        with pytest.raises(IndexWriteError, match="disk is full"):
            Indexer(Store(idx), settings, None).index([tree])
        code, out, err = cli(capsys, "index", tree, "--index-dir", idx, "--keyword-only")
        assert code == 1 and err.splitlines()[-1].startswith("desktop-search: error: cannot write to the index")
        assert "disk is full" in err and "Traceback" not in err
        # What was committed is readable and consistent: searchable, nothing indexed without its chunks.
        snap = check_invariants(idx)
        indexed = [p for p, r in snap["files"].items() if r[4] == "indexed"]
        assert 0 < len(indexed) < 403
        code, out, err = cli(capsys, "status", "--json", "--index-dir", idx)
        assert code == 0 and json.loads(out)["files"]["indexed"] == len(indexed)
        # With space again, the next run finishes the job.
        if real_disk:
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        else:
            monkeypatch.undo()
        rep = Indexer(Store(idx), settings, None).index([tree])
        assert rep.unchanged == len(indexed)
    finally:
        final = snapshot(idx) if (idx / "desktop_search_index.json").exists() else None
        if real_disk:
            subprocess.run(["umount", "-l", str(disk)], check=False)
    clean = load_settings(index_dir=tmp_path / "clean", model_dir=tmp_path / "no-model")
    Indexer(Store(clean.index_dir), clean, None).index([tree])
    assert_same_index(final, snapshot(clean.index_dir))
