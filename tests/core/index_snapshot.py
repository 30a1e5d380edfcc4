"""Helpers for the live-folder and crash-safety tests: compare an index with a clean one, wait without sleeping."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from desktop_search.core.store import Store


def snapshot(index_dir: Path) -> dict[str, Any]:
    """Everything that must be identical between an index and a clean index of the same tree."""
    store = Store(index_dir, create=False)
    files = {
        r.path: (r.size, r.mtime_ns, r.sha256, r.kind, r.status, r.reason, r.n_chunks, r.page_count)
        for r in store.file_records().values()
    }
    rows = store.all_chunks(["path", "ordinal", "text_hash", "page", "char_start", "char_end"])
    chunks = sorted((r["path"], r["ordinal"], r["text_hash"], r["page"], r["char_start"], r["char_end"]) for r in rows)
    vectors = sorted(store.scan()["vectors"])  # duplicates included
    file_rows = store.files.count_rows()
    return {"files": files, "file_rows": file_rows, "chunks": chunks, "vectors": vectors}


def assert_same_index(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """No duplicate or orphan chunk, no file row too many or too few, same vectors (by text)."""
    assert actual["file_rows"] == len(actual["files"]), "duplicate files rows"
    assert sorted(actual["files"]) == sorted(expected["files"]), (
        set(actual["files"]) ^ set(expected["files"]))
    for path, row in expected["files"].items():
        assert actual["files"][path] == row, (path, actual["files"][path], row)
    assert len(actual["chunks"]) == len(set(actual["chunks"])), "duplicate chunks"
    extra = set(actual["chunks"]) - set(expected["chunks"])
    missing = set(expected["chunks"]) - set(actual["chunks"])
    assert not extra and not missing, (sorted(extra)[:3], sorted(missing)[:3])
    assert actual["vectors"] == expected["vectors"], "vectors differ (duplicates, orphans or missing)"


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # keep polling; report the last mismatch on timeout
            last_error = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}"
                                 + (f": {last_error}" if last_error else ""))
        time.sleep(interval)
