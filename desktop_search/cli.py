"""Command-line front: ``gui`` (default), ``index``, ``search``, ``status``, ``model`` (download, verify,
import, status of the BGE-M3 weights), ``watch`` (index, then follow changes until stopped) and ``doctor``
(check and repair the index).

Each command builds Settings from flags and environment, then calls the core. Heavy imports happen inside the
command that needs them: ``status`` and keyword ``search`` never import torch, so they answer in about a second.
Every expected failure (bad arguments, no index, no model) ends in one line on stderr and a non-zero exit code,
never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from desktop_search import config

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """An expected failure: printed as one line, exit code EXIT_ERROR."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _add_common(p: argparse.ArgumentParser, *, model: bool = True) -> None:
    p.add_argument("--index-dir", type=Path, help="index folder (default: per-user data dir; env DESKTOP_SEARCH_INDEX_DIR)")
    if model:
        p.add_argument("--model-dir", type=Path, help="BGE-M3 model folder (env DESKTOP_SEARCH_MODEL_DIR)")
        p.add_argument("--device", choices=config.DEVICES, help="where to run the model (default: auto = GPU if any)")
        p.add_argument(
            "--precision",
            choices=config.CPU_PRECISIONS,
            help="model precision on the CPU: int8 (fast, checked against fp32 at load; default) or fp32 (exact)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="desktop-search", description="Offline multilingual semantic search over your documents.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    # Maintenance flags (hidden): prove an installation or a frozen bundle works end to end.
    parser.add_argument("--self-test", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", dest="top_model_dir", type=Path, help=argparse.SUPPRESS)
    p = sub.add_parser("gui", help="open the search window (the default)")
    p.add_argument("--quit-after", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    p.add_argument("--smoke-query", default="", help=argparse.SUPPRESS)  # with --quit-after: time first results
    p.add_argument("--smoke-model", action="store_true", help=argparse.SUPPRESS)  # ... and the model being ready

    p = sub.add_parser("index", help="index folders or files (incremental: unchanged files are skipped)")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _add_common(p)
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    p.add_argument("--keyword-only", action="store_true", help="do not load the model; build the keyword index only")

    p = sub.add_parser("search", help="search the index")
    p.add_argument("query", nargs="?", help="the query; quotes for exact phrases, -word to exclude")
    p.add_argument("--queries", type=Path, metavar="FILE", help="run every line of FILE as a query")
    p.add_argument("-k", type=int, default=10, metavar="N", help="number of files to return (default 10)")
    p.add_argument("--mode", choices=config.SEARCH_MODES, help="hybrid (default when a model is installed) or keyword")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    p.add_argument("--weights", type=str, help="dense,sparse,colbert weights (default 0.4,0.2,0.4)")
    _add_common(p)

    p = sub.add_parser("status", help="what is indexed, what failed and why, index size, model")
    p.add_argument("--json", action="store_true")
    _add_common(p)

    p = sub.add_parser("watch", help="index folders, then keep the index in step with them until stopped (Ctrl+C)")
    p.add_argument("paths", nargs="+", type=Path, metavar="FOLDER")
    _add_common(p)
    p.add_argument("--keyword-only", action="store_true", help="do not load the model; build the keyword index only")
    p.add_argument("--poll", action="store_true", help="poll for changes instead of native change notification")
    p.add_argument("--poll-interval", type=float, default=3.0, metavar="S", help="seconds between polls (default 3)")
    p.add_argument("--debounce", type=float, default=1.0, metavar="S",
                   help="seconds of quiet before a burst of changes is indexed (default 1)")

    p = sub.add_parser("doctor", help="check the index for damage (crashes, full disk, old versions); --repair fixes it")
    p.add_argument("--repair", action="store_true", help="fix what is found (documents are never touched)")
    p.add_argument("--json", action="store_true")
    _add_common(p, model=False)

    from desktop_search.cli_model import add_model_parser  # here: cli_model imports this module

    add_model_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> config.Settings:
    weights = None
    if getattr(args, "weights", None):
        try:
            weights = tuple(float(x) for x in args.weights.split(","))
        except ValueError:
            raise CliError(f"--weights must be three numbers like 0.4,0.2,0.4, not {args.weights!r}") from None
    try:
        return config.load_settings(
            index_dir=getattr(args, "index_dir", None),
            model_dir=getattr(args, "model_dir", None),
            device=getattr(args, "device", None),
            cpu_precision=getattr(args, "precision", None),
            weights=weights,
        )
    except ValueError as e:
        raise CliError(str(e)) from None


def _load_encoder(settings: config.Settings, *, required: bool, fallback: str = ""):
    """The encoder, or None when ``required`` is False and there is none to be had.

    Not required, a missing model or one that cannot be loaded (a damaged file, or packages that cannot run it)
    is said in one line ending with ``fallback`` (what the command does instead), and the command goes on in
    keyword mode: semantic search is an addition, never a reason to index or find nothing."""
    from desktop_search.core.encoder import load_failure, model_problem

    problem = model_problem(settings.model_dir)
    if problem:
        if required:
            raise CliError(problem)
        if fallback:
            _note(f"{problem}: {fallback}")
        return None
    try:
        from desktop_search.core.encoder import Encoder

        return Encoder(settings.model_dir, settings.device, settings.cpu_precision)
    except Exception as e:  # a damaged model or a broken install must be named, not dumped as a traceback
        why = load_failure(e, settings.model_dir)
        if required:
            raise CliError(why) from None
        _note(f"semantic search is off: {why}" + (f"; {fallback}" if fallback else ""))
        return None


def _open_store(settings: config.Settings, *, create: bool):
    from desktop_search.core.store import IndexIncompatible, IndexMissing, Store

    try:
        return Store(settings.index_dir, create=create)
    except (IndexMissing, IndexIncompatible) as e:
        raise CliError(str(e)) from None


def _note(msg: str) -> None:
    print(f"desktop-search: {msg}", file=sys.stderr)


def _fmt_duration(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class LinePrinter:
    """One progress line on stderr: redrawn in place on a terminal (at most 5 times a second), a plain line
    every few seconds when stderr is a file or pipe. Subclasses say what the line contains."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def line(self, p) -> str:
        raise NotImplementedError

    def __call__(self, p) -> None:
        now = time.monotonic()
        final = p.phase == "done"
        if not final and now - self._last < (0.2 if self.tty else 5.0):
            return
        self._last = now
        text = self.line(p)
        if self.tty:
            self.stream.write("\r" + text[:160].ljust(160) + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        # An error line must not be glued to a half-drawn progress bar.
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


def progress_bar(fraction: float) -> str:
    return "[" + ("=" * int(min(1.0, max(0.0, fraction)) * 24)).ljust(24) + "]"


class ProgressPrinter(LinePrinter):
    """Indexing: files, chunks per second, failures, ETA, phase."""

    def line(self, p) -> str:
        return (
            f"{progress_bar(p.files_done / max(p.files_total, 1))} {p.files_done}/{p.files_total} files · "
            f"{p.chunks_done} chunks ({p.chunks_per_s:.1f}/s) · {p.files_failed} failed · "
            f"ETA {_fmt_duration(p.eta_s)} · {p.phase}"
        )


# -- commands -------------------------------------------------------------------------------------------
def cmd_index(args: argparse.Namespace) -> int:
    settings = _settings(args)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or folder: {', '.join(missing)}")
    encoder = None if args.keyword_only else _load_encoder(
        settings, required=False,
        fallback="building the keyword index only (index again once that is fixed to add semantic search)",
    )
    store = _open_store(settings, create=True)
    from desktop_search.core.indexer import Indexer

    with _index_errors():
        report = Indexer(store, settings, encoder).index(args.paths, progress=ProgressPrinter())
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        print(
            f"indexed {report.indexed} files ({report.chunks_written} chunks, {report.chunks_encoded} encoded), "
            f"{report.failed} failed, {report.unchanged} unchanged, {report.removed} removed "
            f"in {report.elapsed_s:.1f}s" + ("" if report.semantic else " [keyword only]")
        )
        for path, reason, detail in report.failures[:20]:
            _note(f"failed: {path}: {reason}: {detail}")
        if len(report.failures) > 20:
            _note(f"... and {len(report.failures) - 20} more failures (see `desktop-search status`)")
    for err in report.errors:
        _note(err)
    return EXIT_OK


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
    settings = _settings(args)
    store = _open_store(settings, create=False)
    mode = args.mode
    encoder = None
    if mode != "keyword":
        encoder = _load_encoder(settings, required=mode == "hybrid", fallback="keyword search only")
        if encoder is None:
            mode = "keyword"
        else:
            mode = "hybrid"
            if store.model_fingerprint not in (None, encoder.fingerprint):
                raise CliError("the index was built with a different model; run `desktop-search index` again")
            if store.count_vectors() == 0:
                _note("the index has no semantic vectors yet (run `desktop-search index` with the model installed)")
    from desktop_search.core.search import Searcher

    searcher = Searcher(
        store,
        encoder,
        weights=settings.weights,
        candidates_per_mode=settings.candidates_per_mode,
        rerank_k=settings.rerank_k,
    )
    for q in queries:
        result = searcher.search(q, k=args.k, mode=mode)
        if args.json:
            print(json.dumps(result.as_json(), ensure_ascii=False))
        else:
            _print_result(result, multiple=len(queries) > 1)
    return EXIT_OK


def _print_result(result, *, multiple: bool) -> None:
    if multiple:
        print(f"## {result.query}")
    if not result.hits:
        print("no results")
    for i, h in enumerate(result.hits, 1):
        where = f" (page {h.page})" if h.page else ""
        more = f" [+{h.more} more]" if h.more else ""
        parts = ", ".join(f"{k} {v:.3f}" for k, v in h.scores.items() if v is not None)
        print(f"{i:>2}. {h.score:.3f}  {h.path}{where}{more}")
        print(f"      {h.snippet}")
        print(f"      ({parts})")


def status_dict(settings: config.Settings) -> dict[str, Any]:
    from desktop_search.core.encoder import model_fingerprint, model_problem

    store = _open_store(settings, create=False)
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
        "index_dir": str(settings.index_dir),
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
            "colbert_storage": store.meta.get("colbert_storage"),
        },
    }


def cmd_status(args: argparse.Namespace) -> int:
    st = status_dict(_settings(args))
    if args.json:
        print(json.dumps(st, ensure_ascii=False))
        return EXIT_OK
    f = st["files"]
    print(f"index:   {st['index_dir']} ({st['index_bytes'] / 1e6:.1f} MB)")
    print(f"files:   {f['total']} total, {f['indexed']} indexed, {f['failed']} failed, {f['pending']} pending")
    print(f"chunks:  {st['chunks']} ({st['model']['encoded_texts']} distinct texts encoded)")
    m = st["model"]
    print(f"model:   {m['dir']} " + ("(installed)" if m["installed"] else f"(not usable: {m['problem']})"))
    if st["failures"]:
        print("failures:")
        for fl in st["failures"]:
            print(f"  {fl['path']}: {fl['reason']}: {fl['detail']}")
    return EXIT_OK


@contextlib.contextmanager
def _index_errors() -> Iterator[None]:
    """Index-in-use and index-write failures are expected: one line, exit 1."""
    from desktop_search.core.indexer import IndexWriteError
    from desktop_search.core.lock import IndexBusy

    try:
        yield
    except (IndexBusy, IndexWriteError) as e:
        raise CliError(str(e)) from None


def cmd_watch(args: argparse.Namespace) -> int:
    import queue
    import signal
    import threading

    settings = _settings(args)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CliError(f"no such folder: {', '.join(missing)}")
    files = [str(p) for p in args.paths if not p.is_dir()]
    if files:
        raise CliError(f"watch takes folders, not files: {', '.join(files)}")
    encoder = None if args.keyword_only else _load_encoder(
        settings, required=False, fallback="building the keyword index only"
    )
    store = _open_store(settings, create=True)
    from desktop_search.core.indexer import Indexer
    from desktop_search.core.lock import IndexLock
    from desktop_search.core.watcher import FolderWatcher

    stop = threading.Event()
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    batches: "queue.Queue" = queue.Queue()
    folders = [p.resolve() for p in args.paths]
    try:
        # The lock is held for the whole session: one watcher (or indexer) per index.
        with _index_errors(), IndexLock(settings.index_dir, command="desktop-search watch"):
            indexer = Indexer(store, settings, encoder)
            watcher = FolderWatcher(
                folders, batches.put, debounce_s=args.debounce, force_polling=args.poll,
                poll_interval_s=args.poll_interval, ignore_dirs=[settings.index_dir],
            )
            watcher.start()  # before the first pass, so changes made during it are not missed
            try:
                report = indexer.index(folders, progress=ProgressPrinter(), cancel=stop)
                if not report.cancelled:
                    _note(f"up to date: {report.indexed} indexed, {report.failed} failed, "
                          f"{report.unchanged} unchanged, {report.removed} removed")
                watcher.on_status = _note
                _note(f"{watcher.status} ({watcher.mode}); press Ctrl+C to stop")
                while not stop.is_set():
                    try:
                        batch = batches.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    rep = indexer.update_paths([Path(p) for p in batch.paths], cancel=stop)
                    moved = f" ({rep.moved} moved)" if rep.moved else ""
                    _note(f"updated: {rep.indexed} indexed{moved}, {rep.failed} failed, {rep.removed} removed")
                    for path, reason, detail in rep.failures[:5]:
                        _note(f"failed: {path}: {reason}: {detail}")
                    for err in rep.errors:
                        _note(err)
            finally:
                watcher.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _note("stopped watching")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from desktop_search.core.doctor import check, repair
    from desktop_search.core.lock import IndexBusy
    from desktop_search.core.store import IndexMissing

    try:
        report = repair(settings.index_dir) if args.repair else check(settings.index_dir)
    except IndexMissing as e:
        raise CliError(str(e)) from None
    except IndexBusy as e:
        raise CliError(str(e)) from None
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
        return EXIT_OK if report.ok else EXIT_ERROR
    st = report.stats
    line = f"index:   {report.index_dir} (schema {report.schema_version})"
    if "files" in st:
        line += (f": {st['files']} files ({st['indexed']} indexed, {st['failed']} failed, {st['pending']} pending), "
                 f"{st['chunks']} chunks, {st['vectors']} vectors")
    print(line)
    for p in report.problems:
        state = " [fixed]" if p.fixed else ""
        label = "problem" if p.severity == "error" else "note"
        print(f"{label}: {p.code}: {p.count} - {p.message}{state}")
        if p.examples:
            print(f"         e.g. {', '.join(p.examples[:3])}")
        if not p.fixed:
            print(f"         {'repair' if p.severity == 'error' else 'next step'}: {p.fix}")
    for action in report.actions:
        print(f"repaired: {action}")
    if report.ok:
        print("ok: the index is consistent")
    elif not args.repair:
        print("run `desktop-search doctor --repair` to fix the problems above")
    return EXIT_OK if report.ok else EXIT_ERROR


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from desktop_search.gui.app import preload_index_stack, run

        preload_index_stack()
    except ImportError as e:
        raise CliError(f"the window cannot start: {e} (is PySide6 installed?)") from None
    if getattr(args, "quit_after", None):
        from desktop_search.selftest import gui_smoke

        return gui_smoke(args.quit_after, args.smoke_query, args.smoke_model)
    return run()


def cmd_model(args: argparse.Namespace) -> int:
    from desktop_search.cli_model import cmd_model as run

    return run(args)


COMMANDS = {
    "gui": cmd_gui, "index": cmd_index, "search": cmd_search, "status": cmd_status, "model": cmd_model,
    "watch": cmd_watch, "doctor": cmd_doctor,
}


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TRANSFORMERS_NO_TF", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "gui"
    try:
        if args.self_test:
            from desktop_search.core.encoder import ModelUnavailable
            from desktop_search.selftest import run_self_test

            model_dir = args.top_model_dir or config.load_settings().model_dir
            try:
                return run_self_test(model_dir)
            except ModelUnavailable as e:
                raise CliError(str(e)) from None
        return COMMANDS[command](args)
    except CliError as e:
        print(f"desktop-search: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("desktop-search: interrupted", file=sys.stderr)
        return 130
