"""The index on disk: LanceDB tables for files, chunks and vectors, plus a small meta file.

- ``files``: one row per file seen (path, size, mtime, content SHA-256, terminal status, failure reason/detail).
- ``chunks``: one row per chunk (path, page, offsets, exact text, text hash) with a BM25 full-text index whose
  ICU tokenizer segments CJK without dictionaries.
- ``vectors``: BGE-M3 outputs keyed by the chunk text's hash, so identical text is encoded once, a renamed
  file or an edited page costs only its new chunks, and keyword indexing can run before a model exists.
  ColBERT vectors are stored as int8 with one float32 scale per token (or float16), as bytes.

Write order (chunks, vectors, then the files row) means a file is only ever marked indexed after its chunks
are committed; a crash in between leaves it to be redone. Nothing here imports Qt or torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa

SCHEMA_VERSION = 1
META_FILE = "desktop_search_index.json"

FILES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("status", pa.string()),  # indexed | failed | pending
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("warnings", pa.string()),
        pa.field("page_count", pa.int32()),
        pa.field("n_chunks", pa.int32()),
        pa.field("indexed_at", pa.float64()),
    ]
)

CHUNKS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("path", pa.string()),
        pa.field("ordinal", pa.int32()),
        pa.field("page", pa.int32()),
        pa.field("char_start", pa.int32()),
        pa.field("char_end", pa.int32()),
        pa.field("text", pa.string()),
        pa.field("text_hash", pa.string()),
        pa.field("n_tokens", pa.int32()),
    ]
)


def vectors_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("text_hash", pa.string()),
            pa.field("dense", pa.list_(pa.float32(), dim)),
            pa.field("sparse_ids", pa.list_(pa.int32())),
            pa.field("sparse_weights", pa.list_(pa.float32())),
            pa.field("colbert", pa.binary()),
            pa.field("colbert_scale", pa.binary()),
            pa.field("n_vectors", pa.int32()),
        ]
    )


class IndexMissing(RuntimeError):
    """The index directory does not hold an index (yet)."""


class IndexIncompatible(RuntimeError):
    """The index was written by another schema version or model, and must be rebuilt."""


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    kind: str
    status: str
    reason: str | None
    detail: str
    warnings: str
    page_count: int
    n_chunks: int
    indexed_at: float

    def as_row(self) -> dict[str, Any]:
        row = self.__dict__.copy()
        # Arrow stores UTF-8 only: messages quoting broken file content must not make the row unwritable.
        for key in ("detail", "warnings", "reason"):
            if isinstance(row[key], str):
                row[key] = row[key].encode("utf-8", "replace").decode("utf-8")
        return row


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def chunk_id(path: str, ordinal: int) -> str:
    return f"{hashlib.sha1(path.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}:{ordinal}"


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in_list(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(sql_str(v) for v in values)})"


def _batches(seq: Sequence[Any], n: int = 400) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def quantize_colbert(vecs: np.ndarray, storage: str) -> tuple[bytes, bytes | None]:
    """(t, d) float32 -> bytes; int8 uses one scale per token so every token keeps its own dynamic range."""
    vecs = np.asarray(vecs, np.float32)
    if storage == "float16":
        return vecs.astype(np.float16).tobytes(), None
    scale = np.abs(vecs).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(vecs / scale[:, None]), -127, 127).astype(np.int8)
    return q.tobytes(), scale.astype(np.float32).tobytes()


def dequantize_colbert(blob: bytes, scale: bytes | None, dim: int) -> np.ndarray:
    if scale is None:
        return np.frombuffer(blob, np.float16).reshape(-1, dim).astype(np.float32)
    q = np.frombuffer(blob, np.int8).reshape(-1, dim).astype(np.float32)
    return q * np.frombuffer(scale, np.float32)[:, None]


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class Store:
    """One index directory. Reads are safe from any thread; writes go through one writer at a time."""

    def __init__(self, index_dir: Path, *, create: bool = True) -> None:
        import lancedb

        self.index_dir = Path(index_dir)
        meta_path = self.index_dir / META_FILE
        if not meta_path.is_file():
            if not create:
                raise IndexMissing(f"no index at {self.index_dir} (run `desktop-search index PATH` first)")
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self._write_meta({"schema_version": SCHEMA_VERSION})
        self.meta = json.loads(meta_path.read_text("utf-8"))
        if self.meta.get("schema_version") != SCHEMA_VERSION:
            raise IndexIncompatible(
                f"index at {self.index_dir} has schema version {self.meta.get('schema_version')}, "
                f"this app reads version {SCHEMA_VERSION}; rebuild it into an empty --index-dir"
            )
        self._db = lancedb.connect(str(self.index_dir / "lance"))
        self._write_lock = threading.RLock()
        self._sparse_cache: tuple[int, Any] | None = None
        names = set(self._table_names())
        self.files = self._db.open_table("files") if "files" in names else self._db.create_table("files", schema=FILES_SCHEMA)
        self.chunks = (
            self._db.open_table("chunks") if "chunks" in names else self._db.create_table("chunks", schema=CHUNKS_SCHEMA)
        )
        self.vectors = self._db.open_table("vectors") if "vectors" in names else None

    # -- meta -------------------------------------------------------------------------------------------
    def _table_names(self) -> list[str]:
        lister = getattr(self._db, "list_tables", None)
        if lister is not None:
            res = lister()
            return list(getattr(res, "tables", res))
        return list(self._db.table_names())

    def _write_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.index_dir / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2), "utf-8")
        os.replace(tmp, self.index_dir / META_FILE)
        self.meta = meta

    @property
    def model_fingerprint(self) -> str | None:
        return self.meta.get("model")

    @property
    def dim(self) -> int | None:
        return self.meta.get("dim")

    def bind_model(self, fingerprint: str, dim: int, colbert_storage: str) -> bool:
        """Attach the index to a model. Returns True if existing vectors had to be dropped (model changed)."""
        with self._write_lock:
            same = self.meta.get("model") == fingerprint and self.meta.get("dim") == dim
            if same and self.vectors is not None:
                return False
            dropped = self.vectors is not None
            if dropped:
                self._db.drop_table("vectors")
            self.vectors = self._db.create_table("vectors", schema=vectors_schema(dim))
            self._sparse_cache = None
            self._write_meta({**self.meta, "model": fingerprint, "dim": dim, "colbert_storage": colbert_storage})
            return dropped

    # -- files ------------------------------------------------------------------------------------------
    def file_records(self, where: str | None = None) -> dict[str, FileRecord]:
        q = self.files.search()
        if where:
            q = q.where(where)
        rows = q.limit(None).to_arrow().to_pylist() if self.files.count_rows() else []
        return {r["path"]: FileRecord(**r) for r in rows}

    def upsert_files(self, records: Sequence[FileRecord]) -> None:
        if not records:
            return
        with self._write_lock:
            table = pa.Table.from_pylist([r.as_row() for r in records], schema=FILES_SCHEMA)
            self.files.merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(table)

    def delete_files(self, paths: Sequence[str]) -> None:
        with self._write_lock:
            for part in _batches(list(paths)):
                self.chunks.delete(_in_list("path", part))
                self.files.delete(_in_list("path", part))

    # -- chunks -----------------------------------------------------------------------------------------
    def replace_chunks(self, paths: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        """Delete every chunk of ``paths`` and add ``rows`` (the new chunks of those files)."""
        with self._write_lock:
            for part in _batches(list(paths)):
                self.chunks.delete(_in_list("path", part))
            if rows:
                self.chunks.add(pa.Table.from_pylist(list(rows), schema=CHUNKS_SCHEMA))

    def count_chunks(self) -> int:
        return self.chunks.count_rows()

    def chunk_rows(self, where: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = self.chunks.search().where(where)
        if columns:
            q = q.select(list(columns))
        return q.limit(None).to_arrow().to_pylist()

    def chunks_for_hashes(self, hashes: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for part in _batches(list(hashes)):
            out.extend(self.chunk_rows(_in_list("text_hash", part)))
        return out

    def all_chunk_hashes(self) -> set[str]:
        if not self.chunks.count_rows():
            return set()
        col = self.chunks.search().select(["text_hash"]).limit(None).to_arrow().column("text_hash")
        return set(col.to_pylist())

    def fts(self, query: str, limit: int) -> list[dict[str, Any]]:
        """BM25 over chunk text; rows carry ``_score``. An unparsable query yields no rows, never an error."""
        if not self.chunks.count_rows() or not query.strip():
            return []
        try:
            return self.chunks.search(query, query_type="fts").limit(limit).to_arrow().to_pylist()
        except Exception:
            # Queries with syntax the FTS parser rejects (stray quotes, operators) fall back to plain words.
            words = " ".join(w for w in query.replace('"', " ").split() if w not in ("AND", "OR", "NOT"))
            if not words or words == query:
                return []
            try:
                return self.chunks.search(words, query_type="fts").limit(limit).to_arrow().to_pylist()
            except Exception:
                return []

    def ensure_fts_index(self) -> None:
        from lancedb.index import FTS

        if not self.chunks.count_rows():
            return
        indices = {getattr(ix, "name", "") for ix in self.chunks.list_indices()}
        if any("text" in n for n in indices):
            return
        with self._write_lock:
            # icu: word segmentation for CJK/Thai without dictionaries; no stemming or stop words, which are
            # English-only and would hurt the other languages.
            self.chunks.create_index(
                "text",
                config=FTS(
                    with_position=True,
                    base_tokenizer="icu",
                    lower_case=True,
                    stem=False,
                    remove_stop_words=False,
                    ascii_folding=True,
                ),
                replace=True,
            )

    # -- vectors ----------------------------------------------------------------------------------------
    def present_hashes(self, hashes: Iterable[str]) -> set[str]:
        if self.vectors is None:
            return set()
        wanted = list(set(hashes))
        found: set[str] = set()
        for part in _batches(wanted):
            tbl = self.vectors.search().where(_in_list("text_hash", part)).select(["text_hash"]).limit(None).to_arrow()
            found.update(tbl.column("text_hash").to_pylist())
        return found

    def add_vectors(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        assert self.vectors is not None and self.dim is not None, "bind_model() first"
        with self._write_lock:
            self.vectors.add(pa.Table.from_pylist(list(rows), schema=vectors_schema(self.dim)))

    def vector_hashes(self) -> set[str]:
        if self.vectors is None or not self.vectors.count_rows():
            return set()
        return set(self.vectors.search().select(["text_hash"]).limit(None).to_arrow().column("text_hash").to_pylist())

    def count_vectors(self) -> int:
        return self.vectors.count_rows() if self.vectors is not None else 0

    def vector_rows(self, hashes: Sequence[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if self.vectors is None:
            return out
        cols = list(dict.fromkeys(["text_hash", *columns]))
        for part in _batches(list(hashes)):
            for r in self.vectors.search().where(_in_list("text_hash", part)).select(cols).limit(None).to_arrow().to_pylist():
                out[r["text_hash"]] = r
        return out

    def dense_neighbours(self, query: np.ndarray, limit: int) -> list[str]:
        if self.vectors is None or not self.vectors.count_rows():
            return []
        res = (
            self.vectors.search(np.asarray(query, np.float32), vector_column_name="dense")
            .distance_type("dot")
            .limit(limit)
            .select(["text_hash"])
            .to_arrow()
        )
        return res.column("text_hash").to_pylist()

    def sparse_matrix(self):
        """(text hashes, CSR matrix rows=chunks x cols=token ids) of lexical weights, cached per table version."""
        from scipy import sparse

        if self.vectors is None:
            return [], None
        version = self.vectors.version
        if self._sparse_cache is not None and self._sparse_cache[0] == version:
            return self._sparse_cache[1]
        tbl = self.vectors.search().select(["text_hash", "sparse_ids", "sparse_weights"]).limit(None).to_arrow()
        hashes = tbl.column("text_hash").to_pylist()
        ids_col = tbl.column("sparse_ids").combine_chunks()
        w_col = tbl.column("sparse_weights").combine_chunks()
        indptr = ids_col.offsets.to_numpy() if len(hashes) else np.zeros(1, np.int32)
        indices = ids_col.values.to_numpy(zero_copy_only=False) if len(hashes) else np.zeros(0, np.int32)
        data = w_col.values.to_numpy(zero_copy_only=False) if len(hashes) else np.zeros(0, np.float32)
        width = int(indices.max()) + 1 if len(indices) else 1
        mat = sparse.csr_matrix((data, indices, indptr), shape=(len(hashes), width))
        self._sparse_cache = (version, (hashes, mat))
        return hashes, mat

    # -- maintenance ------------------------------------------------------------------------------------
    def optimize(self, keep_versions_for: timedelta = timedelta(seconds=0)) -> None:
        """Drop vectors no chunk uses, compact the tables and delete old versions so the index stays small."""
        import warnings

        with self._write_lock:
            if self.vectors is not None and self.vectors.count_rows():
                used = self.all_chunk_hashes()
                orphans = sorted(self.vector_hashes() - used)
                for part in _batches(orphans):
                    self.vectors.delete(_in_list("text_hash", part))
            self.ensure_fts_index()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the "concurrent readers" warning: we are the only writer
                for table in (self.files, self.chunks, self.vectors):
                    if table is not None:
                        table.optimize(cleanup_older_than=keep_versions_for)

    def index_bytes(self) -> int:
        return dir_bytes(self.index_dir)
