"""One writer per index: an advisory lock file in the index folder, held while a process writes.

Any process may read the index at any time (LanceDB readers see the last committed version), but two writers
would interleave their commits and break the indexer's write-order contract, so every writer (an indexing run,
the watcher, ``doctor --repair``) holds :class:`IndexLock`. The lock is an OS lock on ``writer.lock``
(``flock`` on POSIX, ``msvcrt.locking`` on Windows): the kernel drops it when its process dies, so a lock left
by a killed process is taken over without any clean-up, and a reused PID can never keep an index locked.
The file also carries the holder's PID and command line, which is what a second writer is told
("index … is in use by PID 1234 (desktop-search watch)"). Where the file system has no working locks (some
network shares), the PID is checked for liveness instead. Holding is per process and re-entrant: nested
holders in one process (the window holding it for its lifetime, each indexing run taking it again) share it.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from desktop_search.errors import UserError

__all__ = ["LOCK_FILE", "IndexBusy", "IndexLock", "LockFileUnsafe", "SharedHolds", "holder", "pid_alive"]

LOCK_FILE = "writer.lock"
# Windows locks byte ranges, and a locked range cannot be read by others: lock a byte past the PID text.
_WIN_LOCK_OFFSET = 1 << 20


class IndexBusy(UserError, RuntimeError):
    """Another live process is writing to this index."""

    def __init__(self, index_dir: Path, pid: int | None, command: str = "") -> None:
        self.index_dir, self.pid, self.command = Path(index_dir), pid, command
        who = f"PID {pid}" if pid else "another process"
        what = f" ({command})" if command else ""
        super().__init__(
            f"index {index_dir} is in use by {who}{what}; only one program can update an index at a time "
            "(searching still works) - close it or wait for it to finish"
        )


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (a zombie counts as dead)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _win_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:  # an unreaped child of ours is a zombie: dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


def _win_pid_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return bool(ctypes.GetLastError() == 5)  # type: ignore[attr-defined]  # access denied: it exists
    try:
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def holder(index_dir: Path) -> dict[str, Any] | None:
    """What the lock file says about its last holder ({pid, command, since}), or None. Informational only:
    whether it is held is decided by the OS lock."""
    try:
        fd = os.open(Path(index_dir) / LOCK_FILE, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            raw = os.read(fd, 4096) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
        finally:
            os.close(fd)
        text = raw.decode("utf-8").strip()
        info = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None


def _command_line() -> str:
    """A short name for the holder, e.g. "desktop-search watch", shown to a second writer."""
    argv = sys.argv or ["python"]
    first = argv[0] or "python"
    name = "desktop-search" if "desktop_search" in first or "desktop-search" in first else os.path.basename(first)
    command = next((a for a in argv[1:] if not a.startswith("-")), "")
    return f"{name} {command}".strip()[:80]


T = TypeVar("T")


class SharedHolds(Generic[T]):
    """Process-wide, re-entrant holds of one resource per key (this module's file lock, ``lease.py``'s lease):
    the first holder opens it, nested holders in any thread share it, the last one to let go closes it. The
    hooks run under the registry's lock, so a key is never opened twice at once nor reopened while closing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[T, int]] = {}  # key -> (resource, holders)

    def get(self, key: str) -> T | None:
        with self._lock:
            entry = self._held.get(key)
        return entry[0] if entry else None

    def take(self, key: str, open_: Callable[[], T], joined: Callable[[T], None] | None = None) -> T:
        """One more hold of ``key``'s resource (``open_`` makes it for the first; it may raise). ``joined``: what
        this holder registers with the shared resource."""
        with self._lock:
            resource, count = self._held.get(key) or (open_(), 0)
            self._held[key] = (resource, count + 1)
            if joined is not None:
                joined(resource)
            return resource

    def drop(self, key: str, leaving: Callable[[T], None] | None = None,
             close: Callable[[T], None] | None = None) -> T | None:
        """One hold less (``leaving`` undoes ``joined``); the resource when that was the last hold, after ``close``
        ran on it (the caller may also release it after the registry's lock is let go)."""
        with self._lock:
            entry = self._held.get(key)
            if entry is None:
                return None
            resource, count = entry
            if leaving is not None:
                leaving(resource)
            if count > 1:
                self._held[key] = (resource, count - 1)
                return None
            del self._held[key]
            if close is not None:
                close(resource)
            return resource


# Index dir -> the lock file's descriptor. The OS lock belongs to the process, so every thread and nested holder
# in it shares one file descriptor.
_HELD: SharedHolds[int] = SharedHolds()


class IndexLock:
    """``with IndexLock(index_dir): ...`` - raises :class:`IndexBusy` at once if another process holds it."""

    def __init__(self, index_dir: Path, *, command: str | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.path = self.index_dir / LOCK_FILE
        self.command = command if command is not None else _command_line()
        self._held = False

    def acquire(self) -> "IndexLock":
        if self._held:
            return self
        _HELD.take(os.path.abspath(self.index_dir), self._lock_file)
        self._held = True
        return self

    def _lock_file(self) -> int:
        """The first holder in this process: open and lock the file, and write who holds it."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        fd = _open_lock_file(self.path)
        try:
            if not _try_lock(fd):
                info = holder(self.index_dir) or {}
                raise IndexBusy(self.index_dir, info.get("pid"), info.get("command", ""))
            _write_info(fd, self.command)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        _HELD.drop(os.path.abspath(self.index_dir), close=_unlock_file)

    def __enter__(self) -> "IndexLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _unlock_file(fd: int) -> None:
    """The last holder in this process: empty the file, unlock it and close it."""
    try:
        # Emptied, not deleted: deleting a lock file races with a process that has just opened it.
        os.ftruncate(fd, 0)
    except OSError:
        pass
    _unlock(fd)
    os.close(fd)


class LockFileUnsafe(OSError):
    """``writer.lock`` is not a plain file of its own (a symbolic link, a folder, a device): never written."""


def _open_lock_file(path: Path) -> int:
    """Open (or create) the lock file without following a symbolic link: the lock is truncated and written, and a
    link planted in the index folder must not turn that into a write to its target."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path):
            raise LockFileUnsafe(
                errno.ELOOP, f"{path} is a symbolic link, not the app's lock file; remove it and try again"
            ) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        os.close(fd)
        raise LockFileUnsafe(errno.EINVAL, f"{path} is not a plain file of its own (a link or a device); "
                                           "remove it and try again")
    return fd


def _write_info(fd: int, command: str) -> None:
    data = json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode("utf-8")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)
    try:
        os.fsync(fd)
    except OSError:
        pass


def _try_lock(fd: int) -> bool:
    """True if the lock is now ours; False if a live process holds it."""
    try:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            import msvcrt

            os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            os.lseek(fd, 0, os.SEEK_SET)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EDEADLK):
            return False
        # No lock support here (ENOLCK/ENOTSUP on some network shares): fall back to the recorded PID.
        info = _read_info(fd)
        pid = info.get("pid") if info else None
        return not (isinstance(pid, int) and pid != os.getpid() and pid_alive(pid))


def _read_info(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
        return json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (OSError, ValueError):
        return None


def _unlock(fd: int) -> None:
    try:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            import msvcrt

            os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass
