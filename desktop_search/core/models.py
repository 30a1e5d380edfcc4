"""The model files on disk: manifest, resumable download, SHA-256 verification, import from a folder.

This is the first step of the flow and the only part of the app that ever touches the network. A manifest
(``resources/models/bge-m3.json``) pins the repository, the revision and the size and SHA-256 of every file the
encoder loads. :func:`download_model` fetches those files from a Hugging Face style endpoint
(``{endpoint}/{repo}/resolve/{revision}/{path}``, so mirrors and proxies work) into ``*.part`` files that survive
a dropped connection or a killed process and are resumed with HTTP Range requests; :func:`import_model` copies
them from a folder (a USB stick, another machine's model folder, a Hugging Face cache); :func:`verify_model`
re-hashes them. Each of the three writes the completion marker (:data:`MARKER`) only after every file matched,
and :func:`verification_problem` is the cheap check (size + mtime against the marker) that the encoder runs
before it loads anything, so weights that never passed verification are never loaded.

Long operations report through a plain ``progress`` callback and stop when a ``cancel`` event is set; nothing
here imports Qt, and ``requests`` is imported only when a download starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Literal
from urllib.parse import quote

from desktop_search import config
from desktop_search.errors import UserError
from desktop_search.formatting import format_bytes

MARKER = ".desktop_search_verified.json"
DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV = "DESKTOP_SEARCH_HF_ENDPOINT"
PART_SUFFIX = ".part"
IMPORT_SUFFIX = ".importing"
HASH_BLOCK = 1024 * 1024
# Network reads are smaller than hash blocks so a cancel or a progress update never waits for a whole MiB on a
# slow line.
NET_BLOCK = 64 * 1024
# Transient server answers worth retrying; anything else that is not 200/206 is reported at once.
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 60.0

Progress = Callable[["TransferProgress"], None]


class ModelError(UserError, RuntimeError):
    """An expected failure; the message is one actionable line. ``bad_files`` lists hash failures, if any."""

    def __init__(self, message: str, bad_files: Iterable["BadFile"] = ()) -> None:
        super().__init__(message)
        self.bad_files: tuple[BadFile, ...] = tuple(bad_files)


class ModelCancelled(ModelError):
    """The cancel event was set; partial downloads are kept and resumed next time, no marker was written."""


TransferPhase = Literal["download", "verify", "import", "done"]


@dataclass(frozen=True)
class ManifestFile:
    path: str  # relative, '/'-separated, as in the repository
    size: int
    sha256: str  # lowercase hex
    url: str = ""  # where the file is under the endpoint when not in the hub layout (a package index's file path)


@dataclass(frozen=True)
class Manifest:
    repo: str
    revision: str
    files: tuple[ManifestFile, ...]

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        path = Path(path)
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise ModelError(f"model manifest not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelError(f"cannot read model manifest {path}: {e}") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"invalid model manifest {path}: {e}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Manifest":
        files = []
        seen = set()
        for entry in data["files"]:
            path, size, sha = str(entry["path"]), int(entry["size"]), str(entry["sha256"]).lower()
            _check_relative(path)
            if size < 0 or not re.fullmatch(r"[0-9a-f]{64}", sha):
                raise ValueError(f"bad size or sha256 for {path!r}")
            if path in seen:
                raise ValueError(f"{path!r} is listed twice")
            seen.add(path)
            files.append(ManifestFile(path, size, sha))
        if not files:
            raise ValueError("no files listed")
        return cls(repo=str(data["repo"]), revision=str(data["revision"]), files=tuple(files))

    def as_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "revision": self.revision,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }

    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _check_relative(path: str) -> None:
    # A manifest may come from a user (--manifest): it must not write outside the model folder.
    p = PurePosixPath(path)
    if not path or p.is_absolute() or "\\" in path or any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(f"file path must be relative and stay inside the model folder: {path!r}")


@dataclass(frozen=True)
class TransferProgress:
    """One progress report. Bytes count the whole operation; speed is over the last few seconds."""

    phase: TransferPhase  # verify: hashing files already on disk
    file: str
    file_bytes: int
    file_total: int
    bytes_done: int
    bytes_total: int
    speed_bps: float
    eta_s: float | None
    files_done: int
    files_total: int


@dataclass(frozen=True)
class BadFile:
    path: str
    expected: str  # sha256 from the manifest
    actual: str  # sha256 found, "missing", or a short reason such as "too large"

    def describe(self) -> str:
        return f"{self.path}: expected sha256 {self.expected}, actual {self.actual}"


# -- paths and endpoint ---------------------------------------------------------------------------------
def default_manifest_path() -> Path:
    return config.resources_dir() / "models" / "bge-m3.json"


def default_endpoint() -> str:
    """``DESKTOP_SEARCH_HF_ENDPOINT``, else the hub libraries' own ``HF_ENDPOINT``, else huggingface.co."""
    return (os.environ.get(ENDPOINT_ENV) or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def resolve_url(endpoint: str, manifest: Manifest, path: str) -> str:
    return f"{endpoint.rstrip('/')}/{manifest.repo}/resolve/{quote(manifest.revision, safe='')}/{quote(path, safe='/')}"


# -- marker ---------------------------------------------------------------------------------------------
def verified_marker(model_dir: Path) -> dict[str, Any] | None:
    """The completion marker's content, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(model_dir) / MARKER).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    return data


def verification_problem(model_dir: Path, *, must_cover: Iterable[str] = ()) -> str | None:
    """Why ``model_dir`` does not count as verified, or None.

    Cheap (a few stats): every file in the marker must still have the size and mtime it had when it was hashed.
    ``must_cover`` names files that, when present, must be in the marker: the loader would read them, so a file
    dropped in after verification (say a ``model.safetensors``, which transformers prefers) must not slip through.
    A full re-hash is :func:`verify_model`.
    """
    model_dir = Path(model_dir)

    def problem(detail: str) -> str:
        return f"model at {model_dir} has not been verified ({detail}; run `desktop-search model verify`)"

    marker = verified_marker(model_dir)
    if marker is None:
        # Model files copied in by hand (or a mirror's folder passed with --model-dir): nothing proves they are
        # the pinned ones. Say which command checks them, rather than only "not verified".
        return (f"the model files at {model_dir} have not been verified (no verification record, so they are not "
                f"loaded): run `desktop-search model import {model_dir}` to check them against the manifest and "
                f"install them (add `--manifest FILE` for another model), or `desktop-search model verify "
                f"--model-dir {model_dir}` to check them where they are")
    listed = set()
    try:
        for entry in marker["files"]:
            path = str(entry["path"])
            listed.add(path)
            try:
                st = (model_dir / path).stat()
            except OSError:
                return problem(f"{path} is missing")
            if st.st_size != int(entry["size"]) or st.st_mtime_ns != int(entry["mtime_ns"]):
                return problem(f"{path} changed since it was verified")
    except (KeyError, TypeError, ValueError):
        return problem("the verification record is damaged")
    if not listed:
        return problem("the verification record lists no files")
    for name in must_cover:
        if name not in listed and (model_dir / name).is_file():
            return problem(f"{name} is not covered by the verification")
    return None


def _write_marker(model_dir: Path, manifest: Manifest, stats: dict[str, os.stat_result]) -> None:
    # Size and mtime are the ones taken *before* hashing: a file rewritten while it was hashed then no longer
    # matches its record, so it can never be trusted on a stale hash.
    record = {
        "repo": manifest.repo,
        "revision": manifest.revision,
        "files": [
            {"path": f.path, "size": f.size, "sha256": f.sha256, "mtime_ns": stats[f.path].st_mtime_ns}
            for f in manifest.files
        ],
        "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = model_dir / (MARKER + ".tmp")
    try:
        tmp.write_text(json.dumps(record, indent=1), "utf-8")
        os.replace(tmp, model_dir / MARKER)  # atomic: a crash leaves the old marker or the new one, never half
    except OSError as e:
        raise ModelError(f"cannot write the verification record in {model_dir}: {e.strerror or e}") from None


def _remove_marker(model_dir: Path) -> None:
    (Path(model_dir) / MARKER).unlink(missing_ok=True)


def _trusted_files(model_dir: Path, manifest: Manifest) -> dict[str, os.stat_result]:
    """Files the marker vouches for (same hash as the manifest, same size and mtime as when hashed)."""
    marker = verified_marker(model_dir)
    if marker is None:
        return {}
    want = {f.path: f for f in manifest.files}
    trusted = {}
    for entry in marker["files"]:
        try:
            f = want.get(str(entry["path"]))
            if f is None or f.sha256 != entry["sha256"] or f.size != int(entry["size"]):
                continue
            st = (model_dir / f.path).stat()
            if st.st_size == f.size and st.st_mtime_ns == int(entry["mtime_ns"]):
                trusted[f.path] = st
        except (KeyError, TypeError, ValueError, OSError):
            continue
    return trusted


# -- progress -------------------------------------------------------------------------------------------
class _Tracker:
    """Turns byte counts into TransferProgress reports, at most ten a second (plus file boundaries)."""

    def __init__(self, callback: Progress | None, phase: TransferPhase, manifest: Manifest, interval_s: float = 0.1) -> None:
        self.callback = callback
        self.phase = phase
        self.bytes_total = manifest.total_bytes()
        self.files_total = len(manifest.files)
        self.interval_s = interval_s
        self.before = 0  # bytes of finished files
        self.files_done = 0
        self.file = ""
        self.file_bytes = 0
        self.file_total = 0
        # Seeded with the start, so a short operation still reports its average speed.
        self._samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])
        self._moved = 0  # bytes actually transferred or hashed, for the speed
        self._in_before = False
        self._last = 0.0

    def start(self, f: ManifestFile, phase: TransferPhase) -> None:
        self.phase, self.file, self.file_total, self.file_bytes = phase, f.path, f.size, 0
        self._in_before = False
        self.emit(force=True)

    def at(self, n: int) -> None:  # resumed from, or restarted at, byte n of the file: no speed credit
        self.file_bytes = n
        self.emit(force=True)

    def add(self, n: int) -> None:
        self.file_bytes += n
        self._moved += n
        self.emit()

    def finish(self) -> None:
        self.before += self.file_total
        self.files_done += 1
        self.file_bytes = self.file_total
        self._in_before = True  # its bytes are now in `before`: do not count them twice
        self.emit(force=True)

    def done(self) -> None:
        self.phase, self.file, self.file_bytes, self.file_total = "done", "", 0, 0
        self.emit(force=True)

    def speed(self, now: float) -> float:
        self._samples.append((now, self._moved))
        while len(self._samples) > 2 and now - self._samples[0][0] > 5.0:
            self._samples.popleft()
        t0, b0 = self._samples[0]
        return (self._moved - b0) / (now - t0) if now > t0 else 0.0

    def emit(self, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        done = min(self.bytes_total, self.before + (0 if self._in_before else self.file_bytes))
        speed = self.speed(now)
        eta = (self.bytes_total - done) / speed if speed > 0 else None
        self.callback(
            TransferProgress(
                phase=self.phase, file=self.file, file_bytes=self.file_bytes, file_total=self.file_total,
                bytes_done=done, bytes_total=self.bytes_total, speed_bps=speed, eta_s=eta,
                files_done=self.files_done, files_total=self.files_total,
            )
        )


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise ModelCancelled("cancelled")


def _hash_file(path: Path, tracker: _Tracker | None, cancel: threading.Event | None, limit: int | None = None) -> Any:
    """SHA-256 of ``path`` (of its first ``limit`` bytes), read in 1 MiB blocks; returns the hash object."""
    h = hashlib.sha256()
    left = limit
    with open(path, "rb") as fh:
        while left is None or left > 0:
            _check_cancel(cancel)
            block = fh.read(HASH_BLOCK if left is None else min(HASH_BLOCK, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
            if tracker is not None:
                tracker.add(len(block))
    return h


def _check_free_space(model_dir: Path, needed: int) -> None:
    free = shutil.disk_usage(model_dir).free
    if needed > free:
        raise ModelError(f"not enough disk space: need {format_bytes(needed)} at {model_dir}, {format_bytes(free)} free")


def _make_dir(model_dir: Path) -> None:
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot create the model folder {model_dir}: {e.strerror or e}") from None


# -- verify ---------------------------------------------------------------------------------------------
def verify_model(
    manifest: Manifest,
    model_dir: Path,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[BadFile]:
    """Re-hash every manifest file; write the marker iff none is bad (and remove a stale one otherwise).

    A missing file is bad (``actual="missing"``). Raises ModelCancelled if ``cancel`` is set (marker untouched).
    """
    model_dir = Path(model_dir)
    tracker = _Tracker(progress, "verify", manifest)
    bad: list[BadFile] = []
    stats: dict[str, os.stat_result] = {}
    for f in manifest.files:
        _check_cancel(cancel)
        path = model_dir / f.path
        tracker.start(f, "verify")
        try:
            stats[f.path] = path.stat()
            actual = _hash_file(path, tracker, cancel).hexdigest() if path.is_file() else "missing"
        except FileNotFoundError:
            actual = "missing"
        except OSError as e:  # unreadable (permissions, a failing disk): bad, and named like the others
            actual = f"unreadable ({e.strerror or e})"
        if actual != f.sha256:
            bad.append(BadFile(f.path, f.sha256, actual))
        tracker.finish()
    if bad:
        _remove_marker(model_dir)
    else:
        _write_marker(model_dir, manifest, stats)
    tracker.done()
    return bad


# -- import ---------------------------------------------------------------------------------------------
def _source_root(src_dir: Path, manifest: Manifest) -> Path:
    # A Hugging Face cache folder (models--BAAI--bge-m3) keeps the files under snapshots/<revision>/.
    snapshot = src_dir / "snapshots" / manifest.revision
    return snapshot if snapshot.is_dir() else src_dir


def import_model(
    src_dir: Path,
    manifest: Manifest,
    model_dir: Path,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[BadFile]:
    """Copy the manifest's files from ``src_dir`` (hashing while copying) and write the marker iff all matched.

    Each file is copied to a temporary name and renamed into place only when its hash matched, so a bad or
    interrupted copy never replaces a file. Files in ``src_dir`` that the manifest does not list are ignored.
    """
    src_dir, model_dir = Path(src_dir), Path(model_dir)
    if not src_dir.is_dir():
        raise ModelError(f"no such folder: {src_dir}")
    src_root = _source_root(src_dir, manifest)
    _make_dir(model_dir)
    if src_root.resolve() == model_dir.resolve():
        return verify_model(manifest, model_dir, progress=progress, cancel=cancel)
    present = {f.path: _size_or_zero(model_dir / f.path) for f in manifest.files}
    # Each copy sits beside the file it replaces until the rename, so the largest replaced file counts twice.
    needed = sum(max(0, f.size - present[f.path]) for f in manifest.files)
    needed += max((min(f.size, present[f.path]) for f in manifest.files), default=0)
    _check_free_space(model_dir, needed)
    _remove_marker(model_dir)
    tracker = _Tracker(progress, "import", manifest)
    bad: list[BadFile] = []
    stats: dict[str, os.stat_result] = {}
    for f in manifest.files:
        _check_cancel(cancel)
        src, dest = src_root / f.path, model_dir / f.path
        tracker.start(f, "import")
        if not src.is_file():
            bad.append(BadFile(f.path, f.sha256, "missing"))
            tracker.finish()
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + IMPORT_SUFFIX)
        try:
            actual = _copy_hashed(src, tmp, tracker, cancel)
            if actual == f.sha256:
                os.replace(tmp, dest)
                stats[f.path] = dest.stat()
            else:
                bad.append(BadFile(f.path, f.sha256, actual))
        except OSError as e:
            raise ModelError(f"cannot copy {src} to {dest}: {e.strerror or e}") from None
        finally:
            tmp.unlink(missing_ok=True)
        tracker.finish()
    if not bad:
        _write_marker(model_dir, manifest, stats)
    tracker.done()
    return bad


def _size_or_zero(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _copy_hashed(src: Path, dest: Path, tracker: _Tracker, cancel: threading.Event | None) -> str:
    h = hashlib.sha256()
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        while True:
            _check_cancel(cancel)
            block = fin.read(HASH_BLOCK)
            if not block:
                break
            h.update(block)
            fout.write(block)
            tracker.add(len(block))
        fout.flush()
        os.fsync(fout.fileno())  # the rename must not land before the data (power loss right after import)
    return h.hexdigest()


# -- download -------------------------------------------------------------------------------------------
class _Retry(Exception):
    """A transient failure: try again after a backoff. ``unreachable`` marks failures to connect at all."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def _short_reason(exc: BaseException) -> str:
    # requests wraps the socket error three levels deep in a long repr; users need the last part only.
    text = str(exc)
    if "NameResolutionError" in text or "getaddrinfo" in text or "Name or service not known" in text:
        m = re.search(r"Failed to resolve '([^']+)'", text)
        return f"DNS lookup failed for {m.group(1)}" if m else "DNS lookup failed"
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if m:
        return m.group(1).strip().rstrip(".").lower()
    if "timed out" in text.lower():
        return "connection timed out"
    return text.splitlines()[0][:200] if text else type(exc).__name__


class _Downloader:
    """One download run: a requests session, the proxy, and whether the endpoint has answered at all yet."""

    def __init__(
        self,
        manifest: Manifest,
        model_dir: Path,
        endpoint: str,
        proxy: str | None,
        tracker: _Tracker,
        cancel: threading.Event | None,
        retries: int,
        backoff_s: float,
        timeout_s: float,
    ) -> None:
        import requests

        self.requests = requests
        self.manifest, self.model_dir, self.endpoint, self.proxy = manifest, model_dir, endpoint, proxy
        self.tracker, self.cancel = tracker, cancel
        self.retries, self.backoff_s, self.timeout_s = retries, backoff_s, timeout_s
        self.session = requests.Session()
        # Per-request proxies: requests lets HTTPS_PROXY from the environment override session.proxies.
        self.proxies = {"http": proxy, "https": proxy} if proxy else None
        self.reached = False  # any HTTP answer at all from the endpoint in this run

    def hint(self) -> str:
        return "check your connection or set a mirror with --endpoint / a proxy with --proxy"

    def unreachable(self, reason: str) -> ModelError:
        via = f" through proxy {self.proxy}" if self.proxy else ""
        return ModelError(f"cannot reach {self.endpoint}{via}: {reason}; {self.hint()}")

    def sleep(self, failures: int) -> None:
        delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (failures - 1))
        if self.cancel is not None:
            if self.cancel.wait(delay):
                raise ModelCancelled("cancelled")
        else:
            time.sleep(delay)

    def fetch(self, f: ManifestFile) -> str:
        """Bring ``<path>.part`` to the full size (resuming what is there) and return its sha256."""
        url = f"{self.endpoint}/{quote(f.url, safe='/')}" if f.url else resolve_url(self.endpoint, self.manifest, f.path)
        part = self.model_dir / (f.path + PART_SUFFIX)
        part.parent.mkdir(parents=True, exist_ok=True)
        state = _PartState()  # hash of what the part holds, carried across attempts so it is read only once
        failures = 0
        while True:
            _check_cancel(self.cancel)
            have = part.stat().st_size if part.exists() else 0
            if have > f.size:
                part.unlink()
                have = 0
            if state.size != have:  # a part left by an earlier run (or cut short on disk): hash its bytes
                state = _PartState(_hash_file(part, None, self.cancel, limit=have) if have else None, have)
            if have == f.size:
                return state.hasher.hexdigest()
            self.tracker.at(have)
            try:
                self._attempt(url, f, part, state)
            except _Retry as e:
                # A dropped connection that brought bytes is progress, not a failure streak.
                failures = 1 if state.size > have else failures + 1
                if e.unreachable and not self.reached and failures >= 2:
                    raise self.unreachable(str(e)) from None
                if failures > self.retries:
                    if e.unreachable:
                        raise self.unreachable(str(e)) from None
                    raise ModelError(f"download of {f.path} failed after {self.retries} retries: {e} ({url})") from None
                self.sleep(failures)
            except OSError as e:
                raise ModelError(f"cannot write {part}: {e.strerror or e}") from None

    def _attempt(self, url: str, f: ManifestFile, part: Path, state: "_PartState") -> None:
        """One request from byte ``state.size``; appends to ``part`` and keeps ``state`` in step with it."""
        requests = self.requests
        have = state.size
        # identity: a Range must count bytes of the file itself, not of a gzip stream a server might send.
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with self.session.get(
                url, headers=headers, stream=True, timeout=(self.timeout_s, self.timeout_s), proxies=self.proxies
            ) as r:
                self.reached = True
                code = r.status_code
                if code == 404:
                    raise ModelError(f"not found (HTTP 404): {url}; check the endpoint, repository and revision")
                if code in (401, 403):
                    raise ModelError(
                        f"access denied (HTTP {code}) for {url}; the endpoint or proxy requires credentials or "
                        "blocks this file (try another mirror with --endpoint, or copy the files with `model import`)"
                    )
                if code == 407:
                    raise ModelError(
                        f"the proxy {self.proxy or ''} requires authentication (HTTP 407); "
                        "give the credentials in the proxy URL: http://user:password@host:port"
                    )
                if code == 416:  # the Range starts at or past the end: the .part is not a prefix of this file
                    part.unlink(missing_ok=True)
                    raise _Retry("the server rejected the resume range; starting the file again")
                if code in RETRY_STATUS:
                    raise _Retry(f"HTTP {code} from the server")
                if code not in (200, 206):
                    raise ModelError(f"unexpected answer HTTP {code} for {url}")
                if code == 206:
                    m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
                    if not m or int(m.group(1)) != have:
                        part.unlink(missing_ok=True)
                        raise _Retry("the server answered a different range than asked; starting the file again")
                elif have:  # 200 to a Range request: the server sends the whole file again
                    state.reset()
                    self.tracker.at(0)
                self._stream(r, f, part, state)
        except requests.exceptions.ProxyError as e:
            raise _Retry(f"the proxy refused the connection ({_short_reason(e)})", unreachable=True) from None
        except requests.exceptions.SSLError as e:
            raise ModelError(
                f"secure connection to {self.endpoint} failed: {_short_reason(e)}; a proxy may be intercepting "
                f"HTTPS; {self.hint()}"
            ) from None
        except requests.exceptions.ConnectTimeout as e:
            raise _Retry(_short_reason(e), unreachable=True) from None
        except requests.exceptions.ConnectionError as e:
            # Before the first answer this is "cannot connect"; later it is a connection dropped mid-file.
            raise _Retry(_short_reason(e), unreachable=not self.reached) from None
        except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError) as e:
            raise _Retry(f"connection dropped ({_short_reason(e)})") from None
        except requests.exceptions.InvalidURL as e:
            raise ModelError(f"invalid endpoint URL {self.endpoint}: {e}") from None
        except requests.exceptions.RequestException as e:
            raise _Retry(_short_reason(e)) from None

    def _stream(self, r: Any, f: ManifestFile, part: Path, state: "_PartState") -> None:
        import urllib3

        # read1 hands over whatever arrived, so bytes received just before a drop are kept and the resume
        # starts exactly where the line was cut (iter_content would lose the last partial block).
        read = getattr(r.raw, "read1", None) or r.raw.read
        with open(part, "r+b" if state.size and part.exists() else "wb") as out:
            out.seek(state.size)
            out.truncate()
            try:
                while True:
                    _check_cancel(self.cancel)
                    try:
                        chunk = read(NET_BLOCK)
                    except (urllib3.exceptions.HTTPError, OSError) as e:
                        raise _Retry(f"connection dropped ({_short_reason(e)})") from None
                    if not chunk:
                        break
                    if state.size + len(chunk) > f.size:
                        # More than the manifest says: not the pinned file. One byte too many is kept so the
                        # hash check fails and the file is fetched again from scratch.
                        chunk = chunk[: f.size - state.size + 1]
                    out.write(chunk)
                    state.add(chunk)
                    self.tracker.add(len(chunk))
                    if state.size > f.size:
                        return
            finally:
                out.flush()
                os.fsync(out.fileno())  # what the state says was written must be on disk for a later resume
        if state.size < f.size:
            raise _Retry(f"connection closed after {state.size} of {f.size} bytes")


