"""How the int8 CPU copy is made and loaded: weights read from disk without torch, a graph that is exact in fp32,
the tokenizer FlagEmbedding uses saved for a torch-free app process, build progress, the remembered check.

The int8 path's agreement with fp32 and its fallbacks are in test_encoder.py; memory and speed are measured by
``benchmarks/bench_int8_build.py`` and ``benchmarks/bench_encode.py``, never asserted here.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from desktop_search.core import m3graph, quantize
from desktop_search.core.checkpoint import CheckpointError, open_checkpoint
from desktop_search.core.tokenizer import SPECIALS_FILE, TOKENIZER_FILE

from tests.conftest import REPO

MULTILINGUAL = [
    "Photovoltaic panels convert sunlight into electricity for the grid.",
    "Berlin ist die Hauptstadt Deutschlands. Die Mauer teilte die Stadt von 1961 bis 1989.",
    "東京は日本の首都です。東京タワーと浅草寺は有名な観光地です。",
    "القاهرة هي عاصمة مصر وأكبر مدنها. يمر نهر النيل عبر المدينة.",
    "Москва — столица России. Кремль находится в центре города.",
    "Ελληνικά, हिन्दी, ไทย, 한국어 and emoji 🎉 in one line",
    "   ",
    "",
    "spaces  around <s> special </s> tokens <mask> and\ttabs\nnewlines",
    "ﬁ ligature, Ｆｕｌｌ width, e\u0301 combining accent",
    "a long passage about photons. " * 40,
]


@pytest.fixture(scope="module")
def build_run(tiny_model_dir, tmp_path_factory) -> tuple[Path, list]:
    """The int8 copy of the tiny model built through the app's own path, and the progress it reported."""
    from desktop_search.core.encoder import Encoder

    cache = tmp_path_factory.mktemp("int8-cache") / "models"
    seen: list[quantize.BuildProgress] = []
    enc = Encoder(tiny_model_dir, device="cpu", cache_dir=cache, progress=seen.append)
    assert enc.precision == "int8", enc.precision_note
    return quantize.int8_dir(cache, enc.fingerprint), seen


@pytest.fixture
def built(build_run) -> Path:
    return build_run[0]


def _flag(tiny_model_dir):
    from FlagEmbedding import BGEM3FlagModel

    return BGEM3FlagModel(str(tiny_model_dir), use_fp16=False, devices=["cpu"])


# -- weights on disk ----------------------------------------------------------------------------------------
def test_checkpoint_reader_gives_torch_load_values(tiny_model_dir):
    import torch

    for name in ("pytorch_model.bin", "colbert_linear.pt", "sparse_linear.pt"):
        expected = torch.load(tiny_model_dir / name, map_location="cpu", weights_only=True)
        ck = open_checkpoint(tiny_model_dir / name)
        assert set(ck) == set(expected)
        for key, tensor in expected.items():
            np.testing.assert_array_equal(ck.read(key), tensor.numpy(), err_msg=key)


