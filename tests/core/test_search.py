"""Search: scores equal FlagEmbedding's compute_score, hits are grouped per file with pages and snippets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop_search.core.indexer import Indexer
from desktop_search.core.search import Searcher, make_snippet, parse_query
from desktop_search.core.store import Store, dequantize_colbert, quantize_colbert
from tests.conftest import write

WEIGHTS = (0.4, 0.2, 0.4)

PASSAGES = {
    "a.txt": "The committee approved the new budget for public libraries and schools.",
    "b.txt": "Glaciers in the Alps are melting faster than scientists predicted a decade ago.",
    "c.txt": "Die Bibliothek der Universität bleibt während der Ferien geöffnet.",
    "d.txt": "図書館は午前九時から午後八時まで開いています。",
    "e.txt": "Библиотека открыта с девяти утра до восьми вечера.",
    "f.txt": "مكتبة المدينة مفتوحة من التاسعة صباحا حتى الثامنة مساء.",
}
QUERIES = ["library opening hours", "melting glaciers", "Bibliothek Ferien", "図書館", "библиотека"]


@pytest.fixture
def indexed(settings, tmp_path, tiny_encoder):
    folder = tmp_path / "p"
    for name, text in PASSAGES.items():
        write(folder / name, text)
    store = Store(settings.index_dir)
    Indexer(store, settings, tiny_encoder).index([folder])
    return store, Searcher(store, tiny_encoder, weights=WEIGHTS, candidates_per_mode=50, rerank_k=50)


@pytest.mark.parametrize("storage,colbert_tol", [("int8", 2e-2), ("float16", 2e-3)])
def test_scores_match_flagembedding_compute_score(settings, tmp_path, tiny_encoder, storage, colbert_tol):
    folder = tmp_path / "p"
    for name, text in PASSAGES.items():
        write(folder / name, text)
    s = settings.with_(colbert_storage=storage)
    store = Store(s.index_dir)
    Indexer(store, s, tiny_encoder).index([folder])
    searcher = Searcher(store, tiny_encoder, weights=WEIGHTS, candidates_per_mode=50, rerank_k=50)
    flag = tiny_encoder.flag_model
    checked = 0
    for q in QUERIES:
        hits = searcher.search(q, k=len(PASSAGES)).hits
        assert hits, q
        ref = flag.compute_score([(q, h.text) for h in hits], weights_for_different_modes=list(WEIGHTS))
        for i, h in enumerate(hits):
            assert h.scores["dense"] == pytest.approx(ref["dense"][i], abs=1e-3)
            assert h.scores["sparse"] == pytest.approx(ref["sparse"][i], abs=1e-3)
            assert h.scores["colbert"] == pytest.approx(ref["colbert"][i], abs=colbert_tol)
            # FlagEmbedding's weighted score is reported as it is; the final score fuses it with BM25
            assert h.scores["hybrid"] == pytest.approx(ref["colbert+sparse+dense"][i], abs=colbert_tol)
            checked += 1
    assert checked >= len(QUERIES) * 3


def test_hits_are_sorted_grouped_per_file_and_carry_pages(settings, docs, tiny_encoder):
    store = Store(settings.index_dir)
    Indexer(store, settings, tiny_encoder).index([docs])
    searcher = Searcher(store, tiny_encoder)
    res = searcher.search("quantum entanglement photons", k=10)
    assert res.stage == "reranked" and res.mode == "hybrid"
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h.path for h in res.hits}) == len(res.hits)
    pdf_hit = next(h for h in res.hits if h.path.endswith("observatory.pdf"))
    assert pdf_hit.page == 2
    assert pdf_hit.scores["bm25"] is not None  # found by the keyword stage too
    assert "**entanglement**" in pdf_hit.snippet


def test_stages_arrive_keyword_then_hybrid_then_reranked(indexed):
    _store, searcher = indexed
    stages = [r.stage for r in searcher.stages("library", k=5)]
    assert stages == ["keyword", "hybrid", "reranked"]


class _SlowOrBrokenEncoder:
    """Wraps the tiny encoder: query encodings wait for ``release`` (or fail), and say when they finished."""

    def __init__(self, inner, fail: bool = False) -> None:
        import threading

        self.inner, self.fingerprint, self.dim, self.fail = inner, inner.fingerprint, inner.dim, fail
        self.release, self.finished = threading.Event(), threading.Event()

    def encode_query(self, text):
        try:
            self.release.wait(10)
            if self.fail:
                raise RuntimeError("the encoder broke")
            return self.inner.encode_query(text)
        finally:
            self.finished.set()


def test_keyword_stage_does_not_wait_for_the_query_encoder(indexed, tiny_encoder):
    store, _searcher = indexed
    slow = _SlowOrBrokenEncoder(tiny_encoder)
    stages = Searcher(store, slow, weights=WEIGHTS).stages("budget", k=5)
    first = next(stages)  # the encoder is still blocked: BM25 alone answers
    assert first.stage == "keyword" and [Path(h.path).name for h in first.hits] == ["a.txt"]
    assert not slow.finished.is_set()
    slow.release.set()
    assert [r.stage for r in stages] == ["hybrid", "reranked"]


def test_an_abandoned_search_leaves_no_work_running_and_encoder_errors_come_after_the_keyword_stage(
    indexed, tiny_encoder
):
    store, _searcher = indexed
    slow = _SlowOrBrokenEncoder(tiny_encoder)
    stages = Searcher(store, slow, weights=WEIGHTS).stages("library", k=5)
    next(stages)
    slow.release.set()
    stages.close()  # the window moved on to a newer query
    assert slow.finished.is_set()
    broken = _SlowOrBrokenEncoder(tiny_encoder, fail=True)
    broken.release.set()
    stages = Searcher(store, broken, weights=WEIGHTS).stages("budget", k=5)
    assert next(stages).hits  # keyword hits still shown
    with pytest.raises(RuntimeError, match="the encoder broke"):
        next(stages)


def test_keyword_search_finds_cjk_arabic_and_cyrillic_words(settings, docs):
    store = Store(settings.index_dir)
    Indexer(store, settings, None).index([docs])
    s = Searcher(store, None)
    for query, expected in [("東京タワー", "tokyo.txt"), ("النيل", "cairo.txt"), ("Кремль", "moscow.txt"), ("Hauptstadt", "berlin.txt")]:
        hits = s.search(query, mode="keyword").hits
        assert hits and hits[0].path.endswith(expected), (query, [h.path for h in hits])
        assert hits[0].scores["bm25"] > 0 and hits[0].scores["dense"] is None


def test_phrase_and_exclusion_syntax(settings, tmp_path):
    folder = tmp_path / "q"
    write(folder / "one.txt", "red apple pie with cinnamon")
    write(folder / "two.txt", "apple red wine and cheese")
    write(folder / "three.txt", "red apple juice")
    store = Store(settings.index_dir)
    Indexer(store, settings, None).index([folder])
    s = Searcher(store, None)
    names = lambda q: sorted(Path(h.path).name for h in s.search(q, mode="keyword").hits)
    assert names("apple") == ["one.txt", "three.txt", "two.txt"]
    assert names('"red apple"') == ["one.txt", "three.txt"]
    assert names('"red apple" -juice') == ["one.txt"]


def test_more_matches_in_the_same_file_are_counted(settings, tmp_path):
    folder = tmp_path / "m"
    para = "Bees pollinate flowers in the meadow. " * 30
    write(folder / "bees.txt", "\n\n".join([para] * 6))
    store = Store(settings.with_(chunk_tokens=64, chunk_overlap_tokens=0).index_dir)
    Indexer(store, settings.with_(chunk_tokens=64, chunk_overlap_tokens=0), None).index([folder])
    hits = Searcher(store, None).search("pollinate", mode="keyword").hits
    assert len(hits) == 1 and hits[0].more >= 5


def test_snippet_marks_terms_and_windows_long_text():
    text = "intro " * 100 + "the telescope measured entanglement here" + " outro" * 100
    snip = make_snippet(text, ["entanglement", "telescope"])
    assert "**telescope**" in snip and "**entanglement**" in snip
    assert snip.startswith("… ") and snip.endswith(" …") and len(snip) < 300
    assert make_snippet("start of the art", ["art"]) == "start of the **art**"


def test_parse_query():
    pq = parse_query('"exact phrase" free words -notthis')
    assert pq.phrases == ("exact phrase",) and pq.excluded == ("notthis",)
    assert pq.text == "exact phrase free words"
    assert not pq.prose
    # a typed question or a pasted passage is text: its quotes and hyphens are punctuation
    for prose in ('Who was called "the Methodists" at Oxford?', "大熊猫吃什么？",
                  'It is shown that "distances" between authors -- co-citations -- map the field of science well'):
        pq = parse_query(prose)
        assert pq.prose and pq.phrases == () and pq.excluded == () and '"' not in pq.text
    assert parse_query('"the Methodists?"').phrases == ("the Methodists?",)


def test_int8_colbert_storage_keeps_vectors_close():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 64)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    blob, scale = quantize_colbert(v, "int8")
    assert len(blob) == 50 * 64
    back = dequantize_colbert(blob, scale, 64)
    assert np.abs(back - v).max() < 0.01


def test_keyword_hits_without_vectors_stay_visible_in_semantic_stages(settings, docs, tiny_encoder):
    """While encoding catches up (model installed after keyword indexing), refining must not drop matches."""
    store = Store(settings.index_dir)
    Indexer(store, settings, None).index([docs])  # keyword only: no vectors yet
    searcher = Searcher(store, tiny_encoder)
    stages = {r.stage: r for r in searcher.stages("Hauptstadt", k=5)}
    for stage in ("keyword", "hybrid", "reranked"):
        assert [Path(h.path).name for h in stages[stage].hits] == ["berlin.txt"], stage
    assert stages["reranked"].hits[0].scores["dense"] is None and stages["reranked"].hits[0].scores["bm25"] > 0
