"""Live folders: file-system events -> debounced, coalesced batches of paths for the indexer to reconcile.

:class:`FolderWatcher` runs watchdog observers on the watched folders and turns their events into
:class:`ChangeBatch` values handed to a plain callback (``on_change``) from one background thread, never two at
a time. A batch is a set of paths (files or folders, existing or gone) that ``Indexer.update_paths`` brings in
line with the disk, so the watcher never has to reason about event order: a file created, modified three times
and renamed is one path; an editor's save (write a temporary file, rename it over the original) is one
change of the original, because temporary, partial, lock and hidden names are dropped here; a moved file
puts both of its paths in the batch, which lets the indexer keep its chunks without reading it again.
Events are debounced (``debounce_s`` of quiet) and bounded (``max_delay_s`` under continuous churn).

Native watching (inotify, FSEvents, ReadDirectoryChangesW) is used where it works. A folder on a network file
system, or one whose watch fails (inotify watch or instance limit reached), is polled instead, and a native
watch that dies later is replaced by polling plus a rescan of its folder; ``mode``/``modes`` and ``status``
say which, so the window can show it.

A watched folder that goes away (a USB drive unplugged, a network share dropped, the folder deleted) is
*offline*: its watch is dropped, no change under it is handed out (so its documents stay in the index and
searchable), the status line says so, and the folder is looked for again with a growing back-off
(``offline_retry_s`` doubling up to ``offline_retry_max_s``). When it is back it is watched again and queued
whole for reconciliation, so what changed meanwhile is indexed. Nothing here imports Qt.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserverVFS

from desktop_search.core.extract import is_supported
from desktop_search.core.indexer import is_ignored_name
from desktop_search.core.paths import is_under

__all__ = ["ChangeBatch", "FolderWatcher", "NETWORK_FILESYSTEMS", "OfflineFolder", "is_network_path"]

# File systems whose changes made by other machines never reach local change notification.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs",
    "lustre", "gpfs", "davfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse", "fuse.glusterfs",
    "fuse.cephfs", "webdav", "afpfs",
})
_IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})


@dataclass(frozen=True)
class ChangeBatch:
    """What changed since the last batch: ``paths`` to reconcile (no path is inside another one)."""

    paths: tuple[str, ...]
    moves: tuple[tuple[str, str], ...] = ()  # (from, to) pairs seen, for information; both ends are in paths
    rescan: bool = False  # whole folders are included because events may have been missed
    events: int = 0  # raw events coalesced into this batch

    def by_root(self, roots: Iterable[str]) -> dict[str, list[str]]:
        """The paths grouped by the watched folder they are in (for per-folder include/exclude patterns)."""
        out: dict[str, list[str]] = {}
        ordered = sorted((os.path.abspath(r) for r in roots), key=len, reverse=True)
        for p in self.paths:
            root = next((r for r in ordered if _inside(p, r)), None)
            if root is not None:
                out.setdefault(root, []).append(p)
        return out


@dataclass(frozen=True)
class OfflineFolder:
    """A watched folder that is not there now: since when (wall-clock seconds) and when it is looked for next."""

    path: str
    since: float
    next_look_s: float  # seconds from the moment the value was taken

    def describe(self) -> str:
        """One line for the user: which folder, since when, what happens meanwhile."""
        since = time.strftime("%H:%M", time.localtime(self.since))
        return (f"folder offline since {since}: {self.path} is not there (unplugged drive or share not mounted?); "
                "its documents stay searchable and it is watched again as soon as it is back")


def _inside(path: str, root: str) -> bool:
    return is_under(path, root)


def _mount_fstype(path: str) -> str | None:
    """Linux: the file system type of the mount holding ``path`` (longest matching mount point)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return None
    real = os.path.realpath(path)
    best, fstype = "", None
    for parts in mounts:
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if _inside(real, point) and len(point) > len(best):
            best, fstype = point, parts[2]
    return fstype


