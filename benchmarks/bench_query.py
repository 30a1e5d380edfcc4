"""Query latency: query encoding on the CPU, and retrieval + ColBERT rerank over 10k and 100k chunks.

Query encoding: p50/p95 of ``Encoder.encode_query`` for 32-token queries with the full-size BGE-M3 architecture,
the app's default CPU path next to the exact fp32 path (interleaved).

Retrieval: an index is built through the Store API from synthetic, clustered vectors (dense unit vectors around
256 centres, ~40 lexical weights per chunk, ``--colbert-tokens`` int8 ColBERT vectors per chunk, 40-word texts
for BM25), then ``Searcher.search`` runs in hybrid mode with a stub encoder (query vectors made ahead), so the
figures exclude query encoding: BM25 + dense + sparse candidates, exact hybrid scores, ColBERT rerank of the top
``rerank_k``, grouping and snippets. Each size is measured before and after ``Store.optimize()`` (which builds the
vector index once a table is large), and the time per store call is broken down.

    python benchmarks/bench_query.py [--quick] [--sizes 10000,100000] [--colbert-tokens 32] [--no-encode]
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import _common as c  # first: it sets the app's environment before numpy loads
import numpy as np

DIM = 1024
WORDS = 5000


class StubEncoder:
    """Answers ``encode_query`` from vectors made ahead: the search timings exclude the model."""

    def __init__(self, queries: dict[str, tuple]) -> None:
        self.queries = queries
        self.fingerprint = "bench-synthetic"
        self.dim = DIM

    def encode_query(self, text: str):
        from desktop_search.core.encoder import Encoded

        d, s, col = self.queries[text]
        return Encoded(d[None, :], [s], [col])


def _vocab(rng) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=rng.integers(3, 9))) for _ in range(WORDS)]


def build_store(index_dir: Path, n: int, colbert_tokens: int, seed: int = 0):
    """n synthetic chunks (10 per file) with vectors, written in batches through the Store API."""
    from desktop_search.core.store import ChunkRow, Store, chunk_id, text_hash

    rng = np.random.default_rng(seed)
    vocab = _vocab(rng)
    zipf = 1.0 / np.arange(1, WORDS + 1)
    zipf /= zipf.sum()
    centres = rng.standard_normal((256, DIM)).astype(np.float32)
    store = Store(index_dir)
    store.bind_model("bench-synthetic", DIM, "int8")
    batch = 5000
    data = {"dense": [], "sparse": [], "texts": []}
    for start in range(0, n, batch):
        m = min(batch, n - start)
        dense = centres[rng.integers(0, 256, m)] + 1.5 * rng.standard_normal((m, DIM)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        words = rng.choice(WORDS, size=(m, 40), p=zipf)
        chunk_rows, vec_rows = [], []
        scale_bytes = np.full(colbert_tokens, 1 / 127 / np.sqrt(DIM) * 4, np.float32).tobytes()
        colbert = rng.integers(-127, 128, size=(m, colbert_tokens * DIM), dtype=np.int8)
        for i in range(m):
            g = start + i
            text = f"chunk {g} " + " ".join(vocab[w] for w in words[i])
            h = text_hash(text)
            path = f"/bench/file{g // 10:06d}.txt"
            chunk_rows.append(
                ChunkRow(id=chunk_id(path, g % 10), path=path, ordinal=g % 10, page=None, char_start=0,
                         char_end=len(text), text=text, text_hash=h, n_tokens=60)
            )
            ids = np.unique(rng.integers(5, 30000, 40)).astype(np.int32)
            weights = rng.uniform(0.02, 0.3, len(ids)).astype(np.float32)
            vec_rows.append(
                {
                    "text_hash": h, "dense": dense[i], "sparse_ids": ids.tolist(), "sparse_weights": weights.tolist(),
                    "colbert": colbert[i].tobytes(), "colbert_scale": scale_bytes, "n_vectors": colbert_tokens,
                }
            )
            if len(data["texts"]) < 200 and rng.random() < 0.01:
                data["dense"].append(dense[i])
                data["sparse"].append(dict(zip(ids[:8].tolist(), weights[:8].tolist())))
                data["texts"].append(" ".join(vocab[w] for w in words[i][:4]))
        store.replace_chunks([], chunk_rows)
        store.add_vectors(vec_rows)
    store.ensure_fts_index()
    return store, data


def make_queries(data: dict, n: int, seed: int = 1) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(min(n, len(data["texts"]))):
        d = data["dense"][i] + 0.05 * rng.standard_normal(DIM).astype(np.float32)
        d /= np.linalg.norm(d)
        col = rng.standard_normal((32, DIM)).astype(np.float32)
        col /= np.linalg.norm(col, axis=1, keepdims=True)
        out[f"{data['texts'][i]} q{i}"] = (d.astype(np.float32), data["sparse"][i], col)
    return out


class StoreTimer:
    """Wraps a Store's read methods to add up the time spent in each during the timed searches."""

    METHODS = (
        "fts", "dense_neighbours", "dense_scores", "sparse_neighbours", "vector_rows", "lexical_scores", "chunks_for_hashes",
        "chunk_refs", "chunk_rows_for_refs",
    )

    def __init__(self, store) -> None:
        self.totals: dict[str, float] = {}
        for name in self.METHODS:
            fn = getattr(store, name, None)
            if fn is not None:
                setattr(store, name, self._wrap(name, fn))

    def _wrap(self, name, fn):
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - t

        return timed


