"""The three LanceDB tables and every read and write of them: the only place that writes LanceDB filter strings.

- ``files``: one row per file seen (path, size, mtime, content SHA-256, terminal status, failure reason/detail).
- ``chunks``: one row per chunk (path, page, offsets, exact text, text hash, language, analysed terms) with a
  BM25 full-text index on the terms (see ``fulltext``).
- ``vectors``: BGE-M3 outputs keyed by the chunk text's hash (see ``codecs`` for the ColBERT bytes).

Callers ask typed questions (``records_under(roots)``, ``chunks_of(path)``, ``vectors_with_hashes(hashes)``);
the filter strings they become stay here. Writes hold ``write_lock`` (one writer thread at a time; other
processes are kept out by ``core/lock.py``).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np
import pyarrow as pa

from desktop_search.core.store.fulltext import FTS_INDEX, KeywordQuery, fulltext_query, with_terms

__all__ = [
    "CHUNKS_SCHEMA", "FILES_SCHEMA", "ChunkRow", "FileRecord", "HASH_INDEX", "Tables", "fixed_list_matrix",
    "fresh_retry", "rows_by_hash", "table_read_error", "vanished", "vectors_schema",
]

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
        # keyword analysis (core/analysis.py, store/fulltext.py): the chunk's language and its index keys
        pa.field("lang", pa.string()),
        pa.field("terms", pa.string()),
    ]
)

HASH_INDEX = "hash_btree"  # not "text...": ensure_fts_index recognises the FTS index by that prefix


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


@dataclass(frozen=True)
class ChunkRow:
    """One passage of one file, a row of the chunks table. ``page`` is the 1-based position, None for a
    one-position file. ``lang``/``terms`` (the keyword analysis) are filled in at the write when None, and kept
    as read when a row is copied (a moved file is not analysed again)."""

    id: str  # keys.chunk_id(path, ordinal)
    path: str
    ordinal: int
    page: int | None
    char_start: int
    char_end: int
    text: str
    text_hash: str  # keys.text_hash(text): what the vectors table is keyed by
    n_tokens: int
    lang: str | None = None
    terms: str | None = None

    def as_row(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "ChunkRow":
        """The value of a complete row read from the table (columns such as a search score left out)."""
        values: dict[str, Any] = {"lang": None, "terms": None}
        values.update((name, row[name]) for name in _CHUNK_FIELDS if name in row)
        return cls(**values)


_CHUNK_FIELDS = tuple(ChunkRow.__dataclass_fields__)


# -- filter strings (nowhere else) ------------------------------------------------------------------------------
def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in_list(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(_sql_str(v) for v in values)})"


def _under(roots: Sequence[str]) -> str:
    return " OR ".join(
        f"path = {_sql_str(r)} OR starts_with(path, {_sql_str(r.rstrip(os.sep) + os.sep)})" for r in roots
    )


def batches(seq: Sequence[Any], n: int = 400) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


# -- Arrow -> numpy ---------------------------------------------------------------------------------------------
def fixed_list_matrix(column: pa.ChunkedArray) -> np.ndarray:
    arr = column.combine_chunks()
    dim = arr.type.list_size
    values = arr.values.to_numpy(zero_copy_only=False)[arr.offset * dim : (arr.offset + len(arr)) * dim]
    return np.ascontiguousarray(values, np.float32).reshape(len(arr), dim)


def rows_by_hash(tbl: pa.Table, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Arrow rows -> {hash: row}; the dense column becomes float32 arrays without a detour through Python floats."""
    out: dict[str, dict[str, Any]] = {}
    if not tbl.num_rows:
        return out
    dense = fixed_list_matrix(tbl.column("dense")) if "dense" in tbl.column_names else None
    others = tbl.drop_columns(["dense"]) if dense is not None else tbl
    for k, row in enumerate(others.to_pylist()):
        if row["text_hash"] in wanted:
            if dense is not None:
                row["dense"] = dense[k]
            out[row["text_hash"]] = row
    return out


# -- readers never fail because someone writes ------------------------------------------------------------------
def vanished(exc: BaseException) -> bool:
    """A read hit data files that a writer's clean-up removed (the reader was on an older table version)."""
    return isinstance(exc, FileNotFoundError) or "Not found" in str(exc)