class _PartState:
    """The sha256 of the first ``size`` bytes of a .part file."""

    def __init__(self, hasher: Any = None, size: int = 0) -> None:
        self.hasher = hasher if hasher is not None else hashlib.sha256()
        self.size = size

    def add(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.size += len(chunk)

    def reset(self) -> None:
        self.hasher, self.size = hashlib.sha256(), 0


def download_model(
    manifest: Manifest,
    model_dir: Path,
    *,
    endpoint: str | None = None,
    proxy: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    retries: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 30.0,
) -> None:
    """Download every manifest file into ``model_dir`` and write the marker once all of them matched.

    Files already there with the right hash are kept (no request). A file is streamed to ``<path>.part`` and
    resumed with a Range request after a dropped connection (up to ``retries`` failures in a row, exponential
    backoff from ``backoff_s``) or in a later run; a complete file whose hash does not match is deleted and fetched
    once more. Raises ModelError (one line; ``bad_files`` lists files that failed twice), ModelCancelled.
    """
    model_dir = Path(model_dir)
    endpoint = (endpoint or default_endpoint()).rstrip("/")
    if not re.match(r"https?://[^/]+", endpoint):
        raise ModelError(f"invalid endpoint {endpoint!r}: expected a URL like https://huggingface.co")
    _make_dir(model_dir)
    trusted = _trusted_files(model_dir, manifest)
    needed = 0
    for f in manifest.files:
        final, part = model_dir / f.path, model_dir / (f.path + PART_SUFFIX)
        if f.path in trusted or (final.is_file() and final.stat().st_size == f.size):
            continue
        needed += f.size - (part.stat().st_size if part.is_file() and part.stat().st_size <= f.size else 0)
    _check_free_space(model_dir, needed)
    _remove_marker(model_dir)  # the files are about to change; the marker comes back only if all match

    tracker = _Tracker(progress, "download", manifest)
    loader = _Downloader(manifest, model_dir, endpoint, proxy, tracker, cancel, retries, backoff_s, timeout_s)
    stats: dict[str, os.stat_result] = dict(trusted)
    bad: list[BadFile] = []
    try:
        for f in manifest.files:
            _check_cancel(cancel)
            final = model_dir / f.path
            if f.path in trusted:
                tracker.start(f, "verify")
                tracker.finish()
                continue
            if final.is_file():
                if final.stat().st_size == f.size:
                    tracker.start(f, "verify")
                    st = final.stat()
                    if _hash_file(final, tracker, cancel).hexdigest() == f.sha256:
                        stats[f.path] = st
                        tracker.finish()
                        continue
                final.unlink()  # wrong content: never leave it where the loader would find it
            for attempt in (1, 2):
                tracker.start(f, "download")
                actual = loader.fetch(f)
                part = model_dir / (f.path + PART_SUFFIX)
                if actual == f.sha256:
                    os.replace(part, final)
                    stats[f.path] = final.stat()
                    break
                # A damaged copy (bad mirror, proxy rewriting, disk error) is fetched once more from scratch.
                part.unlink(missing_ok=True)
                if attempt == 2:
                    bad.append(BadFile(f.path, f.sha256, actual))
            tracker.finish()
    except OSError as e:
        raise ModelError(f"cannot write to the model folder {model_dir}: {e.strerror or e}") from None
    finally:
        loader.session.close()
    if bad:
        names = "; ".join(b.describe() for b in bad)
        raise ModelError(f"{len(bad)} file(s) did not match the manifest after a second download: {names}", bad)
    _write_marker(model_dir, manifest, stats)
    tracker.done()


# -- status and custom models ---------------------------------------------------------------------------
def model_status(manifest: Manifest, model_dir: Path) -> dict[str, Any]:
    """What is on disk for ``manifest``: present files, partial downloads, marker. Cheap (no hashing)."""
    model_dir = Path(model_dir)
    marker = verified_marker(model_dir)
    problem = verification_problem(model_dir)
    files = []
    on_disk = partial = 0
    for f in manifest.files:
        path, part = model_dir / f.path, model_dir / (f.path + PART_SUFFIX)
        size = path.stat().st_size if path.is_file() else None
        part_size = part.stat().st_size if part.is_file() else 0
        on_disk += size or 0
        partial += part_size
        files.append({"path": f.path, "size": f.size, "present": size == f.size, "bytes": size or 0,
                      "partial_bytes": part_size})
    source = marker if marker is not None and problem is None else manifest.as_dict()
    return {
        "dir": str(model_dir),
        "installed": all(x["present"] for x in files),
        "verified": problem is None,
        "verification_problem": problem,
        "repo": source.get("repo"),
        "revision": source.get("revision"),
        "verified_at": marker.get("verified_at") if marker is not None and problem is None else None,
        "files": files,
        "bytes": on_disk,
        "bytes_total": manifest.total_bytes(),
        "partial_bytes": partial,
    }


def write_manifest_for(
    model_dir: Path, repo: str = "local/model", revision: str = "0" * 40, *, out: Path | None = None
) -> Path:
    """Write a manifest (size + sha256) for the files in ``model_dir``; returns its path.

    For tests and for users who bring their own model: ``model verify --manifest PATH`` then marks it verified.
    Hidden files, partial downloads and the manifest itself are left out. Default ``out``: ``model_dir/manifest.json``.
    """
    model_dir = Path(model_dir)
    out = Path(out) if out is not None else model_dir / "manifest.json"
    files = []
    for p in sorted(model_dir.rglob("*")):
        rel = p.relative_to(model_dir).as_posix()
        if (
            not p.is_file()
            or p.resolve() == out.resolve()
            or any(part.startswith(".") for part in rel.split("/"))
            or rel.endswith((PART_SUFFIX, IMPORT_SUFFIX))
        ):
            continue
        files.append({"path": rel, "size": p.stat().st_size, "sha256": _hash_file(p, None, None).hexdigest()})
    manifest = {"repo": repo, "revision": revision, "files": files}
    Manifest.from_dict(manifest)  # same checks as when it is loaded
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
    os.replace(tmp, out)
    return out
