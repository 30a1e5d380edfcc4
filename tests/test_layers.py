"""The import graph keeps its shape (an import-linter contract written as a test): the core never imports Qt,
the GUI or the command line; each part of the core imports only parts of lower layers, so the pipeline reads
bottom-up and no cycle can form; the command line's shared module imports no command module. Every import is
counted, also those inside functions (they are how heavy modules load lazily, and still a dependency)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "desktop_search"
# Modules every layer may use: settings, the error base class, formatting, the process environment.
LEAVES = {"config", "errors", "formatting", "environment"}
# What the leaves may import of the app: settings parse an index location and path-mapping rules (both import
# nothing of the app at module level).
LEAF_IMPORTS = {"config": ("desktop_search.core.location", "desktop_search.core.pathmap")}
# The core, bottom-up: a part may import parts of lower layers only (and itself).
CORE_LAYERS = [
    {"failures", "location", "analysis", "lock", "checkpoint", "tokenizer", "paths", "lancedb_import", "progress",
     "models"},
    {"ocr_models"},
    {"extract", "lease", "m3graph", "errors", "highlight"},
    {"chunk", "isolate", "hardware", "store", "quantize"},
    {"encoder", "render", "doctor", "query", "pathmap"},
    {"search", "indexer"},
    {"watcher"},
]


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module -> every absolute module name it imports (``from a import b`` counts as ``a`` and ``a.b``)."""
    out: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        mod = _module(path)
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                out[mod].update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                out[mod].add(node.module)
                out[mod].update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text("utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _core_part(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["desktop_search", "core"] else None


def test_core_imports_no_qt_gui_or_cli():
    bad = [f"{mod} imports {name}" for mod, names in _imports().items() if mod.startswith("desktop_search.core")
           for name in names
           if name.split(".")[0] in ("PySide6", "shiboken6")
           or name.startswith(("desktop_search.gui", "desktop_search.cli"))]
    assert not bad, "\n".join(bad)


def test_core_parts_import_only_lower_layers():
    layer_of = {part: i for i, layer in enumerate(CORE_LAYERS) for part in layer}
    parts = {p.stem if p.is_file() else p.name for p in (PACKAGE / "core").iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    unplaced = sorted(parts - set(layer_of))
    assert not unplaced, f"place these core modules in a layer of CORE_LAYERS: {unplaced}"
    bad = []
    for mod, names in _imports().items():
        part = _core_part(mod)
        if part is None:
            continue
        for name in names:
            other = _core_part(name)
            if other is not None and other != part and other in layer_of and layer_of[other] >= layer_of[part]:
                bad.append(f"{mod} imports {name} (layer {layer_of[other]} >= {layer_of[part]})")
            top = name.split(".")
            if top[0] == "desktop_search" and len(top) > 1 and top[1] not in ("core", *LEAVES):
                bad.append(f"{mod} imports {name}: the core uses only itself and {sorted(LEAVES)}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_leaf_modules_import_nothing_of_the_app():
    imports = _imports()
    bad = [f"desktop_search.{leaf} imports {name}" for leaf in LEAVES
           for name in imports[f"desktop_search.{leaf}"]
           if name.startswith("desktop_search") and not name.startswith(LEAF_IMPORTS.get(leaf, ()))]
    assert not bad, "\n".join(bad)
    for allowed in LEAF_IMPORTS["config"]:
        path = PACKAGE.parent / (allowed.replace(".", "/") + ".py")
        assert not [n for n in _top_level_imports(path) if n.startswith("desktop_search")], allowed


def test_no_import_cycle():
    """Module-level imports (what runs when a module is imported) form no cycle anywhere in the package."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, p in modules.items():
        for node in ast.parse(p.read_text("utf-8")).body:
            if isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:  # ``from pkg import mod`` imports the module pkg.mod, else a name of pkg
                    target = f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    if target in modules and target != m:
                        graph[m].add(target)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m)


def test_cli_has_no_cycle_and_loads_no_gui_at_import():
    common = _top_level_imports(PACKAGE / "cli" / "common.py")
    assert not [n for n in common if n.startswith("desktop_search.cli")], common
    for path in (PACKAGE / "cli").glob("*.py"):
        names = _top_level_imports(path)
        assert not [n for n in names if n.startswith(("desktop_search.gui", "PySide6"))], path.name
        if path.stem not in ("__init__", "common"):
            others = [n for n in names if n.startswith("desktop_search.cli") and n != "desktop_search.cli.common"]
            assert not others, f"{path.name} imports another command module: {others}"
