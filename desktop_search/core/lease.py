"""One writer per shared index, across machines: a lease object in the bucket, written with conditional PUTs.

``lock.py`` keeps one writer per local index with an OS file lock; a bucket has no such thing, and the
machines that share it have no common file system. The writer instead holds ``writer.lease`` below the index
prefix: a small JSON object naming its host, PID, command and an expiry time, created with ``If-None-Match: *``
(only one creator can win) and renewed every third of its duration with ``If-Match: <etag>`` (only the holder
can renew; a holder that lost it learns so at once). A lease whose expiry has passed belongs to a dead or cut-off
writer and is taken over with ``If-Match`` on the etag that was read, so of two machines racing for a stale
lease exactly one wins; a lease left by a dead process on this same host is taken over at once. A second writer
gets the same message as with a local index, plus the host ("... is in use by PID 1234 (desktop-search watch)
on host gpu-box ...").

All of this rests on the store honouring conditional PUTs. AWS S3, MinIO, Cloudflare R2, Google Cloud Storage
and Azure do; some S3-compatible stores (older Ceph RGW, some NAS appliances) silently ignore the headers and
overwrite, which would let two writers in (LanceDB's own commits rely on the same headers: lance#4205). Before
the first lease, :func:`check_conditional_put` writes a probe object twice with ``If-None-Match: *`` and refuses
the store with :class:`ConditionalPutUnsupported` if the second write is not rejected.

Expiry is judged with the writer's wall clock against the taker's, with a margin of ``CLOCK_SKEW_S`` (a quarter
of a short lease): clocks must agree within that (any NTP-synchronised machines do).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from desktop_search.core.location import IndexLocation, RemoteError, describe, first_line
from desktop_search.core.lock import IndexBusy, IndexLock, SharedHolds, _command_line, pid_alive

__all__ = ["LEASE_OBJECT", "ConditionalPutUnsupported", "GuardedWriteLock", "LeaseBusy", "LeaseLost", "ObjectLease",
           "check_conditional_put", "hostname", "lease_holder", "writer_lock"]

LEASE_OBJECT = "writer.lease"
PROBE_PREFIX = ".probe-"
DEFAULT_LEASE_S = 60.0
CLOCK_SKEW_S = 5.0


def lease_seconds() -> float:
    """How long a lease lasts without renewal (``DESKTOP_SEARCH_LEASE_S``, default 60 s)."""
    try:
        return max(2.0, float(os.environ.get("DESKTOP_SEARCH_LEASE_S", DEFAULT_LEASE_S)))
    except ValueError:
        return DEFAULT_LEASE_S


def hostname() -> str:
    """This machine's name as written in a lease (``DESKTOP_SEARCH_HOSTNAME`` overrides it)."""
    return os.environ.get("DESKTOP_SEARCH_HOSTNAME") or socket.gethostname() or "unknown-host"


class LeaseBusy(IndexBusy):
    """Another live writer, maybe on another machine, holds the shared index."""

    def __init__(self, uri: str, pid: int | None, command: str = "", host: str = "", expires: float | None = None) -> None:
        self.index_dir, self.pid, self.command, self.host = uri, pid, command, host  # type: ignore[assignment]
        who = f"PID {pid}" if pid else "another process"
        what = f" ({command})" if command else ""
        where = f" on host {host}" if host else ""
        left = f"; its lease runs out in {max(0, int(expires - time.time()))} s unless renewed" if expires else ""
        RuntimeError.__init__(
            self,
            f"index {uri} is in use by {who}{what}{where}; only one program can update an index at a time "
            f"(searching still works) - close it or wait for it to finish{left}",
        )


class ConditionalPutUnsupported(RemoteError):
    """The store overwrote an object that a conditional PUT said must not exist."""


class LeaseLost(RemoteError):
    """This process's lease was taken over (it could not renew it in time): it must stop writing."""


def _probe_failed(uri: str) -> ConditionalPutUnsupported:
    return ConditionalPutUnsupported(
        f"the object store of {uri} ignores conditional writes (If-None-Match / If-Match), so it cannot keep two "
        "writers apart: refusing to write to it (searching still works). Use a store that supports them "
        "(AWS S3, MinIO, Cloudflare R2, recent Ceph RGW) - see lance#4205"
    )


