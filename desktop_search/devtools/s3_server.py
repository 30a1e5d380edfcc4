"""A real S3 protocol server on 127.0.0.1 for tests and benchmarks: moto's server mode, plus a small proxy.

:class:`LocalS3` starts ``moto``'s threaded server on a free loopback port (and stops it); buckets are created
with one plain HTTP request. :class:`S3Proxy` sits in front of it and can add a fixed delay to every request
(simulated distance to the store), strip the conditional-write headers (a store that ignores ``If-None-Match``,
to prove the app refuses it) and count requests and response bytes (what a query costs on the wire). Nothing
here leaves the loopback interface. Test and benchmark helper only: the app never imports it.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["LocalS3", "S3Proxy", "ACCESS_KEY", "SECRET_KEY"]

# moto accepts any keys; these are what tests export as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
ACCESS_KEY, SECRET_KEY = "testing-access-key", "testing-secret-key"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade"}


class LocalS3:
    """moto's S3 server on 127.0.0.1 (``with LocalS3() as s3: s3.endpoint``)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> "LocalS3":
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"bucket-{uuid.uuid4().hex[:12]}"
        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            resp.read()
        return name

    def __enter__(self) -> "LocalS3":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class S3Proxy:
    """An HTTP proxy in front of ``upstream`` (``http://127.0.0.1:PORT``) on its own loopback port."""

    def __init__(self, upstream: str, *, delay_s: float = 0.0, strip_conditional: bool = False) -> None:
        self.upstream = upstream.split("://", 1)[1].rstrip("/")
        self.delay_s = delay_s
        self.strip_conditional = strip_conditional
        self.requests = 0
        self.bytes_out = 0  # response bytes sent back to the client (bodies)
        self._count_lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _forward(self) -> None:
                proxy._forward(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def reset_counts(self) -> None:
        with self._count_lock:
            self.requests = 0
            self.bytes_out = 0

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.upstream, timeout=60)
        return conn

    def _forward(self, h: BaseHTTPRequestHandler) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP_BY_HOP}
        if self.strip_conditional:
            headers = {k: v for k, v in headers.items() if k.lower() not in ("if-none-match", "if-match")}
        for attempt in range(2):
            conn = self._conn()
            try:
                conn.request(h.command, h.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    h.send_error(502)
                    return
        h.send_response_only(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                h.send_header(key, value)
        if h.command == "HEAD":
            h.send_header("Content-Length", resp.getheader("Content-Length") or "0")
        else:
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
        with self._count_lock:
            self.requests += 1
            self.bytes_out += len(data)

    def start(self) -> "S3Proxy":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="s3-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "S3Proxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
