"""The PyInstaller packaging, checked without building (a build takes minutes; ``.ci/packaging`` does that).

The spec is executed with stand-ins for PyInstaller's build classes and hook helpers, so what it would hand to
PyInstaller (scripts, runtime hooks, excludes, data, the files it drops) is checked as data, and PyInstaller
need not be installed. The runtime hook runs in a child interpreter with the std streams of a windowed build
(None), and ``resources_dir()`` is resolved the way a frozen app resolves it.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
SPEC = PACKAGING / "desktop_search.spec"
RTHOOK = PACKAGING / "rthook_desktop_search.py"


class _Recorder:
    """Stands in for Analysis/PYZ/EXE/COLLECT/BUNDLE: keeps its arguments, offers the attributes the spec uses."""

    calls: list[tuple[str, "_Recorder"]] = []

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.datas = list(kwargs.get("datas", []))
        self.binaries = list(kwargs.get("binaries", []))
        self.pure, self.scripts = [], []
        _Recorder.calls.append((type(self).__name__, self))


def _stub(name: str) -> type:
    return type(name, (_Recorder,), {})


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> dict:
    """The spec's namespace after running it against stand-ins (with PyInstaller's hook helpers faked)."""
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda package, filter=None: [package]
    hooks.copy_metadata = lambda dist: [(f"/site-packages/{dist}.dist-info", f"{dist}.dist-info")]
    fake = {
        "PyInstaller": types.ModuleType("PyInstaller"),
        "PyInstaller.utils": types.ModuleType("PyInstaller.utils"),
        "PyInstaller.utils.hooks": hooks,
    }
    saved = {name: sys.modules.get(name) for name in fake}
    sys.modules.update(fake)
    _Recorder.calls = []
    work = tmp_path_factory.mktemp("pyinstaller-work")
    namespace = {"SPECPATH": str(PACKAGING), "workpath": str(work), "DISTPATH": str(work / "dist"),
                 "__file__": str(SPEC), "__name__": "__spec__"}
    namespace.update({n: _stub(n) for n in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")})
    try:
        exec(compile(SPEC.read_text("utf-8"), str(SPEC), "exec"), namespace)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    namespace["_calls"] = list(_Recorder.calls)
    return namespace


def _analysis(spec: dict) -> _Recorder:
    return next(obj for name, obj in spec["_calls"] if name == "Analysis")


def test_spec_is_python_and_paths_are_relative_to_it():
    tree = ast.parse(SPEC.read_text("utf-8"))
    assert tree.body, "empty spec"
    text = SPEC.read_text("utf-8")
    assert "SPECPATH" in text
    assert "/work/" not in text and "C:\\" not in text, "the spec must not hard-code build-machine paths"


def test_spec_uses_the_launcher_and_the_runtime_hook(spec):
    a = _analysis(spec)
    (scripts,) = a.args
    assert [Path(s) for s in scripts] == [PACKAGING / "launcher.py"]
    hooks = [Path(h) for h in a.kwargs["runtime_hooks"]]
    assert RTHOOK in hooks and all(h.is_file() and h.parent == PACKAGING for h in hooks)
    assert Path(a.kwargs["pathex"][0]) == REPO


def test_spec_excludes_dev_tools_tests_and_unused_stacks(spec):
    excludes = set(_analysis(spec).kwargs["excludes"])
    required = {
        "desktop_search.devtools", "tests", "pytest", "_pytest", "pytestqt",
        "tensorflow", "keras", "jax", "flax", "torch.utils.tensorboard", "torchvision",
        "sentence_transformers", "sklearn", "ir_datasets",
        "PySide6.QtWebEngineCore", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.Qt3DCore", "PySide6.QtMultimedia",
        "tkinter",
    }
    assert required <= excludes, f"missing excludes: {sorted(required - excludes)}"
    # Only the transformers architectures BGE-M3 (and peft/FlagEmbedding at import) need are kept.
    if "transformers.models.llama" in excludes:
        assert not {"transformers.models.xlm_roberta", "transformers.models.auto"} & excludes
    hidden = _analysis(spec).kwargs["hiddenimports"]
    assert not any(name.startswith("desktop_search.devtools") for name in hidden)


def test_spec_ships_the_manifest_but_no_screenshots_or_weights(spec):
    datas = _analysis(spec).kwargs["datas"]
    dests = {(Path(src).name, Path(dest).as_posix()) for src, dest in datas}
    assert ("bge-m3.json", "resources/models") in dests
    assert not any("screenshots" in Path(src).parts for src, _ in datas)
    weights = (".bin", ".safetensors", ".pt", ".onnx")
    ocr_models = {Path(src).name for src, dest in datas if Path(dest).as_posix() == "rapidocr_onnxruntime/models"}
    assert {"ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"} <= ocr_models, "OCR works offline"
    assert not any(str(src).endswith(weights) for src, dest in datas if "rapidocr_onnxruntime" not in dest), \
        "BGE-M3 weights must not be bundled (the wizard downloads or imports them)"
    assert any(Path(dest).as_posix() == "docx/templates" for _, dest in datas)
    assert any(dest == "lancedb.dist-info" for _, dest in datas), "lancedb reads its version from its metadata"


def test_bundle_ships_the_licence_and_notices_for_every_locked_package(spec):
    dests = {(Path(src).name, Path(dest).as_posix()) for src, dest in _analysis(spec).kwargs["datas"]}
    assert ("LICENSE", ".") in dests and ("THIRD_PARTY_NOTICES.txt", "resources/licenses") in dests
    assert "GNU AFFERO GENERAL PUBLIC LICENSE" in (REPO / "LICENSE").read_text("utf-8")
    sys.path.insert(0, str(PACKAGING))
    try:
        from third_party import OUT, locked_packages
    finally:
        sys.path.remove(str(PACKAGING))
    table = dict(re.findall(r"^(\S+)\s+(\S+)\s+\S.*$", OUT.read_text("utf-8").split("\n\n-")[0], re.M))
    stale = {n: (v, table.get(n)) for n, v in locked_packages().items() if table.get(n) != v.split("+")[0]}
    assert not stale, f"THIRD_PARTY_NOTICES.txt is out of date with the lock (python packaging/third_party.py): {stale}"
    pymupdf_line = next(ln for ln in OUT.read_text("utf-8").splitlines() if ln.startswith("pymupdf "))
    assert re.search(r"AGPL|AFFERO", pymupdf_line, re.I), pymupdf_line


def test_spec_drops_torch_test_binaries_and_headers(spec):
    keep = spec["_keep"]
    for dropped in ("torch/bin/protoc", "torch/bin/test_api", "torch/bin/TCPStoreTest", "torch/test/Dict_test", "torch/include/ATen/ATen.h",
                    "torch/lib/libtorchbind_test.so", "pyarrow/include/arrow/api.h", "pymupdf/x.pyi",
                    "pyarrow/libarrow_flight.so.2600"):
        assert not keep((dropped, "/src/" + dropped, "DATA")), dropped
    for kept in ("torch/lib/libtorch_cpu.so", "torch/bin/torch_shm_manager", "pyarrow/libarrow.so.2600", "resources/models/bge-m3.json", "transformers/utils/x.json"):
        assert keep((kept, "/src/" + kept, "DATA")), kept


def test_spec_builds_one_folder_without_upx(spec):
    exes = [obj for name, obj in spec["_calls"] if name == "EXE"]
    assert exes and all(e.kwargs["exclude_binaries"] and e.kwargs["upx"] is False for e in exes)
    assert any(e.kwargs["name"] == "desktop-search" and e.kwargs["console"] for e in exes)
    collect = next(obj for name, obj in spec["_calls"] if name == "COLLECT")
    assert collect.kwargs["name"] == "desktop-search"


def test_launcher_calls_freeze_support_before_importing_the_app():
    tree = ast.parse((PACKAGING / "launcher.py").read_text("utf-8"))
    main_block = next(n for n in tree.body if isinstance(n, ast.If))
    first = main_block.body[0]
    assert isinstance(first, ast.Expr) and ast.unparse(first) == "multiprocessing.freeze_support()"
    imports = [n for n in main_block.body if isinstance(n, ast.ImportFrom)]
    assert imports and main_block.body.index(imports[0]) > 0


def test_runtime_hook_sets_env_and_replaces_missing_std_streams(tmp_path):
    out = tmp_path / "result.json"
    code = textwrap.dedent(
        f"""
        import json, os, runpy, sys
        for name in ("TRANSFORMERS_NO_TF", "TOKENIZERS_PARALLELISM"):
            os.environ.pop(name, None)
        sys.stdout = sys.stderr = None  # what a windowed (console=False) build starts with
        runpy.run_path({str(RTHOOK)!r})
        print("a print must not raise")
        sys.stderr.write("neither must a write to stderr\\n")
        result = {{
            "no_tf": os.environ.get("TRANSFORMERS_NO_TF"),
            "tok": os.environ.get("TOKENIZERS_PARALLELISM"),
            "stdout_ok": sys.stdout is not None and sys.stdout.writable(),
            "stderr_ok": sys.stderr is not None and sys.stderr.writable(),
            "transformers_loaded": "transformers" in sys.modules,
        }}
        with open({str(out)!r}, "w") as f:
            json.dump(result, f)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result == {
        "no_tf": "1", "tok": "false", "stdout_ok": True, "stderr_ok": True, "transformers_loaded": False,
    }


