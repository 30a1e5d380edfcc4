"""A shared index on S3 against the same index on the local disk: first-open time, query p95, bytes per query.

An index of ``--chunks`` synthetic chunks (``bench_query.build_store``: clustered dense vectors, lexical weights,
int8 ColBERT vectors, BM25 text) is built locally and compacted, then copied object by object into a bucket of
moto's S3 server on 127.0.0.1. The same queries (stub encoder: vectors made ahead, so query encoding is excluded)
run against three places, each opened fresh by a new Store (moto and the proxies run in a child process, like a
store on another machine):

- ``local``: the index folder on disk;
- ``s3``: the bucket through a counting proxy that adds nothing (it keeps the immutable Lance files it has fetched
  once from moto in memory, loaded before any measurement, and answers ranged reads from there: moto reads a
  whole object for every ranged GET, which would make this a benchmark of moto);
- ``s3_20ms``: the same proxy adding ``--delay-ms`` (20) to every request, like a store across a WAN.

Per place: ``first_open_s`` (Store() + building the query caches, as the window does after opening),
``first_query_ms``, an untimed pass over other queries, then ``--rounds`` rounds over the timed queries (p50/p95,
per store call) and, for
S3, requests and response bytes per warm query as the proxy counted them. The goal: warm p95 on S3 with 20 ms
per request within 2x of local.

    python benchmarks/bench_s3.py [--quick] [--chunks 100000] [--delay-ms 20] [--queries 40] [--rounds 2]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _common as c  # first: it sets the app's environment before numpy loads

from bench_query import StoreTimer, StubEncoder, build_store, make_queries


def upload(local: Path, endpoint: str, bucket: str, prefix: str) -> tuple[int, int, list[str]]:
    """Every file below ``local`` as an object with the same relative key; (objects, bytes, keys)."""
    import obstore
    from obstore.store import S3Store

    # Generous timeouts: moto assembles a multi-part upload of a 1 GB data file slowly.
    client = S3Store(bucket, prefix=prefix, endpoint=endpoint, region="us-east-1", access_key_id="k",
                     secret_access_key="s", client_options={"allow_http": True, "timeout": "900s"})
    n = size = 0
    keys = []
    for path in sorted(local.rglob("*")):
        if path.is_file():
            rel = path.relative_to(local).as_posix()
            with open(path, "rb") as fh:
                obstore.put(client, rel, fh)
            n, size = n + 1, size + path.stat().st_size
            keys.append(rel)
    return n, size, keys


def create_bucket(endpoint: str) -> str:
    req = urllib.request.Request(f"{endpoint}/team-bucket", method="PUT", data=b"")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        resp.read()
    return "team-bucket"


def measure(where, queries: dict, warmup: dict, rounds: int, proxy: str | None = None,
            mirror_dir: Path | None = None) -> dict:
    from desktop_search.core.search import Searcher
    from desktop_search.core.store import Store
    from desktop_search.devtools.s3_server import proxy_counts

    if proxy is not None:
        proxy_counts(proxy, reset=True)
    t0 = time.perf_counter()
    store = Store(where, create=False, read_consistency_s=5.0, mirror_dir=mirror_dir)
    t_open = time.perf_counter() - t0
    store.warm()
    t_warm = time.perf_counter() - t0
    out: dict = {"open_s": round(t_open, 2), "first_open_s": round(t_warm, 2)}
    if proxy is not None:
        got = proxy_counts(proxy)
        out["first_open_requests"], out["first_open_mb"] = got["requests"], round(got["bytes_out"] / 1e6, 1)
    searcher = Searcher(store, StubEncoder({**warmup, **queries}), rerank_k=50, candidates_per_mode=100)
    texts = list(queries)
    t_first, _ = c.timed(lambda: searcher.search(next(iter(warmup)), k=10))
    out["first_query_ms"] = round(t_first * 1000, 1)
    for q in warmup:  # other queries, untimed: index pages and metadata come into LanceDB's caches
        searcher.search(q, k=10)
    timer = StoreTimer(store)
    if proxy is not None:
        proxy_counts(proxy, reset=True)
    samples = []
    for _ in range(rounds):
        for q in texts:
            dt, _res = c.timed(lambda: searcher.search(q, k=10))
            samples.append(dt)
    out.update(c.percentiles(samples))
    n = len(samples)
    if proxy is not None:
        got = proxy_counts(proxy)
        out["requests_per_query"] = round(got["requests"] / n, 2)
        out["kb_per_query"] = round(got["bytes_out"] / n / 1e3, 1)
    out["per_query_ms_by_store_call"] = {k: round(v / n * 1000, 2) for k, v in sorted(timer.totals.items())}
    return out


def main(argv: list[str] | None = None) -> dict:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--chunks", type=int, default=None, help="index size (default 100000, quick 20000)")
    p.add_argument("--colbert-tokens", type=int, default=8, help="ColBERT vectors per synthetic chunk (default 8)")
    p.add_argument("--delay-ms", type=float, default=20.0, help="added to every request in the s3_20ms case")
    p.add_argument("--queries", type=int, default=None, help="distinct queries (default 40, quick 20)")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds over the queries with warm caches")
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--no-mirror", action="store_true", help="read the chunks table from the bucket too "
                   "(the app's readers keep a local copy of it)")
    args = p.parse_args(argv)
    n = args.chunks or (20_000 if args.quick else 100_000)
    n_queries = args.queries or (20 if args.quick else 40)

    from desktop_search.core.location import IndexLocation
    from desktop_search.devtools.s3_server import ACCESS_KEY, SECRET_KEY, prime

    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = ACCESS_KEY, SECRET_KEY
    os.environ["DESKTOP_SEARCH_NO_KEYCHAIN"] = "1"
    result: dict = {"benchmark": "s3", "machine": c.machine(), "chunks": n, "chunks_mirrored": not args.no_mirror, "colbert_tokens_per_chunk": args.colbert_tokens,
                    "queries": n_queries, "rounds": args.rounds, "delay_ms": args.delay_ms}
    work = Path(tempfile.mkdtemp(prefix="bench-s3-", dir=args.work_dir))
    try:
        c.log(f"building a {n}-chunk index")
        t_build, (store, data) = c.timed(lambda: build_store(work / "idx", n, args.colbert_tokens))
        store.optimize()
        result["build_s"] = round(t_build, 1)
        result["index_mb"] = round(store.index_bytes() / 1e6, 1)
        del store
        both = make_queries(data, 2 * n_queries)
        names = list(both)
        queries = {q: both[q] for q in names[len(names) // 2:]}  # timed
        warmup = {q: both[q] for q in names[: len(names) // 2]}  # run before, untimed: never the timed ones
        # The server side (moto + proxies) in its own process, like a store on another machine.
        server = subprocess.Popen([sys.executable, "-m", "desktop_search.devtools.s3_server", "--delay-ms",
                                   str(args.delay_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": str(c.REPO)})
        try:
            ends = json.loads(server.stdout.readline())
            bucket = create_bucket(ends["moto"])
            direct = IndexLocation.parse(f"s3://{bucket}/team-index", [("endpoint", ends["moto"])])
            t_up, (objects, size, keys) = c.timed(lambda: upload(work / "idx", ends["moto"], bucket, "team-index"))
            result["upload"] = {"objects": objects, "mb": round(size / 1e6, 1), "s": round(t_up, 1)}
            proxied = IndexLocation.parse(direct.uri, [("endpoint", ends["proxy"])])
            prime(proxied.client(), [k for k in keys if "/data/" in k or "/_indices/" in k])
            c.log("local")
            result["local"] = measure(work / "idx", queries, warmup, args.rounds)
            for name, proxy in (("s3", ends["proxy"]), (f"s3_{args.delay_ms:g}ms", ends["proxy_delay"])):
                c.log(name)
                where = IndexLocation.parse(direct.uri, [("endpoint", proxy)])
                mirror = None if args.no_mirror else work / f"mirror-{name}"  # as the app's readers do
                result[name] = measure(where, queries, warmup, args.rounds, proxy, mirror)
        finally:
            server.stdin.close()
            server.wait(timeout=60)
        slow = result[f"s3_{args.delay_ms:g}ms"]
        result["p95_ratio_s3_delay_vs_local"] = round(slow["p95_ms"] / result["local"]["p95_ms"], 2)
        result["goal_p95_ratio"] = 2.0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    c.emit(main())
