"""Hostile-but-legal input at scale (issue 18, case 7): many empty files, and one huge single-line text file.

Each case is indexed keyword-only (no model needed: the limits and the cost of skipping do not depend on it) by
``Indexer`` in a fresh child process, which reports the wall time of ``Indexer.index`` and what the run
recorded, and its own peak RSS. Cases:

* ``empty``: N empty ``.txt`` files (default 50,000; issue: 6 min, 140 files/s), indexed, then indexed again
  (nothing changed: the incremental pass);
* ``oneline``: one text file of S MB (default 50) on a single line of words, plus a small normal file
  (issue: 354,129 chunks in 9 min at 2 GB RSS). Chunking stops once the file passes the per-file passage
  limit, so it fails ``too_large`` and the normal file beside it is indexed.

    python benchmarks/bench_hostile.py [--quick] [--files N] [--mb S] [--cases empty,oneline]
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c


def child(corpus: Path, index_dir: Path, runs: int) -> dict:
    """Runs in a fresh process: index ``corpus`` keyword-only ``runs`` times, report times and the records."""
    from desktop_search.config import load_settings
    from desktop_search.core.indexer import Indexer
    from desktop_search.core.store import Store

    settings = load_settings(index_dir=index_dir, model_dir=index_dir.parent / "no-model")
    store = Store(index_dir)
    # Text files are read in this process (only the isolated kinds go to worker processes), so this process's
    # peak RSS is the run's; this baseline is what the imports and the open index already take.
    out: dict = {"runs": [], "rss_before_index_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    for _ in range(runs):
        t, report = c.timed(lambda: Indexer(store, settings).index([corpus]))
        out["runs"].append({
            "index_s": round(t, 2),
            "files_per_s": round(report.files_seen / t, 1) if t else None,
            "files_seen": report.files_seen,
            "indexed": report.indexed,
            "failed": report.failed,
            "unchanged": report.unchanged,
            "chunks_written": report.chunks_written,
        })
    records = store.file_records()
    reasons: dict[str, int] = {}
    for r in records.values():
        key = f"{r.status}:{r.reason}" if r.reason else r.status
        reasons[key] = reasons.get(key, 0) + 1
    out["records"] = reasons
    out["details"] = sorted({r.detail for r in records.values() if r.detail})[:5]
    out["chunks_in_index"] = store.count_chunks()
    out["limits"] = {"max_text_bytes": settings.max_text_bytes, "max_file_bytes": settings.max_file_bytes,
                     "max_chunks_per_file": settings.max_chunks_per_file}
    out["index_bytes"] = store.index_bytes()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def run_child(corpus: Path, index_dir: Path, runs: int) -> dict:
    """The child's JSON (its own peak RSS included) and its wall time with start-up."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(corpus), str(index_dir), str(runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.perf_counter()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"indexing child failed:\n{err[-4000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res["child_wall_s"] = round(wall, 2)
    return res


def make_empty(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    for i in range(n):
        (root / f"empty{i:06d}.txt").touch()


def make_oneline(root: Path, mb: int) -> None:
    """``mb`` MB of words separated by single spaces, no line break at all; and one ordinary small file."""
    root.mkdir(parents=True)
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]
    target = mb * 1024 * 1024
    with (root / "oneline.txt").open("w", encoding="utf-8") as f:
        written = 0
        while written < target:
            piece = " ".join(rng.choices(words, k=10_000)) + " "
            piece = piece[: target - written]
            f.write(piece)
            written += len(piece)
    (root / "normal.txt").write_text("An ordinary note about orchards beside the big file.\n", "utf-8")


def main(argv: list[str] | None = None) -> dict:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=None, help="empty files (default 50000, quick 5000)")
    p.add_argument("--mb", type=int, default=None, help="size of the single-line file in MB (default 50; it is refused after ~26 MB)")
    p.add_argument("--cases", default="empty,oneline")
    p.add_argument("--child", nargs=3, metavar=("CORPUS", "INDEX", "RUNS"), help="(internal)")
    args = p.parse_args(argv)
    if args.child:
        corpus, index_dir, runs = args.child
        print(json.dumps(child(Path(corpus), Path(index_dir), int(runs))))
        return {}
    n_files = args.files or (5000 if args.quick else 50_000)
    mb = args.mb or 50
    result: dict = {"benchmark": "hostile", "machine": c.machine(), "nice": os.nice(0)}
    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    try:
        cases = args.cases.split(",")
        if "empty" in cases:
            c.log(f"creating {n_files} empty files")
            make_empty(work / "empty", n_files)
            c.log("indexing them twice (first run, then nothing changed)")
            res = run_child(work / "empty", work / "index-empty", 2)
            res["files"] = n_files
            res["load_avg_after"] = c.load_avg()
            result["empty"] = res
        if "oneline" in cases:
            c.log(f"writing a {mb} MB single-line text file")
            make_oneline(work / "oneline", mb)
            size = (work / "oneline" / "oneline.txt").stat().st_size
            c.log("indexing it")
            res = run_child(work / "oneline", work / "index-oneline", 1)
            res["file_bytes"] = size
            res["load_avg_after"] = c.load_avg()
            result["oneline"] = res
    finally:
        shutil.rmtree(work, ignore_errors=True)
    c.emit(result)
    return result


if __name__ == "__main__":
    main()
