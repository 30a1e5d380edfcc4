"""The installed package set: it can run the model, and when it cannot, the app degrades to keyword search.

``test_dependency_incompatibility_*`` are the tripwires: they fail the moment the installed versions (the lock, or
whatever a canary run installed) can no longer import FlagEmbedding's BGEM3FlagModel path or encode with it, and
their message says so, instead of a random error deep inside another test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from desktop_search.cli import main
from tests.conftest import REPO


def _incompatible(step: str, e: BaseException) -> None:
    pytest.fail(f"dependency incompatibility: {step} failed with the installed packages: {type(e).__name__}: {e}")


def test_dependency_incompatibility_flagembedding_path_imports_and_encodes(tiny_model_dir):
    try:
        from FlagEmbedding import BGEM3FlagModel
    except Exception as e:
        _incompatible("`from FlagEmbedding import BGEM3FlagModel`", e)
    try:
        model = BGEM3FlagModel(str(tiny_model_dir), use_fp16=False, devices=["cpu"])
        out = model.encode(["Berlin ist die Hauptstadt"], return_dense=True, return_sparse=True,
                           return_colbert_vecs=True)
    except Exception as e:
        _incompatible("BGEM3FlagModel load + encode of the tiny model", e)
    dense = np.asarray(out["dense_vecs"])
    assert dense.shape[0] == 1 and np.isfinite(dense).all() and abs(float(np.linalg.norm(dense[0])) - 1) < 1e-3
    assert out["lexical_weights"][0] and len(out["colbert_vecs"][0]) > 0


def test_dependency_incompatibility_app_encoder_runs_in_both_precisions(tiny_model_dir, tmp_path):
    from desktop_search.core.encoder import Encoder

    for precision in ("fp32", "int8"):
        try:
            enc = Encoder(tiny_model_dir, "cpu", precision, cache_dir=tmp_path / "int8")
            got = enc.encode(["Москва — столица России."])
        except Exception as e:
            _incompatible(f"the app's {precision} encoder", e)
        assert got.dense.shape[0] == 1 and got.colbert[0].shape[0] > 0
        if precision == "int8":
            # onnxruntime must really run here: a silent fp32 fallback would hide a broken ONNX stack.
            assert enc.precision == "int8", enc.precision_note


def test_load_failure_tells_a_broken_install_from_a_broken_model(tmp_path):
    from desktop_search.core.encoder import load_failure

    err = ModuleNotFoundError("No module named 'transformers.modeling_attn_mask_utils'",
                              name="transformers.modeling_attn_mask_utils")
    why = load_failure(err, tmp_path)
    assert why.startswith("dependency incompatibility") and "modeling_attn_mask_utils" in why and "lock" in why
    assert "\n" not in why
    why = load_failure(OSError("unexpected EOF in model.safetensors\nmore"), tmp_path)
    assert why.startswith(f"could not load the model from {tmp_path}") and "\n" not in why


def _run_cli(args: list, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "desktop_search", *map(str, args)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_index_goes_on_in_keyword_mode_when_transformers_breaks_flagembedding(tmp_path, docs, tiny_model_dir):
    """What transformers 5.24 did: a module FlagEmbedding imports is gone. The int8 copy does not exist yet
    (fresh cache), so its build fails too; indexing must still finish, keyword search must work, and the reason
    must be said once, in one line."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        sys.modules["transformers.modeling_attn_mask_utils"] = None  # removed in transformers 5.24
    """))
    broken = {
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        "DESKTOP_SEARCH_CACHE_DIR": str(tmp_path / "fresh-cache"),
    }
    idx = tmp_path / "idx"
    r = _run_cli(["index", docs, "--index-dir", idx, "--model-dir", tiny_model_dir, "--device", "cpu"], broken)
    assert r.returncode == 0, r.stderr
    assert "indexed 7 files" in r.stdout and "[keyword only]" in r.stdout
    lines = [ln for ln in r.stderr.splitlines() if "semantic search is off" in ln]
    assert len(lines) == 1, r.stderr
    assert "dependency incompatibility" in lines[0] and "modeling_attn_mask_utils" in lines[0]
    assert "Traceback" not in r.stderr
    r = _run_cli(["search", "Hauptstadt", "--json", "--index-dir", idx, "--model-dir", tiny_model_dir], broken)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["mode"] == "keyword" and res["hits"][0]["path"].endswith("berlin.txt")
    assert "semantic search is off" in r.stderr


def test_semantic_encoding_catches_up_once_the_install_is_fixed(capsys, monkeypatch, tmp_path, docs, tiny_model_dir):
    idx = tmp_path / "idx"
    monkeypatch.setenv("DESKTOP_SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    with monkeypatch.context() as m:  # neither the exact path nor the int8 one can import
        m.setitem(sys.modules, "FlagEmbedding", None)
        m.setitem(sys.modules, "onnxruntime", None)
        code = main(["index", str(docs), "--index-dir", str(idx), "--model-dir", str(tiny_model_dir), "--device", "cpu"])
        out, err = capsys.readouterr()
    assert code == 0, err
    assert "indexed 7 files" in out and "0 encoded" in out and "[keyword only]" in out
    assert err.count("semantic search is off: dependency incompatibility") == 1
    code = main(["index", str(docs), "--index-dir", str(idx), "--model-dir", str(tiny_model_dir), "--device", "cpu",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["semantic"] and report["chunks_encoded"] > 0 and "semantic search is off" not in err
    code = main(["search", "Hauptstadt", "--json", "--index-dir", str(idx), "--model-dir", str(tiny_model_dir)])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["mode"] == "hybrid"
