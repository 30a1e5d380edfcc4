"""Fast CPU inference for BGE-M3: an int8 ONNX Runtime copy of the model, built once and checked against fp32.

Most users have no GPU, and on a laptop CPU the fp32 torch forward pass is the whole cost of indexing and the
latency of every query. Dynamic int8 quantization (int8 weights per output channel, activations quantized per
batch at run time) lets ONNX Runtime use the CPU's integer dot-product instructions (VNNI), several times
faster than fp32 for the same model.

``build_int8`` traces the FlagEmbedding model (encoder + ColBERT and sparse heads, normalisation included) into
one ONNX graph with all three outputs, quantizes its matrix products and embedding table, and stores it under a
cache folder keyed by the model fingerprint, together with the fp32 outputs for a few fixed multilingual
calibration sentences. It runs once per model, in a child process (tracing and quantizing the full model
takes minutes and several GB, all returned to the OS when the child ends); the app then never loads the fp32
weights at all.

``load_int8`` opens the cached graph and is the fidelity guard: it encodes the calibration sentences again on
this machine (int8 kernels differ between CPUs: without VNNI, x86 uses a saturating instruction) and refuses
the graph (the caller falls back to fp32) if the dense vectors are not close enough to the stored fp32 ones.
Nothing here runs at import time; torch and onnx are imported only while building.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
REFERENCE_FILE = "reference.npz"
META_FILE = "int8.json"
# Below this mean cosine between int8 and fp32 dense vectors of the calibration sentences, int8 is refused.
MIN_DENSE_COSINE = 0.99
MIN_COLBERT_COSINE = 0.97

# Fixed, varied calibration text: several scripts, short and paragraph-long, query-like and passage-like.
CALIBRATION = (
    "how do solar panels turn sunlight into electricity",
    "Photovoltaic cells convert light into direct current; an inverter turns it into alternating current for the "
    "grid. Modern silicon cells reach about twenty percent efficiency, thin-film cells somewhat less.",
    "Berlin ist die Hauptstadt Deutschlands. Die Mauer teilte die Stadt von 1961 bis 1989.",
    "東京は日本の首都です。東京タワーと浅草寺は有名な観光地です。",
    "القاهرة هي عاصمة مصر وأكبر مدنها. يمر نهر النيل عبر المدينة.",
    "Москва — столица России. Кремль находится в центре города.",
    "Le pain au levain se prépare avec de la farine, de l'eau, du sel et un levain naturel.",
    "what is the effect of vitamin D supplementation on bone density in older adults",
)


@dataclass
class Verdict:
    """How close the int8 graph came to fp32 on the calibration sentences, and whether that is close enough."""

    ok: bool
    mean_dense_cosine: float
    min_dense_cosine: float
    mean_colbert_cosine: float
    note: str = ""


def int8_dir(cache_root: Path, fingerprint: str) -> Path:
    return Path(cache_root) / f"bge-m3-int8-{fingerprint}-v{FORMAT_VERSION}"


def cpu_threads() -> int:
    """CPUs this process may use (affinity-aware where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def import_onnxruntime():  # noqa: ANN201 - the module
    """ONNX Runtime with its telemetry off: ``ORT_DISABLE_TELEMETRY`` (environment.py) must be set before the
    first import, which starts its 1DS uploader on Linux and macOS; ``disable_telemetry_events`` turns off the ETW
    events of its Windows builds."""
    from desktop_search.environment import prepare_process

    prepare_process()
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


class OnnxM3:
    """The int8 graph in an ONNX Runtime session: (input_ids, attention_mask) -> (dense, token weights, colbert)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ORT's default counts physical cores only, which halves the threads on SMT-only VMs; one forward pass
        # at a time runs (the encoder holds a lock), so every usable CPU goes to that pass.
        opts.intra_op_num_threads = threads or cpu_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dense, weights, colbert = self.session.run(
            None, {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
        )
        return dense, weights, colbert


def _wrapper(net):
    """The FlagEmbedding inference forward pass with all three outputs, as a traceable module."""
    import torch
    import torch.nn.functional as F

    class M3Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids, attention_mask):
            h = self.net.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state
            dense = F.normalize(h[:, 0], dim=-1)
            weights = torch.relu(self.net.sparse_linear(h)).squeeze(-1)
            colbert = self.net.colbert_linear(h[:, 1:]) * attention_mask[:, 1:, None].to(h.dtype)
            return dense, weights, F.normalize(colbert, dim=-1)

    return M3Graph().eval()


def _calibration_batch(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    enc = tokenizer(list(CALIBRATION), padding=True, truncation=True, max_length=512, return_tensors="np")
    return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)


def _compare(ref_dense, ref_colbert, dense, colbert, mask) -> Verdict:
    cos = np.sum(ref_dense * dense, axis=1) / (
        np.linalg.norm(ref_dense, axis=1) * np.linalg.norm(dense, axis=1) + 1e-12
    )
    real = mask[:, 1:].astype(bool)
    a, b = ref_colbert[real], colbert[real]
    ccos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    mean_d, min_d, mean_c = float(cos.mean()), float(cos.min()), float(ccos.mean())
    ok = mean_d >= MIN_DENSE_COSINE and mean_c >= MIN_COLBERT_COSINE
    note = (
        f"int8 vs fp32 on calibration text: dense cosine mean {mean_d:.4f} (min {min_d:.4f}), "
        f"ColBERT cosine mean {mean_c:.4f}"
    )
    if not ok:
        note += f"; below the limits ({MIN_DENSE_COSINE} dense, {MIN_COLBERT_COSINE} ColBERT)"
    return Verdict(ok, mean_d, min_d, mean_c, note)


def build_int8(model_dir: Path, out_dir: Path) -> Path:
    """Load the fp32 FlagEmbedding model from ``model_dir``, trace it to ONNX, free it, quantize the graph and
    store the fp32 calibration outputs beside it. Writes into a temporary folder renamed at the end, so a crash
    or a concurrent build never leaves a half-written graph that looks complete. Memory-hungry (the full model
    peaks at several GB): the encoder runs it in a child process, see :func:`build_int8_in_subprocess`."""
    import gc

    import onnx
    import torch
    from FlagEmbedding import BGEM3FlagModel
    import_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "fp32").mkdir(parents=True)
    t0 = time.monotonic()
    flag = BGEM3FlagModel(str(model_dir), use_fp16=False, devices=["cpu"], normalize_embeddings=True)
    tokenizer = flag.tokenizer
    module = _wrapper(flag.model.float().eval())
    ids, mask = _calibration_batch(tokenizer)
    ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
    with torch.inference_mode():
        ref_dense, _w, ref_colbert = (t.float().numpy() for t in module(ids_t, mask_t))
    fp32_path = tmp / "fp32" / MODEL_FILE
    _export(module, ids_t, mask_t, fp32_path)
    del flag, module
    gc.collect()
    t_export = time.monotonic() - t0
    quantize_dynamic(
        str(fp32_path),
        str(tmp / MODEL_FILE),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # The 250k x 1024 embedding table is half the model: int8 rows (Gather) shrink it fourfold.
        op_types_to_quantize=["MatMul", "Gather"],
        use_external_data_format=False,
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    shutil.rmtree(tmp / "fp32")
    t_quant = time.monotonic() - t0 - t_export
    np.savez(tmp / REFERENCE_FILE, dense=ref_dense, colbert=ref_colbert, mask=mask)
    verdict = _compare(ref_dense, ref_colbert, *_run_calibration(OnnxM3(tmp / MODEL_FILE), tokenizer))
    meta = {
        "format": FORMAT_VERSION,
        "export_s": round(t_export, 1),
        "quantize_s": round(t_quant, 1),
        "built_on_verdict": asdict(verdict),
    }
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2), "utf-8")
    if out_dir.exists():  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        try:
            os.replace(tmp, out_dir)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _child_build(model_dir: str, out_dir: str, error_file: str) -> None:
    import logging
    import traceback
    import warnings

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs advice at WARNING on the root logger
    warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches: checked in tests
    try:
        build_int8(Path(model_dir), Path(out_dir))
    except BaseException as e:
        Path(error_file).write_text(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}", "utf-8")
        raise SystemExit(1) from None


def build_int8_in_subprocess(model_dir: Path, out_dir: Path, timeout_s: float = 3600.0) -> Path:
    """:func:`build_int8` in a fresh process: its peak memory (fp32 weights, the traced graph, the quantizer's
    copies) is returned to the OS when it ends, and a crash or an out-of-memory kill there only means fp32."""
    import multiprocessing
    import tempfile

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    fd, error_file = tempfile.mkstemp(prefix="int8-build-", suffix=".txt", dir=out_dir.parent)
    os.close(fd)
    try:
        proc = multiprocessing.get_context("spawn").Process(
            target=_child_build, args=(str(model_dir), str(out_dir), error_file), daemon=True
        )
        proc.start()
        proc.join(timeout_s)
        if proc.is_alive():
            proc.kill()
            proc.join()
            raise RuntimeError(f"building the int8 model took longer than {timeout_s:.0f} s")
        detail = Path(error_file).read_text("utf-8").split("\n\n")[0].strip()
        if proc.exitcode != 0 or not is_built(out_dir):
            raise RuntimeError(detail or f"the int8 build process ended with code {proc.exitcode}")
    finally:
        Path(error_file).unlink(missing_ok=True)
    return out_dir


def _export(module, ids_t, mask_t, path: Path) -> None:
    import torch

    with torch.no_grad():
        torch.onnx.export(
            module,
            (ids_t, mask_t),
            str(path),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["dense", "weights", "colbert"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "dense": {0: "batch"},
                "weights": {0: "batch", 1: "tokens"},
                "colbert": {0: "batch", 1: "tokens_1"},
            },
            opset_version=17,
            do_constant_folding=True,
        )


def _run_calibration(session: OnnxM3, tokenizer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids, mask = _calibration_batch(tokenizer)
    dense, _w, colbert = session.run(ids, mask)
    return dense, colbert, mask


def is_built(out_dir: Path) -> bool:
    out_dir = Path(out_dir)
    return all((out_dir / f).is_file() for f in (MODEL_FILE, REFERENCE_FILE, META_FILE))


def load_int8(out_dir: Path, tokenizer, threads: int | None = None) -> tuple[OnnxM3, Verdict]:
    """Open the cached int8 graph and check it on this machine against the stored fp32 calibration outputs."""
    session = OnnxM3(Path(out_dir) / MODEL_FILE, threads)
    ref = np.load(Path(out_dir) / REFERENCE_FILE)
    dense, colbert, mask = _run_calibration(session, tokenizer)
    if dense.shape != ref["dense"].shape or colbert.shape != ref["colbert"].shape:
        return session, Verdict(False, 0.0, 0.0, 0.0, "int8 graph and its fp32 reference disagree in shape")
    return session, _compare(ref["dense"], ref["colbert"], dense, colbert, mask)


def reference_dim(out_dir: Path) -> int:
    """The model width, from the stored calibration vectors (no torch model is loaded in int8 mode)."""
    with np.load(Path(out_dir) / REFERENCE_FILE) as ref:
        return int(ref["dense"].shape[1])


def build_info(out_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(out_dir) / META_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
