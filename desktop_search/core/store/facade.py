"""``Store``: one index directory behind one object. It opens the description file (``meta``), the tables
(``tables``) and the query caches (``caches``), and routes each call to the part that does it, clearing the
caches' version memo on its own writes so they are seen at once.

Write order (chunks, vectors, then the files row) means a file is only ever marked indexed after its chunks
are committed; a crash in between leaves it to be redone. Nothing here imports Qt or torch.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from desktop_search.core import analysis
from desktop_search.core.store.caches import QueryCaches
from desktop_search.core.store.fulltext import KeywordQuery
from desktop_search.core.store.maintenance import FulltextCoverage, Maintenance, dir_bytes
from desktop_search.core.location import IndexLocation
from desktop_search.core.store.mirror import TableMirror
from desktop_search.core.store.meta import META_FILE, open_meta, open_remote_meta, read_meta, write_meta
from desktop_search.core.store.keys import is_under
from desktop_search.core.store.tables import ChunkRow, FileRecord, Tables, fresh_retry

__all__ = ["Store"]


class Store:
    """One index directory. Reads are safe from any thread; writes go through one writer at a time."""

    def __init__(self, index_dir: "Path | IndexLocation", *, create: bool = True,
                 read_consistency_s: float = 5.0, mirror_dir: Path | None = None) -> None:
        """``index_dir`` a folder, or a shared index in a bucket (an ``IndexLocation``, core/location.py): then
        ``index_dir`` is that location, the description is an object beside the tables, and this Store sees
        other machines' commits within ``read_consistency_s``. A reader of a shared index passes ``mirror_dir``
        (a cache folder of its own): the chunks table is then read from a local copy (mirror.py)."""
        self._client: Any = None
        if isinstance(index_dir, IndexLocation):
            self.index_dir: Any = index_dir
            self._client = index_dir.client()
            self.meta: dict[str, Any] = open_remote_meta(index_dir, self._client, create=create)
            mirror = TableMirror(self._client, "lance/chunks.lance", mirror_dir) if mirror_dir is not None else None
            self._tables = Tables(index_dir.lance_uri, storage_options=index_dir.lance_options(),
                                  read_consistency_s=read_consistency_s, lease_uri=index_dir.uri, mirror=mirror)
        else:
            self.index_dir = Path(index_dir)
            self.meta = open_meta(self.index_dir, create=create)
            self._tables = Tables(self.index_dir / "lance")
        self._caches = QueryCaches(self._tables)
        self._maintenance = Maintenance(self._tables, self._caches)
        self._languages: tuple[int, dict[str, int]] | None = None

    # The LanceDB tables themselves, for benchmarks and tests that inspect or damage an index on purpose.
    @property
    def files(self) -> Any:
        return self._tables.files

    @property
    def chunks(self) -> Any:
        return self._tables.chunks

    @property
    def vectors(self) -> Any:
        return self._tables.vectors

    # -- meta -------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Move every table to its latest committed version (what another process wrote), re-read the description
        (a model bound meanwhile) and drop caches."""
        if self._client is None:  # (a shared index's description is re-read by its own lease logic)
            meta, _problem = read_meta(self.index_dir)
            if meta is not None and meta.get("schema_version") == self.meta.get("schema_version"):
                self.meta = meta
        self._tables.checkout_latest()
        self._caches.invalidate()

    def _write_meta(self, meta: dict[str, Any]) -> None:
        if self._client is not None:
            self.index_dir.write_json(self._client, META_FILE, meta)
        else:
            write_meta(self.index_dir, meta)
        self.meta = meta

    @property
    def model_fingerprint(self) -> str | None:
        return self.meta.get("model")

    @property
    def dim(self) -> int | None:
        return self.meta.get("dim")

    @property
    def colbert_storage(self) -> str | None:
        return self.meta.get("colbert_storage")

    def bind_model(self, fingerprint: str, dim: int, colbert_storage: str) -> bool:
        """Attach the index to a model. Returns True if existing vectors had to be dropped (model changed)."""
        with self._tables.write_lock:
            same = self.meta.get("model") == fingerprint and self.meta.get("dim") == dim
            if same and self._tables.vectors is not None:
                return False
            dropped = self._tables.vectors is not None
            self._tables.recreate_vectors(dim)
            self._caches.drop()
            self._write_meta({**self.meta, "model": fingerprint, "dim": dim, "colbert_storage": colbert_storage})
            return dropped

    def unbind_model(self) -> None:
        """Drop every stored vector and forget the model (the next index run encodes the chunks again)."""
        with self._tables.write_lock:
            self._tables.drop_vectors()
            self._caches.drop()
            self._write_meta({k: v for k, v in self.meta.items() if k not in ("model", "dim")})

    # -- files ------------------------------------------------------------------------------------------
    @fresh_retry
    def file_records(self) -> dict[str, FileRecord]:
        """Every file's row, by path."""
        return self._tables.file_records()

    @fresh_retry
    def records_under(self, roots: Sequence[str]) -> dict[str, FileRecord]:
        """Rows of the files at or below any of ``roots`` (each a file or a folder)."""
        return {p: rec for p, rec in self._tables.records_under(roots).items() if is_under(p, roots)}

    @fresh_retry
    def records_for(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        """Rows of exactly these paths (absent paths are left out)."""
        return self._tables.records_for(paths)

    def add_files(self, records: Sequence[FileRecord]) -> None:
        """Append rows for paths known to have none yet (cheaper than an upsert, which joins the table)."""
        if records:
            self._tables.add_files(records)

    def upsert_files(self, records: Sequence[FileRecord]) -> None:
        if records:
            self._tables.upsert_files(records)

    def delete_files(self, paths: Sequence[str]) -> None:
        """Delete the chunks and every files row of ``paths``."""
        with self._tables.write_lock:
            self._caches.forget_versions()
            self._tables.delete_files(paths)

    # -- chunks -----------------------------------------------------------------------------------------
    def replace_chunks(self, paths: Sequence[str], rows: Sequence[ChunkRow]) -> None:
        """Delete every chunk of ``paths`` and add ``rows`` (the new chunks of those files)."""
        with self._tables.write_lock:
            self._caches.forget_versions()
            self._tables.replace_chunks(paths, rows)

    @fresh_retry
    def count_chunks(self) -> int:
        return int(self._tables.chunks.count_rows())

    @fresh_retry
    def chunks_of(self, path: str) -> list[ChunkRow]:
        """The chunks of one file."""
        return self._tables.chunks_of(path)

    @fresh_retry
    def chunks_with_hashes(self, hashes: Sequence[str], columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every chunk row whose text has one of these hashes, read by value."""
        return self._tables.chunks_with_hashes(hashes, columns)

    @fresh_retry
    def all_chunks(self, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every chunk row (``columns`` only, if given)."""
        return self._tables.all_chunks(columns)

    @fresh_retry
    def chunks_for_hashes(self, hashes: Sequence[str]) -> list[dict[str, Any]]:
        """Every chunk whose text has one of these hashes (read by row position when the table is unchanged)."""
        return self._caches.chunk_rows_for_refs(self._caches.chunk_refs(hashes))

    def chunk_refs(self, hashes: Sequence[str]) -> list[dict[str, Any]]:
        """Every chunk whose text has one of these hashes, as ``{id, path, text_hash}`` from the in-memory chunk
        map of the current table version (no row read): enough to group and filter search candidates;
        :meth:`chunk_rows_for_refs` completes the few that are shown."""
        return self._caches.chunk_refs(hashes)

    @fresh_retry
    def chunk_rows_for_refs(self, refs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Full chunk rows for refs from :meth:`chunk_refs`, read by row position; a row that a write has moved
        since the map was built is looked up by its text hash instead."""
        return self._caches.chunk_rows_for_refs(refs)

    @fresh_retry
    def all_chunk_hashes(self) -> set[str]:
        return self._tables.all_chunk_hashes()

    @fresh_retry
    def fts(self, query: str, limit: int) -> list[dict[str, Any]]:
        """BM25 for plain words (analysed as a query is); rows carry ``_score``. Never an error for odd input."""
        if not self._tables.has_terms:
            return self._tables.fts(query, limit)
        keys = [k for lang in self.query_languages(query) for k in analysis.query_keys(query, lang)]
        return self.keyword_rows(KeywordQuery(should=tuple(dict.fromkeys(keys))), limit)

    @fresh_retry
    def keyword_rows(self, kq: KeywordQuery, limit: int) -> list[dict[str, Any]]:
        """The best ``limit`` chunks for an analysed query, by BM25 over the analysed terms; rows carry ``_score``.
        Phrases and exclusions are part of the full-text query, so they hold over the whole index."""
        return self._tables.keyword_rows(kq, limit)

    @fresh_retry
    def has_key(self, key: str) -> bool:
        """Whether any chunk has this index key (cheap: one posting list)."""
        return self._tables.has_key(key)

    @property
    def has_terms(self) -> bool:
        """The chunks carry analysed terms (an index from before keyword analysis is upgraded on the next write)."""
        return self._tables.has_terms

    @fresh_retry
    def languages(self) -> dict[str, int]:
        """Chunks per detected language in the current table version (read once per version)."""
        version = self._caches.version(self._tables.chunks)
        cached = self._languages
        if cached is None or cached[0] != version:
            cached = self._languages = (version, self._tables.chunk_languages())
        return cached[1]

    def query_languages(self, text: str, most: int = 3) -> list[str]:
        """The languages to analyse a query in, most likely first: the index language the query looks most like,
        then each language holding at least 5 % of the index's chunks (``most`` in all). A chunk is indexed in
        its own language, so a query word is looked up in each (``runs`` as English ``run`` and as whatever a
        short, undetectable chunk was indexed as)."""
        langs = self.languages()
        if not langs:
            return [analysis.detect_language(text)]
        total = sum(langs.values())
        ranked = [lang for lang in sorted(langs, key=lambda lang: -langs[lang]) if langs[lang] * 20 >= total]
        ranked = ranked or [max(langs, key=lambda lang: langs[lang])]
        if len(langs) == 1 or next(analysis.tokens(text), None) is None:
            return ranked[:most]
        first = analysis.detect_language(text, among=list(langs))  # any language of the index may win
        return [first, *(lang for lang in ranked if lang != first)][:most]

    def upgrade_terms(self) -> bool:
        """Give an index written before keyword analysis (or by an older analyser) its ``lang``/``terms``: every
        chunk is re-analysed and the chunks table rewritten; vectors are kept (they are keyed by text hash). Call
        with the index lock held. Returns whether anything was rewritten."""
        version = analysis.ANALYZER_VERSION
        if self._tables.has_terms and self.meta.get("analyzer") == version:
            return False
        with self._tables.write_lock:
            rewrite = bool(self._tables.chunks.count_rows())
            if rewrite:
                self._caches.forget_versions()
                self._tables.rewrite_chunks(self._tables.all_chunks())
                self._caches.invalidate()
            self._write_meta({**self.meta, "analyzer": version})
            if rewrite:
                self._maintenance.ensure_fts_index()
                self._maintenance.ensure_vector_indexes()
            return rewrite

    # -- vectors ----------------------------------------------------------------------------------------
    @fresh_retry
    def present_hashes(self, hashes: Iterable[str]) -> set[str]:
        return self._tables.present_hashes(hashes)

    def add_vectors(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        assert self._tables.vectors is not None and self.dim is not None, "bind_model() first"
        with self._tables.write_lock:
            self._caches.forget_versions()
            self._tables.add_vectors(rows, self.dim)

    @fresh_retry
    def vector_hashes(self) -> set[str]:
        return set(self._tables.vector_hash_list())

    @fresh_retry
    def count_vectors(self) -> int:
        return int(self._tables.vectors.count_rows()) if self._tables.vectors is not None else 0

    @fresh_retry
    def vector_rows(self, hashes: Sequence[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Rows of the vectors table by text hash (``dense`` as exact float32 arrays, other columns as Python
        values)."""
        return self._caches.vector_rows(hashes, columns)

    @fresh_retry
    def dense_scores(self, query: np.ndarray, hashes: Sequence[str]) -> np.ndarray:
        """Dot products of the query with the stored dense vectors of ``hashes`` (NaN where none is stored).

        Exact in the "exact" and "disk" tiers (see ``tiers``); in the "quantized" tier they come from the int8
        copy (absolute error ~1e-3 of a cosine), good for ranking candidates: the final scores of a search are
        taken from :meth:`vector_rows`, which always reads exact vectors.
        """
        return self._caches.dense_scores(query, hashes)

    @fresh_retry
    def dense_neighbours(self, query: np.ndarray, limit: int) -> list[str]:
        """Text hashes of the ``limit`` best dense matches: exact for small tables, sign bits + int8 rescoring in
        RAM for large ones, LanceDB's ANN index beyond (see ``tiers``)."""
        return self._caches.dense_neighbours(query, limit)

    @fresh_retry
    def sparse_neighbours(self, q_sparse: dict[int, float], limit: int) -> list[str]:
        """Text hashes of the ``limit`` passages with the highest lexical matching score (score > 0), best first."""
        return self._caches.sparse_neighbours(q_sparse, limit)

    @fresh_retry
    def lexical_scores(self, q_sparse: dict[int, float], hashes: Sequence[str]) -> np.ndarray:
        """FlagEmbedding's lexical matching score of the query against each stored passage (0 if not stored)."""
        return self._caches.lexical_scores(q_sparse, hashes)

    def warm(self) -> None:
        """Build the query caches now (a background task calls this after opening, so the first search
        does not pay for reading the vectors)."""
        self._caches.warm()

    @property
    def caches_built(self) -> bool:
        """Whether the vector query cache is built (by :meth:`warm` or a first query)."""
        return self._caches.built

    # -- what doctor inspects and repairs ---------------------------------------------------------------
    def unreadable_tables(self) -> dict[str, str]:
        """Tables some of whose rows cannot be read, with the error."""
        return self._tables.unreadable()

    def scan(self) -> dict[str, Any]:
        """Everything doctor cross-checks: every files row, the (path, ordinal, text hash) of every chunk, the
        text hash of every vector row (duplicates included) and the vector size of the vectors table."""
        return {
            "files": self._tables.file_rows(),
            "chunks": self._tables.all_chunks(["path", "ordinal", "text_hash"]),
            "vectors": self._tables.vector_hash_list(),
            "vector_dim": self._tables.vector_dim(),
        }

    def delete_vectors(self, hashes: Sequence[str]) -> None:
        """Delete the vectors rows of ``hashes`` (their chunks are encoded again by the next index run)."""
        with self._tables.write_lock:
            self._caches.forget_versions()
            self._tables.delete_vectors(hashes)

    def dedupe_vectors(self, hashes: Sequence[str]) -> None:
        """Keep one vectors row for each of ``hashes``, which are stored more than once."""
        with self._tables.write_lock:
            self._caches.forget_versions()
            self._tables.dedupe_vectors(hashes)

    def has_fts_index(self) -> bool:
        return self._tables.has_fts_index()

    def fulltext_coverage(self) -> FulltextCoverage | None:
        """Chunks in the full-text index and chunks committed since it was last extended (None: no index)."""
        return self._maintenance.fulltext_coverage()

    def broken_indexes(self) -> dict[str, str]:
        """Tables whose search indexes exist but fail when queried, with the error."""
        from desktop_search.core.store.tables import index_errors

        out = {}
        for name, column in (("chunks", "text"), ("vectors", "dense")):
            table = self._tables.all().get(name)
            err = index_errors(table, column) if table is not None else None
            if err:
                out[name] = err
        return out

    def rebuild_indexes(self) -> None:
        self._maintenance.rebuild_indexes()
        self._caches.invalidate()

    def has_dense_index(self) -> bool:
        return self._tables.has_dense_index()

    # -- maintenance ------------------------------------------------------------------------------------
    def ensure_fts_index(self) -> None:
        self._maintenance.ensure_fts_index()

    def keep_searchable(self) -> None:
        """After a commit: what was committed is found by keyword search (see ``Maintenance.keep_searchable``)."""
        self._maintenance.keep_searchable()
        self._caches.forget_versions()

    def ensure_vector_indexes(self) -> None:
        """Indexes that keep queries fast on large tables: B-trees on the text hash columns (lookups by hash)
        and, from ``tiers.VECTOR_INDEX_MIN_ROWS`` rows, an IVF-HNSW index (8-bit scalar quantized) on dense
        vectors."""
        self._maintenance.ensure_vector_indexes()

    def optimize(self, keep_versions_for: timedelta = timedelta(seconds=0)) -> None:
        """Drop vectors no chunk uses, compact the tables and delete old versions so the index stays small."""
        self._maintenance.optimize(keep_versions_for)

    def maybe_optimize(self, *, max_new_versions: int = 40, max_age_s: float = 300.0) -> bool:
        """Optimize if the tables gained ``max_new_versions`` versions, or it is ``max_age_s`` since the last
        optimize; returns whether it ran. For small frequent writes (watcher batches)."""
        return self._maintenance.maybe_optimize(max_new_versions=max_new_versions, max_age_s=max_age_s)

    def index_bytes(self) -> int:
        if self._client is not None:
            return int(self.index_dir.total_bytes(self._client))
        return dir_bytes(self.index_dir)

