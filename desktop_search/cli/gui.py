"""``desktop-search`` / ``desktop-search gui``: open the search window (``--quit-after`` is the hidden smoke test
of an installation or a frozen bundle)."""

from __future__ import annotations

import argparse
from typing import Any

from desktop_search.cli.common import CliError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("gui", help="open the search window (the default)")
    p.add_argument("--quit-after", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    p.add_argument("--smoke-query", default="", help=argparse.SUPPRESS)  # with --quit-after: time first results
    p.add_argument("--smoke-model", action="store_true", help=argparse.SUPPRESS)  # ... and the model being ready
    p.set_defaults(run=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from desktop_search.gui.app import run
    except ImportError as e:
        raise CliError(f"the window cannot start: {e} (is PySide6 installed?)") from None
    from desktop_search.gui.system_libs import problem

    missing = problem()
    if missing:
        raise CliError(missing)
    if getattr(args, "quit_after", None):
        from desktop_search.selftest import gui_smoke

        return gui_smoke(args.quit_after, args.smoke_query, args.smoke_model)
    return int(run())