def cache_times(index_dir: Path, store) -> dict:
    """How long the query caches take to build when an index is opened, and to follow a small write."""
    from desktop_search.core.store import Store

    fresh = Store(index_dir)
    t_cold, _ = c.timed(fresh.warm)
    row = store.vectors.search().limit(100).to_arrow().to_pylist()
    for r in row:  # 100 "new" texts: same vectors under new hashes
        r["text_hash"] = "new" + r["text_hash"][3:]
    fresh.add_vectors(row)
    t_inc, _ = c.timed(fresh.warm)
    return {"open_s": round(t_cold, 2), "after_100_new_rows_ms": round(t_inc * 1000, 1)}


def dense_recall(store, queries: dict[str, tuple]) -> dict:
    """Recall@10 and @100 of ``Store.dense_neighbours`` (whatever tier the table size selects) against exact
    search over all fp32 vectors."""
    from desktop_search.core.store.tables import fixed_list_matrix
    from desktop_search.core.store.tiers import dense_tier

    tbl = store.vectors.search().select(["text_hash", "dense"]).limit(None).to_arrow()
    hashes = tbl.column("text_hash").to_pylist()
    dense = fixed_list_matrix(tbl.column("dense"))
    out: dict = {"tier": dense_tier(len(hashes))}
    for k in (10, 100):
        hits = []
        for d, _s, _c in queries.values():
            exact = {hashes[i] for i in np.argsort(-(dense @ d))[:k].tolist()}
            hits.append(len(exact & set(store.dense_neighbours(d, k))) / k)
        out[f"recall@{k}"] = round(float(np.mean(hits)), 4)
        out[f"recall@{k}_min"] = round(float(np.min(hits)), 4)
    return out


def time_searches(store, queries: dict[str, tuple], rounds: int) -> dict:
    from desktop_search.core.search import Searcher

    searcher = Searcher(store, StubEncoder(queries), rerank_k=50, candidates_per_mode=100)
    texts = list(queries)
    t_first, _ = c.timed(lambda: searcher.search(texts[0], k=10))  # builds caches (sparse matrix)
    timer = StoreTimer(store)
    samples = []
    for _ in range(rounds):
        for q in texts:
            dt, res = c.timed(lambda: searcher.search(q, k=10))
            samples.append(dt)
    n = len(samples)
    out = {"first_query_ms": round(t_first * 1000, 1), **c.percentiles(samples)}
    out["per_query_ms_by_store_call"] = {k: round(v / n * 1000, 2) for k, v in sorted(timer.totals.items())}
    out["goal_p95_ms"] = 50
    return out


