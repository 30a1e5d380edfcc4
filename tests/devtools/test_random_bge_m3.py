"""The random BGE-M3 builder: layout, tokenizer, loading through FlagEmbedding, non-degenerate outputs."""

from __future__ import annotations

import hashlib
import json
import math
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest


torch = pytest.importorskip("torch")

from desktop_search.devtools import random_bge_m3  # noqa: E402
from desktop_search.devtools.random_bge_m3 import build_random_bge_m3  # noqa: E402

HIDDEN = 64
EXPECTED_FILES = {
    "config.json",
    "pytorch_model.bin",
    "colbert_linear.pt",
    "sparse_linear.pt",
    "sentencepiece.bpe.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
}

# Ten documents in eight languages and one query per document that shares a few words with it.
PROBE_DOCS = [
    "The weather in Berlin is cold and rainy today.",
    "Die Steuererklärung muss bis Juli abgegeben werden.",
    "東京の天気は晴れです。明日は雨が降るでしょう。",
    "مرحبا بالعالم، هذا نص عربي عن الطقس.",
    "Please pay the invoice before the end of March.",
    "The quarterly budget report shows higher costs for travel.",
    "Поиск документов на компьютере должен быть быстрым.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Der Hund spielt im Garten mit einem Ball.",
    "会議は来週の月曜日に延期されました。",
]
PROBE_QUERIES = [
    "weather Berlin",
    "Steuererklärung Juli",
    "東京の天気",
    "الطقس",
    "invoice March",
    "budget report travel",
    "Поиск документов",
    "photosynthesis light energy",
    "Hund Garten",
    "会議 月曜日",
]


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def _mrr(scores: np.ndarray) -> float:
    """Mean reciprocal rank of document i for query i (ties count against it)."""
    return float(np.mean([1.0 / np.sum(scores[i] >= scores[i, i]) for i in range(len(scores))]))


@pytest.fixture(scope="session")
def random_tiny_dir(tmp_path_factory) -> Path:
    return build_random_bge_m3(tmp_path_factory.mktemp("random-bge-m3") / "tiny", size="tiny", seed=0)


@pytest.fixture(scope="module")
def m3(random_tiny_dir: Path) -> Iterator[object]:
    """BGEM3FlagModel on the tiny directory, loaded with every network connection refused."""
    from FlagEmbedding import BGEM3FlagModel

    def refuse(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, address)
        raise AssertionError(f"model loading tried to reach the network: {address!r}")

    real_connect = socket.socket.connect
    with pytest.MonkeyPatch.context() as patch:
        # (the hub libraries are offline already: tests/conftest.py prepares the process as the app does)
        patch.setattr(socket.socket, "connect", refuse)
        model = BGEM3FlagModel(str(random_tiny_dir), use_fp16=False, devices="cpu")
        # The first encode is inside the guard too: nothing may be fetched lazily.
        model.encode(["warm-up"], return_dense=True, return_sparse=True, return_colbert_vecs=True)
    yield model


