"""Query caches kept in RAM per table version, and the searches that run on them.

- ``VectorCache``: what queries need of the vectors table, in its row order: text hash -> row, the lexical
  weights as CSR (and transposed, as postings), and the dense tier chosen by table size (``tiers``).
- ``ChunkMap``: text hash -> chunk row offsets, with each row's id and path, so candidates are grouped without
  reading chunk rows.

A new table version re-reads only the hash column and the rows of hashes the previous version lacked (a row's
vectors never change: they are keyed by the text's hash), so a watcher batch costs little. Table versions are
asked of LanceDB at most once a second (``VERSION_RECHECK_S``); the Store's own writes clear that memo.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from desktop_search.core.store import tiers
from desktop_search.core.store.codecs import quantize_rows, sign_bits
from desktop_search.core.store.tables import Tables, fixed_list_matrix, rows_by_hash

__all__ = ["ChunkMap", "QueryCaches", "VectorCache"]

VERSION_RECHECK_S = 1.0
CACHE_COLUMNS = ["text_hash", "sparse_ids", "sparse_weights", "dense"]


@dataclass
class VectorCache:
    """What queries need of the vectors table, in its row order for one table version."""

    version: int
    tier: tiers.DenseTier
    hashes: list[str]
    pos: dict[str, int]  # text hash -> row offset in this table version
    sparse: Any  # scipy CSR, rows = ``hashes``, columns = token ids
    postings: Any  # the same transposed (CSR, rows = token ids): a query's tokens select a few rows of it
    dense: np.ndarray | None  # exact tier: (rows, dim) float32
    q8: np.ndarray | None  # quantized tier: (rows, dim) int8 ...
    q8_scale: np.ndarray | None  # ... times this float32 scale per row
    signs: np.ndarray | None  # quantized tier: (rows, words) uint64 sign bits of the dense vectors
    indexed: bool  # the dense column has an ANN index

    def take(self, rows: np.ndarray) -> dict[str, Any]:
        """The per-row arrays of these rows (for carrying them into the next table version)."""

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return a[rows] if a is not None else None

        return {"sparse": self.sparse[rows], "dense": pick(self.dense), "q8": pick(self.q8),
                "q8_scale": pick(self.q8_scale), "signs": pick(self.signs)}


@dataclass
class ChunkMap:
    version: int
    positions: dict[str, list[int]]  # text hash -> row offsets in the chunks table
    ids: list[str]  # chunk id per row
    paths: list[str]  # file path per row


def return_freed_heap() -> None:
    """Give memory freed by large temporary arrays back to the OS. glibc keeps it in the heap otherwise (measured:
    +350 MB of resident memory after building the caches of a 100k-chunk index); a no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl): nothing to trim
        pass


