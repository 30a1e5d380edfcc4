"""A real S3 protocol server on 127.0.0.1 for tests and benchmarks: moto's server mode, plus a small proxy.

:class:`LocalS3` starts ``moto``'s threaded server on a free loopback port (and stops it); buckets are created
with one plain HTTP request. :class:`S3Proxy` sits in front of it and can add a fixed delay to every request
(simulated distance to the store), strip the conditional-write headers (a store that ignores ``If-None-Match``,
to prove the app refuses it) and count requests and response bytes (what a query costs on the wire). Nothing
here leaves the loopback interface. Test and benchmark helper only: the app never imports it.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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

    def __init__(self, upstream: str, *, delay_s: float = 0.0, strip_conditional: bool = False,
                 cache_immutable: bool = False, cache: dict | None = None) -> None:
        self.upstream = upstream.split("://", 1)[1].rstrip("/")
        self.delay_s = delay_s
        self.strip_conditional = strip_conditional
        # moto reads a whole object for every ranged GET (O(object size) per request, which no real store does):
        # with this, the proxy fetches each immutable Lance file (data files, indexes) once and answers ranged
        # GETs from memory, so a benchmark measures the client and the added latency, not moto.
        self.cache_immutable = cache_immutable
        self._cache: dict[str, tuple[bytes, list[tuple[str, str]]]] = {} if cache is None else cache
        self.requests = 0
        self.bytes_out = 0  # response bytes sent back to the client (bodies)
        self.log: list[tuple[float, str, str, str]] | None = None  # (time, method, path, range) when a list
        self._count_lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm the body then waits for the client's
            # delayed ACK (40-200 ms), which no real store adds.
            disable_nagle_algorithm = True

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
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _cached_get(self, h: BaseHTTPRequestHandler) -> bool:
        """Answer a GET of an immutable Lance file from the cache (filling it first); False: not such a GET."""
        path = h.path.split("?", 1)[0]
        if h.command != "GET" or "?" in h.path or not ("/data/" in path or "/_indices/" in path):
            return False
        entry = self._cache.get(path)
        if entry is None:
            conn = self._conn()
            conn.request("GET", path, headers={k: v for k, v in h.headers.items()
                                               if k.lower() not in _HOP_BY_HOP and k.lower() != "range"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                return False
            keep = [(k, v) for k, v in resp.getheaders() if k.lower() in ("etag", "last-modified", "content-type")]
            entry = self._cache[path] = (data, keep)
        data, keep = entry
        total, status = len(data), 200
        rng = h.headers.get("Range", "")
        if rng.startswith("bytes="):
            first, _, last = rng[6:].partition("-")
            if first:
                start, end = int(first), min(int(last) if last else total - 1, total - 1)
            else:  # a suffix: the last N bytes
                start, end = max(0, total - int(last)), total - 1
            body, status = data[start : end + 1], 206
        else:
            body = data
        h.send_response_only(status, "Partial Content" if status == 206 else "OK")
        for k, v in keep:
            h.send_header(k, v)
        h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        with self._count_lock:
            self.requests += 1
            self.bytes_out += len(body)
        return True

    def _forward(self, h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/__proxy/"):  # counters for a client in another process (benchmarks)
            if h.path == "/__proxy/reset":
                self.reset_counts()
            counts = json.dumps({"requests": self.requests, "bytes_out": self.bytes_out}).encode()
            h.send_response(200)
            h.send_header("Content-Length", str(len(counts)))
            h.end_headers()
            h.wfile.write(counts)
            return
        if self.log is not None:
            self.log.append((time.perf_counter(), h.command, h.path, h.headers.get("Range", "")))
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.cache_immutable and self._cached_get(h):
            return
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


def proxy_counts(endpoint: str, reset: bool = False) -> dict:
    """The request and byte counters of an :class:`S3Proxy` running in another process (optionally reset)."""
    with urllib.request.urlopen(f"{endpoint}/__proxy/{'reset' if reset else 'stats'}", timeout=10) as resp:  # noqa: S310
        return json.loads(resp.read())


def prime(client: Any, keys: list[str]) -> None:
    """Have a caching proxy load these objects from moto now (``client``: an obstore store whose endpoint is the
    proxy), so that a measurement after it sees only what the client fetches (each object is read whole once;
    ranged reads are then served from memory)."""
    import obstore

    for key in keys:
        obstore.get_range(client, key, start=0, end=1)


def main(argv: list[str] | None = None) -> None:
    """Serve moto and two proxies (no delay, and ``--delay-ms``) in this process until stdin closes; print one
    JSON line with their endpoints first. Benchmarks run the server side here, so that its threads do not share
    the measured process's interpreter lock."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--delay-ms", type=float, default=20.0)
    args = p.parse_args(argv)
    cache: dict = {}  # shared: each immutable file is fetched from moto once (see prime())
    with LocalS3() as s3, S3Proxy(s3.endpoint, cache_immutable=True, cache=cache) as fast, \
            S3Proxy(s3.endpoint, delay_s=args.delay_ms / 1000, cache_immutable=True, cache=cache) as slow:
        print(json.dumps({"moto": s3.endpoint, "proxy": fast.endpoint, "proxy_delay": slow.endpoint}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
