"""Types are checked: mypy (configured in pyproject.toml) passes on the whole package, strict for the Qt-free
code, and its lists of modules that are not strict yet name modules that exist (they only shrink)."""

from __future__ import annotations

import fnmatch
import subprocess
import sys

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mypy's own dependency
    import tomli as tomllib

from tests.conftest import REPO

pytest.importorskip("mypy")


def _modules() -> set[str]:
    return {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            for p in (REPO / "desktop_search").rglob("*.py")}


def test_mypy_passes():
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(REPO / ".mypy_cache")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_the_lists_of_modules_not_yet_strict_name_real_modules():
    config = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["mypy"]
    assert config["strict"] is True
    modules = _modules()
    for override in config["overrides"]:
        names = override["module"] if isinstance(override["module"], list) else [override["module"]]
        if not any(n.startswith("desktop_search") for n in names):
            continue
        stale = [n for n in names if not fnmatch.filter(modules, n.replace(".*", "*"))]
        assert not stale, f"remove from the mypy lists in pyproject.toml (no such module): {stale}"
    assert (REPO / "desktop_search" / "py.typed").is_file()  # what [tool.setuptools.package-data] ships