# URI -> why this process lost its lease (set by the renewal thread, cleared by the next acquire). Writes to a
# shared store check it (GuardedWriteLock), so a writer cut off for longer than its lease stops writing.
_LOST: dict[str, str] = {}


class GuardedWriteLock:
    """The Store's writer RLock for a shared index: entering it raises :class:`LeaseLost` once this process has
    lost its lease on ``uri``."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._lock = threading.RLock()

    def __enter__(self) -> "GuardedWriteLock":
        reason = _LOST.get(self.uri)
        if reason:
            raise LeaseLost(reason)
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


_PROBED: dict[str, bool] = {}
_PROBED_LOCK = threading.Lock()


def check_conditional_put(location: IndexLocation, client: Any) -> None:
    """Raise :class:`ConditionalPutUnsupported` unless the store rejects a second ``If-None-Match: *`` create of
    one key and an ``If-Match`` with a stale etag. Once per location and process (3-4 small requests)."""
    import obstore
    from obstore.exceptions import AlreadyExistsError, PreconditionError

    with _PROBED_LOCK:
        if _PROBED.get(location.uri):
            return
        key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        try:
            obstore.put(client, key, b"1", mode="create")
            try:
                obstore.put(client, key, b"2", mode="create")
                honoured = False
            except (AlreadyExistsError, PreconditionError):
                honoured = True
            if honoured:
                try:
                    obstore.put(client, key, b"3", mode={"e_tag": '"00000000000000000000000000000000"'})
                    honoured = False  # a renewal or take-over with a stale etag would have overwritten
                except (AlreadyExistsError, PreconditionError):
                    honoured = True
        except ConditionalPutUnsupported:
            raise
        except Exception as e:
            if "NotImplemented" in str(e) or "501" in str(e):
                raise _probe_failed(location.uri) from None
            raise describe(e, location.uri) from None
        finally:
            try:
                obstore.delete(client, key)
            except Exception:
                pass
        if not honoured:
            raise _probe_failed(location.uri)
        _PROBED[location.uri] = True


def lease_holder(location: IndexLocation, client: Any | None = None) -> dict[str, Any] | None:
    """What the lease object says ({host, pid, command, since, expires}), or None when there is none."""
    client = client or location.client()
    try:
        info, _etag = _read(location, client)
    except RemoteError:
        return None
    return info


def _read(location: IndexLocation, client: Any) -> tuple[dict[str, Any] | None, str | None]:
    import obstore

    try:
        result = obstore.get(client, LEASE_OBJECT)
        raw = bytes(result.bytes())
        etag = result.meta.get("e_tag")
    except FileNotFoundError:
        return None, None
    except Exception as e:
        raise describe(e, location.uri) from None
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        info = {}  # a damaged lease: treated as expired
    return (info if isinstance(info, dict) else {}), etag




class _Holder:
    """The lease this process holds for one URI, and the thread that renews it."""

    def __init__(self, location: IndexLocation, client: Any, command: str, duration: float) -> None:
        self.location, self.client, self.command, self.duration = location, client, command, duration
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self.since = time.time()
        self.lost: str | None = None
        self.on_lost: list[Callable[[str], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def body(self) -> bytes:
        return json.dumps({
            "host": hostname(), "pid": os.getpid(), "command": self.command, "since": self.since,
            "expires": time.time() + self.duration, "duration": self.duration, "token": self.token,
        }).encode("utf-8")

    def acquire(self) -> None:
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        check_conditional_put(self.location, self.client)
        _LOST.pop(self.location.uri, None)
        for _attempt in range(3):
            try:
                self.etag = obstore.put(self.client, LEASE_OBJECT, self.body(), mode="create")["e_tag"]
                return
            except (AlreadyExistsError, PreconditionError):
                pass
            except Exception as e:
                raise describe(e, self.location.uri) from None
            info, etag = _read(self.location, self.client)
            if info is None:
                continue  # released meanwhile: create again
            if not _expired(info):
                raise LeaseBusy(self.location.uri, info.get("pid"), str(info.get("command", "")),
                                str(info.get("host", "")), info.get("expires"))
            try:  # stale: take it over, only if nobody renewed or took it since we read it
                self.etag = obstore.put(self.client, LEASE_OBJECT, self.body(), mode={"e_tag": etag})["e_tag"]
                return
            except (AlreadyExistsError, PreconditionError, FileNotFoundError):
                continue  # someone else was faster: look again
            except Exception as e:
                raise describe(e, self.location.uri) from None
        info, _ = _read(self.location, self.client)
        info = info or {}
        raise LeaseBusy(self.location.uri, info.get("pid"), str(info.get("command", "")), str(info.get("host", "")))

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        import obstore

        interval = self.duration / 3
        while not self._stop.wait(interval):
            try:
                self.etag = obstore.put(self.client, LEASE_OBJECT, self.body(), mode={"e_tag": self.etag})["e_tag"]
            except Exception as e:
                if self._stop.is_set():
                    return
                text = str(e)
                if "Precondition" in type(e).__name__ or "412" in text or isinstance(e, FileNotFoundError):
                    self.lost = (f"the lease on {self.location.uri} was taken over by another writer "
                                 f"(this one could not renew it for {self.duration:.0f} s): stopping")
                    _LOST[self.location.uri] = self.lost
                    for callback in list(self.on_lost):
                        try:
                            callback(self.lost)
                        except Exception:  # noqa: BLE001 - a callback must not kill the renewal thread
                            pass
                    return
                # A network hiccup: try again at the next tick (the lease lasts 3 ticks).
                print(f"desktop-search: could not renew the lease on {self.location.uri}: {first_line(e)}",
                      file=sys.stderr)

    def release(self) -> None:
        import obstore

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.lost:
            return
        try:  # delete only our own lease (a taker's must stay)
            info, _ = _read(self.location, self.client)
            if info and info.get("token") == self.token:
                obstore.delete(self.client, LEASE_OBJECT)
        except Exception:  # noqa: BLE001 - it expires by itself
            pass


def _expired(info: dict[str, Any]) -> bool:
    expires = info.get("expires")
    if not isinstance(expires, (int, float)):
        return True
    duration = info.get("duration")
    skew = min(CLOCK_SKEW_S, duration / 4) if isinstance(duration, (int, float)) and duration > 0 else CLOCK_SKEW_S
    if time.time() > expires + skew:
        return True
    # A holder on this very machine whose process is gone is dead now, not in a minute.
    pid = info.get("pid")
    return info.get("host") == hostname() and isinstance(pid, int) and pid != os.getpid() and not pid_alive(pid)


# Process-wide registry: URI -> the lease this process holds (nested holders share it, as with lock.py's file
# lock).
_HELD: SharedHolds[_Holder] = SharedHolds()


class ObjectLease:
    """``with ObjectLease(location): ...`` - the writer lease of a shared index; raises :class:`LeaseBusy` at once
    when another live writer holds it. Re-entrant per process, like :class:`~desktop_search.core.lock.IndexLock`."""

    def __init__(self, location: IndexLocation, *, command: str | None = None,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.location = location
        self.command = command if command is not None else _command_line()
        self._on_lost = on_lost
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    @property
    def lost(self) -> str | None:
        holder = _HELD.get(self.location.uri)
        return holder.lost if holder else None

    def acquire(self) -> "ObjectLease":
        if self._held:
            return self
        _HELD.take(self.location.uri, self._take_lease, self._watch)
        self._held = True
        return self

    def _take_lease(self) -> "_Holder":
        """The first holder in this process: take the lease and keep renewing it."""
        holder = _Holder(self.location, self.location.client(), self.command, lease_seconds())
        holder.acquire()
        holder.start_renewing()
        return holder

    def _watch(self, holder: "_Holder") -> None:
        if self._on_lost is not None:
            holder.on_lost.append(self._on_lost)

    def _unwatch(self, holder: "_Holder") -> None:
        if self._on_lost is not None and self._on_lost in holder.on_lost:
            holder.on_lost.remove(self._on_lost)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        last = _HELD.drop(self.location.uri, self._unwatch)
        if last is not None:
            last.release()  # a network call: after the registry's lock is let go

    def __enter__(self) -> "ObjectLease":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def writer_lock(index: "Path | IndexLocation", *, command: str | None = None,
                on_lost: Callable[[str], None] | None = None) -> "IndexLock | ObjectLease":
    """The writer lock for an index: an OS file lock for a local folder, a lease object for a shared index."""
    if isinstance(index, IndexLocation):
        return ObjectLease(index, command=command, on_lost=on_lost)
    return IndexLock(Path(index), command=command)
