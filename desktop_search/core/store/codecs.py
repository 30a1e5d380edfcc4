"""Vector codecs: ColBERT token vectors to stored bytes and back (int8, float16, sign bits, token pooling), and
the int8 rows and sign bits the quantized dense tier keeps in RAM. Pure numpy; no table or cache knowledge."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "POOL_FACTOR", "dequantize_colbert", "dequantize_colbert_many", "pool_tokens", "quantize_colbert",
    "quantize_rows", "sign_bits",
]

POOL_FACTOR = 2  # "pooled": about one stored vector per two passage tokens


def pool_tokens(vecs: np.ndarray, factor: int = POOL_FACTOR) -> np.ndarray:
    """Merge similar token vectors of one passage (Ward clustering into len/factor groups, mean of each group).

    Token pooling (Clavié et al., 2024): neighbouring subword pieces and repeated words have near-identical
    ColBERT vectors, so the mean of a tight cluster still finds MaxSim's best match for a query token.
    """
    vecs = np.asarray(vecs, np.float32)
    n_groups = max(1, -(-len(vecs) // factor))
    if len(vecs) <= 2 or n_groups >= len(vecs):
        return vecs
    from scipy.cluster.hierarchy import fcluster, linkage

    labels = fcluster(linkage(vecs, method="ward"), t=n_groups, criterion="maxclust")
    out = np.zeros((labels.max(), vecs.shape[1]), np.float32)
    np.add.at(out, labels - 1, vecs)
    out /= np.bincount(labels - 1)[:, None]
    return out


def quantize_colbert(vecs: np.ndarray, storage: str) -> tuple[bytes, bytes | None]:
    """(t, d) float32 -> (blob, scale) bytes, in one of the ``COLBERT_STORAGE`` formats.

    - ``int8``: one byte per dimension and one float32 scale per token, so every token keeps its own range.
    - ``float16``: two bytes per dimension, no scale.
    - ``binary``: the sign of each dimension (one bit) and one float16 scale per token, ``1 / sum(|v|)``, which
      makes ``v . v_hat = |v|^2``: query tokens stay full precision and scores stay on the fp32 scale.
    - ``pooled``: ``int8`` after :func:`pool_tokens` (about half the vectors).
    Each format is recognisable from the blob and scale lengths, so rows written under different settings can
    live in one table and :func:`dequantize_colbert` needs no setting.
    """
    vecs = np.asarray(vecs, np.float32)
    if storage == "float16":
        return vecs.astype(np.float16).tobytes(), None
    if storage == "binary":
        bits = np.packbits(vecs > 0, axis=1)
        l1 = np.abs(vecs).sum(axis=1)
        scale = np.where(l1 > 0, 1.0 / np.maximum(l1, 1e-6), 0.0).astype(np.float16)
        return bits.tobytes(), scale.tobytes()
    if storage == "pooled":
        vecs = pool_tokens(vecs)
    scale = np.abs(vecs).max(axis=1) / 127.0 if len(vecs) else np.zeros(0, np.float32)
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(vecs / scale[:, None]), -127, 127).astype(np.int8)
    return q.tobytes(), scale.astype(np.float32).tobytes()


def dequantize_colbert(blob: bytes, scale: bytes | None, dim: int) -> np.ndarray:
    """Inverse of :func:`quantize_colbert` (lossy formats give their reconstruction), (t, dim) float32."""
    if scale is None:
        return np.frombuffer(blob, np.float16).reshape(-1, dim).astype(np.float32)
    if len(blob) == (len(scale) // 4) * dim:  # int8 (also "pooled"): a byte per dimension, float32 scales
        q = np.frombuffer(blob, np.int8).reshape(-1, dim).astype(np.float32)
        return q * np.frombuffer(scale, np.float32)[:, None]
    # binary: a bit per dimension, float16 scales
    bits = np.unpackbits(np.frombuffer(blob, np.uint8).reshape(-1, dim // 8), axis=1)[:, :dim]
    signs = bits.astype(np.float32) * 2.0 - 1.0
    return signs * np.frombuffer(scale, np.float16).astype(np.float32)[:, None]


def dequantize_colbert_many(rows: Sequence[tuple[bytes, bytes | None]], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Many stored (blob, scale) pairs -> one (all tokens, dim) float32 matrix and each passage's token count.
    All-int8 rows (the default storage) are converted in one pass instead of one array per passage."""
    if rows and all(sc is not None and len(b) == (len(sc) // 4) * dim for b, sc in rows):
        m = np.frombuffer(b"".join(b for b, _ in rows), np.int8).reshape(-1, dim).astype(np.float32)
        m *= np.frombuffer(b"".join(sc for _, sc in rows if sc is not None), np.float32)[:, None]
        return m, np.array([len(sc) // 4 for _, sc in rows if sc is not None], np.int64)
    parts = [dequantize_colbert(b, sc, dim) for b, sc in rows]
    matrix = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
    return matrix, np.array([len(x) for x in parts], np.int64)


def sign_bits(m: np.ndarray) -> np.ndarray:
    """Sign bits of each row of ``m`` packed into uint64 words (zero-padded to a whole word)."""
    m = np.atleast_2d(m)
    packed = np.packbits(m > 0, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def quantize_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows with one float32 scale each: ``m ~= q8 * scale[:, None]``."""
    scale = np.abs(m).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    return np.rint(m / scale[:, None]).astype(np.int8), scale.astype(np.float32)
