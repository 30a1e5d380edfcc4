#!/usr/bin/env python3
"""Build the desktop bundle for this OS, measure it, package it and smoke-test the frozen executable.

    python packaging/build.py                     # build, measure, tarball (Linux), smoke tests
    python packaging/build.py --skip-build        # re-measure and re-test dist/desktop-search
    python packaging/build.py --model-dir M       # smoke-test with this (verified) model instead of a tiny one

Steps (each prints one line; the last line is a JSON summary):

1. PyInstaller with ``packaging/desktop_search.spec`` into ``dist/`` (work files in ``build/``).
2. Bundle audit: total size and the ten largest components; fails if model weights, test data or the app's dev
   tools ended up inside.
3. Linux: ``dist/desktop-search-linux-x86_64.tar.gz``, an AppImage-style folder (``AppRun``, ``.desktop``) around
   the bundle. Windows (Inno Setup) and macOS (.app + dmg) have their recipes in ``packaging/windows`` and
   ``packaging/macos``.
4. Smoke tests of the frozen executable, run from the unpacked tarball (so a relocated install is what is
   tested): ``desktop-search --self-test --model-dir M`` (load the model, index a sample folder, search in
   every mode; also proves the spawned int8 build worker runs frozen) and ``desktop-search gui --quit-after``
   under ``QT_QPA_PLATFORM=offscreen``. Every user folder points into a temporary directory.

Without ``--model-dir`` a tiny random BGE-M3-shaped model is built with the (unfrozen) dev tools and marked
verified, like the test suite does; the bundle itself never contains weights.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: the app's own helpers
    sys.path.insert(0, str(ROOT))

from desktop_search.environment import process_env  # noqa: E402
from desktop_search.formatting import format_bytes as human  # noqa: E402

SPEC = HERE / "desktop_search.spec"
APP = "desktop-search"
FORBIDDEN_FILES = ("pytorch_model.bin", ".safetensors", "colbert_linear.pt", "sparse_linear.pt", "model.onnx")
FORBIDDEN_MODULES = ("desktop_search.devtools", "tests", "pytest", "_pytest", "pytestqt", "tensorflow",
                     "sentence_transformers", "sklearn", "pymupdf.layout")


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def platform_tag() -> str:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64")
    return f"{system}-{machine}"


# -- 1. build -------------------------------------------------------------------------------------------------
def build(dist: Path, work: Path, clean: bool) -> float:
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", str(dist), "--workpath", str(work), str(SPEC)]
    if clean:
        cmd.insert(3, "--clean")
    env = process_env()
    log("running " + " ".join(cmd))
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return time.monotonic() - t0


# -- 2. audit -------------------------------------------------------------------------------------------------
def tree_size(path: Path) -> int:
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def components(bundle: Path) -> list[tuple[str, int]]:
    """Sizes of the bundle's parts: each package folder or library at the top of ``_internal`` (or Contents)."""
    internal = bundle / "_internal"
    roots = [internal] if internal.is_dir() else [bundle]
    parts: dict[str, int] = {}
    for root in roots:
        for child in root.iterdir():
            name = child.name
            # Group a package's folder with its .libs/.dist-info siblings (numpy + numpy.libs).
            key = name.split(".libs")[0].split("-")[0] if child.is_dir() else name
            parts[key] = parts.get(key, 0) + tree_size(child)
    for exe in bundle.iterdir():
        if exe.is_file():
            parts[exe.name] = parts.get(exe.name, 0) + exe.stat().st_size
    return sorted(parts.items(), key=lambda kv: -kv[1])


def bundled_modules(executable: Path) -> set[str]:
    """Module names inside the executable's PYZ archive (what Python code the bundle can import)."""
    try:
        from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader
    except ImportError:  # PyInstaller's reader API moved; the audit then only looks at files
        return set()
    pkg = CArchiveReader(str(executable))
    names: set[str] = set()
    for name, (*_rest, typecode) in pkg.toc.items():
        if typecode == "z":
            with tempfile.TemporaryDirectory() as tmp:
                pyz_path = Path(tmp) / "x.pyz"
                pyz_path.write_bytes(pkg.extract(name))
                names.update(ZlibArchiveReader(str(pyz_path)).toc)
    return names


