"""Chunking: budgets hold in real model tokens, offsets point at the exact text, CJK works, pages are kept."""

from __future__ import annotations

import re

import pytest

from desktop_search.core.chunk import EstimatedTokenSpans, HFTokenSpans, chunk_pages, token_spans_for
from desktop_search.core.extract import Page

LANGS = ["eng", "deu", "rus", "arb", "cmn_hans", "jpn", "kor", "hin", "tha", "heb"]


@pytest.fixture(scope="module")
def counter(tiny_model_dir):
    return HFTokenSpans(tiny_model_dir / "tokenizer.json")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def udhr(corpus, lang: str) -> str:
    return (corpus / "multilingual_text_udhr" / "udhr2" / f"{lang}.txt").read_text("utf-8")


@pytest.mark.parametrize("lang", LANGS)
def test_chunks_fit_the_budget_in_model_tokens_and_cover_the_text(corpus, counter, tokenizer, lang):
    text = udhr(corpus, lang)
    page = Page(number=3, text=text)
    chunks = chunk_pages([page], counter, max_tokens=128, overlap_tokens=16)
    assert len(chunks) > 3
    covered = [False] * len(text)
    for c in chunks:
        assert c.text == text[c.char_start : c.char_end]
        assert c.page == 3
        # what the encoder will see: the chunk with <s> ... </s>, never truncated
        n_model = len(tokenizer(c.text)["input_ids"])
        assert n_model <= 128, (lang, n_model)
        assert c.n_tokens == n_model
        for i in range(c.char_start, c.char_end):
            covered[i] = True
    missed = "".join(ch for ch, cov in zip(text, covered) if not cov)
    assert missed.strip() == "", f"text left out of every chunk: {missed[:80]!r}"


def test_chunks_end_at_sentence_or_paragraph_boundaries(corpus, counter):
    text = udhr(corpus, "eng")
    chunks = chunk_pages([Page(None, text)], counter, max_tokens=200, overlap_tokens=0)
    ends = [c.text[-1] for c in chunks[:-1]]
    good = sum(1 for c in chunks[:-1] if c.text[-1] in ".;:" or text[c.char_end : c.char_end + 2].startswith("\n"))
    assert good / len(ends) > 0.8, ends


def test_cjk_text_without_spaces_is_chunked_within_budget(counter, tokenizer):
    sentence = "人类社会的所有成员儿有的尊严及其平等的和不移的权利的承认乃是世界自由正义与和平的基础"
    text = sentence * 40  # no spaces, no punctuation: only CJK character boundaries to cut at
    chunks = chunk_pages([Page(1, text)], counter, max_tokens=64, overlap_tokens=8)
    assert len(chunks) > 5
    for c in chunks:
        assert c.text == text[c.char_start : c.char_end]
        assert len(tokenizer(c.text)["input_ids"]) <= 64
    assert chunks[-1].char_end == len(text)


def test_consecutive_chunks_overlap_a_little_and_never_cross_pages(corpus, counter):
    pages = [Page(1, udhr(corpus, "fra")[:6000]), Page(2, udhr(corpus, "deu")[:6000])]
    chunks = chunk_pages(pages, counter, max_tokens=96, overlap_tokens=24)
    assert {c.page for c in chunks} == {1, 2}
    overlaps = 0
    for a, b in zip(chunks, chunks[1:]):
        if a.page == b.page:
            assert b.char_start > a.char_start
            if b.char_start < a.char_end:
                overlaps += 1
                assert len(pages[a.page - 1].text[b.char_start : a.char_end]) < 24 * 8
    assert overlaps > 0
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_estimate_without_a_model_keeps_chunks_under_the_encoder_budget(corpus, tokenizer, tmp_path):
    est = token_spans_for(tmp_path / "no-model")
    assert isinstance(est, EstimatedTokenSpans)
    for lang in ("eng", "rus", "jpn"):
        chunks = chunk_pages([Page(None, udhr(corpus, lang))], est, max_tokens=256)
        for c in chunks:
            assert len(tokenizer(c.text)["input_ids"]) <= 256 * 1.5


def test_empty_and_whitespace_pages_give_no_chunks(counter):
    assert chunk_pages([Page(1, ""), Page(2, "   \n\n  ")], counter) == []


def test_huge_single_page_is_chunked_in_bounded_segments(counter):
    para = "Line of a very long log file with some words in it. " * 8 + "\n"
    text = para * 3000  # ~1.3 MB
    chunks = chunk_pages([Page(None, text)], counter, max_tokens=512)
    assert chunks[-1].char_end == len(text.rstrip())
    assert all(re.search(r"\w", c.text) for c in chunks)
