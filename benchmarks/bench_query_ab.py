"""Query-encoding A/B: int8 graphs and ONNX Runtime session settings, interleaved in one process.

Each variant is an ONNX Runtime session on an int8 graph file (``model.onnx`` of an int8 copy, or one written
by ``m3graph.build_graph``) with its own settings; the variants run one after another on the same random
32-token input, round after round (the order reversed every other round), so load that drifts during the run
hits them alike: same-run ratios are the evidence, absolute times only on an idle machine. Before each timed
run the process sleeps ``--gap-ms`` (default 50 ms): as in the app, where a query follows seconds of idle, the
thread pools of all sessions are asleep when a run starts, and no session's spinning threads compete with the
next session's run. Reports wall p50/p10 and CPU time per run (all threads; spinning counts), and the dense
cosine of each graph's output to the first graph's. ``hugepages=1`` (Linux 6.1+) moves the memory the session
allocated (its repacked weights) onto 2 MB pages right after loading: measured, not done by the app (see
benchmarks/README.md, round 5). ``runtime=openvino`` runs the same graph file in OpenVINO instead (its ONNX reader
takes the int8 graph's operators; ``openvino`` is not a dependency of the app: install it to compare).

The graph name ``matmuls`` stands for the floor of any graph with these kernels: the model's 97 int8 matmuls
alone (random int8 weights of BGE-M3's shapes: per layer Q/K/V 1024 x 3072, output 1024 x 1024, FFN 1024 x 4096
and 4096 x 1024, and the ColBERT head), each on an input of the query's shape, nothing else.

``--kernel-rate`` measures the int8 kernel itself: one 1024 x 4096 ``DynamicQuantizeMatMul`` on the query's rows,
run again and again (its 4 MB of weights stay in cache) and the ``matmuls`` graph (~300 MB of weights read from RAM
each run), at one thread and at all, in GMAC/s; with the RAM read rate and the query's int8 multiply-accumulates it
gives the lowest time the model's matmuls can take at the kernel's in-cache rate.

    python benchmarks/bench_query_ab.py --variant v3=/tmp/v3.onnx --variant v4=/tmp/v4.onnx --variant floor=matmuls \\
        [--variant name=path:threads=1,spin=0,block_base=4,hugepages=1] [--rounds 100] [--tokens 32] [--batch 1]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import _common as c  # first: it sets the app's environment before numpy loads
import numpy as np

OPTIONS = ("threads", "spin", "block_base", "hugepages", "runtime")
MATMULS = "matmuls"


LAYERS, HIDDEN, FFN = 24, 1024, 4096


def query_macs(tokens: int, layers: int = LAYERS, hidden: int = HIDDEN, ffn: int = FFN) -> int:
    """The int8 multiply-accumulates of one sequence through the model's matmuls (Q/K/V, output, FFN, ColBERT)."""
    return tokens * (layers * (3 * hidden * hidden + hidden * hidden + 2 * hidden * ffn) + hidden * hidden)


def matmuls_only(layers: int = LAYERS, hidden: int = HIDDEN, ffn: int = FFN) -> bytes:
    """An ONNX model of the int8 graph's matmuls alone (``DynamicQuantizeMatMul`` with per-column scales and a
    bias, as ``m3graph`` writes them), reading graph inputs ``x`` (tokens, hidden) and ``h`` (tokens, ffn)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits, nodes, outputs = [], [], []
    shapes = [("x", hidden, 3 * hidden), ("x", hidden, hidden), ("x", hidden, ffn), ("h", ffn, hidden)] * layers
    for i, (src, k, n) in enumerate([*shapes, ("x", hidden, hidden)]):
        inits += [numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), f"w{i}"),
                  numpy_helper.from_array(np.full(n, 1e-3, np.float32), f"s{i}"),
                  numpy_helper.from_array(np.zeros(n, np.float32), f"b{i}")]
        nodes.append(helper.make_node("DynamicQuantizeMatMul", [src, f"w{i}", f"s{i}", "", f"b{i}"], [f"y{i}"],
                                      domain="com.microsoft"))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["tokens", hidden]),
              helper.make_tensor_value_info("h", TensorProto.FLOAT, ["tokens", ffn])]
    graph = helper.make_graph(nodes, "matmuls", inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE, _MADV_COLLAPSE = 14, 25  # Linux <asm-generic/mman-common.h>; MADV_COLLAPSE since Linux 6.1


def anonymous_mappings() -> set[tuple[int, int]]:
    """(start, end) of this process's writable private anonymous mappings of 2 MB or more (Linux)."""
    found = set()
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) == 5 or fields[5] == "[heap]":  # no file behind it
                start, end = (int(v, 16) for v in fields[0].split("-"))
                if fields[1].startswith("rw") and end - start >= _HUGE_PAGE:
                    found.add((start, end))
    return found


