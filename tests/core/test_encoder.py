"""The CPU precision options of the encoder: the int8 ONNX Runtime path, its fidelity guard and the fp32 fallback.

Behaviour only: the int8 encoder must be built once per model, agree closely with the exact fp32 path on the
tiny model, and fall back to fp32 (saying why) when it cannot be built or fails its check. Speed is measured by
``benchmarks/bench_encode.py``, never asserted here.
"""

from __future__ import annotations

import numpy as np
import pytest

from desktop_search.core import quantize
from desktop_search.core.encoder import Encoder

TEXTS = [
    "Photovoltaic panels convert sunlight into electricity for the grid.",
    "Mix flour, water and salt with the starter, let the dough rise overnight and bake it.",
    "Berlin ist die Hauptstadt Deutschlands. Die Mauer teilte die Stadt von 1961 bis 1989.",
    "東京は日本の首都です。東京タワーと浅草寺は有名な観光地です。",
    "القاهرة هي عاصمة مصر وأكبر مدنها. يمر نهر النيل عبر المدينة.",
    "Москва — столица России. Кремль находится в центре города.",
    "The telescope measured quantum entanglement between distant photons. " * 6,
]
QUERIES = ["solar electricity", "bread dough", "Hauptstadt Berlin", "東京タワー", "نهر النيل", "Кремль", "photons"]


@pytest.fixture(scope="module")
def int8_encoder(tiny_model_dir, tmp_path_factory):
    return Encoder(tiny_model_dir, device="cpu", cache_dir=tmp_path_factory.mktemp("cache"))


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_int8_is_the_cpu_default_and_says_how_close_it_is(int8_encoder, tiny_encoder):
    assert int8_encoder.precision == "int8"
    assert "cosine" in int8_encoder.precision_note
    assert int8_encoder.dim == tiny_encoder.dim
    # The fp32 weights are not kept once the int8 graph runs.
    assert int8_encoder._net is None
    assert tiny_encoder.precision == "fp32"


def test_int8_agrees_with_fp32(int8_encoder, tiny_encoder):
    fast, exact = int8_encoder.encode(TEXTS), tiny_encoder.encode(TEXTS)
    dense_cos = _cos(fast.dense, exact.dense)
    assert dense_cos.mean() >= 0.99 and dense_cos.min() >= 0.98
    for f, e in zip(fast.colbert, exact.colbert):
        assert f.shape == e.shape
        assert _cos(f, e).mean() >= 0.97
    for f, e in zip(fast.sparse, exact.sparse):
        top_f = set(sorted(f, key=f.get, reverse=True)[:5])
        top_e = set(sorted(e, key=e.get, reverse=True)[:5])
        assert len(top_f & top_e) >= 3
    # Rankings: each query's best passage is the same with both paths.
    for q in QUERIES:
        qf, qe = int8_encoder.encode_query(q), tiny_encoder.encode_query(q)
        assert int(np.argmax(fast.dense @ qf.dense[0])) == int(np.argmax(exact.dense @ qe.dense[0]))


def test_int8_graph_is_built_once_and_reused(tiny_model_dir, int8_encoder, monkeypatch):
    cache = next(iter(int8_encoder._onnx.path.parents))
    built = quantize.int8_dir(cache.parent, int8_encoder.fingerprint)
    assert quantize.is_built(built)
    monkeypatch.setattr(quantize, "build_int8_in_subprocess", lambda *a, **k: pytest.fail("rebuilt a cached int8 graph"))
    again = Encoder(tiny_model_dir, device="cpu", cache_dir=cache.parent)
    assert again.precision == "int8" and again._flag is None
    np.testing.assert_allclose(again.encode(TEXTS[:2]).dense, int8_encoder.encode(TEXTS[:2]).dense, atol=1e-6)


def test_failed_fidelity_check_falls_back_to_fp32(tiny_model_dir, tiny_encoder, tmp_path):
    Encoder(tiny_model_dir, device="cpu", cache_dir=tmp_path)
    built = quantize.int8_dir(tmp_path, tiny_encoder.fingerprint)
    # A reference the int8 graph cannot match stands for a CPU whose int8 kernels are too inaccurate.
    with np.load(built / quantize.REFERENCE_FILE) as ref:
        parts = dict(ref)
    parts["dense"] = np.random.default_rng(0).standard_normal(parts["dense"].shape).astype(np.float32)
    np.savez(built / quantize.REFERENCE_FILE, **parts)
    enc = Encoder(tiny_model_dir, device="cpu", cache_dir=tmp_path)
    assert enc.precision == "fp32"
    assert "below the limits" in enc.precision_note and "using fp32" in enc.precision_note
    np.testing.assert_allclose(enc.encode(TEXTS[:2]).dense, tiny_encoder.encode(TEXTS[:2]).dense, atol=1e-6)


