"""BGE-M3 as one ONNX graph, written from the weights on disk one layer at a time (int8 or fp32).

This is how the app's fast CPU copy of the model is made (``quantize.py`` drives it in a child process). Rather
than tracing the torch model and quantizing the traced graph (which holds the fp32 model, the traced graph and
the quantizer's copies in memory at once: 9.3 GB at peak for BGE-M3), the graph of XLM-RoBERTa + the sparse and
ColBERT heads is written here directly, with ONNX Runtime's fused CPU operators, and each weight matrix is read
from the checkpoint (``checkpoint.py``), quantized and appended to the external data file before the next one is
read. Peak memory is one weight matrix plus the bookkeeping.

The graph, for ``input_ids``/``attention_mask`` (batch, tokens) -> ``dense`` (batch, dim), ``weights`` (batch,
tokens), ``colbert`` (batch, tokens - 1, dim), computes exactly what FlagEmbedding's ``BGEM3Model`` does in
inference (``encoder.py`` post-processes the outputs the same way for both paths):

* embeddings: word rows (int8 with one scale per row) + position rows (ids counted from the non-padding tokens,
  as XLM-R does) + the token-type row, LayerNorm (as ``InstanceNormalization``: see ``_add_layer_norm``; each
  norm's beta is folded into the biases of what reads it, see ``_Hidden``);
* per layer: Q/K/V in one int8 matmul (``DynamicQuantizeMatMul``: activations quantized per call, weights int8
  per output column), ``MultiHeadAttention`` with the padding mask, output projection + residual + LayerNorm,
  FFN with exact GELU, second residual + LayerNorm;
* heads: dense = normalised CLS vector; sparse = relu(linear(h)); ColBERT = normalised linear(h[:, 1:]) with
  padding zeroed.

``precision="fp32"`` writes the same graph with fp32 ``MatMul`` s: the tests compare it with FlagEmbedding to
prove the graph itself is exact, so that the only difference of the int8 graph is quantization.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from desktop_search.core.checkpoint import Checkpoint, CheckpointError, find_weights, open_checkpoint

OPSET = 17
MS = "com.microsoft"
DATA_SUFFIX = ".data"
_ALIGN = 4096
_EMBED_ROWS = 16384  # embedding rows quantized at a time (64 MB of fp32 for BGE-M3)  # external tensors start on page boundaries (lets ONNX Runtime map them instead of copying)


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output column of ``w`` (in, out): returns (int8 matrix, float32 scale per column)."""
    scale = np.abs(w).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row (the embedding table: one scale per token), scales shaped (rows, 1)."""
    scale = np.abs(w).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


class _Writer:
    """Nodes and initializers of the graph; big initializers go straight to the external data file."""

    def __init__(self, data_path: Path) -> None:
        from onnx import helper

        self.helper = helper
        self.nodes: list[Any] = []  # onnx NodeProto
        self.inits: list[Any] = []  # onnx TensorProto
        self.data_path = data_path
        self.data = open(data_path, "wb")
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const_parts(self, name: str, dtype: np.dtype[Any], shape: tuple[int, ...], parts: Iterable[np.ndarray]) -> str:
        """An external initializer written from an iterable of row blocks (never whole in memory)."""
        from onnx import TensorProto

        pos = self.data.tell()
        pad = -pos % _ALIGN
        if pad:
            self.data.write(b"\0" * pad)
            pos += pad
        length = 0
        for part in parts:
            block = np.ascontiguousarray(part, dtype=dtype)
            self.data.write(block.tobytes())
            length += block.nbytes
        if length != int(np.prod(shape)) * np.dtype(dtype).itemsize:
            raise CheckpointError(f"{name}: wrote {length} bytes for shape {shape}")
        t = TensorProto()
        t.name = name
        t.data_type = self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        t.dims.extend(shape)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", self.data_path.name), ("offset", str(pos)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = k, v
        self.inits.append(t)
        return name

    def const(self, name: str, arr: np.ndarray) -> str:
        from onnx import numpy_helper

        arr = np.asarray(arr)  # not ascontiguousarray: it turns scalars into shape (1,)
        if not arr.flags.c_contiguous:
            arr = arr.copy()
        if arr.nbytes < 1024:
            self.inits.append(numpy_helper.from_array(arr, name))
            return name
        return self.const_parts(name, arr.dtype, arr.shape, [arr])

    def node(self, op: str, inputs: list[str], n_out: int = 1, domain: str = "", **attrs: Any) -> list[str]:
        outs = [self.name(op) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op, inputs, outs, domain=domain or None, **attrs))
        return outs

    def one(self, op: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        return self.node(op, inputs, 1, domain, **attrs)[0]

    def close(self) -> None:
        self.data.close()


def _linear(g: _Writer, x: str, w: np.ndarray, b: np.ndarray | None, name: str, int8: bool) -> str:
    """x @ w.T + b, with ``w`` in torch's (out, in) layout."""
    wt = np.ascontiguousarray(w.T)
    if int8:
        q, scale = quantize_columns(wt)
        inputs = [x, g.const(f"{name}.wq", q), g.const(f"{name}.scale", scale), ""]
        if b is not None:
            inputs.append(g.const(f"{name}.bias", b.astype(np.float32)))
        return g.one("DynamicQuantizeMatMul", inputs, domain=MS)
    y = g.one("MatMul", [x, g.const(f"{name}.w", wt)])
    return y if b is None else g.one("Add", [y, g.const(f"{name}.bias", b.astype(np.float32))])


