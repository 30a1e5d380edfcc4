"""``desktop-search search`` (one query or a file of them; hybrid, or keyword without a model) and
``desktop-search status`` (counts, failures with reasons, index size, model). Neither imports torch for
keyword work, so both answer in about a second."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from desktop_search import config
from desktop_search.cli.common import (
    EXIT_OK,
    CliError,
    add_common,
    json_line,
    load_encoder,
    note,
    open_store,
    settings_from_args,
)
from desktop_search.core.extract.registry import position_name
from desktop_search.formatting import format_bytes


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("search", help="search the index")
    p.add_argument("query", nargs="?", help="the query; quotes for exact phrases, -word to exclude")
    p.add_argument("--queries", type=Path, metavar="FILE", help="run every line of FILE as a query")
    p.add_argument("-k", type=int, default=10, metavar="N", help="number of files to return (default 10)")
    p.add_argument("--mode", choices=config.SEARCH_MODES, help="hybrid (default when a model is installed) or keyword")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    p.add_argument("--weights", type=str, help="dense,sparse,colbert weights (default 0.4,0.2,0.4)")
    p.add_argument("--fusion", choices=config.FUSIONS,
                   help="final hybrid ranking: rrf = semantic and BM25 rankings fused by reciprocal rank (default), "
                        "none = semantic score only")
    p.add_argument("--keyword-weight", type=float, metavar="W", help="weight of the BM25 ranking in rrf (default 1.0)")
    add_common(p)
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("status", help="what is indexed, what failed and why, index size, model")
    p.add_argument("--json", action="store_true")
    add_common(p)
    p.set_defaults(run=cmd_status)


def cmd_search(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise CliError("-k must be at least 1")
    if bool(args.query) == bool(args.queries):
        raise CliError("give either a QUERY or --queries FILE")
    if args.queries:
        try:
            queries = [q.strip() for q in args.queries.read_text("utf-8").splitlines() if q.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise CliError(f"cannot read queries file {args.queries}: {e}") from None
    else:
        queries = [args.query]
    settings = settings_from_args(args)
    store = open_store(settings, create=False)
    mode = args.mode
    encoder = None
    if mode != "keyword":
        encoder = load_encoder(settings, required=mode == "hybrid", fallback="keyword search only")
        if encoder is None:
            mode = "keyword"
        else:
            mode = "hybrid"
            if store.model_fingerprint not in (None, encoder.fingerprint):
                raise CliError("the index was built with a different model; run `desktop-search index` again")
            if store.count_vectors() == 0:
                note("the index has no semantic vectors yet (run `desktop-search index` with the model installed)")
    from desktop_search.core.search import Searcher

    searcher = Searcher(
        store,
        encoder,
        weights=settings.weights,
        candidates_per_mode=settings.candidates_per_mode,
        rerank_k=settings.rerank_k,
        fusion=settings.fusion,
        rrf_k=settings.rrf_k,
        keyword_weight=settings.keyword_weight,
    )
    for q in queries:
        result = searcher.search(q, k=args.k, mode=mode)
        if args.json:
            from desktop_search.core.store import fs_path

            out = result.as_json()
            for hit in out["hits"]:
                hit["offline"] = not os.path.lexists(fs_path(hit["path"]))
            print(json_line(out))
        else:
            _print_result(result, multiple=len(queries) > 1)
    return EXIT_OK


def _print_result(result: Any, *, multiple: bool) -> None:
    if multiple:
        print(f"## {result.query}")
    if result.corrected is not None:
        print(f"showing results for: {result.corrected}")
    if not result.hits:
        print("no results")
    from desktop_search.core.store import fs_path

    for i, h in enumerate(result.hits, 1):
        where = f" ({position_name(h.path) or 'page'} {h.page})" if h.page else ""
        if not os.path.lexists(fs_path(h.path)):
            where += " [offline]"  # e.g. on a drive that is unplugged now: found, but cannot be opened
        more = f" [+{h.more} more]" if h.more else ""
        parts = ", ".join(f"{k} {v:.3f}" for k, v in h.scores.items() if v is not None)
        print(f"{i:>2}. {h.score:.3f}  {h.path}{where}{more}")
        print(f"      {h.snippet}")
        print(f"      ({parts})")


def status_dict(settings: config.Settings) -> dict[str, Any]:
    from desktop_search.core.encoder import model_fingerprint, model_problem

    store = open_store(settings, create=False)
    records = store.file_records()
    by_status = {"indexed": 0, "failed": 0, "pending": 0}
    failures = []
    for r in records.values():
        by_status[r.status] = by_status.get(r.status, 0) + 1
        if r.status == "failed":
            failures.append({"path": r.path, "reason": r.reason, "detail": r.detail})
    failures.sort(key=lambda f: f["path"])
    problem = model_problem(settings.model_dir)
    chunks = store.count_chunks()
    vectors_ok = store.count_vectors()
    return {
        "index_dir": str(settings.index),
        "files": {"total": len(records), **by_status},
        "chunks": chunks,
        "failures": failures,
        "index_bytes": store.index_bytes(),
        "model": {
            "dir": str(settings.model_dir),
            "installed": problem is None,
            "problem": problem,
            "fingerprint": model_fingerprint(settings.model_dir) if problem is None else None,
            "index_model": store.model_fingerprint,
            "dim": store.dim,
            "encoded_texts": vectors_ok,
            "colbert_storage": store.colbert_storage,
        },
    }


def cmd_status(args: argparse.Namespace) -> int:
    st = status_dict(settings_from_args(args))
    if args.json:
        print(json_line(st))
        return EXIT_OK
    f = st["files"]
    print(f"index:   {st['index_dir']} ({format_bytes(st['index_bytes'])})")
    print(f"files:   {f['total']} total, {f['indexed']} indexed, {f['failed']} failed, {f['pending']} pending")
    print(f"chunks:  {st['chunks']} ({st['model']['encoded_texts']} distinct texts encoded)")
    m = st["model"]
    print(f"model:   {m['dir']} " + ("(installed)" if m["installed"] else f"(not usable: {m['problem']})"))
    if st["failures"]:
        print("failures:")
        for fl in st["failures"]:
            print(f"  {fl['path']}: {fl['reason']}: {fl['detail']}")
    return EXIT_OK
