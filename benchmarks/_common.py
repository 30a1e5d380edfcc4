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


# int8 multiply-accumulates one core can issue per cycle with its widest int8 dot-product instruction, as
# (cpuinfo flag, MACs/cycle, why). Vendor figures, not measured here: AMX tiles 16x16x64 per 16 cycles; AVX-512
# VNNI VPDPBUSD is 64 MACs and Intel's server cores issue two per cycle, AMD Zen 4 one (512-bit work in two
# 256-bit halves); AVX-VNNI 32 MACs x 2 ports; plain AVX2 needs VPMADDUBSW + VPMADDWD + VPADDD for 32 MACs;
# Arm SDOT 16 MACs x 2 pipes, SMMLA 32 x 2.
_INT8_MACS_PER_CYCLE = (
    ("amx_int8", 1024, "AMX TMUL"),
    ("avx512_vnni", 128, "AVX-512 VNNI, 2 x 64 MACs per cycle"),
    ("avx_vnni", 64, "AVX-VNNI, 2 x 32 MACs per cycle"),
    ("i8mm", 64, "Arm SMMLA, 2 x 32 MACs per cycle"),
    ("asimddp", 32, "Arm SDOT, 2 x 16 MACs per cycle"),
    ("avx2", 21, "AVX2 without VNNI: 3 instructions per 32 MACs, 2 ports"),
)


def int8_macs_per_token(model: Path) -> int:
    """int8 multiply-accumulates per token of the app's int8 graph: the encoder's Q/K/V, output and FFN
    projections and the ColBERT head (attention's token x token products stay fp32 and grow with length; they
    are left out, which makes the limit below an upper bound)."""
    cfg = json.loads((Path(model) / "config.json").read_text("utf-8"))
    h, inner, layers = int(cfg["hidden_size"]), int(cfg["intermediate_size"]), int(cfg["num_hidden_layers"])
    return layers * (4 * h * h + 2 * h * inner) + h * h


def int8_limit(model: Path) -> dict[str, Any]:
    """An ESTIMATE of the tokens/s this machine's int8 units could reach on the model if every int8
    multiply-accumulate ran at peak: usable cores x clock x MACs per cycle (from the CPU's flags, see
    ``_INT8_MACS_PER_CYCLE``) / MACs per token. The clock is the CPU's maximum where the OS reports one, else
    /proc/cpuinfo's "cpu MHz" (in a VM the nominal clock: boost makes the true limit higher)."""
    out: dict[str, Any] = {"is_estimate": True}
    flags: set[str] = set()
    mhz = None
    vendor, family = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("flags", "Features") and not flags:
                flags = set(value.split())
            elif key == "cpu MHz" and mhz is None:
                mhz, out["clock_source"] = float(value), "/proc/cpuinfo cpu MHz (nominal in a VM; boost not seen)"
            elif key == "vendor_id" and not vendor:
                vendor = value.strip()
            elif key == "cpu family" and not family:
                family = value.strip()
    except OSError:
        pass
    try:
        mhz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000
        out["clock_source"] = "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    found = next(((f, m, why) for f, m, why in _INT8_MACS_PER_CYCLE if f in flags), None)
    if found is None or not mhz:
        out["note"] = "no known int8 dot-product instruction or clock reported: no estimate"
        return out
    flag, macs, why = found
    if flag == "avx512_vnni" and vendor == "AuthenticAMD" and family == "25":
        macs, why = 64, "AVX-512 VNNI on AMD Zen 4: 64 MACs per cycle (two 256-bit halves)"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    per_token = int8_macs_per_token(model)
    out.update({
        "instruction": why, "macs_per_cycle_per_core": macs, "cores": cores, "clock_mhz": round(mhz),
        "int8_macs_per_token": per_token,
        "tokens_per_s": round(cores * mhz * 1e6 * macs / per_token, 1),
    })
    return out


def int8_gemm_ceiling(model: Path, tokens: int = 512) -> dict[str, Any]:
    """MEASURED: the rate of ONNX Runtime's own int8 matmul kernel (``DynamicQuantizeMatMul``, the one the app's
    graph uses) on this machine for one FFN-sized product (``tokens`` x 1024 x 4096), best of 5, as tokens/s of
    the model if every int8 product ran that fast and nothing else took time: what the app could reach with
    this kernel, next to the estimate of the hardware's limit. Wall clock with every usable CPU (load lowers
    it), and per CPU-second on one thread without spinning times the usable CPUs (less sensitive to load)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from desktop_search.core.quantize import cpu_threads, import_onnxruntime

    ort = import_onnxruntime()
    k, n = 1024, 4096
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.integers(-127, 128, (k, n)).astype(np.int8), "w"),
             numpy_helper.from_array(np.full(n, 0.01, np.float32), "s")]
    node = helper.make_node("DynamicQuantizeMatMul", ["x", "w", "s"], ["y"], domain="com.microsoft")
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    proto.ir_version = 8
    x = rng.standard_normal((tokens, k)).astype(np.float32)
    macs, per_token, cores = tokens * k * n, int8_macs_per_token(model), cpu_threads()
    rates = {}
    for label, threads in (("wall", cores), ("cpu", 1)):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        if label == "cpu":
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        session.run(None, {"x": x})
        best = float("inf")
        for _ in range(5):
            t, p = time.perf_counter(), time.process_time()
            session.run(None, {"x": x})
            best = min(best, (time.perf_counter() - t) if label == "wall" else (time.process_time() - p))
        rates[label] = macs / best * (1 if label == "wall" else cores)
    return {"kernel": "onnxruntime DynamicQuantizeMatMul", "shape": [tokens, k, n], "cpus": cores,
            "gmacs_per_s_wall": round(rates["wall"] / 1e9, 1), "tokens_per_s_wall": round(rates["wall"] / per_token, 1),
            "gmacs_per_s_from_cpu_time": round(rates["cpu"] / 1e9, 1),
            "tokens_per_s_from_cpu_time": round(rates["cpu"] / per_token, 1), "load_avg": load_avg()}


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
