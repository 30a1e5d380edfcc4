"""Chunks -> BGE-M3 representations: dense vector, learned lexical (sparse) weights and ColBERT vectors.

Two engines behind one ``Encoder``:

* on a CPU by default, the int8 ONNX Runtime copy of the model (``quantize.py``), with the tokenizer FlagEmbedding
  uses saved beside it (``tokenizer.py``): the app process then imports neither torch nor transformers (seconds
  of import and ~400 MB of libraries); the copy is built once, in a child process, with progress reported;
* on a GPU, or with ``precision="fp32"``, or when the int8 copy cannot be built or fails its fidelity check,
  FlagEmbedding's ``BGEM3FlagModel`` loaded from a local directory only (hub libraries are forced offline
  first), so weights, heads and tokenizer are exactly the ones FlagEmbedding uses.

Both run the model's forward pass once per batch for all three outputs and post-process them the way
``BGEM3FlagModel.encode`` does (max weight per token id without special tokens; ColBERT vectors without the CLS
position), but batch by a token budget over length-sorted inputs instead of a fixed count: less padding, no
probe batch run twice, and no retry loop that can spin forever on a non-memory RuntimeError.
torch/transformers/FlagEmbedding are imported only when the torch engine is loaded: they take ~10 s to import.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from desktop_search.config import CPU_PRECISIONS
from desktop_search.core.tokenizer import pad_rows
from desktop_search.environment import prepare_process
from desktop_search.errors import UserError

if TYPE_CHECKING:
    from desktop_search.core.quantize import BuildProgress

REQUIRED_FILES = ("config.json", "tokenizer.json", "colbert_linear.pt", "sparse_linear.pt")
WEIGHT_FILES = ("pytorch_model.bin", "model.safetensors")
# Passages are chunked to the configured budget, so this window only guards against estimated chunks
# (made before a model was installed) and is never reached by tokenizer-counted ones.
PASSAGE_MAX_TOKENS = 8192
QUERY_MAX_TOKENS = 512
CPU_BATCH_TOKENS = 8192  # padded tokens per forward pass on the CPU: larger batches gain nothing there
# A GPU's batch budget comes from its free memory: fp16 XLM-R-large activations of 512-token sequences (attention
# scores, the 4096-wide FFN, fp32 copies of the outputs) are ~48 KB a token; twice that leaves room for the
# allocator. 1 GiB stays free for other programs; an out-of-memory error halves the budget anyway.
GPU_BYTES_PER_TOKEN = 96 * 1024
GPU_RESERVE_BYTES = 1 << 30
GPU_BATCH_TOKENS_MIN, GPU_BATCH_TOKENS_MAX = 4096, 131072


def gpu_batch_tokens(free_bytes: int, hidden_size: int = 1024) -> int:
    """Padded tokens per forward pass for a GPU with ``free_bytes`` free (a multiple of 512)."""
    per_token = GPU_BYTES_PER_TOKEN * max(hidden_size, 1) / 1024
    budget = int(max(0, free_bytes - GPU_RESERVE_BYTES) / per_token) // 512 * 512
    return int(min(GPU_BATCH_TOKENS_MAX, max(GPU_BATCH_TOKENS_MIN, budget)))


def is_out_of_memory(exc: BaseException) -> bool:
    """A forward pass that ran out of (GPU or host) memory: worth retrying with a smaller batch."""
    text = str(exc).lower()
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text or "failed to allocate" in text


class ModelUnavailable(UserError, RuntimeError):
    """No usable model in the model directory; the message says what is missing and what to do."""


@dataclass
class Encoded:
    dense: np.ndarray  # (n, dim) float32, unit rows
    sparse: list[dict[int, float]]  # token id -> weight, as BGEM3FlagModel lexical_weights (ids as int)
    colbert: list[np.ndarray]  # per text (tokens, dim) float32, unit rows

    def __len__(self) -> int:
        return len(self.sparse)


def model_problem(model_dir: Path) -> str | None:
    """Why ``model_dir`` cannot be loaded, or None if every file the encoder needs is there and verified."""
    from desktop_search.core.models import verification_problem

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return f"no model at {model_dir} (run `desktop-search model download`, or pass --model-dir)"
    missing = [f for f in REQUIRED_FILES if not (model_dir / f).is_file()]
    if not any((model_dir / f).is_file() for f in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        return f"model at {model_dir} is incomplete: missing {', '.join(missing)}"
    # Weights are only loaded after their SHA-256 matched (a cheap size + mtime check against that record here).
    # Everything the loaders may read must be covered: transformers prefers model.safetensors or a sharded
    # index over pytorch_model.bin, so one dropped in after verification would otherwise load unchecked.
    loaded = REQUIRED_FILES + WEIGHT_FILES + (
        "model.safetensors.index.json", "pytorch_model.bin.index.json", "tokenizer_config.json",
        "special_tokens_map.json", "sentencepiece.bpe.model", "added_tokens.json",
    )
    return verification_problem(model_dir, must_cover=loaded)


def model_state(model_dir: Path) -> str:
    """In a few words, for a status line: "ready", "not installed", "incomplete" or "not verified" (files there,
    but never checked against the manifest, or changed since) - never "not installed" for a model that is there."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir() or not any(model_dir.iterdir()):
        return "not installed"
    if any(not (model_dir / f).is_file() for f in REQUIRED_FILES) or not any(
            (model_dir / f).is_file() for f in WEIGHT_FILES):
        return "incomplete"
    return "ready" if model_problem(model_dir) is None else "not verified"