def is_network_path(path: str) -> bool:
    """Whether ``path`` is on a network file system, where native change notification is unreliable."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        if path.startswith("\\\\"):
            return True
        try:
            import ctypes

            drive = os.path.splitdrive(os.path.abspath(path))[0] + "\\"
            return ctypes.windll.kernel32.GetDriveTypeW(drive) == 4  # DRIVE_REMOTE
        except Exception:  # noqa: BLE001
            return False
    if sys.platform.startswith("linux"):
        fstype = _mount_fstype(path)
        return fstype is not None and (fstype in NETWORK_FILESYSTEMS or fstype.startswith(("nfs", "smb", "cifs")))
    return False


def _limit_hint(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "inotify watch limit reached (raise fs.inotify.max_user_watches)"
    if exc.errno == errno.EMFILE:
        return "inotify instance limit reached (raise fs.inotify.max_user_instances)"
    return f"native watching failed: {exc.strerror or exc}"


class _Handler(FileSystemEventHandler):
    def __init__(self, owner: "FolderWatcher") -> None:
        self.owner = owner

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.owner._on_event(event)


@dataclass
class _Pending:
    paths: set[str] = field(default_factory=set)
    moves: list[tuple[str, str]] = field(default_factory=list)
    rescan: bool = False
    events: int = 0
    first: float = 0.0
    last: float = 0.0


class FolderWatcher:
    """Watches folders; calls ``on_change(ChangeBatch)`` from its own thread after each burst of changes.

    ``start()`` begins watching (it does not index: callers reconcile the folders once themselves, e.g.
    ``Indexer.index``, and then apply batches with ``Indexer.update_paths``); ``stop()`` ends it. ``mode`` is
    ``"native"`` when every folder has native notification, else ``"polling"``; ``modes`` has it per folder
    and ``status`` is a sentence for the user. ``on_status(status)`` is called whenever that changes.
    """

    def __init__(
        self,
        roots: Sequence[Path | str],
        on_change: Callable[[ChangeBatch], None],
        *,
        debounce_s: float = 1.0,
        max_delay_s: float = 5.0,
        force_polling: bool = False,
        poll_interval_s: float = 3.0,
        ignore_dirs: Sequence[Path | str] = (),
        on_status: Callable[[str], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        offline_retry_s: float = 2.0,
        offline_retry_max_s: float = 60.0,
    ) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self.on_change = on_change
        self.debounce_s = debounce_s
        self.max_delay_s = max(max_delay_s, debounce_s)
        self.force_polling = force_polling
        self.poll_interval_s = poll_interval_s
        self.ignore_dirs = [os.path.abspath(d) for d in ignore_dirs]
        self.on_status = on_status
        self.on_error = on_error
        self.offline_retry_s = offline_retry_s
        self.offline_retry_max_s = max(offline_retry_max_s, offline_retry_s)
        self.modes: dict[str, str] = {}  # root -> "native" | "polling" | "offline" | "error"
        self._retry: dict[str, tuple[float, float]] = {}  # offline root -> (next look, current back-off)
        self._offline_since: dict[str, float] = {}  # offline root -> wall-clock time it went away
        self._polling_watches: dict[str, ObservedWatch] = {}
        self.reasons: dict[str, str] = {}  # root -> why it is polled / not watched
        self.batches = 0  # batches handed out (for tests and diagnostics)
        self._handler = _Handler(self)
        self._native: BaseObserver | None = None
        self._polling: BaseObserver | None = None
        self._native_watches: dict[str, ObservedWatch] = {}
        self._pending = _Pending()
        self._cond = threading.Condition()
        self._busy = False
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = ""

    # -- public -----------------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "polling" if any(m == "polling" for m in self.modes.values()) else "native"

    @property
    def status(self) -> str:
        return self._status

    @property
    def offline(self) -> list[str]:
        """Watched folders that are not there now (looked for again with a back-off)."""
        return [r for r, m in self.modes.items() if m == "offline"]

    def offline_folders(self) -> tuple[OfflineFolder, ...]:
        """The offline folders as values (safe to call from any thread: it reads copies)."""
        modes, retry, since = dict(self.modes), dict(self._retry), dict(self._offline_since)
        now = time.monotonic()
        return tuple(
            OfflineFolder(root, since.get(root, time.time()), max(0.0, retry.get(root, (now, 0.0))[0] - now))
            for root, mode in modes.items() if mode == "offline"
        )

    @property
    def idle(self) -> bool:
        """No change waiting to be handed out and ``on_change`` not running."""
        with self._cond:
            return not self._pending.paths and not self._busy

    def start(self) -> "FolderWatcher":
        self._stopped.clear()
        for root in self.roots:
            self._watch(root, polling=self.force_polling, reason="polling requested" if self.force_polling else "")
        self._thread = threading.Thread(target=self._loop, name="folder-watcher", daemon=True)
        self._thread.start()
        self._update_status()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        for obs in (self._native, self._polling):
            if obs is not None:
                try:
                    obs.stop()
                    obs.join(timeout)
                except Exception:  # noqa: BLE001 - stopping must not fail
                    pass
        self._native = self._polling = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def flush(self) -> None:
        """Hand out pending changes now instead of waiting for the debounce (e.g. before quitting)."""
        with self._cond:
            if self._pending.paths:
                self._pending.first = self._pending.last = -1e9
            self._cond.notify_all()

    def rescan(self, roots: Sequence[str] | None = None) -> None:
        """Queue whole folders for reconciliation (after events may have been missed)."""
        with self._cond:
            for r in roots or self.roots:
                self._add(os.path.abspath(r))
            self._pending.rescan = True
            self._cond.notify_all()

    # -- observers --------------------------------------------------------------------------------------
    def _watch(self, root: str, *, polling: bool, reason: str = "") -> None:
        if not os.path.isdir(root):
            self._go_offline(root)
            return
        if not polling and is_network_path(root):
            polling, reason = True, "network file system: changes are polled"
        if not polling:
            try:
                if self._native is None:
                    self._native = Observer()
                    self._native.start()
                self._native_watches[root] = self._native.schedule(self._handler, root, recursive=True)
                self.modes[root] = "native"
                self.reasons.pop(root, None)
                return
            except OSError as e:
                polling, reason = True, _limit_hint(e)
            except Exception as e:  # noqa: BLE001 - any native failure: polling still works
                polling, reason = True, f"native watching failed: {type(e).__name__}: {e}"
        try:
            if self._polling is None:
                # lstat: links are not followed, so a symlink loop cannot make a poll walk forever.
                self._polling = PollingObserverVFS(os.lstat, os.scandir, polling_interval=self.poll_interval_s)
                self._polling.start()
            self._polling_watches[root] = self._polling.schedule(self._handler, root, recursive=True)
            self.modes[root], self.reasons[root] = "polling", reason
        except Exception as e:  # noqa: BLE001
            self.modes[root], self.reasons[root] = "error", f"cannot watch: {type(e).__name__}: {e}"

    def _go_offline(self, root: str) -> None:
        """Stop watching a folder that is gone and forget changes under it: its documents stay indexed."""
        for observer, watches in ((self._native, self._native_watches), (self._polling, self._polling_watches)):
            watch = watches.pop(root, None)
            if watch is not None and observer is not None:
                try:
                    observer.unschedule(watch)
                except Exception:  # noqa: BLE001 - the emitter may already have ended with its folder
                    pass
        with self._cond:
            self._pending.paths = {p for p in self._pending.paths if not _inside(p, root)}
        if self.modes.get(root) != "offline":
            self._retry[root] = (time.monotonic() + self.offline_retry_s, self.offline_retry_s)
            self._offline_since[root] = time.time()
        self.modes[root], self.reasons[root] = "offline", "folder not found, looking for it again"

    def _check_roots(self) -> None:
        """Watched folders that vanished go offline; offline ones that are back are watched and reconciled."""
        now = time.monotonic()
        changed = False
        for root in self.roots:
            mode = self.modes.get(root)
            if mode != "offline":
                if mode is not None and not os.path.isdir(root):
                    self._go_offline(root)
                    changed = True
                continue
            next_look, delay = self._retry.get(root, (0.0, self.offline_retry_s))
            if now < next_look:
                continue
            if os.path.isdir(root):
                self._retry.pop(root, None)
                self._offline_since.pop(root, None)
                self.modes.pop(root, None)
                self._watch(root, polling=self.force_polling,
                            reason="polling requested" if self.force_polling else "")
                self.rescan([root])  # whatever changed while it was away
                changed = True
            else:
                delay = min(delay * 2, self.offline_retry_max_s)
                self._retry[root] = (now + delay, delay)
        if changed:
            self._update_status()

    def _check_native(self) -> None:
        """A native emitter thread that died (e.g. watch limit hit when a new subfolder appeared) is replaced by
        polling, and its folder is rescanned because events were lost."""
        if self._native is None:
            return
        alive = {getattr(e, "watch", None) for e in self._native.emitters if e.is_alive()}
        for root, watch in list(self._native_watches.items()):
            if watch in alive:
                continue
            if not os.path.isdir(root):
                continue  # gone with its folder: _check_roots takes it offline
            del self._native_watches[root]
            try:
                self._native.unschedule(watch)
            except Exception:  # noqa: BLE001
                pass
            self._watch(root, polling=True, reason="native watching stopped (watch limit reached?)")
            self.rescan([root])
            self._update_status()

    def _update_status(self) -> None:
        watched = [r for r, m in self.modes.items() if m not in ("error", "offline")]
        polled = [r for r, m in self.modes.items() if m == "polling"]
        broken = [r for r, m in self.modes.items() if m == "error"]
        away = self.offline
        n = len(watched)
        text = f"watching {n} folder{'s' if n != 1 else ''} for changes"
        if polled:
            why = "; ".join(sorted({self.reasons.get(r, "") for r in polled} - {""}))
            text += (f" ({len(polled)} by polling every {self.poll_interval_s:g} s" + (f": {why}" if why else "") + ")")
        if away:
            text += ("; offline (not found, retrying; its documents stay searchable): " + ", ".join(away))
        if broken:
            text += "; not watched: " + ", ".join(f"{r} ({self.reasons.get(r, '')})" for r in broken)
        if text != self._status:
            self._status = text
            if self.on_status is not None:
                try:
                    self.on_status(text)
                except Exception:  # noqa: BLE001 - a display callback must not stop watching
                    pass

    # -- events -----------------------------------------------------------------------------------------
    def _relevant(self, path: str, is_dir: bool) -> bool:
        root = next((r for r in self.roots if _inside(path, r)), None)
        if root is None or any(_inside(path, d) for d in self.ignore_dirs) or self.modes.get(root) == "offline":
            return False
        rel = path[len(root):].strip(os.sep)
        parts = rel.split(os.sep) if rel else []
        if any(p.startswith(".") for p in parts[:-1]):
            return False  # inside a hidden folder (.git, .cache ...), which a full run skips too
        if not parts:
            return True
        name = parts[-1]
        if is_dir:
            return not name.startswith(".")
        return not is_ignored_name(name) and is_supported(Path(name))

    def _on_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind in _IGNORED_EVENTS or (kind in ("modified", "attrib", "closed") and event.is_directory):
            return
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if getattr(event, "dest_path", "") else ""
        ends = [p for p in (src, dest) if p and self._relevant(p, event.is_directory)]
        if not ends:
            return
        with self._cond:
            for p in ends:
                self._add(p)
            if kind == "moved" and len(ends) == 2:
                self._pending.moves.append((src, dest))
            self._pending.events += 1
            now = time.monotonic()
            if not self._pending.first:
                self._pending.first = now
            self._pending.last = now
            self._cond.notify_all()

    def _add(self, path: str) -> None:
        p = self._pending
        if not p.first:
            p.first = p.last = time.monotonic()
        p.paths.add(path)

    def _take(self) -> ChangeBatch:
        p, self._pending = self._pending, _Pending()
        # Drop paths inside another path of the batch: reconciling a folder covers everything in it.
        ordered = sorted(p.paths, key=lambda s: (s.count(os.sep), s))
        kept: list[str] = []
        kept_set: set[str] = set()
        for path in ordered:
            parent = os.path.dirname(path)
            covered = False
            while parent and parent != os.path.dirname(parent):
                if parent in kept_set:
                    covered = True
                    break
                parent = os.path.dirname(parent)
            if not covered:
                kept.append(path)
                kept_set.add(path)
        return ChangeBatch(tuple(sorted(kept)), tuple(p.moves), p.rescan, p.events)

    def _without_vanished_roots(self, batch: ChangeBatch) -> ChangeBatch | None:
        """A folder unplugged or deleted shows up as deletions of everything in it (or of itself): those must not
        reach the indexer, which would drop its documents. Its root goes offline instead."""
        gone = [r for r in self.roots if self.modes.get(r) != "offline" and not os.path.isdir(r)]
        if not gone:
            return batch
        for root in gone:
            self._go_offline(root)
        self._update_status()
        paths = tuple(p for p in batch.paths if not any(_inside(p, r) for r in gone))
        if not paths:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            return None
        return ChangeBatch(paths, batch.moves, batch.rescan, batch.events)

    def _loop(self) -> None:
        next_check = time.monotonic() + 2.0
        while not self._stopped.is_set():
            with self._cond:
                now = time.monotonic()
                p = self._pending
                due = None
                if p.paths:
                    due = min(p.last + self.debounce_s, p.first + self.max_delay_s)
                if due is None or due > now:
                    wait = min(2.0, (due - now) if due is not None else 2.0)
                    self._cond.wait(max(0.01, wait))
                    batch = None
                else:
                    batch = self._take()
                    self._busy = True
            if batch is not None:
                batch = self._without_vanished_roots(batch)
            if batch is None:
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + min(2.0, self.offline_retry_s)
                    try:
                        self._check_roots()
                        self._check_native()
                    except Exception:  # noqa: BLE001
                        pass
                continue
            try:
                self.batches += 1
                self.on_change(batch)
            except Exception as e:  # noqa: BLE001 - the watcher outlives a failed update
                if self.on_error is not None:
                    try:
                        self.on_error(e)
                    except Exception:  # noqa: BLE001
                        pass
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
