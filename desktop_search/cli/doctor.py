"""``desktop-search doctor [--repair]``: check the index for damage and, with ``--repair``, fix it; exit code 0
when the index is consistent."""

from __future__ import annotations

import argparse
from typing import Any

from desktop_search.cli.common import EXIT_ERROR, EXIT_OK, CliError, add_common, json_line, settings_from_args


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check the index for damage (crashes, full disk, old versions); --repair fixes it")
    p.add_argument("--repair", action="store_true", help="fix what is found (documents are never touched)")
    p.add_argument("--json", action="store_true")
    add_common(p, model=False)
    p.set_defaults(run=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if settings.index_uri:
        raise CliError("doctor checks local indexes only; for a shared index run `desktop-search status` "
                       "(LanceDB's commits on object storage are atomic, so a killed writer leaves no partial version)")
    from desktop_search.core.doctor import check, repair
    from desktop_search.core.lock import IndexBusy
    from desktop_search.core.store import IndexMissing

    try:
        report = repair(settings.index_dir) if args.repair else check(settings.index_dir)
    except (IndexMissing, IndexBusy) as e:
        raise CliError(str(e)) from None
    if args.json:
        print(json_line(report.as_json()))
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
