"""Keeping the index small and fast: drop unused vectors, compact, delete old versions, build the search indexes
(BM25 full-text on the chunks' analysed terms, B-trees on text hashes, an ANN index on dense vectors from ``tiers``' size)."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from desktop_search.core.store import tiers
from desktop_search.core.store.caches import QueryCaches
from desktop_search.core.store.fulltext import FTS_INDEX, fts_config
from desktop_search.core.store.tables import HASH_INDEX, Tables, index_names

__all__ = ["FTS_MAX_UNINDEXED", "FulltextCoverage", "Maintenance", "dir_bytes"]

# Past this many chunks not yet in the full-text index (LanceDB scans them on every keyword query), a commit adds
# the new fragments to the index.
FTS_MAX_UNINDEXED = 50_000


@dataclass(frozen=True)
class FulltextCoverage:
    """How much of the chunks table the full-text (BM25) index covers: rows in it, and rows added since."""

    indexed: int
    unindexed: int

# LanceDB warns that cleaning up old versions breaks concurrent users of them. This index has one writer (lock.py)
# and readers retry on the latest version, so the warning only adds noise. Registered once here: a
# catch_warnings block around each call is not thread-safe and let it through when threads overlapped.
warnings.filterwarnings("ignore", message=r"optimize\(cleanup_older_than=", category=UserWarning)


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class Maintenance:
    def __init__(self, tables: Tables, caches: QueryCaches) -> None:
        self._tables = tables
        self._caches = caches
        self._last_optimize: tuple[int | None, float] = (None, 0.0)

    def rebuild_indexes(self) -> None:
        """Drop every index of the chunks and vectors tables (damaged or with missing files) and build them again
        from the table data."""
        with self._tables.write_lock:
            for table in (self._tables.chunks, self._tables.vectors):
                if table is None:
                    continue
                for name in index_names(table):
                    try:
                        table.drop_index(name)
                    except Exception:  # noqa: BLE001 - replaced below anyway
                        pass
            self.ensure_fts_index()
            self.ensure_vector_indexes()

    def fulltext_coverage(self) -> FulltextCoverage | None:
        """Rows of the chunks table in / not yet in the full-text index; None when there is no such index."""
        chunks = self._tables.chunks
        if not self._tables.has_fts_index():
            return None
        name = next((n for n in index_names(chunks) if "text" in n), None)
        if name is None:
            return None
        stats = chunks.index_stats(name)
        if stats is None:
            return None
        return FulltextCoverage(int(stats.num_indexed_rows), int(stats.num_unindexed_rows))

    def keep_searchable(self, *, max_unindexed: int | None = None) -> None:
        """Committed means searchable by keyword, through the index: after the first group of a run the
        full-text index exists (LanceDB searches rows added after it too, unindexed ones by a scan), and once
        that scan grows past ``max_unindexed`` rows (default ``FTS_MAX_UNINDEXED``) the new fragments are added to
        the index incrementally (an optimize that keeps old versions, so readers on them are not disturbed).
        Called by the indexer after each group."""
        limit = FTS_MAX_UNINDEXED if max_unindexed is None else max_unindexed
        if not self._tables.has_fts_index():
            self.ensure_fts_index()
            return
        try:
            coverage = self.fulltext_coverage()
        except Exception:  # noqa: BLE001 - stats are an optimisation; doctor checks the index itself
            return
        if coverage is not None and coverage.unindexed > limit:
            with self._tables.write_lock:
                self._tables.chunks.optimize(cleanup_older_than=timedelta(days=7))

    def ensure_fts_index(self) -> None:
        chunks = self._tables.chunks
        if not chunks.count_rows() or self._tables.has_fts_index() or not self._tables.has_terms:
            return
        with self._tables.write_lock:
            chunks.create_index("terms", config=fts_config(), name=FTS_INDEX, replace=True)

    def ensure_vector_indexes(self) -> None:
        from lancedb.index import BTree, IvfHnswSq

        with self._tables.write_lock:
            for table in (self._tables.chunks, self._tables.vectors):
                if table is None or not table.count_rows():
                    continue
                if HASH_INDEX not in index_names(table):
                    table.create_index("text_hash", config=BTree(), name=HASH_INDEX, replace=True)
            vectors = self._tables.vectors
            if vectors is None:
                return
            n_rows = vectors.count_rows()
            if n_rows >= tiers.VECTOR_INDEX_MIN_ROWS and not self._tables.has_dense_index():
                # IVF-HNSW over 8-bit vectors: built in ~70 s for 100k rows on 2 cores (IVF-PQ took ~5 min).
                partitions = int(min(1024, max(16, n_rows // 1500)))
                vectors.create_index(
                    "dense", config=IvfHnswSq(distance_type="dot", num_partitions=partitions), replace=True
                )
            self._caches.mark_stale()

    def optimize(self, keep_versions_for: timedelta = timedelta(seconds=0)) -> None:
        with self._tables.write_lock:
            self._caches.forget_versions()
            if self._tables.vectors is not None and self._tables.vectors.count_rows():
                used = self._tables.all_chunk_hashes()
                orphans = sorted(set(self._tables.vector_hash_list()) - used)
                if orphans:
                    self._tables.delete_vectors(orphans)
            self.ensure_fts_index()
            for table in self._tables.all().values():
                table.optimize(cleanup_older_than=keep_versions_for)
            self.ensure_vector_indexes()
            self._caches.forget_versions()

    def maybe_optimize(self, *, max_new_versions: int, max_age_s: float) -> bool:
        last_versions, last_time = self._last_optimize
        now = time.monotonic()
        if last_versions is not None and self._tables.versions() - last_versions < max_new_versions \
                and now - last_time < max_age_s:
            return False
        self.optimize()
        self._last_optimize = (self._tables.versions(), now)
        return True
