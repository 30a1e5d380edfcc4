"""Build a randomly initialised, BGE-M3-shaped model directory for tests and benchmarks.

The real BAAI/bge-m3 checkpoint is 2.2 GB and cannot be downloaded in CI or on offline developer
machines, yet most of the app (chunking, batching, the three retrieval heads, the index, the GUI) only
needs *something* that ``FlagEmbedding.BGEM3FlagModel`` loads through its normal code path and that
behaves like BGE-M3 structurally: an XLM-RoBERTa encoder, a SentencePiece-Unigram tokenizer with the
XLM-R special-token layout, and the two extra heads ``colbert_linear.pt`` / ``sparse_linear.pt``.

The directory written here has the same file layout as the real model repository::

    config.json               XLMRobertaModel config (8194 positions = 8192 tokens + padding offset 2)
    pytorch_model.bin         encoder weights (torch pickle, like the real repo, not safetensors)
    colbert_linear.pt         state dict of Linear(hidden, hidden)
    sparse_linear.pt          state dict of Linear(hidden, 1)
    sentencepiece.bpe.model   the SentencePiece model the tokenizer was trained as
    tokenizer.json            the same tokenizer for the `tokenizers` backend (what actually loads)
    tokenizer_config.json
    special_tokens_map.json

Two sizes:

* ``tiny``: hidden 64, 2 layers, a locally trained ~8k-piece multilingual vocabulary. Builds in
  seconds, so it can be a session-scoped pytest fixture. The embeddings carry no semantics but are
  deterministic and not degenerate: texts sharing tokens score higher in all three modes (dense,
  sparse, ColBERT), and the sparse head gives a positive weight to ~70 % of tokens.
* ``full``: the real BGE-M3 architecture (24 x 1024, vocab 250002, 568M parameters, ~2.2 GB) for
  speed and memory benchmarks. It uses the same small tokenizer, so only token ids < ~8k ever occur;
  the embedding matrix still has the real size.

Why the tokenizer is trained with ``sentencepiece`` (a hard dependency of FlagEmbedding) and then
converted, rather than trained with ``tokenizers.trainers.UnigramTrainer``:

* ``UnigramTrainer`` is not deterministic: the same input gives the same pieces in a different id
  order from run to run (ties resolved through hash-map order), even with TOKENIZERS_PARALLELISM off.
* transformers 5 rebuilds an ``XLMRobertaTokenizer`` on load from only the vocab, the post-processor
  and a *Precompiled* SentencePiece normaliser found in tokenizer.json; any other normaliser (for
  example a plain NFKC one) is silently dropped. Training with SentencePiece's ``nmt_nfkc`` rule gives
  us exactly the Precompiled NFKC charsmap that XLM-R / BGE-M3 ship, so the loaded tokenizer
  normalises like the real one.
* it gives the ``sentencepiece.bpe.model`` file of the real repo for free.

Command line::

    python -m desktop_search.devtools.random_bge_m3 OUT_DIR [--size tiny|full] [--seed N]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

__all__ = ["build_random_bge_m3", "find_udhr_dir", "main"]

# XLM-R / BGE-M3 special-token layout: fairseq put <s>, <pad>, </s>, <unk> at ids 0-3 and <mask> last.
BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"

REAL_VOCAB_SIZE = 250002  # 250000 SentencePiece pieces + fairseq offset + <mask>
MAX_POSITION_EMBEDDINGS = 8194  # 8192 tokens + 2, because RoBERTa positions start at pad_token_id + 1
MODEL_MAX_LENGTH = 8192
DEFAULT_TOKENIZER_VOCAB = 8000

_ARCHITECTURES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128},
    "full": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
}

# The real config's initializer_range: recorded in config.json (transformers uses it only to initialise
# weights that a checkpoint lacks) and used for the ColBERT head.
_INIT_STD = 0.02

# Encoder weights are NOT drawn with std 0.02. At hidden 64 that is degenerate: the attention and FFN branches
# are ~10x smaller than the LayerNorm-ed residual stream, so the CLS vector (BGE-M3's dense embedding) is
# essentially the CLS token's own embedding and any two texts get cosine > 0.9999. Instead std = factor /
# sqrt(hidden) (0.125 tiny, 0.031 full), so each branch is about as large as the residual and the output
# depends on the whole text; the FFN is halved (its GELU otherwise scrambles what attention mixed in),
# position embeddings are small and token-type embeddings zero (a constant added to every token), so token
# identity dominates. The result is a random encoder that is sensitive to lexical overlap. On a 10-document,
# 8-language probe (one query per document sharing a few words with it; see the tests), query -> document
# MRR through BGEM3FlagModel was, for tiny seeds 0-3: dense 0.82-0.95, sparse 0.82-1.0, ColBERT 1.0 (dense
# cosine of unrelated documents ~0.85); for full, seed 0: dense 1.0, sparse 0.93, ColBERT 1.0 (~0.8).
# Dense cosines are compressed (like the real model's) but differ enough to rank.
_STD_FACTORS: dict[str, float] = {
    "word_embeddings": 1.0,
    "position_embeddings": 0.2,
    "attention": 1.0,
    "ffn": 0.5,
}

# relu(sparse_linear(h)) is BGE-M3's per-token lexical weight. The real model's weights lie in ~0..0.35;
# since h is LayerNorm-ed (norm ~ sqrt(hidden)), a weight std of _SPARSE_LOGIT_STD / sqrt(hidden) gives logits
# of that scale at any size (std 0.02 would give 4x larger ones at hidden 1024). Where the zero crossing falls
# depends on the seed and the size, so the bias is calibrated on a fixed multilingual probe such that this
# share of ordinary tokens gets a positive weight, as with the real model where most tokens get a small one.
_SPARSE_LOGIT_STD = 0.16
_SPARSE_POSITIVE_SHARE = 0.7
_CALIBRATION_MAX_TOKENS = 48

# SentencePiece's default max_sentence_length is 4192 *bytes*; we chunk long lines ourselves instead so
# user-supplied texts without newlines are not silently skipped by the trainer.
_MAX_LINE_CHARS = 2000
_MAX_SENTENCE_BYTES = 4 * _MAX_LINE_CHARS + 16

# Characters that must be single-character pieces even if the training text lacks them, so common text in
# these scripts never collapses into <unk> (e.g. katakana loanwords are rare in the UDHR). Everything in the
# training text is kept anyway (character_coverage=1.0); CJK ideographs and Hangul syllables are too many
# to force, and the training text covers the common ones.
_REQUIRED_CHAR_RANGES: tuple[tuple[int, int], ...] = (
    (0x21, 0x7E),  # printable ASCII (space becomes the ▁ meta symbol)
    (0xC0, 0x17F),  # Latin-1 letters and Latin Extended-A
    (0x391, 0x3C9),  # Greek
    (0x401, 0x45F),  # Cyrillic
    (0x621, 0x64A),  # Arabic letters
    (0x3041, 0x3096),  # hiragana
    (0x30A1, 0x30FC),  # katakana incl. the long-vowel mark
)

# Used in addition to the UDHR texts when no training texts are given, and alone when the shared corpus
# folder is missing (a fresh clone): enough to give every major script a few multi-character pieces.
_BUILTIN_SAMPLE = """\
The quick brown fox jumps over the lazy dog. Search engines split documents into passages, embed every \
passage as a vector and compare it with the query. Hello world! This report describes the quarterly \
budget, the meeting notes from Monday and the invoice that was sent on 12 March 2024.
Die Suche nach Dokumenten auf dem eigenen Rechner sollte schnell und zuverlässig sein. Der Bericht über \
das Wetter in München enthält Tabellen, Zahlen und eine kurze Zusammenfassung für die Geschäftsführung.
La recherche de documents sur un ordinateur personnel doit être rapide et fiable. Le rapport décrit les \
résultats de l'année, les dépenses prévues et les réunions à venir à Paris et à Lyon.
Поиск документов на компьютере должен быть быстрым и надёжным. В отчёте описаны результаты года, \
планируемые расходы и ближайшие встречи в Москве. Привет, мир!
يجب أن يكون البحث عن المستندات على الحاسوب سريعًا وموثوقًا. يصف التقرير نتائج العام والنفقات المخطط لها \
والاجتماعات القادمة. مرحبا بالعالم! هذا نص عربي قصير للتجربة.
在个人电脑上搜索文档应该既快速又可靠。这份报告介绍了今年的结果、计划中的支出以及下周的会议安排。\
你好，世界！我们使用向量检索和关键词匹配来查找相关的段落。中华人民共和国的经济、社会、文化和教育都在\
发展。国家政府发布了新的法律和规定，每个人都有工作和学习的权利。
パソコンの中の文書を検索するのは、速くて信頼できるものであるべきです。この報告書には今年の結果と\
来週の会議の予定が書かれています。こんにちは、世界！日本語のテキストを検索します。テキスト、ファイル、\
データ、システム、コンピューター。
개인 컴퓨터에서 문서를 검색하는 일은 빠르고 믿을 수 있어야 합니다. 이 보고서는 올해의 결과와 다음 주 \
회의 일정을 설명합니다. 안녕하세요, 세계! 한국어 문장을 검색합니다.
कंप्यूटर पर दस्तावेज़ों की खोज तेज़ और भरोसेमंद होनी चाहिए। इस रिपोर्ट में इस साल के परिणाम और अगले सप्ताह \
की बैठकों का विवरण है। नमस्ते दुनिया! हिंदी में एक छोटा सा पाठ।
Η αναζήτηση εγγράφων στον υπολογιστή πρέπει να είναι γρήγορη και αξιόπιστη. Η αναφορά περιγράφει τα \
αποτελέσματα της χρονιάς και τις επόμενες συναντήσεις στην Αθήνα. Γεια σου, κόσμε!
"""

_CORPUS_ENV_VAR = "DESKTOP_SEARCH_SHARED_CORPUS"
_UDHR_FOLDER = "multilingual_text_udhr"


def find_udhr_dir() -> Path | None:
    """Return the shared UDHR corpus folder, or None when this checkout has none.

    ``$DESKTOP_SEARCH_SHARED_CORPUS`` (the ``corpus`` folder) wins; otherwise every ancestor of this file
    is tried for ``shared/corpus/multilingual_text_udhr``, which finds both ``<repo>/shared`` and a
    ``shared`` folder next to the repository.
    """
    env = os.environ.get(_CORPUS_ENV_VAR)
    if env:
        candidate = Path(env).expanduser() / _UDHR_FOLDER
        if candidate.is_dir():
            return candidate
    for ancestor in Path(__file__).resolve().parents:
        candidate = ancestor / "shared" / "corpus" / _UDHR_FOLDER
        if candidate.is_dir():
            return candidate
    return None


def _default_training_texts() -> list[str]:
    texts: list[str] = []
    udhr = find_udhr_dir()
    if udhr is not None:
        # SOURCE.txt is English provenance metadata, not corpus text; sorted for a deterministic vocabulary.
        for path in sorted(udhr.rglob("*.txt")):
            if path.name.upper() != "SOURCE.TXT":
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
    texts.append(_BUILTIN_SAMPLE)
    return texts


def _training_lines(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            for start in range(0, len(line), _MAX_LINE_CHARS):
                yield line[start : start + _MAX_LINE_CHARS]


def _required_chars() -> str:
    chars = (chr(c) for lo, hi in _REQUIRED_CHAR_RANGES for c in range(lo, hi + 1))
    # Only characters that survive NFKC unchanged can ever reach the model (e.g. ligatures would not).
    return "".join(c for c in chars if unicodedata.category(c)[0] in "LNPS" and unicodedata.normalize("NFKC", c) == c)


def _train_sentencepiece(lines: list[str], vocab_size: int) -> bytes:
    """Train a Unigram SentencePiece model laid out like XLM-R's ``sentencepiece.bpe.model``."""
    import sentencepiece as spm

    # Every required character is a piece of its own, plus the three spm meta pieces.
    minimum = len(_required_chars()) + 3
    if vocab_size < minimum:
        raise ValueError(f"vocab_size must be at least {minimum} (the always-included characters), not {vocab_size}")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            model_type="unigram",
            vocab_size=vocab_size,
            # A soft limit: the built-in sample alone cannot fill 8000 pieces, and that must not be an error.
            hard_vocab_limit=False,
            character_coverage=1.0,
            required_chars=_required_chars(),
            normalization_rule_name="nmt_nfkc",
            # XLM-R's spm ids: <unk>=0, <s>=1, </s>=2, no pad; the HF ids are spm ids + 1 (fairseq offset).
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            byte_fallback=False,
            split_digits=False,
            max_sentence_length=_MAX_SENTENCE_BYTES,
            # The EM sums are reduced per thread; a fixed count keeps the vocabulary identical across machines.
            num_threads=2,
            minloglevel=2,  # the trainer logs every EM step to stderr otherwise
        )
    except RuntimeError as error:  # e.g. more distinct characters in the texts than vocab_size allows
        raise ValueError(f"SentencePiece cannot train a {vocab_size}-piece vocabulary: {error}") from error
    return model.getvalue()