def query_encoding(model_dir: Path, n: int, with_fp32: bool) -> dict:
    from desktop_search.core.encoder import Encoder

    fast = Encoder(model_dir, device="cpu", cache_dir=c.INT8_CACHE)
    exact = Encoder(model_dir, device="cpu", precision="fp32") if with_fp32 else None
    tok = fast.tokenizer
    claims = c.scifact_claims(200)
    queries = []
    for claim in claims:
        ids = tok(claim * 4, add_special_tokens=False)["input_ids"][:30]  # + <s> and </s> = 32 tokens
        queries.append(tok.decode(ids))
        if len(queries) >= n:
            break
    lengths = [len(tok(q)["input_ids"]) for q in queries]
    fast.encode_query("warm up")
    if exact is not None:
        exact.encode_query("warm up")
    # Blocks in A-B-A order (default, fp32, default): drifting load hits both alike, and the default path is not
    # timed right after an fp32 call, whose OpenMP threads keep spinning for a while (as they never do in the
    # app, which runs one encoder). No cache below the Searcher: every query is new to each encoder.
    # CPU time (all threads of this process) is timed too: on a machine other processes keep busy it is the cost
    # of a query, where the wall clock mostly measures the wait for a core.
    cpu: dict[str, list[float]] = {"default": [], "fp32": []}

    def timed(encoder, name: str, q: str) -> float:
        before = c.cpu_seconds()
        dt = c.timed(lambda: encoder.encode_query(q))[0]
        cpu[name].append(c.cpu_seconds() - before)
        return dt

    t_fast = [timed(fast, "default", q) for q in queries[: len(queries) // 2]]
    t_exact = [timed(exact, "fp32", q) for q in queries] if exact is not None else []
    t_fast += [timed(fast, "default", q) for q in queries[len(queries) // 2 :]]

    def cpu_p50(name: str) -> float:
        return round(float(np.median(cpu[name])) * 1000, 2)

    out = {
        "query_tokens_mean": round(float(np.mean(lengths)), 1),
        "default": {"precision": fast.precision, **c.percentiles(t_fast), "cpu_p50_ms": cpu_p50("default")},
        "goal_p50_ms": 30,
    }
    if exact is not None:
        out["fp32_exact"] = {"precision": exact.precision, **c.percentiles(t_exact), "cpu_p50_ms": cpu_p50("fp32")}
    return out


def main(argv: list[str] | None = None) -> dict:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default=None, help="comma-separated chunk counts (default 10000,100000; 0: none)")
    p.add_argument("--colbert-tokens", type=int, default=None, help="ColBERT vectors per synthetic chunk (default 32, quick 16)")
    p.add_argument("--queries", type=int, default=None, help="distinct queries per size (default 40, quick 20)")
    p.add_argument("--no-encode", action="store_true", help="skip query encoding (no model needed)")
    p.add_argument("--no-fp32", action="store_true", help="skip the fp32 query-encoding comparison")
    p.add_argument("--work-dir", type=Path, default=None, help="where to build the indexes (default: a temp dir)")
    args = p.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or "10000,100000").split(",") if s.strip() and int(s) > 0]  # 0: none
    colbert_tokens = args.colbert_tokens or (16 if args.quick else 32)
    n_queries = args.queries or (20 if args.quick else 40)
    result: dict = {"benchmark": "query", "machine": c.machine(), "colbert_tokens_per_chunk": colbert_tokens}
    if not args.no_encode:
        c.log("query encoding")
        result["query_encoding"] = query_encoding(c.model_dir(args.model_dir), n_queries, not args.no_fp32)
    work = Path(tempfile.mkdtemp(prefix="bench-query-", dir=args.work_dir))
    try:
        result["retrieval"] = {}
        for n in sizes:
            c.log(f"building a {n}-chunk index")
            t_build, (store, data) = c.timed(lambda: build_store(work / f"idx{n}", n, colbert_tokens))
            queries = make_queries(data, n_queries)
            entry: dict = {"build_s": round(t_build, 1)}
            c.log(f"{n} chunks: searching before optimize()")
            entry["before_optimize"] = time_searches(store, queries, rounds=1)
            t_opt, _ = c.timed(store.optimize)
            entry["optimize_s"] = round(t_opt, 1)
            entry["vector_index"] = [getattr(ix, "index_type", str(ix)) for ix in store.vectors.list_indices()]
            c.log(f"{n} chunks: searching after optimize()")
            entry["after_optimize"] = time_searches(store, queries, rounds=2)
            entry["dense_recall_vs_exact"] = dense_recall(store, queries)
            entry["query_cache"] = cache_times(work / f"idx{n}", store)
            entry["index_bytes"] = store.index_bytes()
            result["retrieval"][str(n)] = entry
            del store
            shutil.rmtree(work / f"idx{n}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    c.emit(main())
