"""A local copy of a shared index's chunks table, kept in step with the bucket: BM25 and the passages shown are
then read from this machine's disk, not across the network.

A query on a shared index otherwise pays round trips for the BM25 postings and the chunk rows it shows, each tens
of milliseconds away; the chunks table is small (~0.5 KB a chunk with its full-text index: ~50 MB at 100k chunks)
next to the vectors, which stay in the bucket (dense vectors and lexical weights are cached in RAM anyway; only
the ColBERT vectors of the candidates a query reranks are read from there). Lance files are immutable, so keeping
the copy current is a listing of the table's objects every refresh interval and a download of the new ones:
data, index and deletion files first, version manifests last (a local reader never sees a version whose files
are missing), then files the writer has cleaned up are removed here too.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["TableMirror"]


class TableMirror:
    """``table`` (e.g. ``lance/chunks.lance``) below a shared index's prefix, mirrored into ``local_root/<name>``."""

    def __init__(self, client: Any, table: str, local_root: Path) -> None:
        self.client = client
        self.table = table.strip("/")
        self.local_root = Path(local_root)
        self.local = self.local_root / self.table.rsplit("/", 1)[-1]
        self._lock = threading.Lock()

    def sync(self) -> bool:
        """Bring the copy up to date; True if anything changed."""
        import obstore

        from desktop_search.core.location import describe

        with self._lock:
            try:
                remote: dict[str, int] = {}
                for batch in obstore.list(self.client, self.table + "/", chunk_size=1000):
                    for meta in batch:
                        remote[meta["path"][len(self.table) + 1 :]] = int(meta["size"])
            except Exception as e:
                raise describe(e, self.table) from None
            if not remote:
                return False
            local = self._local_files()
            todo = [rel for rel, size in remote.items() if local.get(rel) != size]
            # Manifests last: a version becomes visible here only once every file it names is here.
            todo.sort(key=lambda rel: rel.startswith("_versions/"))
            for rel in todo:
                self._fetch(rel)
            gone = [rel for rel in local if rel not in remote]
            for rel in sorted(gone, key=lambda rel: not rel.startswith("_versions/")):  # manifests first
                try:
                    (self.local / rel).unlink()
                except OSError:
                    pass
            return bool(todo or gone)

    def _local_files(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for root, _dirs, files in os.walk(self.local):
            for name in files:
                if name.endswith(".part"):
                    continue
                path = Path(root) / name
                try:
                    out[path.relative_to(self.local).as_posix()] = path.stat().st_size
                except OSError:
                    pass
        return out

    def _fetch(self, rel: str) -> None:
        import obstore

        from desktop_search.core.location import describe

        target = self.local / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        try:
            data = bytes(obstore.get(self.client, f"{self.table}/{rel}").bytes())
        except FileNotFoundError:
            return  # cleaned up by the writer between the listing and now
        except Exception as e:
            raise describe(e, self.table) from None
        tmp.write_bytes(data)
        os.replace(tmp, target)