def _build_tokenizer(spm_model: bytes):  # -> transformers.XLMRobertaTokenizerFast
    """Convert the SentencePiece model to the tokenizer.json pipeline the real BGE-M3 ships."""
    from sentencepiece import sentencepiece_model_pb2
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import XLMRobertaTokenizerFast

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(spm_model)
    # Same mapping as transformers' XLMRobertaConverter: spm pieces 0-2 (<unk>, <s>, </s>) are replaced by
    # the four fairseq specials, so every normal piece gets id spm_id + 1, and <mask> is appended.
    vocab = [(BOS, 0.0), (PAD, 0.0), (EOS, 0.0), (UNK, 0.0)]
    vocab += [(piece.piece, piece.score) for piece in proto.pieces[3:]]
    vocab.append((MASK, 0.0))

    backend = Tokenizer(Unigram(vocab, unk_id=3, byte_fallback=False))
    backend.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),  # nmt_nfkc
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        pair=f"{BOS} $A {EOS} {EOS} $B {EOS}",
        special_tokens=[(BOS, 0), (EOS, 2)],
    )
    specials = [AddedToken(t, special=True, normalized=False) for t in (BOS, PAD, EOS, UNK)]
    # XLM-R's <mask> eats the space before it so "a <mask>" fills in like "a▁word".
    specials.append(AddedToken(MASK, special=True, normalized=False, lstrip=True))
    backend.add_special_tokens(specials)

    return XLMRobertaTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        sep_token=EOS,
        cls_token=BOS,
        unk_token=UNK,
        pad_token=PAD,
        mask_token=AddedToken(MASK, special=True, normalized=False, lstrip=True),
        model_max_length=MODEL_MAX_LENGTH,
    )


