"""Start-up figures a user feels: time to a visible window, to the first keyword results, to semantic search,
and CLI round trips.

    python benchmarks/bench_startup.py [--runs 3] [--model-dir M] [--quick]

Each figure is a fresh process (median of --runs), measured side by side in one run:
- gui_window_shown_s: `desktop-search gui` (offscreen) from process start to the window shown;
- gui_first_results_s: from process start to the first keyword results on screen for a query typed at once
  (the index opens in the background; the query runs as soon as it is open);
- gui_keyword_search_ready_s: from process start to the index being open;
- cli_keyword_search_s: wall time of `desktop-search search WORD --mode keyword` end to end on a small index;
- cli_status_s: wall time of `desktop-search status`;
- import_lancedb_s / import_lancedb_deferred_s: `import lancedb` plain, and as the app does it
  (core/lancedb_import.py: namespace REST client and @override checks deferred);
- gui_model_ready_s (with a model: --model-dir, DESKTOP_SEARCH_BENCH_MODEL, else a tiny random BGE-M3 built
  here): from process start to semantic search being available (first start: includes building the int8
  copy once), and model_ready_breakdown_s, where a later start's time goes in a fresh process (importing the
  encoder module, building the Encoder from the cached int8 copy, the first query encoding, and whether torch
  was imported at all);
- import_torch_stack_s: for comparison, importing torch + transformers + FlagEmbedding, which the app defers;
- *_cpu_s: CPU seconds (user + system, every thread) next to the wall times: the GUI's from its own process at
  each milestone, the CLI's of the whole child process. On a shared machine wall time varies with the load;
  CPU seconds much less, so before/after comparisons are made with them and the load average is printed.

The app's own modules are byte-compiled first (``compileall``, into the git-ignored ``__pycache__``): an
installed app or a frozen bundle has its bytecode, while a checkout run with ``PYTHONDONTWRITEBYTECODE=1``
would compile every module of the package from source at each start (~0.1 s of CPU on the window's path).
``--app DIR`` measures another checkout of the app (e.g. the commit before a change) with this script.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # first: it prepares the app's process environment and sys.path

from desktop_search.environment import process_env

# Run in a fresh interpreter: where a fresh app's "model ready" time goes, stage by stage.
_BREAKDOWN = r"""
import json, sys, time
from pathlib import Path
t = time.perf_counter(); out = {}
def lap(name):
    global t
    now = time.perf_counter(); out[name] = round(now - t, 3); t = now
from desktop_search.core.encoder import Encoder; lap("import_encoder_module")
enc = Encoder(Path(sys.argv[1]), "cpu", cache_dir=Path(sys.argv[2])); lap("encoder_" + enc.precision + "_load")
enc.encode_query("telescope"); lap("first_query_encoding")
out["torch_imported"] = "torch" in sys.modules
print(json.dumps(out))
"""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(args, env, cpu: list[float] | None = None) -> tuple[float, str]:
    """Run ``args``: (wall seconds, stdout); the child's CPU seconds are appended to ``cpu``."""
    t, c = time.perf_counter(), _children_cpu()
    # In the measured checkout: `python -m` puts the working directory first on sys.path.
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900, cwd=env["PYTHONPATH"])
    if out.returncode != 0:
        raise SystemExit(f"{args} failed: {out.stderr[-800:]}")
    if cpu is not None:
        cpu.append(_children_cpu() - c)
    return time.perf_counter() - t, out.stdout


def _smoke(ds, env, *extra) -> dict:
    _t, out = _run([*ds, "gui", "--quit-after", "600", *extra], env)
    return json.loads(out.strip().splitlines()[-1])["gui_smoke"]


