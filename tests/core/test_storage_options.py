"""ColBERT storage formats and the query-time store paths (row cache, lexical scores, vector indexes).

Each format must round-trip within its stated loss, be recognised from its bytes alone (rows written under
different settings share one table), and keep the ColBERT ranking of the full-precision vectors; the searcher
must give the same answers through the fast store paths as through plain per-row scoring.
"""

from __future__ import annotations

import numpy as np
import pytest

from desktop_search.config import COLBERT_STORAGE, load_settings
from desktop_search.core.search import colbert_maxsim, colbert_maxsim_concat, colbert_maxsim_many, lexical_score
from desktop_search.core.store import (
    Store, dequantize_colbert, dequantize_colbert_many, pool_tokens, quantize_colbert,
)

DIM = 64


def _unit(rng, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _passage(rng, n: int) -> np.ndarray:
    """Token vectors with structure: repeated words and subword neighbours give near-duplicate vectors."""
    base = _unit(rng, max(1, n // 3))
    picks = base[rng.integers(0, len(base), n)] + 0.15 * rng.standard_normal((n, DIM)).astype(np.float32)
    return picks / np.linalg.norm(picks, axis=1, keepdims=True)


@pytest.mark.parametrize("storage", COLBERT_STORAGE)
def test_every_setting_round_trips_and_is_self_describing(storage):
    rng = np.random.default_rng(0)
    vecs = _passage(rng, 40)
    blob, scale = quantize_colbert(vecs, storage)
    back = dequantize_colbert(blob, scale, DIM)
    assert back.dtype == np.float32 and back.shape[1] == DIM
    if storage == "pooled":
        assert len(back) == 20
        return
    assert back.shape == vecs.shape
    cos = np.sum(back * vecs, axis=1) / (np.linalg.norm(back, axis=1) * np.linalg.norm(vecs, axis=1))
    floor = {"float16": 0.9999, "int8": 0.999, "binary": 0.7}[storage]
    assert cos.min() >= floor
    if storage == "binary":
        # The scale keeps scores on the fp32 scale: a token scored against itself gives |v|^2 = 1.
        np.testing.assert_allclose(np.sum(back * vecs, axis=1), 1.0, atol=2e-3)


def test_sizes_per_token():
    vecs = _unit(np.random.default_rng(1), 10, 1024)
    size = {s: sum(len(b or b"") for b in quantize_colbert(vecs, s)) / 10 for s in ("int8", "float16", "binary")}
    assert size == {"int8": 1024 + 4, "float16": 2048, "binary": 128 + 2}


def test_empty_passage():
    for storage in COLBERT_STORAGE:
        blob, scale = quantize_colbert(np.zeros((0, DIM), np.float32), storage)
        assert dequantize_colbert(blob, scale, DIM).shape == (0, DIM)


def test_pooling_merges_near_duplicates_only():
    rng = np.random.default_rng(2)
    distinct = _unit(rng, 5)
    doubled = np.repeat(distinct, 2, axis=0)  # every token twice: pooling by 2 must give back the 5 originals
    pooled = pool_tokens(doubled)
    assert len(pooled) == 5
    assert np.max(pooled @ distinct.T, axis=0).min() > 0.999


@pytest.mark.parametrize("storage", COLBERT_STORAGE)
def test_colbert_ranking_kept(storage):
    """60 passages ranked by ColBERT MaxSim for queries made from one passage's tokens plus noise: every format
    still puts that passage first; the lossless-ish ones also keep the rest of the top 5 (the lossy ones
    reorder near-ties among unrelated passages, see benchmarks/bench_size.py for the real-size figures)."""
    rng = np.random.default_rng(3)
    passages = [_passage(rng, int(rng.integers(8, 60))) for _ in range(60)]
    stored = [dequantize_colbert(*quantize_colbert(p, storage), DIM) for p in passages]
    overlaps, first = [], []
    for _ in range(30):
        source = int(rng.integers(0, 60))
        src = passages[source]
        q = src[rng.integers(0, len(src), 6)] + 0.5 * _unit(rng, 6)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        exact = np.argsort([-colbert_maxsim(q, p) for p in passages], kind="stable")[:5]
        got = np.argsort(-colbert_maxsim_many(q, stored), kind="stable")[:5]
        overlaps.append(len(set(exact) & set(got)) / 5)
        first.append(got[0] == source)
    assert np.mean(first) >= 0.95
    if storage in ("int8", "float16"):
        assert np.mean(overlaps) >= 0.95


def test_maxsim_many_equals_one_by_one():
    rng = np.random.default_rng(4)
    q = _unit(rng, 7)
    ps = [_unit(rng, n) for n in (3, 0, 11, 1)]
    np.testing.assert_allclose(colbert_maxsim_many(q, ps), [colbert_maxsim(q, p) for p in ps], atol=1e-6)
    for formats in (["int8"] * 3, ["int8", "binary", "float16"]):  # the one-pass int8 path and the mixed one
        stored = [quantize_colbert(p, f) for p, f in zip(ps, formats)]
        tokens, sizes = dequantize_colbert_many(stored, DIM)
        np.testing.assert_allclose(
            colbert_maxsim_concat(q, tokens, sizes),
            [colbert_maxsim(q, dequantize_colbert(b, sc, DIM)) for b, sc in stored], atol=1e-5,
        )
    assert colbert_maxsim_many(q, []).shape == (0,)


def test_settings_accept_new_storage():
    for storage in COLBERT_STORAGE:
        assert load_settings(colbert_storage=storage).colbert_storage == storage
    with pytest.raises(ValueError):
        load_settings(colbert_storage="int4")


def _fill(store: Store, n: int, rng, start: int = 0) -> list[dict]:
    from desktop_search.core.store import ChunkRow, chunk_id, text_hash

    store.bind_model("test", DIM, "int8")
    chunks, vecs = [], []
    for i in range(start, n):
        text = f"passage number {i} about topic {i % 7}"
        h = text_hash(text)
        path = f"/docs/f{i // 4}.txt"
        chunks.append(ChunkRow(id=chunk_id(path, i % 4), path=path, ordinal=i % 4, page=None, char_start=0,
                               char_end=len(text), text=text, text_hash=h, n_tokens=8))
        ids = sorted(set(rng.integers(5, 500, 12).tolist()))
        blob, scale = quantize_colbert(_unit(rng, 6), "binary" if i % 3 == 0 else "int8")  # mixed formats
        vecs.append(
            {"text_hash": h, "dense": _unit(rng, 1)[0], "sparse_ids": ids,
             "sparse_weights": rng.uniform(0.01, 0.3, len(ids)).astype(np.float32).tolist(),
             "colbert": blob, "colbert_scale": scale, "n_vectors": 6}
        )
    store.replace_chunks([], chunks)
    store.add_vectors(vecs)
    return vecs


def _use_tier(monkeypatch, tier: str) -> None:
    """Make a small table take the dense-search path of a large one."""
    from desktop_search.core.store import tiers

    if tier == "quantized":  # sign bits + int8 in RAM
        monkeypatch.setattr(tiers, "DENSE_EXACT_MAX_ROWS", 0)
    elif tier == "disk":  # rows read by position, dense search through LanceDB
        monkeypatch.setattr(tiers, "DENSE_EXACT_MAX_ROWS", 0)
        monkeypatch.setattr(tiers, "DENSE_MEMORY_MAX_ROWS", 0)


def _assert_dense_scores(store: Store, q: np.ndarray, rows: list[dict], tier: str) -> None:
    """Store.dense_scores equals the plain dot products (up to int8 rounding in the quantized tier)."""
    np.testing.assert_allclose(
        store.dense_scores(q, [r["text_hash"] for r in rows]), [float(r["dense"] @ q) for r in rows],
        atol=3e-3 if tier == "quantized" else 1e-5,
    )


def _fresh_cache_test(tmp_path, monkeypatch, tier: str, seed: int, n: int):
    """A store of ``n`` rows in ``tier`` whose query cache has been built, a query vector, the rows."""
    _use_tier(monkeypatch, tier)
    rng = np.random.default_rng(seed)
    store = Store(tmp_path / "idx")
    rows = _fill(store, n, rng)
    q = _unit(rng, 1)[0]
    store.dense_neighbours(q, 3)  # cache built
    return store, rng, q, rows


@pytest.mark.parametrize("tier", ["exact", "quantized", "disk"])
def test_store_fast_paths_match_plain_scoring(tmp_path, monkeypatch, tier):
    _use_tier(monkeypatch, tier)
    rng = np.random.default_rng(5)
    store = Store(tmp_path / "idx")
    rows = _fill(store, 120, rng)
    by_hash = {r["text_hash"]: r for r in rows}
    q = _unit(rng, 1)[0]
    exact_scores = {h: float(by_hash[h]["dense"] @ q) for h in by_hash}
    exact = sorted(by_hash, key=lambda h: -exact_scores[h])[:10]
    got_top = store.dense_neighbours(q, 10)
    if tier == "quantized":  # approximate: as good as the exact top-10 up to int8 rounding
        assert len(got_top) == 10
        got_s = sorted((exact_scores[h] for h in got_top), reverse=True)
        assert all(g >= e - 3e-3 for g, e in zip(got_s, (exact_scores[h] for h in exact)))
    else:
        assert got_top == exact
    wanted = list(by_hash)[::7] + ["not-a-hash"]
    approx = store.dense_scores(q, wanted)
    assert np.isnan(approx[-1])
    np.testing.assert_allclose(approx[:-1], [exact_scores[h] for h in wanted[:-1]], atol=3e-3 if tier == "quantized" else 1e-5)
    got = store.vector_rows(wanted, ["dense", "sparse_ids", "sparse_weights", "colbert", "colbert_scale"])
    assert set(got) == set(wanted) - {"not-a-hash"}
    for h, row in got.items():
        np.testing.assert_allclose(row["dense"], by_hash[h]["dense"], atol=1e-7)  # exact in every tier
        assert row["colbert"] == by_hash[h]["colbert"]
    q_sparse = {int(i): 0.2 for i in rng.integers(5, 500, 30)}
    scores = store.lexical_scores(q_sparse, wanted)
    for h, s in zip(wanted, scores.tolist()):
        ref = lexical_score(q_sparse, by_hash[h]["sparse_ids"], by_hash[h]["sparse_weights"]) if h in by_hash else 0.0
        assert s == pytest.approx(ref, abs=1e-5)
    everything = [lexical_score(q_sparse, r["sparse_ids"], r["sparse_weights"]) for r in rows]
    best = store.sparse_neighbours(q_sparse, 10)
    assert [lexical_score(q_sparse, by_hash[h]["sparse_ids"], by_hash[h]["sparse_weights"]) for h in best] == (
        pytest.approx(sorted((x for x in everything if x > 0), reverse=True)[:10], abs=1e-5)
    )
    chunk_hashes = [r["text_hash"] for r in store.chunks_for_hashes(wanted)]
    assert sorted(chunk_hashes) == sorted(set(wanted) - {"not-a-hash"})
    # Writes after the caches were built: new rows are found, nothing stale is returned.
    more = _fill(store, 130, rng)[120:]
    got = store.vector_rows([r["text_hash"] for r in more], ["dense"])
    assert len(got) == len(more)
    _assert_dense_scores(store, q, more, tier)
    store.replace_chunks(["/docs/f0.txt"], [])
    first = [r["text_hash"] for r in rows[:8]]
    left = store.chunks_for_hashes(first)
    by_value = store.chunks_with_hashes(first)
    assert sorted(r["id"] for r in left) == sorted(r["id"] for r in by_value)
    assert left and {r["path"] for r in left} == {"/docs/f1.txt"}


@pytest.mark.parametrize("tier", ["exact", "quantized"])
def test_in_memory_dense_cache_follows_writes_and_compaction(tmp_path, monkeypatch, tier):
    """The query cache is carried from one table version to the next by text hash: after deletes, appends and
    a compaction that moves every row, every cached vector still belongs to the hash it is looked up by."""
    store, rng, q, rows = _fresh_cache_test(tmp_path, monkeypatch, tier, 11, 60)
    store.replace_chunks([f"/docs/f{i}.txt" for i in range(0, 15, 2)], [])  # drop every other file's chunks
    rows += _fill(store, 90, rng, start=60)
    store.optimize()  # orphan vectors deleted, fragments compacted: row offsets change
    live = {r["text_hash"]: r for r in rows if r["text_hash"] in store.vector_hashes()}
    assert 0 < len(live) < len(rows)
    for r in rows[::5]:
        target = r["dense"]
        top = store.dense_neighbours(target, 3)
        if r["text_hash"] in live:
            assert top[0] == r["text_hash"]
        else:
            assert r["text_hash"] not in top
    hashes = list(live)
    _assert_dense_scores(store, q, list(live.values()), tier)
    lex = {int(i): 0.3 for i in live[hashes[0]]["sparse_ids"]}
    for h, s in zip(hashes, store.lexical_scores(lex, hashes).tolist()):
        assert s == pytest.approx(lexical_score(lex, live[h]["sparse_ids"], live[h]["sparse_weights"]), abs=1e-5)


@pytest.mark.parametrize("tier", ["exact", "quantized"])
def test_cache_refresh_never_files_vectors_under_the_wrong_hash(tmp_path, monkeypatch, tier):
    """If rows move between reading the hash column and reading the new rows (a compaction in another thread),
    the refresh notices and reads everything again instead of caching one text's vectors under another's hash."""
    store, rng, q, rows = _fresh_cache_test(tmp_path, monkeypatch, tier, 13, 40)
    rows += _fill(store, 60, rng, start=40)
    real_take = store.vectors.take_offsets
    monkeypatch.setattr(store.vectors, "take_offsets", lambda offsets: real_take([(k + 1) % 60 for k in offsets]))
    store.refresh()  # the next read asks for the table version again
    _assert_dense_scores(store, q, rows, tier)
    for r in rows[40::5]:
        assert store.dense_neighbours(r["dense"], 1) == [r["text_hash"]]


def test_quantized_dense_search_recall_on_clustered_vectors(tmp_path, monkeypatch):
    """Sign-bit shortlist + int8 rescoring finds what exact search finds (1024-dim vectors around 40 topics)."""
    _use_tier(monkeypatch, "quantized")
    rng = np.random.default_rng(12)
    dim, n = 1024, 3000
    centres = rng.standard_normal((40, dim)).astype(np.float32)
    dense = centres[rng.integers(0, 40, n)] + 1.5 * rng.standard_normal((n, dim)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    store = Store(tmp_path / "idx")
    store.bind_model("test", dim, "int8")
    hashes = [f"{i:040x}" for i in range(n)]
    store.add_vectors([
        {"text_hash": h, "dense": d, "sparse_ids": [], "sparse_weights": [], "colbert": b"", "colbert_scale": b"",
         "n_vectors": 0}
        for h, d in zip(hashes, dense)
    ])
    recalls = []
    for i in range(20):
        q = dense[i * 37] + 0.3 * rng.standard_normal(dim).astype(np.float32)
        q /= np.linalg.norm(q)
        exact = {hashes[k] for k in np.argsort(-(dense @ q))[:10].tolist()}
        recalls.append(len(exact & set(store.dense_neighbours(q, 10))) / 10)
    assert np.mean(recalls) >= 0.95, recalls


def test_optimize_builds_lookup_and_vector_indexes(tmp_path, monkeypatch):
    from desktop_search.core.store import HASH_INDEX, tiers

    _use_tier(monkeypatch, "disk")
    monkeypatch.setattr(tiers, "VECTOR_INDEX_MIN_ROWS", 200)
    rng = np.random.default_rng(6)
    store = Store(tmp_path / "idx")
    rows = _fill(store, 300, rng)
    store.optimize()
    names = {getattr(ix, "name", "") for ix in store.vectors.list_indices()}
    assert HASH_INDEX in names and store.has_dense_index()
    assert any("text" in getattr(ix, "name", "") for ix in store.chunks.list_indices())  # FTS still built
    q = rows[17]["dense"]
    assert store.dense_neighbours(q, 5)[0] == rows[17]["text_hash"]