def _reinit_encoder(model) -> None:  # model: transformers.XLMRobertaModel
    """Re-draw the encoder's weights with the scales described at _STD_FACTORS."""
    import torch

    base = model.config.hidden_size**-0.5
    std = {name: factor * base for name, factor in _STD_FACTORS.items()}
    pad = model.config.pad_token_id
    with torch.no_grad():
        emb = model.embeddings
        emb.word_embeddings.weight.normal_(0.0, std["word_embeddings"])
        emb.position_embeddings.weight.normal_(0.0, std["position_embeddings"])
        # Both tables use pad_token_id as padding_idx; keep those rows zero like transformers' own init.
        emb.word_embeddings.weight[pad].zero_()
        emb.position_embeddings.weight[pad].zero_()
        emb.token_type_embeddings.weight.zero_()  # a constant shared by all tokens: only blurs them
        # Deep random post-LN transformers collapse all tokens of a text onto one vector (each layer mixes
        # them); shrinking the branches' output projections with depth (GPT-2 style) keeps the 24-layer model
        # as token-distinct as the 2-layer one, which is the reference (factor 1 at 2 layers).
        depth = (2 / model.config.num_hidden_layers) ** 0.5
        for layer in model.encoder.layer:
            attention = layer.attention
            for linear, scale in (
                (attention.self.query, std["attention"]),
                (attention.self.key, std["attention"]),
                (attention.self.value, std["attention"]),
                (attention.output.dense, std["attention"] * depth),
                (layer.intermediate.dense, std["ffn"]),
                (layer.output.dense, std["ffn"] * depth),
            ):
                linear.weight.normal_(0.0, scale)
                linear.bias.zero_()


