"""What every command shares: exit codes, ``CliError`` (an expected failure: one line, exit 1), the one-line
argument parser, the common flags, Settings from arguments, opening the index and the model, notes on stderr
and the progress line printers. Command modules import this one and nothing of each other."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import IO, Any, Iterator

from desktop_search import config
from desktop_search.environment import settle_heap
from desktop_search.errors import UserError
from desktop_search.formatting import format_duration

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130


class CliError(UserError):
    """An expected failure: printed as one line, exit code EXIT_ERROR."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def add_common(p: argparse.ArgumentParser, *, model: bool = True) -> None:
    p.add_argument("--index-dir", help="index folder, or a shared index s3://bucket/prefix (default: per-user data "
                   "dir; env DESKTOP_SEARCH_INDEX_DIR)")
    p.add_argument("--storage-option", action="append", metavar="KEY=VALUE", dest="storage_options",
                   help="for a shared index: endpoint=URL, region=R, profile=NAME, allow_http=true ... (repeatable; "
                   "env DESKTOP_SEARCH_STORAGE_OPTIONS=k=v,k=v)")
    p.add_argument("--refresh-interval", type=float, metavar="S", dest="read_consistency_s",
                   help="a reader of a shared index sees new commits within S seconds (default 5)")
    if model:
        p.add_argument("--model-dir", type=Path, help="BGE-M3 model folder (env DESKTOP_SEARCH_MODEL_DIR)")
        p.add_argument("--device", choices=config.DEVICES, help="where to run the model (default: auto = GPU if any)")
        p.add_argument(
            "--precision",
            choices=config.CPU_PRECISIONS,
            help="model precision on the CPU: int8 (fast, checked against fp32 at load; default) or fp32 (exact)",
        )


def read_passwords(path: Path | None) -> tuple[str, ...] | None:
    """The passwords in ``path``, one per line (line ends stripped, empty lines skipped); None without a file."""
    if path is None:
        return None
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read the passwords file {path}: {e}") from None
    return tuple(dict.fromkeys(line for line in lines if line))


def settings_from_args(args: argparse.Namespace) -> config.Settings:
    weights = None
    if getattr(args, "weights", None):
        try:
            weights = tuple(float(x) for x in args.weights.split(","))
        except ValueError:
            raise CliError(f"--weights must be three numbers like 0.4,0.2,0.4, not {args.weights!r}") from None
    try:
        from desktop_search.core.location import parse_options

        return config.load_settings(
            index_dir=getattr(args, "index_dir", None),
            storage_options=parse_options(getattr(args, "storage_options", None)) or None,
            read_consistency_s=getattr(args, "read_consistency_s", None),
            model_dir=getattr(args, "model_dir", None),
            device=getattr(args, "device", None),
            cpu_precision=getattr(args, "precision", None),
            weights=weights,
            ocr=False if getattr(args, "no_ocr", False) else None,
            ocr_primary=getattr(args, "ocr_primary", None),
            ocr_models_dir=getattr(args, "ocr_models_dir", None),
            document_passwords=read_passwords(getattr(args, "passwords_file", None)),
            fusion=getattr(args, "fusion", None),
            keyword_weight=getattr(args, "keyword_weight", None),
        )
    except ValueError as e:
        raise CliError(str(e)) from None


def load_encoder(settings: config.Settings, *, required: bool, fallback: str = "") -> Any:
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
            note(f"{problem}: {fallback}")
        return None
    try:
        from desktop_search.core.encoder import Encoder

        return Encoder(settings.model_dir, settings.device, settings.cpu_precision, progress=BuildPrinter())
    except Exception as e:  # a damaged model or a broken install must be named, not dumped as a traceback
        why = load_failure(e, settings.model_dir)
        if required:
            raise CliError(why) from None
        note(f"semantic search is off: {why}" + (f"; {fallback}" if fallback else ""))
        return None


def open_store(settings: config.Settings, *, create: bool) -> Any:
    from desktop_search.core.location import RemoteError
    from desktop_search.core.store import IndexIncompatible, IndexMissing, Store

    try:
        # A reader of a shared index keeps a local copy of the chunks table; a writer works on the bucket.
        store = Store(settings.index, create=create, read_consistency_s=settings.read_consistency_s,
                      mirror_dir=None if create else settings.mirror_dir)
    except (IndexMissing, IndexIncompatible, RemoteError) as e:
        raise CliError(str(e)) from None
    settle_heap()  # start-up is over: what is loaded now stays (see environment.py)
    return store


@contextlib.contextmanager
def index_errors() -> Iterator[None]:
    """Index-in-use and index-write failures are expected: one line, exit 1."""
    from desktop_search.core.indexer import IndexWriteError
    from desktop_search.core.location import RemoteError
    from desktop_search.core.lock import IndexBusy

    try:
        yield
    except (IndexBusy, IndexWriteError, RemoteError) as e:
        raise CliError(str(e)) from None


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers, and a bare NaN breaks every JSON parser."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_line(obj: Any) -> str:
    """One line of strict JSON (what every --json output prints)."""
    return json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Any]:
    """An event set by Ctrl+C or SIGTERM (``.signum`` says which): the run ends after the group being written,
    so what was committed stays committed. A second Ctrl+C stops at once."""
    import signal
    import threading

    stop = threading.Event()
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.signum = signum  # type: ignore[attr-defined]
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def note(msg: str) -> None:
    print(f"desktop-search: {msg}", file=sys.stderr)


class LinePrinter:
    """One progress line on stderr: redrawn in place on a terminal (at most 5 times a second), a plain line
    every few seconds when stderr is a file or pipe. Subclasses say what the line contains."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def line(self, p: Any) -> str:
        raise NotImplementedError

    def __call__(self, p: Any) -> None:
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

    def line(self, p: Any) -> str:
        return (
            f"{progress_bar(p.files_done / max(p.files_total, 1))} {p.files_done}/{p.files_total} files · "
            f"{p.chunks_done} chunks ({p.chunks_per_s:.1f}/s) · {p.files_failed} failed · "
            f"ETA {format_duration(p.eta_s)} · {p.phase}"
            + (f" · {p.semantic_line}" if getattr(p, "chunks_to_encode", 0) else "")
            + (f" · {p.note}" if getattr(p, "note", "") else "")
        )


class BuildPrinter(LinePrinter):
    """The one-time int8 build of the model (a minute or more, once per model): stage and layers."""

    def line(self, p: Any) -> str:
        return f"{progress_bar(p.overall)} {p.text()}"