def _normalize(g: _Writer, x: str, eps: str) -> str:
    norm = g.one("ReduceL2", [x], axes=[-1], keepdims=1)
    return g.one("Div", [x, g.one("Max", [norm, eps])])


def _add_layer_norm(g: _Writer, a: str, b: str, gamma: np.ndarray, beta: np.ndarray, eps: float, name: str,
                    per_token: tuple[str, str], fold_beta: bool) -> tuple[str, np.ndarray | None]:
    """LayerNorm(a + b) as ``InstanceNormalization`` (the hidden states are (batch, tokens, hidden): with tokens
    as its channels, its statistics are LayerNorm's, per token over the hidden axis) times ``gamma``.
    ``per_token`` are the ones and zeros it is given as per-channel scale and bias (one per token).

    ONNX Runtime's fused CPU LayerNorm kernels (``SkipLayerNormalization``, ``LayerNormalization``; 1.31) take
    ~5.5 us per 1024-wide row on one core; the same norm from eleven plain operators was 539 of the 736 operators
    of the graph, whose fixed cost per operator dominates at 32 tokens. This is 3 operators (Add,
    InstanceNormalization, Mul), faster at both ends (benchmarks/README.md, round 5).

    With ``fold_beta`` the ``+ beta`` is not written: the caller adds it into the biases of what the output
    feeds (see ``_Hidden``) and gets it back as the second value; otherwise that value is None."""
    s = g.one("Add", [a, b])
    n = g.one("InstanceNormalization", [s, *per_token], epsilon=eps)
    scaled = g.one("Mul", [n, g.const(f"{name}.g", gamma.astype(np.float32))])
    if fold_beta:
        return scaled, beta.astype(np.float64)
    return g.one("Add", [scaled, g.const(f"{name}.b", beta.astype(np.float32))]), None