def _calibrate_sparse_bias(model, tokenizer, sparse_linear) -> None:
    """Set sparse_linear's bias so that _SPARSE_POSITIVE_SHARE of ordinary probe tokens get weight > 0."""
    import torch

    probe = [line for line in _BUILTIN_SAMPLE.splitlines() if line.strip()]
    batch = tokenizer(probe, padding=True, truncation=True, max_length=_CALIBRATION_MAX_TOKENS, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
        logits = torch.nn.functional.linear(hidden, sparse_linear.weight)[..., 0]
    # FlagEmbedding drops <s>, </s>, <pad> and <unk> from the lexical weights, so they do not count here.
    ordinary = batch["attention_mask"].bool() & (batch["input_ids"] > 3)
    threshold = torch.quantile(logits[ordinary].double(), 1.0 - _SPARSE_POSITIVE_SHARE).item()
    with torch.no_grad():
        # Rounded so that last-bit differences between CPUs' matmul kernels do not change the saved weights.
        sparse_linear.bias.fill_(round(-threshold, 3))


def _write_special_tokens_map(out_dir: Path) -> None:
    """Write special_tokens_map.json in the format of the real repo (transformers 5 no longer writes it)."""
    import json

    def token(content: str, lstrip: bool = False) -> dict[str, object]:
        return {"content": content, "lstrip": lstrip, "normalized": False, "rstrip": False, "single_word": False}

    mapping = {
        "bos_token": token(BOS),
        "cls_token": token(BOS),
        "eos_token": token(EOS),
        "mask_token": token(MASK, lstrip=True),
        "pad_token": token(PAD),
        "sep_token": token(EOS),
        "unk_token": token(UNK),
    }
    (out_dir / "special_tokens_map.json").write_text(json.dumps(mapping, indent=2) + "\n", encoding="utf-8")


def build_random_bge_m3(
    out_dir: Path,
    *,
    size: Literal["tiny", "full"] = "tiny",
    seed: int = 0,
    training_texts: Iterable[str] | None = None,
    vocab_size: int | None = None,
) -> Path:
    """Write a random-weight BGE-M3 look-alike to ``out_dir`` and return its path.

    Args:
        out_dir: target directory; created if missing. Files of a previous build are overwritten.
        size: ``"tiny"`` (hidden 64, 2 layers; the model vocabulary is the trained tokenizer's) or
            ``"full"`` (the real 24-layer, 1024-wide architecture with the real 250002-row embedding).
        seed: seeds the weights; the same seed (and texts) gives byte-identical weights and tokenizer.
            The caller's global torch RNG state is left untouched.
        training_texts: texts to train the tokenizer on. Default: the shared UDHR corpus (34 languages)
            when it can be found (see :func:`find_udhr_dir`) plus a small built-in multilingual sample.
        vocab_size: target number of SentencePiece pieces (default 8000); the tokenizer has two more ids
            (<pad>, <mask>). A soft limit: a small corpus yields fewer. It must exceed the number of
            distinct characters, i.e. ~650 always-included Latin/Greek/Cyrillic/Arabic/kana characters plus
            those of the texts (~2.5k with the UDHR); ValueError otherwise.

    Returns:
        ``out_dir``, loadable with ``BGEM3FlagModel(str(out_dir), devices="cpu")``.
    """
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    if size not in _ARCHITECTURES:
        raise ValueError(f"size must be 'tiny' or 'full', not {size!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    texts = _default_training_texts() if training_texts is None else list(training_texts)
    lines = [line for line in _training_lines(texts) if line]
    if not lines:
        raise ValueError("training_texts contains no non-blank text to train the tokenizer on")
    spm_model = _train_sentencepiece(lines, vocab_size or DEFAULT_TOKENIZER_VOCAB)
    tokenizer = _build_tokenizer(spm_model)
    n_tokens = len(tokenizer)  # pieces + <pad> + <mask>

    model_vocab = n_tokens if size == "tiny" else REAL_VOCAB_SIZE
    if n_tokens > model_vocab:  # only possible for "full" with an absurd vocab_size
        raise ValueError(f"tokenizer has {n_tokens} tokens but the model only {model_vocab} embeddings")

    config = XLMRobertaConfig(
        vocab_size=model_vocab,
        **_ARCHITECTURES[size],
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=MAX_POSITION_EMBEDDINGS,
        type_vocab_size=1,
        initializer_range=_INIT_STD,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        architectures=["XLMRobertaModel"],
        dtype="float32",  # recorded like the real config.json ("torch_dtype" in transformers 4)
    )

    # fork_rng: seeding must not change the random stream of the test session / caller.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = XLMRobertaModel(config)  # add_pooling_layer=True, like AutoModel on the real checkpoint
        model.eval()
        _reinit_encoder(model)
        hidden = config.hidden_size
        colbert_linear = torch.nn.Linear(hidden, hidden)
        sparse_linear = torch.nn.Linear(hidden, 1)
        with torch.no_grad():
            colbert_linear.weight.normal_(mean=0.0, std=_INIT_STD)  # its output is L2-normalised: scale is moot
            sparse_linear.weight.normal_(mean=0.0, std=_SPARSE_LOGIT_STD / hidden**0.5)
            colbert_linear.bias.zero_()
            sparse_linear.bias.zero_()  # set by _calibrate_sparse_bias below
    _calibrate_sparse_bias(model, tokenizer, sparse_linear)

    # from_pretrained prefers model.safetensors over pytorch_model.bin: remove a previous build's weights so
    # a rebuild into the same directory cannot load stale ones.
    for stale in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin.index.json"):
        (out_dir / stale).unlink(missing_ok=True)
    # The real repo ships a torch pickle named pytorch_model.bin. transformers 5 always writes
    # model.safetensors from save_pretrained (safe_serialization=False is silently swallowed by **kwargs), so
    # the state dict is saved by hand; its keys ("embeddings.word_embeddings.weight", ...) are the ones
    # XLMRobertaModel.from_pretrained expects, as in the real checkpoint.
    config.save_pretrained(out_dir)
    torch.save(model.state_dict(), out_dir / "pytorch_model.bin")
    torch.save(colbert_linear.state_dict(), out_dir / "colbert_linear.pt")
    torch.save(sparse_linear.state_dict(), out_dir / "sparse_linear.pt")

    tokenizer.save_pretrained(out_dir)
    (out_dir / "sentencepiece.bpe.model").write_bytes(spm_model)
    _write_special_tokens_map(out_dir)
    return out_dir


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m desktop_search.devtools.random_bge_m3",
        description="Build a random-weight BGE-M3-shaped model directory (for tests and benchmarks).",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", choices=sorted(_ARCHITECTURES), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--vocab-size", type=int, default=None, help=f"tokenizer pieces (default {DEFAULT_TOKENIZER_VOCAB})"
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    out = build_random_bge_m3(args.out_dir, size=args.size, seed=args.seed, vocab_size=args.vocab_size)
    elapsed = time.perf_counter() - start
    size_bytes = _dir_size(out)
    print(f"{out.resolve()}\t{size_bytes / 2**20:.1f} MiB ({size_bytes} bytes)\tbuilt in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