def model_fingerprint(model_dir: Path) -> str:
    """A cheap identity of the weights: vectors from another model must never be mixed into the index."""
    h = hashlib.sha256()
    model_dir = Path(model_dir)
    for name in ("config.json", "colbert_linear.pt", "sparse_linear.pt"):
        p = model_dir / name
        h.update(name.encode())
        h.update(p.read_bytes() if p.is_file() else b"-")
    for name in WEIGHT_FILES:
        p = model_dir / name
        if p.is_file():
            h.update(f"{name}:{p.stat().st_size}".encode())
    return h.hexdigest()[:16]


def _gpu_may_exist() -> bool:
    """Whether 'auto' could find a GPU here; only then is torch imported to ask (its import takes seconds)."""
    if "torch" in sys.modules:
        return True
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return True  # Apple silicon: MPS
    if any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")):
        return True  # NVIDIA, ROCm, WSL's GPU bridge
    return shutil.which("nvidia-smi") is not None


def resolve_device(device: str) -> str:
    """'auto' -> the best available of cuda, mps, cpu; explicit names are checked and kept. torch is imported
    only when a GPU is asked for or may exist."""
    if device == "cpu" or (device == "auto" and not _gpu_may_exist()):
        return "cpu"
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("device 'cuda' was requested but no CUDA GPU is available (use --device auto or cpu)")
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ModelUnavailable("device 'mps' was requested but Apple MPS is not available (use --device auto or cpu)")
    return device


def _force_offline() -> None:
    # After setup the app makes no network access: hub libraries must resolve everything locally.
    prepare_process(offline=True)


