"""Shared helpers for the benchmark scripts: the full-size random BGE-M3, corpora, machine facts, JSON output.

The model is the real BGE-M3 architecture (XLM-RoBERTa-large, 568M parameters) with random weights, built by
``desktop_search.devtools.random_bge_m3`` once and cached under ``--model-dir`` / ``DESKTOP_SEARCH_BENCH_MODEL``
(default ``benchmarks/.cache/bge-m3-full``, git-ignored); speed and memory do not depend on the weights' values.
The int8 CPU copy the app builds from it is cached in ``benchmarks/.cache/int8`` (``DESKTOP_SEARCH_BENCH_INT8``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from desktop_search.environment import prepare_process  # noqa: E402

# As the app's entry point does (desktop_search/__main__.py), before anything imports numpy or transformers.
prepare_process(offline=True)

CACHE = BENCH_DIR / ".cache"
DEFAULT_MODEL = CACHE / "bge-m3-full"
# The int8 copy the app derives from the model (DESKTOP_SEARCH_BENCH_INT8 to share one between checkouts).
INT8_CACHE = Path(os.environ.get("DESKTOP_SEARCH_BENCH_INT8") or CACHE / "int8")
CORPUS = Path(os.environ.get("DESKTOP_SEARCH_SHARED_CORPUS", REPO.parent / "shared" / "corpus"))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model-dir", type=Path, default=None, help=f"full-size model folder (default {DEFAULT_MODEL})")
    p.add_argument("--quick", action="store_true", help="smaller sizes: finishes in a few minutes on 2 cores")
    return p


def model_dir(arg: Path | None) -> Path:
    """The benchmark model folder, built (random weights, ~1.5 min) and verified on first use."""
    from desktop_search.core.encoder import model_problem

    path = Path(arg or os.environ.get("DESKTOP_SEARCH_BENCH_MODEL") or DEFAULT_MODEL)
    if not (path / "config.json").is_file():
        from desktop_search.devtools.random_bge_m3 import build_random_bge_m3

        log(f"building the full-size random BGE-M3 into {path} (once)")
        build_random_bge_m3(path, size="full", seed=0)
    if model_problem(path):
        # The app loads only verified weights: verify through the real code path, as a user's import would.
        from desktop_search.core.models import Manifest, verify_model, write_manifest_for

        manifest = Manifest.load(write_manifest_for(path, repo="bench/random-bge-m3-full", revision="0" * 40))
        bad = verify_model(manifest, path)
        if bad:
            raise SystemExit(f"benchmark model at {path} failed verification: {bad}")
    return path


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """Where the figures came from, including how busy the machine was (other processes skew timings)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["int8_dot_product"] = sorted(f for f in ("avx512_vnni", "avx_vnni", "amx_int8") if f in flags)
                break
    except OSError:
        pass
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        pass
    info["load_avg_start"] = load_avg()
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def load_avg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def percentiles(samples_s: Iterable[float]) -> dict[str, float]:
    xs = sorted(samples_s)
    if not xs:
        return {}

    def pct(p: float) -> float:
        k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
        return xs[k]

    return {
        "n": len(xs),
        "p50_ms": round(pct(50) * 1000, 2),
        "p95_ms": round(pct(95) * 1000, 2),
        "min_ms": round(xs[0] * 1000, 2),
        "mean_ms": round(statistics.fmean(xs) * 1000, 2),
    }


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def scifact_abstracts(limit: int | None = None) -> list[str]:
    """SciFact abstracts (title + abstract), in file order: real scientific English of ~200-400 tokens each."""
    import ast

    path = CORPUS / "ir_scifact" / "hf_csv" / "corpus_train.csv"
    csv.field_size_limit(1 << 30)
    out: list[str] = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            try:
                sentences = ast.literal_eval(row["abstract"].replace("'\n '", "', '").replace('"\n "', '", "'))
                text = " ".join(sentences) if isinstance(sentences, (list, tuple)) else str(sentences)
            except (ValueError, SyntaxError):
                text = row["abstract"]
            out.append(f"{row['title']}\n\n{text}")
            if limit is not None and len(out) >= limit:
                break
    return out


def scifact_claims(limit: int | None = None) -> list[str]:
    path = CORPUS / "ir_scifact" / "hf_csv" / "claims_test.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = [r["claim"] for r in csv.DictReader(f) if r.get("claim")]
    return rows[:limit] if limit else rows


def emit(result: dict[str, Any]) -> None:
    result.setdefault("load_avg_end", load_avg())
    print(json.dumps(result, indent=2, ensure_ascii=False))
