"""A local stand-in for the Hugging Face hub: serves a model folder at ``/{repo}/resolve/{revision}/{path}``.

Real HTTP on 127.0.0.1 (so the download code runs exactly as against a mirror), with Range support and knobs to
inject the faults a user meets: a connection cut mid-file, corrupted bytes, a missing file, a refused file,
a busy server (503) and a slow line. Every request is logged with the byte it asked to start at.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


@dataclass
class Request:
    file: str  # path inside the repository ("" if the URL did not match)
    range_start: int | None  # the first byte asked for with Range, None without Range
    status: int
    bytes_sent: int = 0


@dataclass
class Faults:
    cut_after: dict[str, int] = field(default_factory=dict)  # file -> close the connection at this byte (once)
    corrupt_once: set[str] = field(default_factory=set)  # file -> one flipped byte, first full serve only
    corrupt_always: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)  # 404
    status: dict[str, int] = field(default_factory=dict)  # file -> this HTTP status (401, 403 ...)
    fail_first: int = 0  # 503 for the first K requests
    throttle_bps: dict[str, int] = field(default_factory=dict)  # file -> bytes per second
    ignore_range: bool = False  # answer 200 with the whole file, like a server without Range support


class ModelServer:
    def __init__(self, root: Path, repo: str, revision: str) -> None:
        self.root, self.repo, self.revision = Path(root), repo, revision
        self.faults = Faults()
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._served_corrupt: set[str] = set()
        self._cut_done: set[str] = set()
        self._requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: the request log is the record
                pass

            def do_GET(self) -> None:
                owner._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client killed mid-file is expected here
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="model-server", daemon=True)

    def __enter__(self) -> "ModelServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)

    def requests_for(self, file: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.file == file]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # -- serving --------------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        prefix = f"/{self.repo}/resolve/{self.revision}/"
        path = unquote(h.path.split("?", 1)[0])
        rel = path[len(prefix):] if path.startswith(prefix) else ""
        m = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range", ""))
        start = int(m.group(1)) if m else None
        f = self.faults
        with self._lock:
            self._requests += 1
            busy = self._requests <= f.fail_first
        rec = Request(rel, start, 200)
        with self._lock:
            self.log.append(rec)
        target = self.root / rel
        if busy:
            return self._status(h, rec, 503)
        if not rel or rel in f.missing or not target.is_file():
            return self._status(h, rec, 404)
        if rel in f.status:
            return self._status(h, rec, f.status[rel])
        data = target.read_bytes()
        if rel in f.corrupt_always or (rel in f.corrupt_once and rel not in self._served_corrupt):
            self._served_corrupt.add(rel)
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]
        first = 0 if start is None or f.ignore_range else start
        if first > len(data) or (first == len(data) and first > 0):
            h.send_response(416)
            h.send_header("Content-Range", f"bytes */{len(data)}")
            h.send_header("Content-Length", "0")
            h.end_headers()
            rec.status = 416
            return
        body = data[first:]
        if first:
            rec.status = 206
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        cut = f.cut_after.get(rel) if rel not in self._cut_done else None
        bps = f.throttle_bps.get(rel)
        pos = first
        try:
            while pos < len(data):
                step = 16 * 1024
                if cut is not None and pos < cut:
                    step = min(step, cut - pos)
                elif cut is not None:
                    # Drop the connection mid-body, as a flaky line or a proxy timeout would.
                    self._cut_done.add(rel)
                    h.wfile.flush()
                    h.connection.shutdown(socket.SHUT_RDWR)
                    h.close_connection = True
                    return
                h.wfile.write(data[pos:pos + step])
                pos += step
                rec.bytes_sent = min(pos, len(data)) - first
                if bps:
                    time.sleep(step / bps)
            h.wfile.flush()
        except OSError:  # the client went away (killed or cancelled)
            h.close_connection = True

    @staticmethod
    def _status(h: BaseHTTPRequestHandler, rec: Request, code: int) -> None:
        rec.status = code
        body = f"HTTP {code}\n".encode()
        h.send_response(code)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