def _model_dir(arg: Path | None, tmp: Path, env) -> Path:
    path = arg or (Path(os.environ["DESKTOP_SEARCH_BENCH_MODEL"]) if os.environ.get("DESKTOP_SEARCH_BENCH_MODEL") else None)
    if path is not None:
        return path
    code = (
        "import sys; from pathlib import Path\n"
        "from desktop_search.devtools.random_bge_m3 import build_random_bge_m3\n"
        "from desktop_search.core.models import Manifest, verify_model, write_manifest_for\n"
        "d = build_random_bge_m3(Path(sys.argv[1]), size='tiny', seed=0)\n"
        "assert not verify_model(Manifest.load(write_manifest_for(d, repo='bench/tiny', revision='0'*40)), d)\n"
    )
    _run([sys.executable, "-c", code, str(tmp / "tiny-model")], env)
    return tmp / "tiny-model"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=None, help="start-ups to take the median of (default 3, quick 2)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model-dir", type=Path, default=None, help="model for the 'model ready' figures")
    ap.add_argument("--no-model", action="store_true", help="skip the 'model ready' figures")
    ap.add_argument("--app", type=Path, default=_common.REPO, help="checkout whose app is measured (default: this one)")
    a = ap.parse_args()
    a.runs = a.runs or (2 if a.quick else 3)
    load_at_start = round(os.getloadavg()[0], 2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    app = a.app.resolve()
    compileall.compile_dir(str(app / "desktop_search"), quiet=1)  # as installed: bytecode present (see above)
    env = process_env(QT_QPA_PLATFORM="offscreen", DESKTOP_SEARCH_DATA_DIR=str(tmp / "data"),
                      DESKTOP_SEARCH_CONFIG_DIR=str(tmp / "cfg"), DESKTOP_SEARCH_MODEL_DIR=str(tmp / "no-model"),
                      DESKTOP_SEARCH_CACHE_DIR=str(tmp / "cache"), PYTHONPATH=str(app))
    docs = tmp / "docs"
    docs.mkdir()
    for i in range(50):
        (docs / f"note{i}.txt").write_text(f"Note {i} about the observatory and its telescope number {i}.\n" * 20)
    ds = [sys.executable, "-m", "desktop_search"]
    _run([*ds, "index", str(docs)], env)
    figures: dict[str, list[float]] = {k: [] for k in (
        "shown", "results", "ready", "kw", "status", "lancedb", "lancedb_deferred", "torch_stack",
        "shown_cpu", "results_cpu", "ready_cpu", "kw_cpu", "status_cpu")}
    imp = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
    for _ in range(a.runs):
        g = _smoke(ds, env, "--smoke-query", "telescope")
        figures["shown"].append(g["window_shown_s"])
        figures["ready"].append(g["index_ready_s"])
        figures["results"].append(g["first_results_s"])
        for key, name in (("shown_cpu", "window_shown_cpu_s"), ("ready_cpu", "index_ready_cpu_s"),
                          ("results_cpu", "first_results_cpu_s")):
            if name in g:  # an app from before these were printed has none
                figures[key].append(g[name])
        figures["kw"].append(_run([*ds, "search", "telescope", "--mode", "keyword"], env, figures["kw_cpu"])[0])
        figures["status"].append(_run([*ds, "status"], env, figures["status_cpu"])[0])
        figures["lancedb"].append(float(_run([sys.executable, "-c", imp.format("import lancedb")], env)[1]))
        figures["lancedb_deferred"].append(float(_run([sys.executable, "-c", imp.format(
            "from desktop_search.core.lancedb_import import import_lancedb; import_lancedb()")], env)[1]))
        figures["torch_stack"].append(_run([sys.executable, "-c", "import torch, transformers, FlagEmbedding"], env)[0])
    med = lambda xs: round(statistics.median(xs), 3) if xs else None
    result = {
        "runs": a.runs,
        "app": str(app),
        "load_avg_1m_start": load_at_start,
        "gui_window_shown_s": med(figures["shown"]),
        "gui_first_results_s": med(figures["results"]),
        "gui_keyword_search_ready_s": med(figures["ready"]),
        "cli_keyword_search_s": med(figures["kw"]),
        "cli_status_s": med(figures["status"]),
        "import_lancedb_s": med(figures["lancedb"]),
        "import_lancedb_deferred_s": med(figures["lancedb_deferred"]),
        "import_torch_stack_s": med(figures["torch_stack"]),
        "gui_window_shown_cpu_s": med(figures["shown_cpu"]),
        "gui_keyword_search_ready_cpu_s": med(figures["ready_cpu"]),
        "gui_first_results_cpu_s": med(figures["results_cpu"]),
        "cli_keyword_search_cpu_s": med(figures["kw_cpu"]),
        "cli_status_cpu_s": med(figures["status_cpu"]),
    }
    if not a.no_model:
        model = _model_dir(a.model_dir, tmp, env)
        menv = {**env, "DESKTOP_SEARCH_MODEL_DIR": str(model)}
        # The first start builds the int8 copy (once per model); later starts load it.
        first = _smoke(ds, menv, "--smoke-model")
        later = [_smoke(ds, menv, "--smoke-model")["model_ready_s"] for _ in range(a.runs)]
        result["model"] = str(model)
        result["gui_model_ready_first_start_s"] = first["model_ready_s"]
        result["gui_model_ready_s"] = med(later)
        result["model_ready_breakdown_s"] = json.loads(
            _run([sys.executable, "-c", _BREAKDOWN, str(model), str(tmp / "cache" / "models")], menv)[1].strip().splitlines()[-1])
    result.update({"cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