def test_directory_has_the_real_repo_layout(random_tiny_dir: Path) -> None:
    assert {p.name for p in random_tiny_dir.iterdir()} == EXPECTED_FILES

    config = json.loads((random_tiny_dir / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "xlm-roberta"
    assert config["architectures"] == ["XLMRobertaModel"]
    expected = {
        "hidden_size": HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "max_position_embeddings": 8194,
        "type_vocab_size": 1,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
    }
    assert {key: config[key] for key in expected} == expected

    state = torch.load(random_tiny_dir / "pytorch_model.bin", map_location="cpu", weights_only=True)
    assert state["embeddings.word_embeddings.weight"].shape == (config["vocab_size"], HIDDEN)
    assert state["embeddings.position_embeddings.weight"].shape == (8194, HIDDEN)
    colbert = torch.load(random_tiny_dir / "colbert_linear.pt", map_location="cpu", weights_only=True)
    sparse = torch.load(random_tiny_dir / "sparse_linear.pt", map_location="cpu", weights_only=True)
    assert {k: tuple(v.shape) for k, v in colbert.items()} == {"weight": (HIDDEN, HIDDEN), "bias": (HIDDEN,)}
    assert {k: tuple(v.shape) for k, v in sparse.items()} == {"weight": (1, HIDDEN), "bias": (1,)}

    special = json.loads((random_tiny_dir / "special_tokens_map.json").read_text(encoding="utf-8"))
    assert {k: v["content"] for k, v in special.items()} == {
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": "<mask>",
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
    }


def test_tokenizer_matches_xlm_roberta_conventions(random_tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(random_tiny_dir)
    assert tok.is_fast
    config = json.loads((random_tiny_dir / "config.json").read_text(encoding="utf-8"))
    assert len(tok) == config["vocab_size"]
    assert 700 < len(tok) <= 8002  # ~8002 with the shared UDHR corpus, ~1000 from the built-in sample
    assert [tok.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.cls_token_id == 0 and tok.sep_token_id == 2
    assert tok.mask_token_id == len(tok) - 1
    assert tok.model_max_length == 8192

    a = tok("hello", add_special_tokens=False)["input_ids"]
    b = tok("world", add_special_tokens=False)["input_ids"]
    assert tok("hello")["input_ids"] == [0, *a, 2]
    assert tok("hello", "world")["input_ids"] == [0, *a, 2, 2, *b, 2]

    for text in ("日本語のテキスト", "中华人民共和国", "한국어 문장", "مرحبا بالعالم", "Ελληνικά", "Привет"):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert len(ids) > 1, text
        assert tok.unk_token_id not in ids, (text, tok.convert_ids_to_tokens(ids))

    # NFKC, as with the real tokenizer: full-width Latin is the same as ASCII.
    assert tok("ｆｕｌｌ ｗｉｄｔｈ")["input_ids"] == tok("full width")["input_ids"]

    text = "Hello wörld, 日本語のテキスト"
    encoding = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    offsets = [tuple(span) for span in encoding["offset_mapping"]]
    assert all(0 <= start < end <= len(text) for start, end in offsets)
    # A lone "▁" piece shares its span with the next token, as with the real XLM-R tokenizer; the distinct
    # spans tile the text without its spaces.
    assert "".join(text[start:end] for start, end in dict.fromkeys(offsets)) == text.replace(" ", "")


def test_sentencepiece_model_agrees_with_tokenizer_json(random_tiny_dir: Path) -> None:
    import sentencepiece as spm
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(random_tiny_dir)
    sp = spm.SentencePieceProcessor(model_file=str(random_tiny_dir / "sentencepiece.bpe.model"))
    assert sp.get_piece_size() + 2 == len(tok)  # + <pad> and <mask>, like 250000 -> 250002
    for text in ["Hello world", "Die Steuererklärung", "日本語のテキスト", "مرحبا بالعالم"]:
        # XLM-R's fairseq offset: HF id = spm id + 1 for every ordinary piece.
        assert [i + 1 for i in sp.encode(text)] == tok(text, add_special_tokens=False)["input_ids"], text


def test_encode_gives_all_three_representations(m3) -> None:
    texts = ["Hello world", "日本語のテキスト", "مرحبا بالعالم"]
    out = m3.encode(texts, return_dense=True, return_sparse=True, return_colbert_vecs=True)

    dense = out["dense_vecs"]
    assert dense.shape == (3, HIDDEN)
    np.testing.assert_allclose(np.linalg.norm(dense, axis=1), 1.0, atol=1e-5)

    assert len(out["lexical_weights"]) == 3
    for text, weights in zip(texts, out["lexical_weights"]):
        assert weights, text
        assert all(float(w) > 0 for w in weights.values())
        assert not {"0", "1", "2", "3"} & set(weights), "special tokens must not get lexical weights"

    for text, vecs in zip(texts, out["colbert_vecs"]):
        n_tokens = len(m3.tokenizer(text)["input_ids"])
        assert vecs.shape == (n_tokens - 1, HIDDEN), text  # ColBERT drops <s>
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_compute_score_is_finite(m3) -> None:
    scores = m3.compute_score([("hello", "hello world")], weights_for_different_modes=[0.4, 0.2, 0.4])
    assert set(scores) == {"colbert", "sparse", "dense", "sparse+dense", "colbert+sparse+dense"}
    for key, values in scores.items():
        assert len(values) == 1 and math.isfinite(float(values[0])), key


def test_outputs_are_not_degenerate(m3) -> None:
    docs = m3.encode(PROBE_DOCS, return_dense=True, return_sparse=True, return_colbert_vecs=True)
    queries = m3.encode(PROBE_QUERIES, return_dense=True, return_sparse=True, return_colbert_vecs=True)

    doc_sims = docs["dense_vecs"] @ docs["dense_vecs"].T
    assert doc_sims[np.triu_indices(len(PROBE_DOCS), 1)].max() < 0.99  # std 0.02 init gives > 0.9999

    # A good share of ordinary tokens has a positive lexical weight, in every document.
    n_positive = sum(len(weights) for weights in docs["lexical_weights"])
    n_distinct = sum(len({i for i in m3.tokenizer(d)["input_ids"] if i > 3}) for d in PROBE_DOCS)
    assert 0.3 < n_positive / n_distinct < 0.98
    assert all(docs["lexical_weights"])

    # Texts that share tokens score higher: each query finds its document near the top in every mode.
    dense = queries["dense_vecs"] @ docs["dense_vecs"].T
    sparse = np.array(
        [[m3.compute_lexical_matching_score(q, d) for d in docs["lexical_weights"]] for q in queries["lexical_weights"]]
    )
    colbert = np.array(
        [[float(m3.colbert_score(q, d)) for d in docs["colbert_vecs"]] for q in queries["colbert_vecs"]]
    )
    for mode, scores in (("dense", dense), ("sparse", sparse), ("colbert", colbert)):
        assert _mrr(scores) >= 0.7, (mode, _mrr(scores))


def test_build_is_deterministic_and_leaves_the_rng_alone(random_tiny_dir: Path, tmp_path: Path) -> None:
    state = torch.random.get_rng_state()
    again = build_random_bge_m3(tmp_path / "again", size="tiny", seed=0)
    assert torch.equal(state, torch.random.get_rng_state())
    assert _digests(again) == _digests(random_tiny_dir)

    other = _digests(build_random_bge_m3(tmp_path / "seed1", size="tiny", seed=1))
    reference = _digests(random_tiny_dir)
    for name in ("pytorch_model.bin", "colbert_linear.pt", "sparse_linear.pt"):
        assert other[name] != reference[name], name
    for name in ("tokenizer.json", "sentencepiece.bpe.model", "config.json"):
        assert other[name] == reference[name], name


def test_rebuild_into_same_directory_replaces_stale_safetensors(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"stale")  # from_pretrained would prefer this file
    build_random_bge_m3(target, training_texts=["hello world", "Привет мир", "日本語"], vocab_size=800)
    assert not (target / "model.safetensors").exists()
    assert (target / "pytorch_model.bin").is_file()


def test_builds_without_the_shared_corpus(monkeypatch, tmp_path: Path) -> None:
    from FlagEmbedding import BGEM3FlagModel

    monkeypatch.setattr(random_bge_m3, "find_udhr_dir", lambda: None)
    model_dir = build_random_bge_m3(tmp_path / "fallback", size="tiny", seed=0)
    model = BGEM3FlagModel(str(model_dir), use_fp16=False, devices="cpu")
    assert 700 < len(model.tokenizer) < 8002  # the built-in sample cannot fill 8000 pieces
    for text in ("日本語のテキスト", "Hello world", "مرحبا بالعالم", "Привет, мир"):
        ids = model.tokenizer(text)["input_ids"]
        assert len(ids) > 3 and model.tokenizer.unk_token_id not in ids, text
    out = model.encode(["日本語のテキスト"], return_dense=True, return_sparse=True, return_colbert_vecs=True)
    assert out["dense_vecs"].shape == (1, HIDDEN)


def test_custom_texts_and_vocab_size(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    texts = ["a small corpus about invoices and budgets"] * 3 + ["eine kleine Sammlung", "небольшой корпус"]
    model_dir = build_random_bge_m3(tmp_path / "custom", training_texts=texts, vocab_size=900)
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert len(tok) <= 902
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    assert config["vocab_size"] == len(tok)


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size"):
        build_random_bge_m3(tmp_path / "x", size="huge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no non-blank text"):
        build_random_bge_m3(tmp_path / "y", training_texts=["", "   \n"])
    with pytest.raises(ValueError, match="vocab_size"):
        build_random_bge_m3(tmp_path / "z", training_texts=["hello"], vocab_size=100)
    many_characters = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 1500))  # 1500 CJK ideographs
    with pytest.raises(ValueError, match="1000-piece"):
        build_random_bge_m3(tmp_path / "w", training_texts=[many_characters], vocab_size=1000)


def test_find_udhr_dir_honours_the_environment(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "corpus" / "multilingual_text_udhr").mkdir(parents=True)
    monkeypatch.setenv("DESKTOP_SEARCH_SHARED_CORPUS", str(tmp_path / "corpus"))
    assert random_bge_m3.find_udhr_dir() == tmp_path / "corpus" / "multilingual_text_udhr"


def test_cli_prints_directory_and_size(tmp_path: Path, capsys) -> None:
    assert random_bge_m3.main([str(tmp_path / "cli"), "--size", "tiny", "--seed", "3", "--vocab-size", "3000"]) == 0
    printed = capsys.readouterr().out
    assert str((tmp_path / "cli").resolve()) in printed
    assert "MiB" in printed
    assert (tmp_path / "cli" / "pytorch_model.bin").is_file()