def audit(bundle: Path, executable: Path) -> dict:
    problems = []
    for p in bundle.rglob("*"):
        rel = p.relative_to(bundle).as_posix()
        if p.is_file() and p.name.endswith(FORBIDDEN_FILES):
            problems.append(f"model weights in the bundle: {rel}")
        if p.is_dir() and p.name in ("screenshots", "devtools") or rel.startswith("_internal/tests/"):
            problems.append(f"dev/test data in the bundle: {rel}")
    modules = bundled_modules(executable)
    for name in FORBIDDEN_MODULES:
        if any(m == name or m.startswith(name + ".") for m in modules):
            problems.append(f"module {name} is in the bundle")
    manifest = bundle / "_internal" / "resources" / "models" / "bge-m3.json"
    if not manifest.is_file():
        problems.append("resources/models/bge-m3.json is missing")
    if problems:
        raise SystemExit("bundle audit failed:\n  " + "\n  ".join(problems))
    total = tree_size(bundle)
    top = components(bundle)[:10]
    log(f"bundle {bundle}: {human(total)} in {sum(1 for _ in bundle.rglob('*'))} files, {len(modules)} modules")
    for name, size in top:
        log(f"  {human(size):>10}  {name}")
    return {"bytes": total, "top10": [[name, size] for name, size in top], "modules": len(modules)}


# -- 3. package -----------------------------------------------------------------------------------------------
APP_RUN = """#!/bin/sh
# AppImage-style entry point: run the bundled executable whatever the current directory is.
HERE="$(dirname "$(readlink -f "$0")")"
exec "$HERE/desktop-search" "$@"
"""


def linux_tarball(bundle: Path, dist: Path) -> Path:
    """``desktop-search/`` (the bundle plus AppRun and a .desktop entry) as a gzip tarball."""
    shutil.copy2(HERE / "linux" / "desktop-search.desktop", bundle / "desktop-search.desktop")
    app_run = bundle / "AppRun"
    app_run.write_text(APP_RUN, "utf-8")
    app_run.chmod(0o755)
    out = dist / f"{APP}-{platform_tag()}.tar.gz"
    log(f"writing {out}")
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=APP)
    log(f"tarball {human(out.stat().st_size)}")
    return out


# -- 4. smoke tests -------------------------------------------------------------------------------------------
def tiny_model(dest: Path) -> Path:
    """A random BGE-M3-shaped model, marked verified (built with the dev tools of this checkout, not frozen)."""
    log(f"building a tiny random model in {dest}")
    env = process_env()
    subprocess.run([sys.executable, "-m", "desktop_search.devtools.random_bge_m3", str(dest), "--size", "tiny"],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    code = ("import sys; from pathlib import Path; from desktop_search.core.models import *; d = Path(sys.argv[1]); "
            "bad = verify_model(Manifest.load(write_manifest_for(d)), d); sys.exit(1 if bad else 0)")
    subprocess.run([sys.executable, "-c", code, str(dest)], cwd=ROOT, env=env, check=True)
    return dest


def isolated_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESKTOP_SEARCH_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        HOME=str(home), XDG_CONFIG_HOME=str(home / "xdg-config"), XDG_DATA_HOME=str(home / "xdg-data"),
        XDG_CACHE_HOME=str(home / "xdg-cache"), HF_HOME=str(home / "hf"), QT_QPA_PLATFORM="offscreen",
        DESKTOP_SEARCH_DATA_DIR=str(home / "data"), DESKTOP_SEARCH_CONFIG_DIR=str(home / "config"),
        DESKTOP_SEARCH_CACHE_DIR=str(home / "cache"), DESKTOP_SEARCH_INDEX_DIR=str(home / "index"),
    )
    env.pop("TRANSFORMERS_NO_TF", None)  # the runtime hook must set it
    return env


def run_frozen(executable: Path, args: list[str], env: dict[str, str], timeout: float) -> tuple[dict, float]:
    t0 = time.monotonic()
    proc = subprocess.run([str(executable), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=env["HOME"])
    seconds = time.monotonic() - t0
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + "\n" + proc.stderr[-8000:] + "\n")
        raise SystemExit(f"smoke test {' '.join(args)} failed with exit code {proc.returncode}")
    if "Traceback" in proc.stderr:
        sys.stderr.write(proc.stderr[-8000:] + "\n")
        raise SystemExit(f"smoke test {' '.join(args)} printed a traceback")
    return json.loads(lines[-1]), seconds


