"""``desktop-search model download|verify|import|status|ocr-packs|ocr-install``: getting the BGE-M3 weights and
the extra OCR recognition packs onto disk, checked.

A thin front over :mod:`desktop_search.core.models`: flags -> manifest, model folder, endpoint and proxy; a
progress line on stderr; every expected failure (no network, HTTP errors, bad hashes, no disk space) ends in one
``desktop-search: error:`` line and exit code 1, with each bad file named on its own line before it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from desktop_search.cli.common import EXIT_OK, CliError, LinePrinter, note, progress_bar, settings_from_args
from desktop_search.core import models
from desktop_search.formatting import format_bytes, format_duration


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("model", help="download, verify or import the BGE-M3 model, or show its state")
    p.set_defaults(run=cmd_model)
    actions = p.add_subparsers(dest="model_action",
                               metavar="{download,verify,import,status,manifest,ocr-packs,ocr-install}",
                               parser_class=type(p))
    actions.required = True

    def common(q: argparse.ArgumentParser, *, manifest: bool = True) -> None:
        q.add_argument("--model-dir", type=Path, metavar="M", help="model folder (env DESKTOP_SEARCH_MODEL_DIR)")
        if manifest:
            q.add_argument("--manifest", type=Path, metavar="FILE",
                           help="files, sizes and SHA-256 to expect (default: the bundled BGE-M3 manifest)")

    q = actions.add_parser("download", help="fetch the model files (resumable), verify them, mark them verified")
    q.add_argument("--endpoint", metavar="URL",
                   help="hub or mirror URL (default: env DESKTOP_SEARCH_HF_ENDPOINT, HF_ENDPOINT, else huggingface.co)")
    q.add_argument("--proxy", metavar="URL", help="HTTP(S) proxy, e.g. http://user:pass@proxy:3128")
    common(q)

    q = actions.add_parser("verify", help="re-hash every model file; names each file that does not match")
    common(q)

    q = actions.add_parser("import", help="copy the model files from a folder (e.g. a USB stick), verifying each")
    q.add_argument("src_dir", type=Path, metavar="SRC_DIR")
    common(q)

    q = actions.add_parser("status", help="is the model installed and verified")
    q.add_argument("--json", action="store_true")
    common(q)

    q = actions.add_parser("manifest", help="write a manifest (size + SHA-256 of every file) for the model in DIR, "
                                            "e.g. a mirror's copy or a fine-tuned BGE-M3, for `import --manifest`")
    q.add_argument("src_dir", type=Path, metavar="DIR")
    q.add_argument("--out", type=Path, metavar="FILE", help="where to write it (default: DIR/manifest.json)")
    q.add_argument("--repo", default="local/model", help="model name recorded in it (default: local/model)")
    q.add_argument("--revision", default="0" * 40, help="revision recorded in it (default: forty zeros)")

    def ocr_common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--ocr-dir", type=Path, metavar="D", help="where OCR packs are installed (default: the "
                                                                 "folder `ocr` beside the model folder)")
        q.add_argument("--ocr-manifest", type=Path, metavar="FILE",
                       help="packs, archives and SHA-256 to expect (default: the bundled OCR model manifest)")

    q = actions.add_parser("ocr-packs", help="list the extra OCR recognition packs (scripts, size, installed or not)")
    q.add_argument("--json", action="store_true")
    ocr_common(q)
    q = actions.add_parser("ocr-install", help="download an OCR pack (resumable), verify the archive and every "
                                               "model in it, unpack it; scanned pages in its scripts become readable")
    q.add_argument("pack", metavar="PACK", help="a pack id from `model ocr-packs`")
    q.add_argument("--endpoint", metavar="URL",
                   help="package index file host or mirror (default: env DESKTOP_SEARCH_OCR_ENDPOINT)")
    q.add_argument("--proxy", metavar="URL", help="HTTP(S) proxy, e.g. http://user:pass@proxy:3128")
    ocr_common(q)


class TransferPrinter(LinePrinter):
    """Downloads, imports and verification: bytes, speed, ETA, files."""

    def line(self, p: models.TransferProgress) -> str:
        frac = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
        what = "done" if p.phase == "done" else f"{p.phase} {p.file}"
        return (
            f"{progress_bar(frac)} {format_bytes(p.bytes_done)}/{format_bytes(p.bytes_total)} · "
            f"{format_bytes(p.speed_bps)}/s · ETA {format_duration(p.eta_s)} · {p.files_done}/{p.files_total} files · {what}"
        )


def _manifest(args: argparse.Namespace) -> models.Manifest:
    path = getattr(args, "manifest", None) or models.default_manifest_path()
    try:
        return models.Manifest.load(path)
    except models.ModelError as e:
        raise CliError(f"{e} (pass --manifest FILE)" if args.manifest is None else str(e)) from None


def _report_bad(bad: list[models.BadFile], model_dir: Path, what: str) -> None:
    for b in bad:
        note(f"bad file: {model_dir / b.path}: expected sha256 {b.expected}, actual {b.actual}")
    raise CliError(
        f"{len(bad)} model file(s) at {model_dir} failed {what}; the model was not marked verified "
        "(run `desktop-search model download` to fetch them again)"
    )


def cmd_model(args: argparse.Namespace) -> int:
    model_dir = settings_from_args(args).model_dir
    action = args.model_action
    if action == "status":
        return _status(args, model_dir)
    if action == "manifest":
        return _write_manifest(args)
    if action in ("ocr-packs", "ocr-install"):
        return _ocr_packs(args)
    manifest = _manifest(args)
    printer = TransferPrinter()
    try:
        if action == "download":
            endpoint = (args.endpoint or models.default_endpoint()).rstrip("/")
            note(f"downloading {manifest.repo} ({format_bytes(manifest.total_bytes())}) from {endpoint} to {model_dir}")
            try:
                models.download_model(manifest, model_dir, endpoint=endpoint, proxy=args.proxy, progress=printer)
            except models.ModelError as e:
                printer.end()
                if e.bad_files:
                    _report_bad(list(e.bad_files), model_dir, "verification after two downloads")
                raise
            size = format_bytes(manifest.total_bytes())
            print(f"model ready: {model_dir} ({len(manifest.files)} files, {size}, verified)")
        elif action == "verify":
            if not model_dir.is_dir():
                raise CliError(f"no model at {model_dir} (run `desktop-search model download` or `model import`)")
            bad = models.verify_model(manifest, model_dir, progress=printer)
            printer.end()
            if bad:
                _report_bad(bad, model_dir, "verification")
            pinned = f"{manifest.repo}@{manifest.revision[:12]}"
            print(f"model verified: {model_dir} ({len(manifest.files)} files match {pinned})")
        elif action == "import":
            bad = models.import_model(args.src_dir, manifest, model_dir, progress=printer)
            printer.end()
            if bad:
                _report_bad(bad, args.src_dir, "verification while importing")
            print(f"model imported: {model_dir} ({len(manifest.files)} files, verified)")
    except models.ModelError as e:
        printer.end()
        raise CliError(str(e)) from None
    return EXIT_OK


def _write_manifest(args: argparse.Namespace) -> int:
    src = args.src_dir
    if not src.is_dir():
        raise CliError(f"no such folder: {src}")
    try:
        out = models.write_manifest_for(src, repo=args.repo, revision=args.revision, out=args.out)
        n = len(models.Manifest.load(out).files)
    except (models.ModelError, OSError) as e:
        raise CliError(f"cannot write a manifest for {src}: {e}") from None
    print(f"manifest written: {out} ({n} files); install with "
          f"`desktop-search model import {src} --manifest {out}` or choose it in Settings → Model manifest")
    return EXIT_OK


def _status(args: argparse.Namespace, model_dir: Path) -> int:
    from desktop_search.core.encoder import model_problem

    st = models.model_status(_manifest(args), model_dir)
    # "problem" is the encoder's own verdict (missing files, unverified weights): None iff search can load it.
    st["problem"] = model_problem(model_dir)
    if args.json:
        print(json.dumps(st, ensure_ascii=False))
        return EXIT_OK
    present = sum(f["present"] for f in st["files"])
    state = "verified" if st["verified"] else "installed, not verified" if st["installed"] else "not installed"
    print(f"model:    {st['dir']}")
    if st["verified"]:
        state += f" ({st['repo']}@{str(st['revision'])[:12]}, {st['verified_at']})"
    print(f"state:    {state}")
    size = f"{format_bytes(st['bytes'])} of {format_bytes(st['bytes_total'])}"
    print(f"files:    {present}/{len(st['files'])} present, {size}"
          + (f" (+{format_bytes(st['partial_bytes'])} partly downloaded)" if st["partial_bytes"] else ""))
    if st["problem"]:
        print(f"problem:  {st['problem']}")
    return EXIT_OK


def _ocr_packs(args: argparse.Namespace) -> int:
    """List the pinned OCR packs with their state, or install one (download, verify, unpack)."""
    from desktop_search import config
    from desktop_search.core import ocr_models

    try:
        root = config.load_settings(ocr_models_dir=args.ocr_dir).ocr_models_dir
        packs = ocr_models.load_packs(args.ocr_manifest)
    except (ValueError, models.ModelError) as e:
        raise CliError(str(e)) from None
    if args.model_action == "ocr-packs":
        present = {p.id for p in ocr_models.installed(root, packs)}
        rows = [{**ocr_models.describe(p), "installed": p.id in present, "folder": str(root / p.id)} for p in packs]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False))
            return EXIT_OK
        for r in rows:
            state = "installed, verified" if r["installed"] else "not installed"
            print(f"{r['id']}: {r['label']} — {', '.join(r['scripts'])}; {format_bytes(r['size'])}, "
                  f"{r['licence']}; {state}")
        return EXIT_OK
    chosen = [p for p in packs if p.id == args.pack]
    if not chosen:
        raise CliError(f"no OCR pack {args.pack!r}; choose one of: {', '.join(p.id for p in packs)}")
    pack = chosen[0]
    printer = TransferPrinter()
    try:
        endpoint = args.endpoint or ocr_models.default_endpoint()
        if endpoint:  # without one, install() says in one line what to set
            note(f"installing {pack.label} ({format_bytes(pack.size)}, {pack.project} {pack.version}) from "
                 f"{endpoint} into {root}")
        folder = ocr_models.install(pack, root, endpoint=endpoint, proxy=args.proxy, progress=printer)
    except models.ModelError as e:
        printer.end()
        raise CliError(str(e)) from None
    printer.end()
    print(f"OCR pack ready: {folder} ({len(pack.files)} files verified); scanned pages in "
          f"{', '.join(pack.scripts)} that the bundled models cannot read are read with it when they are indexed")
    return EXIT_OK
