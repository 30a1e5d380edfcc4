"""Fast CPU inference for BGE-M3: an int8 ONNX Runtime copy of the model, built once and checked against fp32.

Most users have no GPU, and on a laptop CPU the fp32 torch forward pass is the whole cost of indexing and the
latency of every query. Dynamic int8 quantization (int8 weights per output column, activations quantized per
call at run time) lets ONNX Runtime use the CPU's integer dot-product instructions (VNNI), several times
faster than fp32 for the same model.

``build_int8`` runs once per model, in a child process: FlagEmbedding's fp32 model encodes a few fixed
multilingual calibration sentences (the fidelity reference, stored with their token ids) and its tokenizer is
saved for the app; then ``m3graph.py`` writes the whole model (encoder + sparse and ColBERT heads,
normalisation included) as one ONNX graph with fused operators, reading, quantizing and writing one weight
matrix at a time, so the build never holds a second fp32 copy of the model (peak ~1.8 GB for BGE-M3, was 9.3 GB
when the torch model was traced and the traced graph quantized). Progress goes to the caller through a pipe.
Everything lives in a cache folder keyed by the model fingerprint and the format version.

``load_int8`` opens the cached graph and is the fidelity guard: it runs the stored calibration ids again on
this machine (int8 kernels differ between CPUs: without VNNI, x86 uses a saturating instruction) and refuses
the graph (the caller falls back to fp32) if the dense vectors are not close enough to the stored fp32 ones.
Loading needs only onnxruntime, numpy and `tokenizers`: torch, transformers and onnx are imported only while
building.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from desktop_search.core.m3graph import DATA_SUFFIX
from desktop_search.core.tokenizer import SPECIALS_FILE, TOKENIZER_FILE, M3Tokenizer

FORMAT_VERSION = 4  # 2: graph written from the weights (m3graph), external data, tokenizer saved beside it;
# 3: LayerNorm from plain operators (ONNX Runtime's fused CPU LayerNorm kernels are slower);
# 4: LayerNorm as InstanceNormalization, its beta folded into the next biases (3 operators a norm instead of 11)
MODEL_FILE = "model.onnx"
REFERENCE_FILE = "reference.npz"
META_FILE = "int8.json"
CHECKED_FILE = "checked.json"  # verdicts of the load-time check, per machine
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


def import_onnxruntime() -> Any:  # the onnxruntime module
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
        opts.log_severity_level = 3  # ONNX Runtime's warnings are advice for graph authors, not for users
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


def _wrapper(net: Any) -> Any:
    """The FlagEmbedding inference forward pass with all three outputs, as a traceable module."""
    import torch
    import torch.nn.functional as F

    class M3Graph(torch.nn.Module):  # type: ignore[misc]  # torch is not analysed (Any)
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any, Any]:
            h = self.net.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state
            dense = F.normalize(h[:, 0], dim=-1)
            weights = torch.relu(self.net.sparse_linear(h)).squeeze(-1)
            colbert = self.net.colbert_linear(h[:, 1:]) * attention_mask[:, 1:, None].to(h.dtype)
            return dense, weights, F.normalize(colbert, dim=-1)

    return M3Graph().eval()


def _calibration_batch(tokenizer: Any) -> tuple[np.ndarray, np.ndarray]:
    enc = tokenizer(list(CALIBRATION), padding=True, truncation=True, max_length=512, return_tensors="np")
    return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)


def _compare(ref_dense: np.ndarray, ref_colbert: np.ndarray, dense: np.ndarray, colbert: np.ndarray,
             mask: np.ndarray) -> Verdict:
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


@dataclass(frozen=True)
class BuildProgress:
    """Where a running int8 build is: ``stage`` is "reference", "layers" or "check"; ``done`` of ``total``."""

    stage: str
    done: int
    total: int

    @property
    def phase(self) -> str:
        """The stage, or "done" once the check has finished."""
        return "done" if self.stage == "check" and self.done >= self.total else self.stage

    @property
    def overall(self) -> float:
        """Rough share of the whole build done (the fp32 reference pass is most of its time)."""
        part = self.done / self.total if self.total else 0.0
        start, width = {"reference": (0.0, 0.6), "layers": (0.6, 0.35), "check": (0.95, 0.05)}.get(self.stage, (0, 1))
        return start + width * part

    def text(self) -> str:
        if self.phase == "done":
            return "Preparing the fast CPU model (once): done"
        if self.stage == "reference":
            return "Preparing the fast CPU model (once): fp32 reference outputs"
        if self.stage == "layers":
            return f"Preparing the fast CPU model (once): {self.done} / {self.total} layers quantized"
        return "Preparing the fast CPU model (once): checking it against fp32"


ProgressFn = Callable[[BuildProgress], None]
# Odd inputs the saved tokenizer must agree on with transformers' (whitespace, literal special tokens, emoji).
TOKENIZER_CHECK = CALIBRATION + (
    "", "   ", " leading and  double  spaces\tand\nlines", "a <s> b </s> <mask> c <pad>", "emoji 🎉 e\u0301 ﬁ Ｆｕｌｌ",
    "naïve café ΑΘΗΝΑ हिन्दी ไทย 한국어", "x" * 600,
)


def _reference(model_dir: Path, out: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """FlagEmbedding's own fp32 outputs for the calibration sentences (the int8 graph is checked against them),
    and its tokenizer saved for the torch-free app process. transformers maps the weights from disk, so this
    touches each weight once without a second copy; the model is freed before the graph is written."""
    import gc

    import torch
    from FlagEmbedding import BGEM3FlagModel

    from desktop_search.core.tokenizer import save_from_transformers

    flag = BGEM3FlagModel(str(model_dir), use_fp16=False, devices=["cpu"], normalize_embeddings=True)
    save_from_transformers(flag.tokenizer, out, TOKENIZER_CHECK)
    ids, mask = _calibration_batch(flag.tokenizer)
    module = _wrapper(flag.model.float().eval())
    with torch.inference_mode():
        outputs = module(torch.from_numpy(ids), torch.from_numpy(mask))
        ref_dense, ref_colbert = outputs[0].float().numpy().copy(), outputs[2].float().numpy().copy()
    del flag, module, outputs
    gc.collect()
    return ids, mask, ref_dense, ref_colbert


def build_int8(model_dir: Path, out_dir: Path, progress: ProgressFn | None = None) -> Path:
    """Build the int8 graph of the model in ``model_dir`` into ``out_dir``: FlagEmbedding's fp32 outputs for the
    calibration sentences first (the fidelity reference), then the graph written layer by layer from the weights
    on disk (``m3graph.py``), then the check. Writes into a temporary folder renamed at the end, so a crash or a
    concurrent build never leaves a half-written graph that looks complete. Peak memory is the fp32 reference
    pass (~1.8 GB for BGE-M3, mostly weight pages mapped from disk); the app runs it in a child process, see
    :func:`build_int8_in_subprocess`."""
    from desktop_search.core import m3graph

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(BuildProgress(stage, done, total))

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.monotonic()
    report("reference", 0, 1)
    ids, mask, ref_dense, ref_colbert = _reference(model_dir, tmp)
    np.savez(tmp / REFERENCE_FILE, dense=ref_dense, colbert=ref_colbert, mask=mask, input_ids=ids)
    t_ref = time.monotonic() - t0
    m3graph.build_graph(model_dir, tmp / MODEL_FILE, "int8", lambda d, n: report("layers", d, n))
    t_graph = time.monotonic() - t0 - t_ref
    report("check", 0, 1)
    verdict, session = _check(tmp)
    del session
    if verdict.ok:
        _remember(tmp, _machine_key(tmp), verdict)
    meta = {
        "format": FORMAT_VERSION,
        "reference_s": round(t_ref, 1),
        "graph_s": round(t_graph, 1),
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
    _remove_other_versions(out_dir)
    report("check", 1, 1)
    return out_dir


def _remove_other_versions(out_dir: Path) -> None:
    """Int8 copies of the same model in an older format are never read again: give their disk space back."""
    stem = out_dir.name.rsplit("-v", 1)[0]
    for old in out_dir.parent.glob(f"{stem}-v*"):
        if old != out_dir and old.is_dir() and ".tmp" not in old.name:
            shutil.rmtree(old, ignore_errors=True)


def _child_build(model_dir: str, out_dir: str, error_file: str, conn: Any) -> None:
    import logging
    import traceback
    import warnings

    logging.getLogger().setLevel(logging.ERROR)
    warnings.simplefilter("ignore")

    def send(p: BuildProgress) -> None:
        try:
            conn.send(p)
        except (OSError, ValueError):
            pass  # the parent stopped listening; the build goes on

    try:
        build_int8(Path(model_dir), Path(out_dir), send)
    except BaseException as e:
        Path(error_file).write_text(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}", "utf-8")
        raise SystemExit(1) from None
    finally:
        conn.close()


def build_int8_in_subprocess(
    model_dir: Path, out_dir: Path, progress: ProgressFn | None = None, timeout_s: float = 3600.0
) -> Path:
    """:func:`build_int8` in a fresh process (torch and the fp32 reference pass live and die there, and a crash
    or an out-of-memory kill there only means fp32); its progress is passed on to ``progress`` here."""
    import multiprocessing
    import tempfile

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    fd, error_file = tempfile.mkstemp(prefix="int8-build-", suffix=".txt", dir=out_dir.parent)
    os.close(fd)
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    try:
        proc = ctx.Process(target=_child_build, args=(str(model_dir), str(out_dir), error_file, send), daemon=True)
        proc.start()
        send.close()  # the child holds the only writing end: recv() ends with EOFError when it exits
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                proc.join()
                raise RuntimeError(f"building the int8 model took longer than {timeout_s:.0f} s")
            try:
                if not receive.poll(0.5):
                    if not proc.is_alive():
                        break
                    continue
                update = receive.recv()
            except (EOFError, OSError):
                break
            if progress is not None and isinstance(update, BuildProgress):
                progress(update)
        proc.join(max(1.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()
        detail = Path(error_file).read_text("utf-8").split("\n\n")[0].strip()
        if proc.exitcode != 0 or not is_built(out_dir):
            raise RuntimeError(detail or f"the int8 build process ended with code {proc.exitcode}")
    finally:
        receive.close()
        Path(error_file).unlink(missing_ok=True)
    return out_dir


def is_built(out_dir: Path) -> bool:
    out_dir = Path(out_dir)
    return all((out_dir / f).is_file() for f in (MODEL_FILE, MODEL_FILE + DATA_SUFFIX, REFERENCE_FILE, META_FILE,
                                                  TOKENIZER_FILE, SPECIALS_FILE))


def _check(out_dir: Path, threads: int | None = None) -> tuple[Verdict, OnnxM3]:
    session = OnnxM3(Path(out_dir) / MODEL_FILE, threads)
    with np.load(Path(out_dir) / REFERENCE_FILE) as ref:
        ref_dense, ref_colbert, ids, mask = ref["dense"], ref["colbert"], ref["input_ids"], ref["mask"]
    dense, _w, colbert = session.run(ids, mask)
    if dense.shape != ref_dense.shape or colbert.shape != ref_colbert.shape:
        return Verdict(False, 0.0, 0.0, 0.0, "int8 graph and its fp32 reference disagree in shape"), session
    return _compare(ref_dense, ref_colbert, dense, colbert, mask), session


def _machine_key(out_dir: Path) -> str:
    """What the check's result depends on: this graph's reference, the CPU's int8 instructions, ONNX Runtime."""
    import hashlib
    import platform

    onnxruntime = import_onnxruntime()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                flags = ",".join(sorted(have & {"avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8",
                                                "asimddp", "i8mm"}))
                break
    except OSError:
        pass
    h = hashlib.sha256((Path(out_dir) / REFERENCE_FILE).read_bytes())
    h.update(f"{platform.machine()}|{platform.processor()}|{flags}|{onnxruntime.__version__}".encode())
    return h.hexdigest()[:20]


