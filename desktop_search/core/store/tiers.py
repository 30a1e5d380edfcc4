"""Where dense search runs, by the size of the vectors table (measured with benchmarks/bench_query.py on 2 cores).

Up to ``DENSE_EXACT_MAX_ROWS`` the fp32 matrix is kept in RAM (<= 80 MB) and searched exactly ("exact"). Up to
``DENSE_MEMORY_MAX_ROWS`` an int8 copy (one scale per row) and the sign bits are kept (~1.2 KB a row, <= 470 MB):
a query ranks every row by Hamming distance of sign bits, rescores the best ``BINARY_RESCORE_FACTOR`` x limit with
the int8 rows and returns the best ``limit`` ("quantized"); the final scores of a search are computed from the
exact fp32 rows on disk. Above that, LanceDB's ANN index built by optimize() ("disk"). On 100k clustered 1024-dim
vectors a 2000-row shortlist keeps recall@10 at 0.995 and recall@100 at 0.985 for ~9 ms a query on 2 cores (exact
fp32 search: 16 ms and 4x the memory).

Readers look these up through the module at call time (tests move a small table into a large table's tier).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["DenseTier", "dense_tier"]

DenseTier = Literal["exact", "quantized", "disk"]

DENSE_EXACT_MAX_ROWS = 20_000
DENSE_MEMORY_MAX_ROWS = 400_000
BINARY_RESCORE_FACTOR = 10
BINARY_SHORTLIST_MIN = 2000
VECTOR_INDEX_MIN_ROWS = DENSE_MEMORY_MAX_ROWS  # from here optimize() builds an ANN index on the dense column
ANN_NPROBES = 10
ANN_REFINE_FACTOR = 2  # re-rank 2 x limit ANN hits with the exact fp32 vectors


def dense_tier(n_rows: int) -> DenseTier:
    if n_rows <= DENSE_EXACT_MAX_ROWS:
        return "exact"
    return "quantized" if n_rows <= DENSE_MEMORY_MAX_ROWS else "disk"
