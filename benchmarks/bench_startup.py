"""Start-up figures a user feels: time to a visible window, to keyword search, and CLI round trips.

    python benchmarks/bench_startup.py [--runs 3]

Each figure is a fresh process (median of --runs), measured side by side in one run:
- gui: `desktop-search gui --quit-after` (offscreen): seconds from process start to the window shown, and to the
  index being open (keyword search answers from then on);
- cli_keyword_search_s: wall time of `desktop-search search WORD --mode keyword` on a small index;
- cli_status_s: wall time of `desktop-search status`;
- import_torch_stack_s: for comparison, importing torch + transformers + FlagEmbedding, which the app defers.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  # first: it prepares the app's process environment and sys.path

from desktop_search.environment import process_env


def _run(args, env) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{args} failed: {out.stderr[-500:]}")
    return time.perf_counter() - t, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=None, help="start-ups to take the median of (default 3, quick 2)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model-dir", type=Path, default=None, help="ignored: start-up is measured without a model")
    a = ap.parse_args()
    a.runs = a.runs or (2 if a.quick else 3)
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = process_env(QT_QPA_PLATFORM="offscreen", DESKTOP_SEARCH_DATA_DIR=str(tmp / "data"),
                      DESKTOP_SEARCH_CONFIG_DIR=str(tmp / "cfg"), DESKTOP_SEARCH_MODEL_DIR=str(tmp / "no-model"))
    docs = tmp / "docs"
    docs.mkdir()
    for i in range(50):
        (docs / f"note{i}.txt").write_text(f"Note {i} about the observatory and its telescope number {i}.\n" * 20)
    ds = [sys.executable, "-m", "desktop_search"]
    _run([*ds, "index", str(docs)], env)
    shown, ready, kw, status, torch_stack = [], [], [], [], []
    for _ in range(a.runs):
        _t, out = _run([*ds, "gui", "--quit-after", "120"], env)
        g = json.loads(out.strip().splitlines()[-1])["gui_smoke"]
        shown.append(g["window_shown_s"])
        ready.append(g["index_ready_s"])
        kw.append(_run([*ds, "search", "telescope", "--mode", "keyword"], env)[0])
        status.append(_run([*ds, "status"], env)[0])
        torch_stack.append(_run([sys.executable, "-c", "import torch, transformers, FlagEmbedding"], env)[0])
    med = lambda xs: round(statistics.median(xs), 3)
    print(json.dumps({
        "runs": a.runs,
        "gui_window_shown_s": med(shown),
        "gui_keyword_search_ready_s": med(ready),
        "cli_keyword_search_s": med(kw),
        "cli_status_s": med(status),
        "import_torch_stack_s": med(torch_stack),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