def _remember(out_dir: Path, key: str, verdict: Verdict) -> None:
    path = Path(out_dir) / CHECKED_FILE
    try:
        known = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        known[key] = asdict(verdict)
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=2), "utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass  # a read-only cache only means the check runs again next time


def load_int8(out_dir: Path, threads: int | None = None) -> tuple[OnnxM3, Verdict]:
    """Open the cached int8 graph and check it on this machine against the stored fp32 calibration outputs
    (the stored token ids are run, so no tokenizer is involved in the check). A passed check is remembered per
    CPU instruction set and ONNX Runtime version: the same kernels give the same result, so later starts on
    this machine skip the calibration pass (seconds on a laptop)."""
    key = _machine_key(out_dir)
    try:
        known = json.loads((Path(out_dir) / CHECKED_FILE).read_text("utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        known = None
    if known and known.get("ok"):
        return OnnxM3(Path(out_dir) / MODEL_FILE, threads), Verdict(**known)
    verdict, session = _check(out_dir, threads)
    if verdict.ok:
        _remember(out_dir, key, verdict)
    return session, verdict


def load_tokenizer(out_dir: Path) -> M3Tokenizer:
    """The tokenizer FlagEmbedding uses, as saved beside the int8 graph (no transformers import)."""
    return M3Tokenizer.load(out_dir)


def reference_dim(out_dir: Path) -> int:
    """The model width, from the stored calibration vectors (no torch model is loaded in int8 mode)."""
    with np.load(Path(out_dir) / REFERENCE_FILE) as ref:
        return int(ref["dense"].shape[1])
