"""A watched folder that goes away and comes back (a USB drive unplugged and replugged, a share that reconnects,
a folder deleted and re-created): its documents stay searchable while it is offline, the status line says so,
and once it is back it is watched again and what changed meanwhile is indexed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from desktop_search.core.store import Store
from tests.conftest import REPO, write
from tests.core.index_snapshot import wait_until
from tests.core.test_watcher import live_factory  # noqa: F401 (fixture)


@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
def test_a_folder_unplugged_and_plugged_back_is_kept_then_reconciled(tmp_path, live_factory, polling):  # noqa: F811
    folder = tmp_path / "usb"
    write(folder / "before.txt", "Notes about alpine meadows.")
    write(folder / "sub" / "deep.txt", "A deeper note about glacier lakes.")
    elsewhere = tmp_path / "unplugged"
    live = live_factory(folder, force_polling=polling, poll_interval_s=0.3, offline_retry_s=0.3,
                        offline_retry_max_s=1.0).start()
    assert live.indexed() == {"before.txt", os.path.join("sub", "deep.txt")}

    os.rename(folder, elsewhere)  # the drive's folder disappears, with no deletion of any file
    wait_until(lambda: live.watcher.offline == [str(folder)], 15, what="folder offline")
    assert "offline" in live.watcher.status and str(folder) in live.watcher.status
    time.sleep(1.5)  # several polls and retries while it is away
    live.wait_quiet()
    assert live.names("meadows") == ["before.txt"] and live.names("glacier") == ["deep.txt"]
    # An indexing run over the watched folders meanwhile keeps them too.
    rep = live.indexer.index([folder])
    assert rep.offline == [str(folder)] and rep.removed == 0 and live.names("meadows") == ["before.txt"]

    # Changed while away: one file added, one edited, one deleted.
    write(elsewhere / "added.txt", "Written elsewhere about river deltas.")
    write(elsewhere / "before.txt", "Notes about alpine meadows and marmots.")
    (elsewhere / "sub" / "deep.txt").unlink()
    os.rename(elsewhere, folder)
    wait_until(lambda: live.names("deltas") == ["added.txt"], 20, what="file added while offline indexed")
    wait_until(lambda: live.names("marmots") == ["before.txt"], 10, what="file edited while offline updated")
    wait_until(lambda: live.names("glacier") == [], 10, what="file deleted while offline removed")
    assert live.watcher.offline == [] and "offline" not in live.watcher.status
    # And it is watched again, not just reconciled once.
    write(folder / "later.txt", "A later note about sand dunes.")
    wait_until(lambda: live.names("dunes") == ["later.txt"], 15, what="change after return indexed")


def test_a_watched_folder_deleted_and_recreated_is_watched_again(tmp_path, live_factory):  # noqa: F811
    folder = tmp_path / "docs"
    write(folder / "a.txt", "Notes about lighthouses.")
    live = live_factory(folder, offline_retry_s=0.3, offline_retry_max_s=1.0).start()
    shutil.rmtree(folder)
    wait_until(lambda: live.watcher.offline == [str(folder)], 15, what="folder offline")
    write(folder / "b.txt", "New notes about harbours.")
    wait_until(lambda: live.names("harbours") == ["b.txt"], 20, what="file in the re-created folder indexed")
    wait_until(lambda: live.names("lighthouses") == [], 10, what="file gone with the old folder removed")


def test_watch_command_says_offline_and_marks_hits_offline(tmp_path):
    folder = tmp_path / "share"
    write(folder / "a.txt", "Minutes of the meeting about ferries.")
    index_dir = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "desktop_search", "watch", str(folder), "--keyword-only", "--index-dir", str(index_dir),
         "--debounce", "0.2"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        def saw(text: str) -> bool:
            return any(text in line for line in list(lines))

        wait_until(lambda: saw("press Ctrl+C"), 60, what="watching")
        os.rename(folder, tmp_path / "away")
        wait_until(lambda: saw("offline"), 30, what="offline in the status line")
        res = subprocess.run([sys.executable, "-m", "desktop_search", "search", "ferries", "--mode", "keyword",
                              "--index-dir", str(index_dir)], capture_output=True, text=True, cwd=REPO, env=env)
        assert "a.txt" in res.stdout and "[offline]" in res.stdout, res.stdout + res.stderr
        os.rename(tmp_path / "away", folder)
        write(folder / "b.txt", "Timetable of the ferries.")
        wait_until(lambda: saw("updated: 1 indexed"), 30, what="reconciled on return")
        records = Store(index_dir, create=False).file_records()
        assert {Path(p).name for p, r in records.items() if r.status == "indexed"} == {"a.txt", "b.txt"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
        proc.stderr.close()
    assert proc.returncode == 0
