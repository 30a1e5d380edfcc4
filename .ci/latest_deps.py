#!/usr/bin/env python3
"""Canary, not run by CI: would the newest versions our ranges allow still work? Raise the lock on purpose.

    python .ci/latest_deps.py              # newest versions pyproject.toml allows
    python .ci/latest_deps.py --uncapped   # newest versions with every upper bound dropped (can a cap go?)

It builds a throw-away virtualenv, installs the CPU torch the README installs (torch is never moved here: a newer
one is a CUDA download of several GB), then the project's requirements at their newest allowed versions, and runs
the fast test subset, the dependency tripwires first. It prints which packages moved against
``packaging/lock/requirements-test.txt`` and which tests broke, with the first line of each failure, and exits 1
when anything broke. Nothing in the repository is changed: to take a newer version, widen the range in
``pyproject.toml``, run ``bash packaging/lock/update.sh`` and the full suite.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "packaging" / "lock" / "requirements-test.txt"
TORCH = "torch==2.13.0"
FAST_TESTS = ["tests/test_dependencies.py", "tests/core/test_encoder.py", "tests/core/test_search.py",
              "tests/test_cli.py"]


def requirements(uncapped: bool) -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    reqs = [r for r in project["dependencies"] + project["optional-dependencies"]["test"]
            if not r.lower().startswith("torch")]
    if uncapped:  # keep the lower bounds, drop "<X" / "<=X" clauses
        reqs = [re.sub(r",?\s*<=?\s*[^,;\s\"]+", "", r).replace("[,", "[") for r in reqs]
    return reqs


def locked() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", LOCK.read_text("utf-8"), re.M)
    return {_norm(n): v for n, v in pins}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, text=True, **kw)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uncapped", action="store_true", help="drop every upper bound of pyproject.toml")
    ap.add_argument("--venv", type=Path, help="where to build the venv (default: a temporary folder)")
    ap.add_argument("--tests", nargs="*", default=FAST_TESTS, help="test paths to run (default: the fast subset)")
    args = ap.parse_args()
    venv = args.venv or Path(tempfile.mkdtemp(prefix="ds-latest-")) / "venv"
    run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / ("Scripts" if sys.platform == "win32" else "bin") / "python")
    pip = [py, "-m", "pip", "install", "-q"]
    run(pip + [TORCH], check=True)
    cons = venv.parent / "constraints.txt"
    cons.write_text(TORCH + "\n")
    reqs = requirements(args.uncapped)
    r = run(pip + ["--upgrade", "--upgrade-strategy", "eager", "-c", str(cons), *reqs])
    if r.returncode:
        print(json.dumps({"verdict": "install failed", "requirements": reqs}))
        return 1
    run(pip + ["--no-deps", "-e", str(REPO)], check=True)
    now = {_norm(d["name"]): d["version"] for d in json.loads(
        run([py, "-m", "pip", "list", "--format", "json"], capture_output=True, check=True).stdout)}
    lock = locked()
    moved = {n: f"{lock[n]} -> {v}" for n, v in sorted(now.items()) if n in lock and lock[n] != v}
    new = sorted(n for n in now if n not in lock and n not in ("pip", "setuptools", "desktop-search", "torch"))
    tests = run([py, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", "-rfE", *args.tests],
                cwd=REPO, capture_output=True)
    log = venv.parent / "pytest.log"
    log.write_text(tests.stdout + tests.stderr, "utf-8")
    failures = [ln for ln in tests.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    summary = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else tests.stderr[-500:]
    print(json.dumps({
        "mode": "uncapped" if args.uncapped else "newest allowed by pyproject.toml",
        "moved_against_lock": moved,
        "not_in_lock": new,
        "tests": summary,
        "failures": failures[:40],
        "venv": str(venv),
        "pytest_log": str(log),
    }, indent=2))
    return 1 if tests.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
