"""``desktop-search index`` (incremental indexing of folders and files) and ``desktop-search watch`` (index, then
follow the folders until Ctrl+C or SIGTERM). Both write the index, so both hold its writer lock."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from desktop_search import config

from desktop_search.cli.common import (
    EXIT_OK,
    CliError,
    ProgressPrinter,
    add_common,
    index_errors,
    json_line,
    load_encoder,
    note,
    open_store,
    settings_from_args,
    stop_on_signals,
)


def _writer_parser(sub: Any, name: str, help: str, metavar: str) -> argparse.ArgumentParser:
    """The arguments index and watch share: what to index, where, with which model, and what to leave out."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    p.add_argument("paths", nargs="+", type=Path, metavar=metavar)
    add_common(p)
    p.add_argument("--keyword-only", action="store_true", help="do not load the model; build the keyword index only")
    p.add_argument("--no-ocr", action="store_true", help="do not recognise text in scanned pages and images")
    p.add_argument("--ocr-pack", metavar="PACK", dest="ocr_primary",
                   help="read scanned pages with this installed OCR pack first (ppocrv5 for Japanese; see "
                        "`desktop-search model ocr-packs`); the bundled models read what it cannot")
    p.add_argument("--ocr-dir", type=Path, metavar="D", dest="ocr_models_dir",
                   help="where OCR packs are installed (default: the folder `ocr` beside the model folder)")
    p.add_argument("--passwords-file", type=Path, metavar="FILE",
                   help="passwords for protected PDFs, one per line, tried on each protected file (files that "
                        "failed as protected are tried again); the passwords are not stored")
    return p



def check_ocr_pack(settings: config.Settings) -> None:
    """A pack named with --ocr-pack must be one of the manifest's and installed, verified and unchanged: otherwise
    one line says which packs there are or how to install it (rather than indexing without it, unsaid)."""
    if not settings.ocr_primary:
        return
    from desktop_search.core import models, ocr_models

    try:
        packs = ocr_models.load_packs()
    except models.ModelError as e:
        raise CliError(str(e)) from None
    known = [p.id for p in packs]
    if settings.ocr_primary not in known:
        raise CliError(f"no OCR pack {settings.ocr_primary!r}; choose one of: {', '.join(known) or '(none)'}")
    if not settings.ocr:
        raise CliError("--ocr-pack and --no-ocr contradict each other")
    if settings.ocr_primary not in {p.id for p in ocr_models.installed(settings.ocr_models_dir, packs)}:
        raise CliError(f"OCR pack {settings.ocr_primary} is not installed (or its files changed) in "
                       f"{settings.ocr_models_dir}: run `desktop-search model ocr-install {settings.ocr_primary}`")


def add_parsers(sub: Any) -> None:
    p = _writer_parser(sub, "index", "index folders or files (incremental: unchanged files are skipped)", "PATH")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    p.set_defaults(run=cmd_index)

    p = _writer_parser(sub, "watch", "index folders, then keep the index in step with them until stopped (Ctrl+C)",
                       "FOLDER")
    p.add_argument("--poll", action="store_true", help="poll for changes instead of native change notification")
    p.add_argument("--poll-interval", type=float, default=3.0, metavar="S", help="seconds between polls (default 3)")
    p.add_argument("--debounce", type=float, default=1.0, metavar="S",
                   help="seconds of quiet before a burst of changes is indexed (default 1)")
    p.set_defaults(run=cmd_watch)


def cmd_index(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    check_ocr_pack(settings)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or folder: {', '.join(missing)}")
    encoder = None if args.keyword_only else load_encoder(
        settings, required=False,
        fallback="building the keyword index only (index again once that is fixed to add semantic search)",
    )
    store = open_store(settings, create=True)
    from desktop_search.core.indexer import Indexer

    printer = ProgressPrinter()
    with index_errors(), stop_on_signals() as stopped:
        report = Indexer(store, settings, encoder).index(args.paths, progress=printer, cancel=stopped)
    if stopped.is_set():
        printer.end()
        note(f"interrupted: {report.indexed} files committed and searchable, {report.failed} failed; "
             "run the same command again to continue")
        return 128 + getattr(stopped, "signum", 2)
    if args.json:
        print(json_line(report.as_json()))
    else:
        print(
            f"indexed {report.indexed} files ({report.chunks_written} chunks, {report.chunks_encoded} encoded), "
            f"{report.failed} failed, {report.unchanged} unchanged, {report.removed} removed "
            f"in {report.elapsed_s:.1f}s" + ("" if report.semantic else " [keyword only]")
        )
        for path, reason, detail in report.failures[:20]:
            note(f"failed: {path}: {reason}: {detail}")
        if len(report.failures) > 20:
            note(f"... and {len(report.failures) - 20} more failures (see `desktop-search status`)")
    for err in report.errors:
        note(err)
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    import queue
    import signal
    import threading

    settings = settings_from_args(args)
    check_ocr_pack(settings)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CliError(f"no such folder: {', '.join(missing)}")
    files = [str(p) for p in args.paths if not p.is_dir()]
    if files:
        raise CliError(f"watch takes folders, not files: {', '.join(files)}")
    encoder = None if args.keyword_only else load_encoder(
        settings, required=False, fallback="building the keyword index only"
    )
    store = open_store(settings, create=True)
    from desktop_search.core.indexer import Indexer
    from desktop_search.core.lease import writer_lock
    from desktop_search.core.watcher import FolderWatcher

    stop = threading.Event()
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    batches: queue.Queue[Any] = queue.Queue()
    folders = [p.resolve() for p in args.paths]
    lost: list[str] = []

    def on_lost(why: str) -> None:  # a shared index's lease was taken over: stop, and say so
        lost.append(why)
        stop.set()

    try:
        # The lock is held for the whole session: one watcher (or indexer) per index.
        with index_errors(), writer_lock(settings.index, command="desktop-search watch", on_lost=on_lost):
            indexer = Indexer(store, settings, encoder)
            watcher = FolderWatcher(
                folders, batches.put, debounce_s=args.debounce, force_polling=args.poll,
                poll_interval_s=args.poll_interval, ignore_dirs=[] if settings.index_uri else [settings.index_dir],
            )
            watcher.start()  # before the first pass, so changes made during it are not missed
            try:
                report = indexer.index(folders, progress=ProgressPrinter(), cancel=stop)
                if not report.cancelled:
                    note(f"up to date: {report.indexed} indexed, {report.failed} failed, "
                         f"{report.unchanged} unchanged, {report.removed} removed")
                watcher.on_status = note
                note(f"{watcher.status} ({watcher.mode}); press Ctrl+C to stop")
                while not stop.is_set():
                    try:
                        batch = batches.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    rep = indexer.update_paths([Path(p) for p in batch.paths], cancel=stop)
                    moved = f" ({rep.moved} moved)" if rep.moved else ""
                    note(f"updated: {rep.indexed} indexed{moved}, {rep.failed} failed, {rep.removed} removed")
                    for path, reason, detail in rep.failures[:5]:
                        note(f"failed: {path}: {reason}: {detail}")
                    for err in rep.errors:
                        note(err)
            finally:
                watcher.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if lost:
        raise CliError(lost[0])
    note("stopped watching")
    return EXIT_OK