def collapse_onto_huge_pages(before: set[tuple[int, int]]) -> int:
    """Move the anonymous mappings made since ``before`` (a session's repacked weights) onto 2 MB pages now
    (``MADV_HUGEPAGE`` + ``MADV_COLLAPSE``, Linux 6.1+); returns the bytes moved."""
    import ctypes

    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    done = 0
    for start, end in sorted(anonymous_mappings() - before):
        start, end = -(-start // _HUGE_PAGE) * _HUGE_PAGE, end // _HUGE_PAGE * _HUGE_PAGE
        if end > start and madvise(start, end - start, _MADV_HUGEPAGE) == 0 and \
                madvise(start, end - start, _MADV_COLLAPSE) == 0:
            done += end - start
    return done


class OpenVinoSession:
    """An OpenVINO CPU model with ONNX Runtime's ``run(None, feed)`` (outputs in the graph's order). Settings: the
    fastest found for the int8 graph (fp32 activations, its dynamic quantization in groups of 1024 inputs; 56-70
    ms against ONNX Runtime's 40-42 on the 2-core EPYC, round 6)."""

    def __init__(self, path: Path, threads: int) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise SystemExit("runtime=openvino needs the openvino package (pip install openvino)") from None
        core = ov.Core()
        self.model = core.compile_model(core.read_model(str(path)), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 1024})
        self.request = self.model.create_infer_request()

    def run(self, _names: None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = self.request.infer(feed)
        return [out[o] for o in self.model.outputs]


def session(path: Path, opts: dict[str, str]) -> Any:
    """The app's session settings (``quantize.OnnxM3``) with the variant's changes."""
    from desktop_search.core import quantize

    threads = int(opts.get("threads", quantize.cpu_threads()))
    if opts.get("runtime", "onnxruntime") == "openvino":
        return OpenVinoSession(path, threads)
    ort = quantize.import_onnxruntime()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if "spin" in opts:
        so.add_session_config_entry("session.intra_op.allow_spinning", opts["spin"])
    if "block_base" in opts:
        so.add_session_config_entry("session.dynamic_block_base", opts["block_base"])
    before = anonymous_mappings() if opts.get("hugepages") == "1" else set()
    source = matmuls_only() if str(path) == MATMULS else str(path)
    sess = ort.InferenceSession(source, sess_options=so, providers=["CPUExecutionProvider"])
    if opts.get("hugepages") == "1":
        collapse_onto_huge_pages(before)
    return sess


def one_matmul(hidden: int = HIDDEN, ffn: int = FFN) -> bytes:
    """One ``DynamicQuantizeMatMul`` (hidden x ffn int8 weights, 4 MB for BGE-M3: they stay in cache when run
    again and again)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.integers(-127, 128, (hidden, ffn), dtype=np.int8), "w"),
             numpy_helper.from_array(np.full(ffn, 1e-3, np.float32), "s")]
    node = helper.make_node("DynamicQuantizeMatMul", ["x", "w", "s"], ["y"], domain="com.microsoft")
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", hidden])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model.SerializeToString()


def ram_read_gb_s(mb: int = 512) -> float:
    """This machine's read rate from RAM (one thread summing an array far larger than any cache), best of 3."""
    a = np.ones(mb * (1 << 20) // 8, dtype=np.int64)
    best = min(c.timed(a.sum)[0] for _ in range(3))
    return round(a.nbytes / best / 1e9, 1)


def kernel_rate(rows: int, floor_feed: dict[str, np.ndarray], runs: int = 40) -> dict[str, Any]:
    """GMAC/s of ONNX Runtime's int8 kernel on ``rows`` rows, weights in cache and from RAM, at 1 and all threads,
    and the time the query's matmuls would take at the best of them."""
    from desktop_search.core import quantize

    ort = quantize.import_onnxruntime()
    x = {"x": np.random.default_rng(2).standard_normal((rows, HIDDEN), dtype=np.float32)}
    everyone = quantize.cpu_threads()
    out: dict[str, Any] = {"rows": rows, "query_int8_macs": query_macs(rows), "ram_read_gb_s": ram_read_gb_s()}
    for threads in sorted({1, everyone}):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.log_severity_level = threads, 3
        cached = ort.InferenceSession(one_matmul(), sess_options=so, providers=["CPUExecutionProvider"])
        streamed = session(Path(MATMULS), {"threads": str(threads)})
        for sess, feed, macs, name in ((cached, x, rows * HIDDEN * FFN, "in_cache"),
                                       (streamed, floor_feed, query_macs(rows), "from_ram")):
            for _ in range(5):
                sess.run(None, feed)
            reps = runs * (10 if name == "in_cache" else 1)
            best = float(np.median([c.timed(lambda: sess.run(None, feed))[0] for _ in range(reps)]))
            out[f"gmac_s_{name}_{threads}_threads"] = round(macs / best / 1e9, 1)
    rate = out[f"gmac_s_in_cache_{everyone}_threads"]
    out["matmuls_ms_at_in_cache_rate"] = round(query_macs(rows) / (rate * 1e9) * 1000, 1)
    out["matmuls_ms_from_ram"] = round(query_macs(rows) / (out[f"gmac_s_from_ram_{everyone}_threads"] * 1e9) * 1000, 1)
    out["weights_mb_read_per_query"] = round(query_macs(1) / 1e6, 1)
    return out


def parse_variant(text: str) -> tuple[str, Path, dict[str, str]]:
    name, _, rest = text.partition("=")
    path, _, options = rest.partition(":")
    pairs = [kv.split("=", 1) for kv in options.split(",") if kv]
    opts = {kv[0]: kv[1] for kv in pairs if len(kv) == 2}
    if not name or not path or len(opts) != len(pairs) or set(opts) - set(OPTIONS):
        raise SystemExit(f"bad --variant {text!r} (name=path[:{'=..,'.join(OPTIONS)}=..])")
    return name, Path(path), opts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--variant", action="append", default=[], help="name=graph.onnx[:option=value,...]")
    p.add_argument("--kernel-rate", action="store_true", help="measure the int8 kernel's GMAC/s in cache and from RAM")
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--gap-ms", type=float, default=50.0, help="idle time before each timed run")
    args = p.parse_args(argv)
    variants = [parse_variant(v) for v in args.variant]
    if not variants and not args.kernel_rate:
        raise SystemExit("nothing to measure: give --variant name=graph.onnx and/or --kernel-rate")
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 200000, (args.batch, args.tokens)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 0, 2  # <s> ... </s>
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    rows = args.batch * args.tokens
    floor_feed = {"x": rng.standard_normal((rows, 1024), dtype=np.float32),
                  "h": rng.standard_normal((rows, 4096), dtype=np.float32)}
    result: dict[str, Any] = {"benchmark": "query_ab", "machine": c.machine(), "tokens": args.tokens,
                              "batch": args.batch, "rounds": args.rounds, "gap_ms": args.gap_ms, "variants": {}}
    if args.kernel_rate:  # before any variant's session holds memory or threads
        c.log("int8 kernel rate")
        result["kernel_rate"] = kernel_rate(rows, floor_feed)
    sessions = []
    for name, path, opts in variants:
        c.log(f"loading {name}")
        sessions.append((name, session(path, opts)))
    feeds = {name: floor_feed if str(path) == MATMULS else feed for name, path, _ in variants}
    ref = None
    for name, sess in sessions:
        for _ in range(3):
            out = sess.run(None, feeds[name])[0]
        result["variants"][name] = {}
        if feeds[name] is feed:
            ref = out if ref is None else ref
            cos = np.sum(out * ref, axis=1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1))
            result["variants"][name]["dense_cosine_to_first_graph"] = round(float(cos.min()), 6)
    wall: dict[str, list[float]] = {n: [] for n, _ in sessions}
    cpu: dict[str, list[float]] = {n: [] for n, _ in sessions}
    c.log(f"{args.rounds} rounds")
    for r in range(args.rounds):
        for name, sess in sessions if r % 2 == 0 else sessions[::-1]:
            time.sleep(args.gap_ms / 1000)
            before = c.cpu_seconds()
            dt, _ = c.timed(lambda: sess.run(None, feeds[name]))
            cpu[name].append(c.cpu_seconds() - before)
            wall[name].append(dt)
    first = sessions[0][0] if sessions else ""
    for (name, sess), (_, path, opts) in zip(sessions, variants):
        entry = result["variants"][name]
        entry.update({"graph": str(path), "options": opts, **c.percentiles(wall[name]),
                      "p10_ms": round(float(np.percentile(wall[name], 10)) * 1000, 2),
                      "cpu_p50_ms": round(float(np.median(cpu[name])) * 1000, 2)})
        entry["p50_vs_first"] = round(float(np.median(wall[name]) / np.median(wall[first])), 3)
        entry["cpu_p50_vs_first"] = round(float(np.median(cpu[name]) / np.median(cpu[first])), 3)
    return result


if __name__ == "__main__":
    c.emit(main())
