"""Index size per indexed token for each ColBERT storage setting, and what each costs in ranking fidelity.

SciFact abstracts (one chunk each, at most 512 tokens) and SciFact claims (queries) are encoded once with the
app's default CPU encoder and the full-size model; the same vectors are then written through the Store API into
one index per ``COLBERT_STORAGE`` setting, compacted with ``Store.optimize()`` (FTS and hash indexes included),
and measured on disk. Fidelity against full-precision (fp32) ColBERT vectors: top-10 overlap of the ColBERT
MaxSim ranking and of the final hybrid ranking (dense + sparse + ColBERT, the app's default weights).

Note: the benchmark model has random weights, so its token vectors are less structured than real BGE-M3 ones;
pooling in particular merges real subword/repeated-word neighbours better than these.

    python benchmarks/bench_size.py [--quick] [--docs N]
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import _common as c  # first: it sets the app's environment before numpy loads
import numpy as np


def main(argv: list[str] | None = None) -> dict:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=None, help="abstracts to index (default 96, quick 32)")
    p.add_argument("--queries", type=int, default=None, help="claims used as queries (default 40, quick 20)")
    args = p.parse_args(argv)
    n_docs = args.docs or (32 if args.quick else 96)
    n_queries = args.queries or (20 if args.quick else 40)
    t0 = time.perf_counter()
    result: dict = {"benchmark": "size", "machine": c.machine(), "docs": n_docs, "queries": n_queries}

    from desktop_search.config import COLBERT_STORAGE, Settings
    from desktop_search.core.search import colbert_maxsim_many
    from desktop_search.core.store import ChunkRow, Store, chunk_id, dequantize_colbert, quantize_colbert, text_hash
    from desktop_search.core.encoder import Encoder

    model_dir = c.model_dir(args.model_dir)
    enc = Encoder(model_dir, device="cpu", cache_dir=c.INT8_CACHE)
    result["encoder_precision"] = enc.precision
    texts = c.scifact_abstracts(n_docs)
    queries = c.scifact_claims(n_queries)
    c.log(f"encoding {n_docs} abstracts and {n_queries} queries")
    docs = enc.encode(texts, max_tokens=512)
    qs = enc.encode(queries, max_tokens=512)
    n_tokens = [len(ids) for ids in enc.tokenizer(texts, truncation=True, max_length=512)["input_ids"]]
    total_tokens = int(sum(n_tokens))
    result["indexed_tokens"] = total_tokens
    result["mean_tokens_per_chunk"] = round(total_tokens / n_docs, 1)
    weights = Settings.__dataclass_fields__["weights"].default
    wd, ws, wc = weights
    dense_s = qs.dense @ docs.dense.T
    sparse_s = np.array([[sum(w * d.get(t, 0.0) for t, w in q.items()) for d in docs.sparse] for q in qs.sparse])

    def rankings(colbert_vectors: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        col, hyb = [], []
        for qi in range(len(queries)):
            cs = colbert_maxsim_many(qs.colbert[qi], colbert_vectors)
            col.append(np.argsort(-cs, kind="stable")[:10])
            total = (wd * dense_s[qi] + ws * sparse_s[qi] + wc * cs) / (wd + ws + wc)
            hyb.append(np.argsort(-total, kind="stable")[:10])
        return col, hyb

    ref_col, ref_hyb = rankings(docs.colbert)
    work = Path(tempfile.mkdtemp(prefix="bench-size-"))
    per_setting = {}
    try:
        for storage in COLBERT_STORAGE:
            store = Store(work / storage)
            store.bind_model(enc.fingerprint, enc.dim, storage)
            chunk_rows, vec_rows, stored = [], [], []
            colbert_bytes = 0
            for i, text in enumerate(texts):
                h = text_hash(text)
                path = f"/scifact/{i}.txt"
                chunk_rows.append(
                    ChunkRow(id=chunk_id(path, 0), path=path, ordinal=0, page=None, char_start=0,
                             char_end=len(text), text=text, text_hash=h, n_tokens=n_tokens[i])
                )
                blob, scale = quantize_colbert(docs.colbert[i], storage)
                colbert_bytes += len(blob) + len(scale or b"")
                stored.append(dequantize_colbert(blob, scale, enc.dim))
                sp = docs.sparse[i]
                vec_rows.append(
                    {"text_hash": h, "dense": docs.dense[i], "sparse_ids": list(sp), "sparse_weights": list(sp.values()),
                     "colbert": blob, "colbert_scale": scale, "n_vectors": len(stored[-1])}
                )
            store.replace_chunks([], chunk_rows)
            store.add_vectors(vec_rows)
            store.optimize()
            total = store.index_bytes()
            col, hyb = rankings(stored)
            per_setting[storage] = {
                "index_bytes": total,
                "bytes_per_token": round(total / total_tokens, 1),
                "colbert_bytes_per_token": round(colbert_bytes / total_tokens, 1),
                "other_bytes_per_token": round((total - colbert_bytes) / total_tokens, 1),
                "stored_vectors_per_token": round(sum(len(s) for s in stored) / total_tokens, 3),
                "colbert_top10_overlap_vs_fp32": round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref_col, col)])), 4),
                "hybrid_top10_overlap_vs_fp32": round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref_hyb, hyb)])), 4),
            }
            del store
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["settings"] = per_setting
    result["goals_bytes_per_token"] = {"default (int8)": 1100, "compact (binary)": 160}
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return result


if __name__ == "__main__":
    c.emit(main())
