"""The one-time int8 build of the full-size model: peak memory, time, progress, under a memory limit.

A fresh process (the "app") creates ``Encoder(model_dir, "cpu")`` with an empty cache folder, as a user's first
start does, under an address-space limit (``RLIMIT_AS``, what ``ulimit -v`` sets; stricter than a cgroup's
``MemoryMax``, since it also counts mapped files and reserved-but-unused memory). The encoder builds the int8
copy in its child process and then loads it. Reported: whether the app ended up on int8 (the goal: not forced to
the fp32 fallback), the build child's peak RSS (``RUSAGE_CHILDREN`` of the app process), the app process's
own peak RSS, the build time per stage from the progress messages, and the size on disk.

A second fresh process then loads the cached copy (what every later start does) and reports model-ready time
and whether torch/transformers were imported.

    python benchmarks/bench_int8_build.py [--memory-limit-gb 8] [--keep DIR]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

BUILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
stages = []
def progress(p):
    stages.append((round(time.perf_counter() - t0, 1), p.stage, p.done, p.total))
    print(f"  {stages[-1][0]:7.1f} s  {p.text()}", file=sys.stderr, flush=True)
from desktop_search.core.encoder import Encoder
enc = Encoder(sys.argv[1], "cpu", cache_dir=sys.argv[2], progress=progress)
ready = time.perf_counter() - t0
print(json.dumps({
    "precision": enc.precision, "precision_note": enc.precision_note, "ready_s": round(ready, 1),
    "build_child_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2, 2),
    "app_process_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
    "progress": stages,
    "torch_imported": "torch" in sys.modules,
}))
"""

LOAD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from desktop_search.core.encoder import Encoder
enc = Encoder(sys.argv[1], "cpu", cache_dir=sys.argv[2])
ready = time.perf_counter() - t0
t1 = time.perf_counter()
enc.encode_query("how do solar panels turn sunlight into electricity")
print(json.dumps({
    "precision": enc.precision, "model_ready_s": round(ready, 2), "first_query_s": round(time.perf_counter() - t1, 3),
    "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
    "torch_imported": "torch" in sys.modules, "transformers_imported": "transformers" in sys.modules,
}))
"""


def _limit(gb: float):
    def apply() -> None:
        import resource

        size = int(gb * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return apply


def _run(code: str, args: list[str], limit_gb: float | None) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, cwd=c.REPO,
                          preexec_fn=_limit(limit_gb) if limit_gb else None)
    if proc.returncode != 0:
        return {"error": f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--memory-limit-gb", type=float, default=8.0, help="address-space limit for the app process")
    p.add_argument("--keep", type=Path, default=None, help="move the built copy here afterwards (if not there)")
    args = p.parse_args(argv)
    model_dir = c.model_dir(args.model_dir)
    result: dict = {"benchmark": "int8_build", "machine": c.machine(), "model": str(model_dir),
                    "memory_limit_gb": args.memory_limit_gb, "limit_kind": "RLIMIT_AS (ulimit -v)"}
    cache = Path(tempfile.mkdtemp(prefix="int8-bench-", dir=model_dir.parent))
    try:
        c.log(f"first start: building the int8 copy under a {args.memory_limit_gb} GB address-space limit")
        t, built = c.timed(lambda: _run(BUILD, [str(model_dir), str(cache)], args.memory_limit_gb))
        built["wall_s"] = round(t, 1)
        result["first_start"] = built
        result["goal_build_peak_rss_gb"] = 3.5
        copies = [d for d in cache.iterdir() if d.is_dir()]
        if copies:
            result["disk_mb"] = round(sum(f.stat().st_size for f in copies[0].iterdir()) / 1e6, 1)
        c.log("later start: loading the cached int8 copy")
        result["later_start"] = _run(LOAD, [str(model_dir), str(cache)], args.memory_limit_gb)
        result["goal_model_ready_s"] = 5.0
        if args.keep and copies:
            dest = Path(args.keep) / copies[0].name
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(copies[0]), dest)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    result["elapsed_s"] = round(time.perf_counter() - T0, 1)
    return result


T0 = time.perf_counter()

if __name__ == "__main__":
    c.emit(main())