F = TypeVar("F", bound=Callable[..., Any])


def fresh_retry(method: F) -> F:
    """Readers never fail because another thread or process writes: a read that finds the files of its table
    version cleaned up moves to the latest version (``self.refresh()``) and runs again."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(4):
            try:
                return method(self, *args, **kwargs)
            except Exception as e:
                if attempt == 3 or not vanished(e):
                    raise
                self.refresh()
        raise AssertionError("unreachable")

    return wrapper  # type: ignore[return-value]


def index_names(table: Any) -> set[str]:
    try:
        return {getattr(ix, "name", "") for ix in table.list_indices()}
    except Exception:  # noqa: BLE001 - an unreadable table has no usable index
        return set()


def _describe_read_error(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


def table_read_error(table: Any) -> str | None:
    """None if every value of every column of ``table`` can be read, else the error. Column by column, so a wide
    column (ColBERT blobs) is never held in memory with the others; a Rust panic in LanceDB's runtime (a
    ``PanicException``, not an ``Exception``) is a finding too."""
    try:
        if table.count_rows():
            for name in table.schema.names:
                table.search().select([name]).limit(None).to_arrow()
        return None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - any read failure is the finding
        return _describe_read_error(e)


def index_errors(table: Any, column: str) -> str | None:
    """None if the search indexes on ``table`` answer a query, else the error: an index whose files are gone
    (a deleted ``_indices`` folder) or damaged is listed in the manifest but makes every query that uses it fail."""
    names = index_names(table)
    try:
        if column == "text" and FTS_INDEX in names:
            table.search(fulltext_query(KeywordQuery(should=("desktopsearchdoctorprobe",)))).limit(1).to_arrow()
        elif column == "text" and any("text" in n for n in names):  # an index from before keyword analysis
            table.search("desktopsearchdoctorprobe", query_type="fts").limit(1).to_arrow()
        if any(n == HASH_INDEX for n in names):
            table.search().where("text_hash = 'desktop-search-doctor-probe'").select(["text_hash"]).limit(1).to_arrow()
        for ix in table.list_indices():
            table.index_stats(getattr(ix, "name", ""))
        return None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001
        return _describe_read_error(e)


class Tables:
    """The LanceDB connection of one index and its three tables (``vectors`` is None until a model is bound)."""

    def __init__(self, lance_dir: Path | str, *, storage_options: dict[str, str] | None = None,
                 read_consistency_s: float | None = None, lease_uri: str | None = None,
                 mirror: Any = None) -> None:
        """``lance_dir`` a folder, or a URI (``s3://...``) with its ``storage_options``; readers of a URI see other
        writers' commits within ``read_consistency_s``, and writes stop once this process lost ``lease_uri``'s
        lease (core/lease.py). A reader may pass a ``mirror`` (mirror.py): the chunks table is then read from a
        local copy kept in step with the bucket."""
        from desktop_search.core.lancedb_import import import_lancedb

        lancedb = import_lancedb()  # without the namespace REST client a local index never uses
        if storage_options is None:
            self._db = lancedb.connect(str(lance_dir))
        else:
            self._db = lancedb.connect(
                str(lance_dir), storage_options=storage_options,
                read_consistency_interval=timedelta(seconds=read_consistency_s or 5.0),
            )
        self.remote = storage_options is not None
        self.write_lock: Any = threading.RLock()
        if lease_uri is not None:
            from desktop_search.core.lease import GuardedWriteLock

            self.write_lock = GuardedWriteLock(lease_uri)
        names = set(self._table_names())
        self.files = self._open_or_create("files", FILES_SCHEMA, names)
        self._mirror = mirror if "chunks" in names else None
        self._consistency_s = read_consistency_s or 5.0
        self._mirror_checked = time.monotonic()
        if self._mirror is not None:
            self._mirror.sync()
            self.chunks = lancedb.connect(str(self._mirror.local_root)).open_table("chunks")
        else:
            self.chunks = self._open_or_create("chunks", CHUNKS_SCHEMA, names)

        self.vectors = self._db.open_table("vectors") if "vectors" in names else None

    def _open_or_create(self, name: str, schema: pa.Schema, names: set[str]) -> Any:
        return self._db.open_table(name) if name in names else self._db.create_table(name, schema=schema)

    def _table_names(self) -> list[str]:
        lister = getattr(self._db, "list_tables", None)
        if lister is not None:
            res = lister()
            return list(getattr(res, "tables", res))
        return list(self._db.table_names())

    def all(self) -> dict[str, Any]:
        """The tables that exist, by name."""
        named = (("files", self.files), ("chunks", self.chunks), ("vectors", self.vectors))
        return {name: t for name, t in named if t is not None}

    def unreadable(self) -> dict[str, str]:
        """Tables some of whose rows cannot be read, with the error."""
        return {name: err for name, t in self.all().items() if (err := table_read_error(t))}

    def follow_mirror(self) -> None:
        """Bring the local copy of the chunks table up to date, at most once per refresh interval."""
        if self._mirror is None or time.monotonic() - self._mirror_checked < self._consistency_s:
            return
        self._mirror_checked = time.monotonic()
        if self._mirror.sync():
            self.chunks.checkout_latest()

    def checkout_latest(self) -> None:
        if self._mirror is not None:
            self._mirror_checked = 0.0
            self.follow_mirror()
        if self.vectors is None and "vectors" in self._table_names():  # created by another process meanwhile
            self.vectors = self._db.open_table("vectors")
        for table in self.all().values():
            try:
                table.checkout_latest()
            except Exception:  # noqa: BLE001 - a table being recreated: the next read will tell
                pass

    def versions(self) -> int:
        """The sum of the tables' versions (grows with every write)."""
        return sum(t.version for t in self.all().values())

    def recreate_vectors(self, dim: int) -> None:
        with self.write_lock:
            self.drop_vectors()
            self.vectors = self._db.create_table("vectors", schema=vectors_schema(dim))

    def drop_vectors(self) -> None:
        with self.write_lock:
            if self.vectors is not None:
                self._db.drop_table("vectors")
                self.vectors = None

    # -- files --------------------------------------------------------------------------------------------
    def file_records(self, where: str | None = None) -> dict[str, FileRecord]:
        q = self.files.search()
        if where:
            q = q.where(where)
        rows = q.limit(None).to_arrow().to_pylist() if self.files.count_rows() else []
        return {r["path"]: FileRecord(**r) for r in rows}

    def records_under(self, roots: Sequence[str]) -> dict[str, FileRecord]:
        """Rows of the files at or below ``roots`` (a few paths: asked for instead of reading the whole table).
        Callers that need exact containment check it again (``starts_with`` is a string prefix)."""
        known: dict[str, FileRecord] = {}
        for part in batches(list(roots), 100):
            known.update(self.file_records(_under(part)))
        return known

    def records_for(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        found: dict[str, FileRecord] = {}
        for part in batches(list(paths), 200):
            found.update(self.file_records(_in_list("path", part)))
        return found

    def add_files(self, records: Sequence[FileRecord]) -> None:
        with self.write_lock:
            self.files.add(pa.Table.from_pylist([r.as_row() for r in records], schema=FILES_SCHEMA))

    def upsert_files(self, records: Sequence[FileRecord]) -> None:
        with self.write_lock:
            table = pa.Table.from_pylist([r.as_row() for r in records], schema=FILES_SCHEMA)
            self.files.merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(table)

    def delete_files(self, paths: Sequence[str]) -> None:
        """Chunks first, then the files rows (every row of a path, duplicates included)."""
        with self.write_lock:
            for part in batches(list(paths)):
                self.chunks.delete(_in_list("path", part))
                self.files.delete(_in_list("path", part))

    def file_rows(self) -> list[dict[str, Any]]:
        """Every files row as stored (duplicates included)."""
        rows: list[dict[str, Any]] = self.files.search().limit(None).to_arrow().to_pylist() if self.files.count_rows() else []
        return rows

    # -- chunks -------------------------------------------------------------------------------------------
    def replace_chunks(self, paths: Sequence[str], rows: Sequence[ChunkRow]) -> None:
        with self.write_lock:
            for part in batches(list(paths)):
                self.chunks.delete(_in_list("path", part))
            if rows:
                table = pa.Table.from_pylist(with_terms([r.as_row() for r in rows]), schema=CHUNKS_SCHEMA)
                self.chunks.add(table)

    def rewrite_chunks(self, rows: Sequence[dict[str, Any]]) -> None:
        """Replace the whole chunks table with ``rows`` (re-analysed): how an index from before keyword analysis,
        or from an older analyser, gets its terms."""
        with self.write_lock:
            fresh = [{k: v for k, v in r.items() if k not in ("lang", "terms") and not k.startswith("_")} for r in rows]
            table = pa.Table.from_pylist(with_terms(fresh), schema=CHUNKS_SCHEMA)
            self._db.drop_table("chunks")
            self.chunks = self._db.create_table("chunks", table, schema=CHUNKS_SCHEMA)

    def _chunk_query(self, where: str | None, columns: Sequence[str] | None) -> list[dict[str, Any]]:
        self.follow_mirror()
        q = self.chunks.search()
        if where is not None:
            q = q.where(where)
        if columns:
            q = q.select(list(columns))
        rows: list[dict[str, Any]] = q.limit(None).to_arrow().to_pylist()
        return rows

    def chunks_of(self, path: str) -> list[ChunkRow]:
        return [ChunkRow.from_row(r) for r in self._chunk_query(f"path = {_sql_str(path)}", _CHUNK_FIELDS)]

    def chunks_with_hashes(self, hashes: Sequence[str], columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for part in batches(list(dict.fromkeys(hashes))):
            out.extend(self._chunk_query(_in_list("text_hash", part), columns))
        return out

    def all_chunks(self, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self._chunk_query(None, columns) if self.chunks.count_rows() else []

    def chunk_columns(self, columns: Sequence[str]) -> pa.Table:
        self.follow_mirror()
        return self.chunks.search().select(list(columns)).limit(None).to_arrow()

    def chunks_at(self, offsets: Sequence[int]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.chunks.take_offsets(list(offsets)).to_arrow().to_pylist()
        return rows

    def all_chunk_hashes(self) -> set[str]:
        if not self.chunks.count_rows():
            return set()
        return set(self.chunk_columns(["text_hash"]).column("text_hash").to_pylist())

    def fts(self, query: str, limit: int) -> list[dict[str, Any]]:
        """BM25 over chunk text; rows carry ``_score``. An unparsable query yields no rows, never an error."""
        self.follow_mirror()
        if not query.strip() or not self.chunks.count_rows():  # (not the chunk map: 0.25 s to build at 100k)
            return []
        try:
            return self._fts(query, limit)
        except Exception as e:
            from desktop_search.core.errors import is_damage

            if vanished(e) or is_damage(e):
                raise  # retried on the latest version by @fresh_retry; a damaged index is said, not hidden
            # Queries with syntax the FTS parser rejects (stray quotes, operators) fall back to plain words.
            words = " ".join(w for w in query.replace('"', " ").split() if w not in ("AND", "OR", "NOT"))
            if not words or words == query:
                return []
            try:
                return self._fts(words, limit)
            except Exception as e:
                if vanished(e):
                    raise
                return []

    @property
    def has_terms(self) -> bool:
        """The chunks table has the analysed ``terms`` column (older indexes are upgraded by the next writer)."""
        return "terms" in self.chunks.schema.names

    def keyword_rows(self, kq: KeywordQuery, limit: int) -> list[dict[str, Any]]:
        """The best ``limit`` chunks for an analysed query by BM25 over ``terms``; rows carry ``_score``."""
        self.follow_mirror()
        if not (kq.should or kq.phrases) or not self.chunks.count_rows():
            return []
        if not self.has_terms:
            return self.fts(" ".join(kq.raw or kq.should), limit)
        try:
            rows: list[dict[str, Any]] = self.chunks.search(fulltext_query(kq)).limit(limit).to_arrow().to_pylist()
            return rows
        except Exception as e:
            if vanished(e):
                raise  # retried on the latest version by @fresh_retry
            if not self.has_fts_index():
                return []  # no full-text index yet (a write in progress, or a damaged index: doctor says so)
            raise

    def has_key(self, key: str) -> bool:
        """Whether any chunk has this index key (one posting list)."""
        self.follow_mirror()
        if not self.has_terms or not self.chunks.count_rows():
            return False
        try:
            q = self.chunks.search(fulltext_query(KeywordQuery(should=(key,)))).select(["id"]).limit(1)
            return bool(q.to_arrow().num_rows)
        except Exception as e:
            if vanished(e):
                raise
            return False

    def chunk_languages(self) -> dict[str, int]:
        """Chunks per detected language."""
        counts: dict[str, int] = {}
        if self.has_terms and self.chunks.count_rows():
            for lang in self.chunk_columns(["lang"]).column("lang").to_pylist():
                counts[lang or "und"] = counts.get(lang or "und", 0) + 1
        return counts

    def _fts(self, query: str, limit: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.chunks.search(query, query_type="fts").limit(limit).to_arrow().to_pylist()
        return rows

    def has_fts_index(self) -> bool:
        names = index_names(self.chunks)
        return FTS_INDEX in names if self.has_terms else any("text" in n for n in names)

    # -- vectors ------------------------------------------------------------------------------------------
    def present_hashes(self, hashes: Iterable[str]) -> set[str]:
        if self.vectors is None:
            return set()
        found: set[str] = set()
        for part in batches(list(set(hashes))):
            tbl = self.vectors.search().where(_in_list("text_hash", part)).select(["text_hash"]).limit(None).to_arrow()
            found.update(tbl.column("text_hash").to_pylist())
        return found

    def add_vectors(self, rows: Sequence[dict[str, Any]], dim: int) -> None:
        assert self.vectors is not None, "bind_model() first"
        with self.write_lock:
            self.vectors.add(pa.Table.from_pylist(list(rows), schema=vectors_schema(dim)))

    def vector_hash_list(self) -> list[str]:
        """The text hash of every vectors row, in table order (duplicates included)."""
        if self.vectors is None or not self.vectors.count_rows():
            return []
        hashes: list[str] = self.vectors.search().select(["text_hash"]).limit(None).to_arrow().column("text_hash").to_pylist()
        return hashes

    def vector_columns(self, columns: Sequence[str]) -> Any:
        """Record batches of ``columns`` of every vectors row, in table order."""
        assert self.vectors is not None
        return self.vectors.search().select(list(columns)).limit(None).to_batches()

    def vectors_at(self, offsets: Sequence[int], columns: Sequence[str]) -> pa.Table:
        assert self.vectors is not None
        return self.vectors.take_offsets(list(offsets)).select(list(columns)).to_arrow()

    def vectors_with_hashes(self, hashes: Sequence[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if self.vectors is None:
            return out
        for part in batches(list(hashes)):
            tbl = self.vectors.search().where(_in_list("text_hash", part)).select(list(columns)).limit(None).to_arrow()
            out.update(rows_by_hash(tbl, set(part)))
        return out

    def vector_dim(self) -> int | None:
        """The vector size the vectors table was created with (None without one)."""
        if self.vectors is None:
            return None
        return getattr(self.vectors.schema.field("dense").type, "list_size", None)

    def delete_vectors(self, hashes: Sequence[str]) -> None:
        with self.write_lock:
            assert self.vectors is not None
            for part in batches(list(hashes)):
                self.vectors.delete(_in_list("text_hash", part))

    def dedupe_vectors(self, hashes: Sequence[str]) -> None:
        """Keep one row of each of ``hashes`` (which are stored more than once)."""
        with self.write_lock:
            assert self.vectors is not None
            for part in batches(list(hashes), 200):
                where = _in_list("text_hash", part)
                rows = self.vectors.search().where(where).limit(None).to_arrow()
                keep, seen = [], set()
                for i, h in enumerate(rows.column("text_hash").to_pylist()):
                    if h not in seen:
                        seen.add(h)
                        keep.append(i)
                self.vectors.delete(where)
                self.vectors.add(rows.take(keep))

    def has_dense_index(self) -> bool:
        if self.vectors is None:
            return False
        try:
            return any("dense" in list(getattr(ix, "columns", []) or []) for ix in self.vectors.list_indices())
        except Exception:  # noqa: BLE001 - an unreadable table has no usable index
            return False