def test_resources_dir_resolves_under_meipass_when_frozen(tmp_path, monkeypatch):
    from desktop_search import config
    from desktop_search.core.models import Manifest, default_manifest_path

    bundled = tmp_path / "_internal" / "resources" / "models"
    bundled.mkdir(parents=True)
    shutil.copy2(REPO / "resources" / "models" / "bge-m3.json", bundled / "bge-m3.json")
    monkeypatch.delenv("DESKTOP_SEARCH_RESOURCES_DIR", raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "_internal"), raising=False)

    assert config.resources_dir() == tmp_path / "_internal" / "resources"
    assert default_manifest_path() == bundled / "bge-m3.json"
    manifest = Manifest.load(default_manifest_path())
    assert manifest.files, "the bundled manifest lists the model files"


def _elf64_with_load(offset: int, vaddr: int, align: int = 0x1000) -> bytes:
    import struct

    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)  # 64-bit, little-endian
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, offset, vaddr, vaddr, 0x100, 0x100, align)
    return header + phdr


def test_strip_check_rejects_libraries_the_loader_would_refuse(tmp_path):
    sys.path.insert(0, str(PACKAGING))
    try:
        from strip_binaries import load_segments_aligned, stripped_toc
    finally:
        sys.path.remove(str(PACKAGING))
    good, bad = tmp_path / "good.so", tmp_path / "bad.so"
    good.write_bytes(_elf64_with_load(0x288800, 0x289800))
    bad.write_bytes(_elf64_with_load(0x16D2000, 0x15ED800))  # what stripping numpy's OpenBLAS produced
    assert load_segments_aligned(good) and not load_segments_aligned(bad)
    # auditwheel's vendored libraries are never touched, and non-ELF files pass through unchanged.
    text = tmp_path / "notes.txt"
    text.write_text("not a library")
    toc = [("numpy.libs/libopenblas.so", str(good), "BINARY"), ("x/notes.txt", str(text), "BINARY")]
    out, stats = stripped_toc(toc, tmp_path / "cache")
    assert out == toc and stats["stripped"] == 0
