"""Which chunks get their vectors first when a large folder is indexed, and the "semantic: N / M" count.

A first run over a big folder takes hours on a CPU; the files the user works on (recently modified or opened)
are encoded first so semantic search is useful on them within minutes, both in the main pass and when
encoding catches up on a keyword-only index once the model is installed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from desktop_search.core.indexer import Indexer
from desktop_search.core.store import Store
from tests.conftest import CountingEncoder, write

TOPICS = ["volcanoes erupt lava", "glaciers carve valleys", "bees pollinate flowers", "tides follow the moon",
          "comets have icy tails", "deserts get cold at night"]


def _folder(tmp_path: Path) -> tuple[Path, list[str]]:
    """Files whose name order, content order and age order all differ; returns the texts newest first."""
    root = tmp_path / "docs"
    now = time.time()
    ages = [3, 0, 5, 1, 4, 2]  # days old, by file name order
    for i, (topic, age) in enumerate(zip(TOPICS, ages)):
        path = write(root / f"{i:02d}.txt", f"{topic}.")
        os.utime(path, (now - age * 86400 - 60, now - age * 86400))
    newest_first = [f"{TOPICS[i]}." for i in sorted(range(len(TOPICS)), key=lambda i: ages[i])]
    return root, newest_first


def test_recently_modified_files_are_encoded_first(settings, tiny_encoder, tmp_path):
    root, newest_first = _folder(tmp_path)
    enc = CountingEncoder(tiny_encoder)
    Indexer(Store(settings.index_dir), settings, enc).index([root])
    assert enc.encoded == newest_first


def test_catch_up_encodes_recent_files_first_and_counts_honestly(settings, tiny_encoder, tmp_path):
    root, newest_first = _folder(tmp_path)
    Indexer(Store(settings.index_dir), settings, None).index([root])  # keyword only: no model yet
    enc = CountingEncoder(tiny_encoder)
    seen = []
    report = Indexer(Store(settings.index_dir), settings, enc).index(
        [root], progress=lambda p: seen.append((p.phase, p.chunks_encoded, p.chunks_to_encode, p.semantic_line)))
    assert enc.encoded == newest_first
    n = len(TOPICS)
    assert report.chunks_encoded == n
    # The total is known before the first vector is made, and the count ends at it.
    assert any(done == 0 and total == n for _phase, done, total, _line in seen)
    assert seen[-1][1:3] == (n, n) and seen[-1][3] == f"semantic: {n} / {n} chunks"