def test_unbuildable_int8_falls_back_to_fp32(tiny_model_dir, tmp_path, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(quantize, "build_int8_in_subprocess", broken)
    enc = Encoder(tiny_model_dir, device="cpu", cache_dir=tmp_path)
    assert enc.precision == "fp32"
    assert "exporter exploded" in enc.precision_note
    assert len(enc.encode(["still works"]).dense) == 1


def test_fp32_precision_never_builds(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(quantize, "build_int8_in_subprocess", lambda *a, **k: pytest.fail("fp32 must not build an int8 graph"))
    enc = Encoder(tiny_model_dir, device="cpu", precision="fp32", cache_dir=tmp_path)
    assert enc.precision == "fp32" and enc._onnx is None


def test_unknown_precision_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="precision"):
        Encoder(tiny_model_dir, device="cpu", precision="int4")


def test_settings_validate_cpu_precision():
    from desktop_search.config import load_settings

    assert load_settings().cpu_precision == "int8"
    assert load_settings(cpu_precision="fp32").cpu_precision == "fp32"
    with pytest.raises(ValueError, match="CPU precision"):
        load_settings(cpu_precision="int4")


# -- batch budget ------------------------------------------------------------------------------------------
def _fail_above(encoder, monkeypatch, limit: int, error: Exception):
    """Make forward passes of more than ``limit`` padded tokens fail with ``error``; returns the batch log."""
    real = encoder._encode_batch
    log: list[int] = []

    def batch(enc, idx, *rest):
        padded = len(idx) * max(len(enc["input_ids"][i]) for i in idx)
        log.append(padded)
        if padded > limit:
            raise error
        return real(enc, idx, *rest)

    monkeypatch.setattr(encoder, "_encode_batch", batch)
    monkeypatch.setattr(encoder, "batch_tokens", encoder.batch_tokens)  # restored after the test
    return log


@pytest.mark.parametrize("error", [
    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer"),
])
def test_a_batch_that_runs_out_of_memory_is_split_and_the_smaller_budget_kept(tiny_encoder, monkeypatch, error):
    texts = TEXTS * 6
    expected = tiny_encoder.encode(texts)
    log = _fail_above(tiny_encoder, monkeypatch, 300, error)
    got = tiny_encoder.encode(texts)
    np.testing.assert_allclose(got.dense, expected.dense, atol=1e-5)  # nothing lost or misplaced on the retries
    for a, b in zip(got.colbert, expected.colbert):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert [sorted(s) for s in got.sparse] == [sorted(s) for s in expected.sparse]
    assert any(n > 300 for n in log) and tiny_encoder.batch_tokens <= 300
    log.clear()
    tiny_encoder.encode(texts)  # the next call starts from the smaller budget: no failed pass at all
    assert log and max(log) <= 300


def test_other_errors_and_a_single_text_that_does_not_fit_are_raised(tiny_encoder, monkeypatch):
    log = _fail_above(tiny_encoder, monkeypatch, -1, RuntimeError("index out of range in self"))
    with pytest.raises(RuntimeError, match="index out of range"):
        tiny_encoder.encode(TEXTS)
    assert len(log) == 1  # not retried
    log = _fail_above(tiny_encoder, monkeypatch, 0, RuntimeError("CUDA out of memory"))
    with pytest.raises(RuntimeError, match="out of memory"):
        tiny_encoder.encode(TEXTS)
    assert log[-1] > 0 and len(log) < 20  # halved down to one text, then given up


def test_gpu_batch_budget_follows_free_memory():
    from desktop_search.core.encoder import GPU_BATCH_TOKENS_MAX, GPU_BATCH_TOKENS_MIN, gpu_batch_tokens

    gib = 1 << 30
    small, mid, big = gpu_batch_tokens(1 * gib), gpu_batch_tokens(6 * gib), gpu_batch_tokens(80 * gib)
    assert small == GPU_BATCH_TOKENS_MIN and big == GPU_BATCH_TOKENS_MAX
    assert GPU_BATCH_TOKENS_MIN < mid < GPU_BATCH_TOKENS_MAX and mid % 512 == 0
    assert gpu_batch_tokens(6 * gib, hidden_size=2048) < mid  # a wider model needs more per token