def test_checkpoint_reader_reads_safetensors_and_rows(tmp_path):
    import torch
    from safetensors.torch import save_file

    rng = np.random.default_rng(0)
    table = rng.standard_normal((50, 8)).astype(np.float32)
    tensors = {"table": torch.from_numpy(table), "half": torch.from_numpy(table[:3]).half(),
               "bf16": torch.from_numpy(table[:2]).bfloat16()}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    ck = open_checkpoint(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(ck.read("table"), table)
    np.testing.assert_array_equal(ck.ref("table").read_rows(10, 20), table[10:20])
    np.testing.assert_array_equal(ck.read("half"), tensors["half"].float().numpy())
    np.testing.assert_array_equal(ck.read("bf16"), tensors["bf16"].float().numpy())


def test_a_weights_file_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with zipfile.ZipFile(tmp_path / "evil.bin", "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"w": Evil()}))
    with pytest.raises(CheckpointError, match="unexpected record"):
        open_checkpoint(tmp_path / "evil.bin")
    assert not (tmp_path / "pwned").exists()


# -- the graph ----------------------------------------------------------------------------------------------
def test_fp32_graph_written_from_the_weights_equals_flagembedding(tiny_model_dir, tmp_path):
    import torch

    flag = _flag(tiny_model_dir)
    enc = flag.tokenizer(MULTILINGUAL, padding=True, truncation=True, max_length=512, return_tensors="np")
    ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
    with torch.inference_mode():
        module = quantize._wrapper(flag.model.float().eval())
        ref = [t.numpy() for t in module(torch.from_numpy(ids), torch.from_numpy(mask))]
    graph = quantize.OnnxM3(m3graph.build_graph(tiny_model_dir, tmp_path / "fp32.onnx", "fp32"))
    dense, weights, colbert = graph.run(ids, mask)
    real = mask.astype(bool)
    np.testing.assert_allclose(dense, ref[0], atol=1e-5)
    np.testing.assert_allclose(weights[real], ref[1][real], atol=1e-5)
    np.testing.assert_allclose(colbert, ref[2], atol=1e-5)


def test_build_reports_progress_through_the_encoder(build_run):
    built, seen = build_run
    assert seen[0].stage == "reference" and seen[-1].phase == "done"
    layers = [p for p in seen if p.stage == "layers"]
    assert [p.done for p in layers] == list(range(1, layers[0].total + 1))
    overall = [p.overall for p in seen]
    assert overall == sorted(overall) and overall[-1] == 1.0
    assert "layers quantized" in layers[3].text()
    assert quantize.is_built(built)
    assert json.loads((built / quantize.META_FILE).read_text())["built_on_verdict"]["ok"]


def test_a_copy_in_an_older_format_is_rebuilt_once_and_removed(tiny_model_dir, tmp_path, monkeypatch):
    """A complete copy from the previous format (say, before the graph changed) is never loaded: the new format
    is built beside it, the old one deleted, and the next start reuses the new copy."""
    from desktop_search.core.encoder import Encoder, model_fingerprint

    fingerprint = model_fingerprint(tiny_model_dir)
    previous = quantize.int8_dir(tmp_path, fingerprint).name.replace(
        f"-v{quantize.FORMAT_VERSION}", f"-v{quantize.FORMAT_VERSION - 1}")
    old, other_model = tmp_path / previous, tmp_path / "bge-m3-int8-0123456789abcdef-v1"
    for d in (old, other_model):
        d.mkdir()
        for name in (quantize.MODEL_FILE, quantize.MODEL_FILE + m3graph.DATA_SUFFIX, quantize.REFERENCE_FILE,
                     quantize.META_FILE, TOKENIZER_FILE, SPECIALS_FILE):
            (d / name).write_bytes(b"old")
    assert quantize.is_built(old)  # it looks complete: only its format version tells it apart
    builds: list[Path] = []
    real_build = quantize.build_int8_in_subprocess
    monkeypatch.setattr(quantize, "build_int8_in_subprocess",
                        lambda m, out, p=None: builds.append(out) or real_build(m, out, p))
    assert Encoder(tiny_model_dir, device="cpu", cache_dir=tmp_path).precision == "int8"
    assert builds == [quantize.int8_dir(tmp_path, fingerprint)]
    assert not old.exists() and other_model.exists()
    assert Encoder(tiny_model_dir, device="cpu", cache_dir=tmp_path).precision == "int8"
    assert len(builds) == 1


def test_a_passed_check_is_remembered_and_redone_when_the_reference_changes(built, monkeypatch):
    assert (built / quantize.CHECKED_FILE).is_file()

    def no_check(*_a, **_k):
        raise AssertionError("the calibration pass ran again on the same machine")

    monkeypatch.setattr(quantize, "_check", no_check)
    session, verdict = quantize.load_int8(built)
    assert verdict.ok and session.run(*_ids(built))[0].shape[0] > 0
    monkeypatch.undo()
    # Another reference (a rebuilt copy) is another key: the check runs again.
    calls = []
    real = quantize._check
    monkeypatch.setattr(quantize, "_check", lambda *a, **k: calls.append(1) or real(*a, **k))
    with np.load(built / quantize.REFERENCE_FILE) as ref:
        parts = dict(ref)
    np.savez(built / quantize.REFERENCE_FILE, **parts, extra=np.zeros(1))
    assert quantize.load_int8(built)[1].ok and calls == [1]


def _ids(built: Path):
    with np.load(built / quantize.REFERENCE_FILE) as ref:
        return ref["input_ids"], ref["mask"]


# -- tokenizer ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_length", [None, 8, 512])
def test_saved_tokenizer_gives_the_ids_flagembedding_uses(tiny_model_dir, built, max_length):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(tiny_model_dir))  # what BGEM3FlagModel loads
    ours = quantize.load_tokenizer(built)
    kw = {"truncation": True, "max_length": max_length} if max_length else {}
    assert ours(MULTILINGUAL, **kw)["input_ids"] == [list(r) for r in hf(MULTILINGUAL, **kw)["input_ids"]]
    assert ours.pad_token_id == hf.pad_token_id
    assert ours.special_ids == {hf.cls_token_id, hf.eos_token_id, hf.pad_token_id, hf.unk_token_id}


# -- the app process ----------------------------------------------------------------------------------------
def test_int8_index_and_search_never_import_torch(tiny_model_dir, docs, tmp_path, built):
    """The CLI indexes and searches with the int8 copy; torch, transformers and FlagEmbedding stay out."""
    # The app looks for its int8 copies in <cache dir>/models: the fixture built one there.
    env = dict(os.environ, PYTHONPATH=str(REPO), DESKTOP_SEARCH_MODEL_DIR=str(tiny_model_dir),
               DESKTOP_SEARCH_INDEX_DIR=str(tmp_path / "index"), DESKTOP_SEARCH_DEVICE="cpu",
               DESKTOP_SEARCH_CACHE_DIR=str(built.parent.parent))
    code = (
        "import json, sys\n"
        "from desktop_search.cli import main\n"
        f"rc = [main(['index', {str(docs)!r}, '--json']), main(['search', 'sunlight electricity', '--json'])]\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'FlagEmbedding', 'onnx') if m in sys.modules)\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    verdict = json.loads(lines[-1])
    assert verdict == {"rc": [0, 0], "heavy": []}, proc.stderr
    index_report = json.loads(lines[0])
    assert index_report["chunks_encoded"] > 0  # the semantic path ran, not keyword-only
    hits = json.loads(lines[1])["hits"]
    assert hits and hits[0]["scores"]["dense"] is not None