class _Hidden:
    """A hidden state as ``value + offset``, where ``offset`` (a LayerNorm's beta, or None) is never added in
    the graph: both consumers of a LayerNorm's output absorb it into a bias instead, one operator less per norm.
    A linear layer reading it takes (x + o) @ W.T + b = x @ W.T + (b + W o); the residual connection adds it
    to another linear's output, whose bias takes it."""

    def __init__(self, value: str, offset: np.ndarray | None) -> None:
        self.value, self.offset = value, offset

    def bias_into(self, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The bias of a linear layer (``w`` in torch's (out, in) layout) that reads this state."""
        if self.offset is None:
            return b
        folded: np.ndarray = b.astype(np.float64) + w.astype(np.float64) @ self.offset
        return folded.astype(np.float32)

    def bias_beside(self, b: np.ndarray) -> np.ndarray:
        """The bias of a linear layer whose output this state is added to (the residual connection)."""
        return b if self.offset is None else (b.astype(np.float64) + self.offset).astype(np.float32)


def _layer_norm_params(ck: Checkpoint, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    for w, b in (("weight", "bias"), ("gamma", "beta")):
        if f"{prefix}.{w}" in ck:
            return ck.read(f"{prefix}.{w}"), ck.read(f"{prefix}.{b}")
    raise CheckpointError(f"no LayerNorm parameters under {prefix}")


def build_graph(
    model_dir: Path,
    out_path: Path,
    precision: str = "int8",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the graph to ``out_path`` and its weights to ``out_path`` + ``.data``; ``progress(done, total)``
    after each step (embeddings, every layer, heads)."""
    import onnx
    from onnx import TensorProto, helper

    if precision not in ("int8", "fp32"):
        raise ValueError(f"unknown graph precision {precision!r}")
    int8 = precision == "int8"
    model_dir, out_path = Path(model_dir), Path(out_path)
    cfg = json.loads((model_dir / "config.json").read_text("utf-8"))
    if cfg.get("model_type") not in ("xlm-roberta", "roberta", "bert") or cfg.get("hidden_act", "gelu") != "gelu":
        raise CheckpointError(f"unsupported encoder ({cfg.get('model_type')}, {cfg.get('hidden_act')})")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError("only absolute position embeddings are supported")
    layers, heads, eps = int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"]), float(cfg["layer_norm_eps"])
    pad_id = int(cfg.get("pad_token_id", 1))
    ck = open_checkpoint(find_weights(model_dir))
    for prefix in ("roberta.", "model.", "bert."):
        ck = ck.strip_prefix(prefix)
    total = layers + 2
    step = 0

    def advance() -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, total)

    g = _Writer(out_path.with_name(out_path.name + DATA_SUFFIX))
    try:
        ids, mask = "input_ids", "attention_mask"
        eps_norm = g.const("eps_norm", np.array(1e-12, np.float32))
        # -- embeddings ------------------------------------------------------------------------------------
        # The table (250k x 1024, 1 GB in fp32) is read and quantized in slices of rows.
        word = ck.ref("embeddings.word_embeddings.weight")
        vocab, width = word.shape
        slices = [(a, min(a + _EMBED_ROWS, vocab)) for a in range(0, vocab, _EMBED_ROWS)]
        if int8:
            scales: list[np.ndarray] = []

            def quantized() -> Iterator[np.ndarray]:
                for a, b in slices:
                    q, scale = quantize_rows(word.read_rows(a, b))
                    scales.append(scale)
                    yield q

            table = g.const_parts("word.q", np.dtype(np.int8), (vocab, width), quantized())
            rows = g.one("Cast", [g.one("Gather", [table, ids])], to=TensorProto.FLOAT)
            scale_table = g.const("word.scale", np.concatenate(scales))
            word_vec = g.one("Mul", [rows, g.one("Gather", [scale_table, ids])])
        else:
            parts = (word.read_rows(a, b) for a, b in slices)
            word_vec = g.one("Gather", [g.const_parts("word.w", np.dtype(np.float32), (vocab, width), parts), ids])
        # XLM-R positions: padding_idx + running count of non-padding tokens, padding_idx on padding.
        not_pad = g.one("Cast", [g.one("Not", [g.one("Equal", [ids, g.const("pad_id", np.array(pad_id, np.int64))])])],
                        to=TensorProto.INT64)
        pos_ids = g.one("Add", [g.one("Mul", [g.one("CumSum", [not_pad, g.const("axis1", np.array(1, np.int64))]),
                                               not_pad]), g.const("pad_id2", np.array(pad_id, np.int64))])
        positions = ck.read("embeddings.position_embeddings.weight")
        if "embeddings.token_type_embeddings.weight" in ck:  # token type 0 everywhere: fold its row in
            positions += ck.read("embeddings.token_type_embeddings.weight")[0]
        pos_vec = g.one("Gather", [g.const("pos.w", positions), pos_ids])
        del positions
        tokens = g.one("Shape", [ids], start=1, end=2)
        ones, zeros = (g.one("ConstantOfShape", [tokens], value=helper.make_tensor(n, TensorProto.FLOAT, [1], [v]))
                       for n, v in (("one", 1.0), ("zero", 0.0)))
        per_token = (ones, zeros)

        def norm(a: str, b: str, prefix: str, name: str, fold_beta: bool = True) -> _Hidden:
            gamma, beta = _layer_norm_params(ck, prefix)
            return _Hidden(*_add_layer_norm(g, a, b, gamma, beta, eps, name, per_token, fold_beta))

        x = norm(word_vec, pos_vec, "embeddings.LayerNorm", "emb.ln", fold_beta=layers > 0)
        mask_i32 = g.one("Cast", [mask], to=TensorProto.INT32)
        advance()
        # -- encoder layers --------------------------------------------------------------------------------
        for i in range(layers):
            p = f"encoder.layer.{i}"
            qkv_w = np.concatenate([ck.read(f"{p}.attention.self.{n}.weight") for n in ("query", "key", "value")])
            qkv_b = np.concatenate([ck.read(f"{p}.attention.self.{n}.bias") for n in ("query", "key", "value")])
            qkv = _linear(g, x.value, qkv_w, x.bias_into(qkv_w, qkv_b), f"l{i}.qkv", int8)
            del qkv_w
            q_, k_, v_ = g.node("Split", [qkv], 3, axis=-1)
            ctx = g.one("MultiHeadAttention", [q_, k_, v_, "", mask_i32], domain=MS, num_heads=heads)
            attn = _linear(g, ctx, ck.read(f"{p}.attention.output.dense.weight"),
                           x.bias_beside(ck.read(f"{p}.attention.output.dense.bias")), f"l{i}.o", int8)
            x1 = norm(attn, x.value, f"{p}.attention.output.LayerNorm", f"l{i}.ln1")
            w1 = ck.read(f"{p}.intermediate.dense.weight")
            h = _linear(g, x1.value, w1, x1.bias_into(w1, ck.read(f"{p}.intermediate.dense.bias")), f"l{i}.ffn1", int8)
            h = g.one("Gelu", [h], domain=MS)
            y = _linear(g, h, ck.read(f"{p}.output.dense.weight"), x1.bias_beside(ck.read(f"{p}.output.dense.bias")),
                        f"l{i}.ffn2", int8)
            # The heads read the last layer's output whole.
            x = norm(y, x1.value, f"{p}.output.LayerNorm", f"l{i}.ln2", fold_beta=i < layers - 1)
            advance()
        x_out = x.value
        # -- heads -----------------------------------------------------------------------------------------
        cls = g.one("Gather", [x_out, g.const("zero", np.array(0, np.int64))], axis=1)
        dense = _normalize(g, cls, eps_norm)
        sparse_ck = open_checkpoint(model_dir / "sparse_linear.pt")
        sw, sb = sparse_ck.read("weight"), sparse_ck.read("bias")
        s = _linear(g, x_out, sw, sb, "sparse", False)  # one output column: kept in fp32
        weights = g.one("Squeeze", [g.one("Relu", [s]), g.const("axis_last", np.array([-1], np.int64))])
        tail = g.one("Slice", [x_out, g.const("one_i", np.array([1], np.int64)),
                               g.const("big_i", np.array([2**62], np.int64)),
                               g.const("axes1", np.array([1], np.int64))])
        colbert_ck = open_checkpoint(model_dir / "colbert_linear.pt")
        c = _linear(g, tail, colbert_ck.read("weight"), colbert_ck.read("bias"), "colbert", int8)
        mask_f = g.one("Cast", [mask], to=TensorProto.FLOAT)
        mask_tail = g.one("Unsqueeze", [
            g.one("Slice", [mask_f, "one_i", "big_i", "axes1"]), "axis_last"])
        colbert = _normalize(g, g.one("Mul", [c, mask_tail]), eps_norm)
        for name, value in (("dense", dense), ("weights", weights), ("colbert", colbert)):
            g.nodes.append(helper.make_node("Identity", [value], [name]))
        advance()
    finally:
        g.close()

    dim = int(cfg["hidden_size"])
    graph = helper.make_graph(
        g.nodes, "bge_m3",
        [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["batch", dim]),
         helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["batch", "tokens"]),
         helper.make_tensor_value_info("colbert", TensorProto.FLOAT, ["batch", "tokens_1", dim])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
                              producer_name="desktop_search.m3graph")
    model.ir_version = 8
    onnx.save_model(model, str(out_path))
    return out_path
