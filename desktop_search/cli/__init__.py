"""Command-line front: ``gui`` (default), ``index``, ``search``, ``status``, ``model`` (download, verify,
import, status of the BGE-M3 weights), ``watch`` (index, then follow changes until stopped) and ``doctor``
(check and repair the index), ``credentials`` (keys of a shared index in the system keychain).

One module per command group (``index``: index + watch, ``search``: search + status, ``model``, ``doctor``,
``gui``), each registering its sub-parsers with the function that runs them; ``common`` holds what they share
(errors and exit codes, progress printers, Settings from arguments) and imports none of them, so there is no
cycle. Each command builds Settings from flags and environment, then calls the core. Heavy imports happen inside
the command that needs them: ``status`` and keyword ``search`` never import torch, so they answer in about a
second. Every expected failure (bad arguments, no index, no model) ends in one line on stderr and a non-zero exit
code, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from desktop_search import config
from desktop_search.cli import credentials, doctor, gui, index, model, search
from desktop_search.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, CliError, Parser
from desktop_search.environment import prepare_process, settle_heap

__all__ = ["build_parser", "main"]

# Commands whose start-up is timed by a user: the entry point leaves garbage collection off until their index is
# open (environment.py). Every other command gets it back before it starts.
QUICK_COMMANDS = {None, "gui", "search", "status"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="desktop-search", description="Offline multilingual semantic search over your documents.")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    # Maintenance flags (hidden): prove an installation or a frozen bundle works end to end.
    parser.add_argument("--self-test", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", dest="top_model_dir", type=Path, help=argparse.SUPPRESS)
    for group in (gui, index, search, doctor, model, credentials):
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    prepare_process()  # also when called without __main__ (tests, scripts)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in QUICK_COMMANDS or args.self_test:
        settle_heap()
    try:
        if args.self_test:
            from desktop_search.core.encoder import ModelUnavailable
            from desktop_search.selftest import run_self_test

            model_dir = args.top_model_dir or config.load_settings().model_dir
            try:
                return run_self_test(model_dir)
            except ModelUnavailable as e:
                raise CliError(str(e)) from None
        run = getattr(args, "run", gui.cmd_gui)  # no command: the window
        return int(run(args))
    except CliError as e:
        print(f"desktop-search: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("desktop-search: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`desktop-search search x | head -1`): not an error worth a word. stdout is
        # pointed at devnull so the flush at exit does not fail again.
        _quiet_stdout()
        return 128 + 13  # as if killed by SIGPIPE, like other command-line tools
    except BaseException as e:  # noqa: BLE001 - only failures of the surroundings are turned into one line
        from desktop_search.core.errors import describe

        message = describe(e, _index_dir_of(args))
        if message is None:
            raise
        print(f"desktop-search: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _index_dir_of(args: argparse.Namespace) -> Path | None:
    try:
        return config.load_settings(index_dir=getattr(args, "index_dir", None)).index_dir
    except Exception:  # noqa: BLE001 - only for wording a message
        return getattr(args, "index_dir", None)


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
