"""The chunks table of a shared index, kept in RAM: what makes a query over S3 cost a few round trips, not pages.

On a local disk, reading the few chunk rows a query shows costs microseconds. On object storage every read is a
request (tens of ms away) that fetches whole pages of the text column, megabytes per query. The chunks table is
small next to the vectors (~400 bytes a chunk: ~40 MB at 100k chunks), so a Store over a shared index keeps all
of it in RAM, per table version, and answers the rows of search results and BM25 hits from there; BM25 itself
asks LanceDB only for the ids of its hits.

A new table version (the indexing machine committed) re-reads only the key columns and fetches the rows it has
not seen: a row is reused when its id, text hash, path, page, offsets and ordinal are all unchanged (the text is
fixed by its hash).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa

__all__ = ["KEY_COLUMNS", "carry_rows", "rows_at"]

KEY_COLUMNS = ["id", "text_hash", "path", "page", "char_start", "char_end", "ordinal"]


def _keys(tbl: pa.Table) -> list[tuple]:
    return list(zip(*(tbl.column(c).to_pylist() for c in KEY_COLUMNS)))


def carry_rows(old: pa.Table | None, keys: pa.Table, fetch: Callable[[list[int]], pa.Table],
               read_all: Callable[[], pa.Table]) -> pa.Table:
    """Every row of the new table version, in its row order. ``keys`` holds its ``KEY_COLUMNS``; ``fetch(offsets)``
    reads rows of the new version by offset, ``read_all()`` the whole table."""
    if old is None or not old.num_rows:
        return read_all()
    new_keys = _keys(keys)
    old_pos = {k: i for i, k in enumerate(_keys(old))}
    src = np.fromiter((old_pos.get(k, -1) for k in new_keys), np.int64, len(new_keys))
    reused, fresh = np.flatnonzero(src >= 0), np.flatnonzero(src < 0)
    if len(fresh) > len(new_keys) // 2:
        return read_all()  # mostly new: one scan is cheaper than many takes
    parts = [old.take(pa.array(src[reused]))]
    if len(fresh):
        got = fetch(fresh.tolist()).select(old.column_names)
        if _keys(got) != [new_keys[k] for k in fresh.tolist()]:  # rows moved under us (a compaction): start over
            return read_all()
        parts.append(got.cast(old.schema))
    combined = pa.concat_tables(parts)
    order = np.argsort(np.concatenate([reused, fresh]), kind="stable")
    return combined.take(pa.array(order))


def rows_at(rows: pa.Table, offsets: Sequence[int]) -> list[dict[str, Any]]:
    """Rows at these offsets as dicts (offsets past the end are left out)."""
    ok = [k for k in offsets if 0 <= k < rows.num_rows]
    return rows.take(pa.array(ok, pa.int64())).to_pylist() if ok else []