class Encoder:
    """BGE-M3 loaded from a local directory; thread-safe (one forward pass at a time).

    On a GPU the FlagEmbedding model runs in fp16. On the CPU ``precision="int8"`` (the default) runs an int8
    ONNX Runtime copy of the model (see ``quantize.py``: built once per model into ``cache_dir``, checked
    against fp32 at every load); if it cannot be built or fails the fidelity check, the encoder falls back to
    the exact fp32 FlagEmbedding path and says why in ``precision_note``. ``precision="fp32"`` always runs
    that exact path (the reference in parity tests).
    """

    def __init__(
        self,
        model_dir: Path,
        device: str = "auto",
        precision: str = "int8",
        cache_dir: Path | None = None,
        progress: Callable[[BuildProgress], None] | None = None,
    ) -> None:
        """``progress`` hears from the one-time int8 build (minutes), if one is needed."""
        problem = model_problem(model_dir)
        if problem:
            raise ModelUnavailable(problem)
        if precision not in CPU_PRECISIONS:
            raise ValueError(f"unknown CPU precision {precision!r}; choose one of {', '.join(CPU_PRECISIONS)}")
        _force_offline()

        self.model_dir = Path(model_dir)
        self.device = resolve_device(device)
        self.fp16 = self.device != "cpu"
        self.fingerprint = model_fingerprint(self.model_dir)
        self._torch: Any = None  # the torch module once the torch engine is loaded
        self.tokenizer: Any = None  # FlagEmbedding's (torch engine) or tokenizer.M3Tokenizer (int8 engine)
        self._lock = threading.Lock()
        self._flag: Any = None
        self._net: Any = None
        self._onnx = None
        self.precision = "fp16" if self.fp16 else "fp32"
        self.precision_note = f"fp16 on {self.device}" if self.fp16 else "fp32 (exact FlagEmbedding path)"
        if self.device == "cpu" and precision == "int8":
            self._load_int8(Path(cache_dir) if cache_dir is not None else _default_cache_dir(), progress)
        if self._onnx is None:
            self._load_torch()
        self.batch_tokens = CPU_BATCH_TOKENS
        if self.device == "cuda":
            torch: Any = self._torch  # loaded just above (a GPU never takes the int8 path)
            free, _total = torch.cuda.mem_get_info(torch.device(self.device))
            self.batch_tokens = gpu_batch_tokens(free, self.dim)

    def _load_torch(self) -> None:
        import torch
        from FlagEmbedding import BGEM3FlagModel

        from desktop_search.core.tokenizer import special_ids_of

        self._torch = torch
        self._flag = BGEM3FlagModel(
            str(self.model_dir), use_fp16=self.fp16, devices=[self.device], normalize_embeddings=True
        )
        self.tokenizer = self._flag.tokenizer
        self._pad_id = int(self.tokenizer.pad_token_id)
        self._unused = frozenset(special_ids_of(self.tokenizer))
        self._net = self._flag.model
        if self.device == "cpu":
            self._net.float()
        self._net.to(self.device)
        self._net.eval()
        self.dim = int(self._net.model.config.hidden_size)

    def _load_int8(self, cache_dir: Path, progress: Callable[[BuildProgress], None] | None) -> None:
        """Use the int8 graph when it is (or can be) built and passes the fidelity check; else leave a note."""
        from desktop_search.core import quantize

        out = quantize.int8_dir(cache_dir, self.fingerprint)
        try:
            if not quantize.is_built(out):
                # Once per model (1-3 min for the full model), in a child process so that torch and the fp32
                # reference pass never weigh on this one.
                quantize.build_int8_in_subprocess(self.model_dir, out, progress)
            tokenizer = quantize.load_tokenizer(out)  # FlagEmbedding's, saved by the build
            session, verdict = quantize.load_int8(out)
        except Exception as e:  # no onnx/onnxruntime, unwritable cache, export failure: fp32 still works
            self.precision_note = f"int8 unavailable ({type(e).__name__}: {e}); using fp32"
            return
        if not verdict.ok:
            self.precision_note = verdict.note + "; using fp32"
            return
        self._onnx = session
        self.tokenizer = tokenizer
        self._pad_id = tokenizer.pad_token_id
        self._unused = tokenizer.special_ids
        self.precision = "int8"
        self.precision_note = verdict.note
        self.dim = quantize.reference_dim(out)

    @property
    def flag_model(self) -> Any:
        """The exact fp32/fp16 FlagEmbedding object, for parity checks against compute_score (loaded on demand)."""
        if self._flag is None:
            with self._lock:
                if self._flag is None:
                    from FlagEmbedding import BGEM3FlagModel

                    flag = BGEM3FlagModel(str(self.model_dir), use_fp16=False, devices=["cpu"])
                    flag.model.float().eval()
                    self._flag = flag
        return self._flag

    def encode_query(self, text: str) -> Encoded:
        return self.encode([text], max_tokens=QUERY_MAX_TOKENS)

    def encode(
        self,
        texts: Sequence[str],
        *,
        max_tokens: int = PASSAGE_MAX_TOKENS,
        batch_tokens: int | None = None,
        progress: Callable[[int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Encoded:
        """Encode texts in length-sorted batches of at most ``batch_tokens`` padded tokens (default: this
        encoder's ``batch_tokens``, from the GPU's free memory on a GPU). A batch that runs out of memory is
        retried at half the budget, which this encoder then keeps; one text alone that does not fit raises."""
        n = len(texts)
        if n == 0:
            return Encoded(np.zeros((0, self.dim), np.float32), [], [])
        enc = {"input_ids": self.tokenizer(list(texts), truncation=True, max_length=max_tokens)["input_ids"]}
        lengths = [len(ids) for ids in enc["input_ids"]]
        order = sorted(range(n), key=lambda i: -lengths[i])
        dense = np.zeros((n, self.dim), np.float32)
        sparse: list[dict[int, float]] = [{} for _ in range(n)]
        colbert: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * n
        pos = 0
        while pos < n:
            if cancelled is not None and cancelled():
                raise InterruptedError("encoding cancelled")
            budget = batch_tokens or self.batch_tokens
            longest = lengths[order[pos]]
            size = max(1, budget // max(longest, 1))
            batch = order[pos : pos + size]
            try:
                self._encode_batch(enc, batch, dense, sparse, colbert)
            except Exception as e:
                if not is_out_of_memory(e) or len(batch) == 1:
                    raise
                self._release_memory()
                batch_tokens = max(1, min(budget, len(batch) * longest) // 2)
                self.batch_tokens = min(self.batch_tokens, batch_tokens)
                continue
            pos += len(batch)
            if progress is not None:
                progress(len(batch))
        return Encoded(dense, sparse, colbert)

    def _encode_batch(self, enc: dict[str, Any], batch: Sequence[int], dense: np.ndarray, sparse: list[dict[int, float]],
                      colbert: list[np.ndarray]) -> None:
        ids, mask = pad_rows([enc["input_ids"][i] for i in batch], self._pad_id)
        if self._onnx is not None:
            with self._lock:
                d, w, c = self._onnx.run(ids, mask)
        else:
            d, w, c = self._torch_batch(ids, mask)
        mask_len = mask.sum(axis=1)
        for row, i in enumerate(batch):
            dense[i] = d[row]
            weights: dict[int, float] = {}
            for tid, wt in zip(ids[row].tolist(), w[row].tolist()):
                if tid not in self._unused and wt > 0 and wt > weights.get(tid, 0.0):
                    weights[tid] = wt
            sparse[i] = weights
            # As FlagEmbedding: drop the CLS position, keep the real tokens (incl. </s>), drop padding.
            colbert[i] = np.ascontiguousarray(c[row, : int(mask_len[row]) - 1])

    def _release_memory(self) -> None:
        if self.device == "cuda":
            self._torch.cuda.empty_cache()

    def _torch_batch(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        torch = self._torch
        inputs = {"input_ids": torch.from_numpy(ids).to(self.device),
                  "attention_mask": torch.from_numpy(mask).to(self.device)}
        with self._lock, torch.inference_mode():
            out = self._net(inputs, return_dense=True, return_sparse=True, return_colbert_vecs=True)
        d = out["dense_vecs"].float().cpu().numpy()
        w = out["sparse_vecs"].squeeze(-1).float().cpu().numpy()
        c = out["colbert_vecs"].float().cpu().numpy()
        return d, w, c


def _default_cache_dir() -> Path:
    from desktop_search.config import default_cache_dir

    return default_cache_dir() / "models"


# Packages whose absence or incompatibility means "the installed set cannot run the model", not "the model is bad".
SEMANTIC_STACK = ("torch", "transformers", "FlagEmbedding", "onnxruntime", "tokenizers", "peft", "accelerate")


def load_failure(exc: BaseException, model_dir: Path) -> str:
    """One line saying why an Encoder could not be built, for the CLI and the status bar.

    An import error anywhere in the semantic stack (a package missing, or one released after the lock that
    removed a module another imports, as transformers 5.24 did to FlagEmbedding 1.4.2) is a dependency
    incompatibility: the fix is reinstalling from the lock, not touching the model. Anything else is the model's.
    """
    if isinstance(exc, ModelUnavailable):
        return str(exc)
    if isinstance(exc, ImportError):
        name = getattr(exc, "name", None) or ""
        return (
            f"dependency incompatibility: the installed packages cannot run the model ({type(exc).__name__}: "
            f"{exc}{f'; module {name}' if name and name not in str(exc) else ''}); reinstall with the README's "
            "command, which installs the tested versions from packaging/lock"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"could not load the model from {model_dir}: {type(exc).__name__}: {first}"
