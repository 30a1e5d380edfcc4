"""The index on disk: LanceDB tables for files, chunks and vectors, plus a small description file, behind one
``Store`` facade.

Parts, in the order a query meets them:

- ``facade``       ``Store``: opens an index directory and routes each call to the part below that does it.
- ``meta``         the description file (schema version, bound model); ``IndexMissing`` / ``IndexIncompatible``.
- ``tables``       schemas, the ``FileRecord`` and ``ChunkRow`` values, and every read and write of the three tables
                   (typed queries such as ``records_under(roots)``, ``chunks_of(path)``): the only place with
                   LanceDB filter strings.
- ``keys``         stored path keys (and back to the path on disk), chunk ids, text hashes.
- ``codecs``       ColBERT vectors to bytes and back (int8, float16, sign bits, pooled), int8 rows, sign bits.
- ``tiers``        where dense search runs by table size (exact fp32 / int8 + sign bits in RAM / ANN on disk).
- ``caches``       per-version query caches in RAM (dense tier, lexical postings, chunk map) and the searches on
                   them, with their own lock and version memo.
- ``fulltext``     the analysed ``lang``/``terms`` columns, their BM25 index and full-text queries (``KeywordQuery``).
- ``maintenance``  optimize: drop unused vectors, compact, clean old versions, build FTS / B-tree / ANN indexes.
- ``mirror``       a reader of a shared index (s3://...): a local copy of the chunks table, synced from the bucket.

Nothing here imports Qt or torch.
"""

from desktop_search.core.store.codecs import (
    dequantize_colbert,
    dequantize_colbert_many,
    pool_tokens,
    quantize_colbert,
    quantize_rows,
    sign_bits,
)
from desktop_search.core.store.facade import Store
from desktop_search.core.store.fulltext import KeywordQuery
from desktop_search.core.store.keys import chunk_id, fs_path, is_under, path_key, text_hash
from desktop_search.core.store.maintenance import dir_bytes
from desktop_search.core.store.meta import (
    META_FILE,
    SCHEMA_VERSION,
    IndexIncompatible,
    IndexMissing,
    IndexNotOurs,
    foreign_content,
    read_meta,
    write_meta,
)
from desktop_search.core.store.tables import (
    CHUNKS_SCHEMA,
    FILES_SCHEMA,
    HASH_INDEX,
    ChunkRow,
    FileRecord,
    vectors_schema,
)

__all__ = [
    "CHUNKS_SCHEMA", "FILES_SCHEMA", "HASH_INDEX", "META_FILE", "SCHEMA_VERSION", "ChunkRow", "FileRecord", "IndexIncompatible",
    "IndexMissing", "IndexNotOurs", "KeywordQuery", "Store", "chunk_id", "dequantize_colbert",
    "dequantize_colbert_many", "dir_bytes", "foreign_content", "fs_path",
    "is_under", "path_key", "pool_tokens", "quantize_colbert", "quantize_rows", "read_meta", "sign_bits",
    "text_hash", "vectors_schema", "write_meta",
]