def smoke(executable: Path, model_dir: Path) -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix="desktop-search-smoke-") as tmp:
        env = isolated_env(Path(tmp))
        env["DESKTOP_SEARCH_MODEL_DIR"] = str(model_dir)
        out, seconds = run_frozen(executable, ["--self-test", "--model-dir", str(model_dir)], env, 900)
        if not out.get("self_test", {}).get("ok"):
            raise SystemExit(f"self-test failed: {out}")
        # The int8 CPU copy is built by a spawned child of the frozen executable: its output proves that
        # multiprocessing, torch.onnx and ONNX Runtime all work frozen.
        # The self-test builds that copy in its own temporary folder (and removes it); its report says which
        # precision the encoder then ran with, and int8 can only run once the spawned build has written it.
        ran_int8 = out["self_test"].get("model", {}).get("precision") == "int8"
        int8 = sorted((Path(tmp) / "cache").rglob("model.onnx")) or ran_int8
        out["self_test"]["int8_built"] = bool(int8)
        if not int8 and importlib.util.find_spec("onnxruntime") is not None:
            raise SystemExit("the frozen app did not build the int8 model (ONNX Runtime is installed here, so the "
                             "bundle should have it): run the frozen self-test by hand and read its stderr")
        # The self-test may report which precision the encoder ran with (int8 falls back to fp32, with a note,
        # where the int8 graph fails its fidelity check on this CPU); shown, not enforced.
        log(f"self-test ok in {seconds:.1f} s: {json.dumps(out['self_test'], ensure_ascii=False)}")
        results["self_test"] = dict(out["self_test"], wall_s=round(seconds, 1))

        out, seconds = run_frozen(executable, ["gui", "--quit-after", "90"], env, 300)
        if not out.get("gui_smoke", {}).get("index_ready"):
            raise SystemExit(f"GUI smoke test failed: {out}")
        log(f"GUI smoke ok in {seconds:.1f} s: {json.dumps(out['gui_smoke'])}")
        results["gui_smoke"] = dict(out["gui_smoke"], wall_s=round(seconds, 1))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build")
    parser.add_argument("--skip-build", action="store_true", help="measure and test an existing build")
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first")
    parser.add_argument("--no-package", action="store_true", help="no tarball; smoke-test dist/ directly")
    parser.add_argument("--no-smoke", action="store_true")
    parser.add_argument("--model-dir", type=Path, help="a verified model for the self-test (default: tiny random)")
    args = parser.parse_args(argv)

    summary: dict = {"platform": platform_tag()}
    if not args.skip_build:
        summary["build_s"] = round(build(args.dist, args.work, args.clean), 1)
        log(f"built in {summary['build_s']:.0f} s")
    bundle = args.dist / APP
    exe_name = APP + (".exe" if sys.platform == "win32" else "")
    summary["size"] = audit(bundle, bundle / exe_name)

    tested = bundle
    if sys.platform == "darwin":  # the .app holds the same files; test what users get
        tested = args.dist / "Desktop Search.app" / "Contents" / "MacOS"
    with tempfile.TemporaryDirectory(prefix="desktop-search-pkg-") as tmp:
        if sys.platform.startswith("linux") and not args.no_package:
            tarball = linux_tarball(bundle, args.dist)
            summary["tarball"] = {"path": str(tarball.relative_to(ROOT)) if tarball.is_relative_to(ROOT)
                                  else str(tarball), "bytes": tarball.stat().st_size}
            with tarfile.open(tarball) as tar:
                if hasattr(tarfile, "tar_filter"):  # Python >= 3.10.12/3.11.4: keep the modes, refuse odd paths
                    tar.extractall(tmp, filter="tar")
                else:
                    tar.extractall(tmp)
            tested = Path(tmp) / APP
        if not args.no_smoke:
            model_dir = args.model_dir.resolve() if args.model_dir else tiny_model(Path(tmp) / "tiny-model")
            summary["smoke"] = smoke(tested / exe_name, model_dir)
    print(json.dumps({"packaging": summary}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