def top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores, best first (ties in index order)."""
    best = np.argpartition(-scores, n)[:n] if len(scores) > n else np.arange(len(scores))
    return best[np.argsort(-scores[best], kind="stable")]


def cache_part(tbl: pa.Table, tier: tiers.DenseTier) -> dict[str, Any]:
    """One Arrow batch of the vectors table -> the per-row arrays the query cache keeps for ``tier``."""
    from scipy import sparse

    ids_col = tbl.column("sparse_ids").combine_chunks()
    w_col = tbl.column("sparse_weights").combine_chunks()
    indptr = ids_col.offsets.to_numpy()
    indices = ids_col.values.to_numpy(zero_copy_only=False)
    data = w_col.values.to_numpy(zero_copy_only=False)
    if indptr[0] != 0 or len(indices) != indptr[-1]:  # a sliced array: offsets relative to its parent's values
        indices, data = indices[indptr[0] : indptr[-1]], data[indptr[0] : indptr[-1]]
        indptr = indptr - indptr[0]
    width = int(indices.max()) + 1 if len(indices) else 1
    part: dict[str, Any] = {
        "sparse": sparse.csr_matrix((data.astype(np.float32), indices, indptr), shape=(tbl.num_rows, width)),
        "dense": None, "q8": None, "q8_scale": None, "signs": None,
    }
    if tier == "exact":
        part["dense"] = fixed_list_matrix(tbl.column("dense"))
    elif tier == "quantized":
        m = fixed_list_matrix(tbl.column("dense"))
        part["q8"], part["q8_scale"] = quantize_rows(m)
        part["signs"] = sign_bits(m)
    return part


class QueryCaches:
    """The per-version caches of one index's tables, their lock and their version memo."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._lock = threading.Lock()  # one build of the vector cache at a time
        self._vector_cache: VectorCache | None = None
        self._chunk_map: ChunkMap | None = None
        self._versions: dict[int, tuple[int, float]] = {}

    # -- versions -----------------------------------------------------------------------------------------
    def version(self, table: Any) -> int:
        """The table's version, asked of LanceDB at most once a second: asking costs milliseconds and a query
        asks several times. :meth:`forget_versions` (called by the Store's own writes) makes writes seen at once."""
        now = time.monotonic()
        memo = self._versions.get(id(table))
        if memo is not None and now - memo[1] < VERSION_RECHECK_S:
            return memo[0]
        if table is self._tables.chunks:
            self._tables.follow_mirror()
        version = int(table.version)
        self._versions[id(table)] = (version, now)
        return version

    def forget_versions(self) -> None:
        self._versions.clear()

    def mark_stale(self) -> None:
        """Re-check the table on the next query, keeping the cached rows for reuse (rows are keyed by text
        hash, so they stay right for the same model; :meth:`drop` forgets them when the model changes)."""
        with self._lock:
            if self._vector_cache is not None:
                self._vector_cache = dataclasses.replace(self._vector_cache, version=-1)

    def invalidate(self) -> None:
        """After the tables moved to their latest versions: re-check everything on the next query."""
        self.mark_stale()
        self._chunk_map = None
        self._versions.clear()

    def drop(self) -> None:
        """Forget the cached vectors (the vectors table was recreated for another model)."""
        with self._lock:
            self._vector_cache = None
        self._versions.clear()

    @property
    def built(self) -> bool:
        """Whether the vector cache has been built (by :meth:`warm` or a query)."""
        return self._vector_cache is not None

    def warm(self) -> None:
        self.vector_cache()
        self.chunk_map()
        return_freed_heap()  # the batches read on the way: about as much again as the caches at 100k rows

    # -- vector cache -------------------------------------------------------------------------------------
    def vector_cache(self) -> VectorCache | None:
        """Row order, lexical weights (CSR) and the in-memory dense tier; refreshed per table version.

        Query-time lookups go through it: positions turn ``IN (...)`` scans into direct row reads, lexical
        scores are one sparse product, and dense search runs in RAM up to ``DENSE_MEMORY_MAX_ROWS`` rows.
        """
        vectors = self._tables.vectors
        if vectors is None:
            return None
        version = self.version(vectors)
        cache = self._vector_cache
        if cache is not None and cache.version == version:
            return cache
        with self._lock:
            cache = self._vector_cache
            if cache is not None and cache.version == version:
                return cache
            cache = self._load_vector_cache(version, cache)
            self._vector_cache = cache
            return cache

    def _load_vector_cache(self, version: int, old: VectorCache | None) -> VectorCache:
        from scipy import sparse

        vectors = self._tables.vectors
        assert vectors is not None
        tier = tiers.dense_tier(vectors.count_rows())
        cols = CACHE_COLUMNS if tier != "disk" else CACHE_COLUMNS[:-1]
        parts: list[dict[str, Any]] = []
        back = None  # rows of the parts, concatenated -> table order (None: already in it)
        hashes: list[str] = []
        if old is not None and old.tier == tier and old.hashes:
            # Reuse what the previous version cached; read only the rows of new hashes. The rows read must
            # carry the hashes the column said (a concurrent compaction moves rows): otherwise read everything.
            hashes = self._tables.vector_hash_list()
            old_rows = np.fromiter((old.pos.get(h, -1) for h in hashes), np.int64, len(hashes))
            reused, fresh = np.flatnonzero(old_rows >= 0), np.flatnonzero(old_rows < 0)
            new_rows = self._tables.vectors_at(fresh.tolist(), cols) if len(fresh) else None
            consistent = new_rows is None or new_rows.column("text_hash").to_pylist() == [hashes[k] for k in fresh.tolist()]
            if len(reused) and consistent:
                parts.append(old.take(old_rows[reused]))
                if new_rows is not None and new_rows.num_rows:
                    parts.append(cache_part(new_rows, tier))
                back = np.argsort(np.concatenate([reused, fresh]), kind="stable")
            else:
                hashes = []
        if not parts:  # a full read, in batches (the dense column of 100k rows is 400 MB as float32)
            for rb in self._tables.vector_columns(cols):
                if rb.num_rows:
                    tbl = pa.Table.from_batches([rb])
                    hashes.extend(tbl.column("text_hash").to_pylist())
                    parts.append(cache_part(tbl, tier))
        n_rows = len(hashes)

        def combine(key: str) -> np.ndarray | None:
            arrays = [pt[key] for pt in parts if pt[key] is not None]
            if not arrays:
                return None
            joined = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
            return joined[back] if back is not None else joined

        width = max((pt["sparse"].shape[1] for pt in parts), default=1)
        for pt in parts:
            pt["sparse"].resize((pt["sparse"].shape[0], width))
        if parts:
            mat = sparse.vstack([pt["sparse"] for pt in parts], format="csr")
            mat = mat[back] if back is not None else mat
        else:
            mat = sparse.csr_matrix((0, 1), dtype=np.float32)
        mat.sort_indices()
        indexed = tier == "disk" and n_rows >= tiers.VECTOR_INDEX_MIN_ROWS and self._tables.has_dense_index()
        return VectorCache(
            version, tier, hashes, {h: k for k, h in enumerate(hashes)}, mat, mat.T.tocsr(),
            combine("dense"), combine("q8"), combine("q8_scale"), combine("signs"), indexed,
        )

    # -- chunk map ----------------------------------------------------------------------------------------
    def chunk_map(self) -> ChunkMap:
        """Where each chunk is (hash -> row offsets) and its id and path, per table version (one scan of three
        small columns)."""
        chunks = self._tables.chunks
        version = self.version(chunks)
        cached = self._chunk_map
        if cached is not None and cached.version == version:
            return cached
        positions: dict[str, list[int]] = {}
        ids: list[str] = []
        paths: list[str] = []
        rows = None
        if chunks.count_rows():
            tbl = self._tables.chunk_columns(["text_hash", "id", "path"])
            for k, h in enumerate(tbl.column("text_hash").to_pylist()):
                positions.setdefault(h, []).append(k)
            ids = tbl.column("id").to_pylist()
            paths = tbl.column("path").to_pylist()
        cached = ChunkMap(version, positions, ids, paths)
        self._chunk_map = cached
        return cached

    def chunk_refs(self, hashes: Sequence[str]) -> list[dict[str, Any]]:
        cmap = self.chunk_map()
        out: list[dict[str, Any]] = []
        for h in dict.fromkeys(hashes):
            for k in cmap.positions.get(h, ()):
                out.append({"id": cmap.ids[k], "path": cmap.paths[k], "text_hash": h, "_offset": k})
        return out

    def chunk_rows_for_refs(self, refs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        by_offset = {r["_offset"]: r for r in refs}
        if not by_offset:
            return []
        offsets = sorted(by_offset)
        rows = self._tables.chunks_at(offsets)
        out, moved = [], set()
        for k, row in zip(offsets, rows):
            if row["id"] == by_offset[k]["id"] and row["text_hash"] == by_offset[k]["text_hash"]:
                out.append(row)
            else:
                moved.add(by_offset[k]["text_hash"])
        if len(rows) < len(offsets):
            moved |= {by_offset[k]["text_hash"] for k in offsets[len(rows):]}
        ids = {r["id"] for r in by_offset.values()}
        have = {r["id"] for r in out}
        if moved:
            out.extend(r for r in self._tables.chunks_with_hashes(sorted(moved)) if r["id"] in ids and r["id"] not in have)
        return out

    # -- searches on the caches ---------------------------------------------------------------------------
    def vector_rows(self, hashes: Sequence[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if self._tables.vectors is None or not hashes:
            return out
        cols = list(dict.fromkeys(["text_hash", *columns]))
        cache = self.vector_cache()
        wanted = list(dict.fromkeys(hashes))
        if cache is not None and cache.dense is not None and set(cols) <= {"text_hash", "dense", "sparse_ids", "sparse_weights"}:
            csr = cache.sparse
            for h in wanted:
                k = cache.pos.get(h)
                if k is None:
                    continue
                row: dict[str, Any] = {"text_hash": h}
                if "dense" in cols:
                    row["dense"] = cache.dense[k]
                a, b = csr.indptr[k], csr.indptr[k + 1]
                if "sparse_ids" in cols:
                    row["sparse_ids"] = csr.indices[a:b].tolist()
                if "sparse_weights" in cols:
                    row["sparse_weights"] = csr.data[a:b].tolist()
                out[h] = row
            return out  # a hash this table version has no row for is absent, as on disk
        missing = wanted
        if cache is not None and cache.pos:
            known = [(h, cache.pos[h]) for h in wanted if h in cache.pos]
            if known:
                # Exact dense vectors in RAM are not read again (on object storage every column is a request).
                ram_dense = cache.dense if "dense" in cols else None
                tbl = self._tables.vectors_at(
                    [k for _h, k in known], [c for c in cols if c != "dense"] if ram_dense is not None else cols)
                got = rows_by_hash(tbl, {h for h, _k in known})
                if ram_dense is not None:
                    for h, k in known:
                        if h in got:
                            got[h]["dense"] = ram_dense[k]
                out.update(got)
            # Rows moved by a write since the cache was built (or new ones) are looked up by value.
            missing = [h for h in wanted if h not in out]
        if missing:
            out.update(self._tables.vectors_with_hashes(missing, cols))
        return out

    def dense_scores(self, query: np.ndarray, hashes: Sequence[str]) -> np.ndarray:
        out = np.full(len(hashes), np.nan, np.float32)
        cache = self.vector_cache()
        if cache is None or not len(hashes):
            return out
        query = np.asarray(query, np.float32)
        rows = np.fromiter((cache.pos.get(h, -1) for h in hashes), np.int64, len(hashes))
        have = rows >= 0
        if cache.dense is not None:
            out[have] = cache.dense[rows[have]] @ query
        elif cache.q8 is not None and cache.q8_scale is not None:
            out[have] = (cache.q8[rows[have]].astype(np.float32) @ query) * cache.q8_scale[rows[have]]
        if cache.tier == "disk" or not have.all():  # rows written since the cache was built, or no RAM tier
            todo = [h for h, k in zip(hashes, rows.tolist()) if cache.tier == "disk" or k < 0]
            got = self.vector_rows(todo, ["dense"])
            index = {h: i for i, h in enumerate(hashes)}
            for h, row in got.items():
                out[index[h]] = float(row["dense"] @ query)
        return out

    def dense_neighbours(self, query: np.ndarray, limit: int) -> list[str]:
        vectors = self._tables.vectors
        if vectors is None:
            return []
        cache = self.vector_cache()
        if cache is None or not cache.hashes:
            return []
        query = np.asarray(query, np.float32)
        if cache.dense is not None:
            return [cache.hashes[k] for k in top(cache.dense @ query, limit).tolist()]
        if cache.q8 is not None and cache.q8_scale is not None and cache.signs is not None:
            words = np.bitwise_count(cache.signs ^ sign_bits(query)[0])  # differing sign bits per 64-bit word
            distance = words.astype(np.float32) @ np.ones(words.shape[1], np.float32)  # BLAS: faster than sum()
            n = min(len(distance), max(tiers.BINARY_RESCORE_FACTOR * limit, tiers.BINARY_SHORTLIST_MIN))
            shortlist = np.sort(np.argpartition(distance, n - 1)[:n]) if n < len(distance) else np.arange(n)
            scores = (cache.q8[shortlist].astype(np.float32) @ query) * cache.q8_scale[shortlist]
            return [cache.hashes[k] for k in shortlist[top(scores, limit)].tolist()]
        q = vectors.search(query, vector_column_name="dense").distance_type("dot").limit(limit)
        if cache.indexed:
            # Measured on 100k clustered vectors (nprobes 10, refine 2): recall@100 1.0 against exact search.
            q = q.nprobes(tiers.ANN_NPROBES).refine_factor(tiers.ANN_REFINE_FACTOR)
        return list(q.select(["text_hash"]).to_arrow().column("text_hash").to_pylist())

    def sparse_neighbours(self, q_sparse: dict[int, float], limit: int) -> list[str]:
        cache = self.vector_cache()
        if cache is None or not cache.hashes or not q_sparse:
            return []
        ids = [i for i in q_sparse if 0 <= i < cache.postings.shape[0]]
        if not ids:
            return []
        weights = np.asarray([q_sparse[i] for i in ids], np.float32)
        scores = np.asarray(cache.postings[ids].T @ weights).ravel()
        nz = np.flatnonzero(scores > 0)
        return [cache.hashes[k] for k in nz[top(scores[nz], limit)].tolist()]

    def lexical_scores(self, q_sparse: dict[int, float], hashes: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(hashes), np.float32)
        cache = self.vector_cache()
        if cache is None or not q_sparse or not hashes:
            return out
        ids = [i for i in q_sparse if 0 <= i < cache.sparse.shape[1]]
        rows = [cache.pos.get(h, -1) for h in hashes]
        present = np.array([r >= 0 for r in rows], bool)
        if ids and present.any():
            sub = cache.sparse[np.array([r for r in rows if r >= 0])][:, ids]
            out[present] = np.asarray(sub @ np.asarray([q_sparse[i] for i in ids], np.float32)).ravel()
        return out
