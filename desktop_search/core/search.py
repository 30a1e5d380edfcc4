"""Query -> ranked hits, one per file: BM25 first, then hybrid dense + sparse, then a ColBERT MaxSim rerank.

The keyword stage analyses the query as chunks were analysed (``core/analysis.py``) and asks the store for every
chunk it matches, as many as it takes for ``k`` files to pass the filters: quoted phrases and ``-exclusions`` are
part of the full-text query, then checked word by word on the text; a word that matches nothing is retried with
typo tolerance and the result says which query it shows. A question or a pasted passage (``query.is_prose``)
is plain text: no phrase or exclusion operators, and its function words are left out of the BM25 query.
Candidates for the semantic stages are the union of dense nearest neighbours, BGE-M3 lexical-weight (sparse)
matches and the BM25 matches, filtered by the same phrase and exclusion checks. Every candidate gets exact dense (dot of unit vectors) and sparse (sum of weight
products over shared token ids) scores; the best ``rerank_k`` by their weighted mix are rescored with ColBERT
MaxSim (mean over query tokens of the best passage-token similarity). Their weighted average is FlagEmbedding's
``BGEM3FlagModel.compute_score(..., weights_for_different_modes=[w_dense, w_sparse, w_colbert])``, reported as
``scores["hybrid"]``; the final score fuses that ranking with the BM25 one (see :class:`Searcher`).
``stages()`` yields the intermediate rankings so a window can show keyword hits at once and refine them.
"""

from __future__ import annotations

import dataclasses
import threading
import unicodedata
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, NamedTuple

import numpy as np

from desktop_search.config import FUSIONS, SearchMode, setting_default
from desktop_search.core import analysis
from desktop_search.core.query import _CJK_RE, ParsedQuery, SearchFilter, parse_query  # noqa: F401 (re-exported)
from desktop_search.core.store import KeywordQuery, Store, dequantize_colbert_many

SNIPPET_CHARS = 240
MARK_OPEN, MARK_CLOSE = "**", "**"

Stage = Literal["keyword", "hybrid", "reranked"]
# The per-mode scores ``search --json`` reports (README); ``Hit.scores`` may also carry the fusion's ``hybrid``.
JSON_SCORES = ("dense", "sparse", "colbert", "bm25")


Row = dict[str, Any]  # a chunk row as the store reads it (a ref from chunk_refs has only id, path, text_hash)
Keep = Callable[[str], bool]  # the result filter on a path (query.SearchFilter.matcher)
_QueryVectors = tuple[np.ndarray, dict[int, float], np.ndarray]  # the query's dense, lexical weights, ColBERT


@dataclass(frozen=True)
class ModeScores:
    """A passage's score in each retrieval mode (None: not computed for it, e.g. dense in keyword mode), and for
    a reranked passage the hybrid score it was ranked by before fusion."""

    dense: float | None = None
    sparse: float | None = None
    colbert: float | None = None
    bm25: float | None = None
    hybrid: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        """The ``scores`` of a hit (``hybrid`` only where it was computed)."""
        out = {"dense": self.dense, "sparse": self.sparse, "colbert": self.colbert, "bm25": self.bm25}
        if self.hybrid is not None:
            out["hybrid"] = self.hybrid
        return out


class Candidate(NamedTuple):
    """A chunk row with the score it is ranked by and its per-mode scores."""

    score: float
    row: Row
    scores: ModeScores


@dataclass
class Hit:
    path: str
    page: int | None
    text: str
    snippet: str
    score: float
    scores: dict[str, float | None]
    char_start: int
    char_end: int
    chunk_id: str
    more: int = 0  # other chunks of the same file that matched
    others: list["Hit"] = field(default_factory=list)  # the best few of those, best first

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "page": self.page,
            "text": self.text,
            "snippet": self.snippet,
            "score": self.score,
            "scores": {mode: self.scores.get(mode) for mode in JSON_SCORES},
            "more_matches": self.more,
            "char_start": self.char_start,
            "char_end": self.char_end,
        }


@dataclass
class SearchResult:
    query: str
    mode: SearchMode
    stage: Stage
    hits: list[Hit] = field(default_factory=list)
    corrected: str | None = None  # typo fallback: the query the hits are for ("showing results for ...")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "mode": self.mode, "hits": [h.as_json() for h in self.hits]}
        if self.corrected is not None:
            out["corrected"] = self.corrected
        return out


def make_snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS, lang: str = analysis.UNKNOWN) -> str:
    """A window of ``text`` around the densest cluster of matched words, marked ``**like this**``. Words match as
    search matches them (:func:`analysis.highlight_spans`: whole words, stems in ``lang``, accents folded, no
    stop words)."""
    words = [t.text for term in terms for t in analysis.tokens(term)]
    spans = analysis.highlight_spans(text, words, lang)
    spans.sort()
    if spans:
        best_i, best_n = 0, 0
        for i, (a, _b) in enumerate(spans):
            n = sum(1 for s, _ in spans[i:] if s < a + width)
            if n > best_n:
                best_i, best_n = i, n
        lo = max(0, spans[best_i][0] - width // 4)
    else:
        lo = 0
    hi = min(len(text), lo + width)
    lo = max(0, min(lo, hi - width))
    if lo > 0:  # start at a word boundary
        sp = text.find(" ", lo, lo + 20)
        lo = sp + 1 if sp >= 0 else lo
    parts: list[str] = []
    pos = lo
    for a, b in spans:
        if a < lo or b > hi:
            continue
        parts.append(text[pos:a])
        parts.append(MARK_OPEN + text[a:b] + MARK_CLOSE)
        pos = b
    parts.append(text[pos:hi])
    body = " ".join("".join(parts).split())
    return ("… " if lo > 0 else "") + body + (" …" if hi < len(text) else "")


def colbert_maxsim(q: np.ndarray, p: np.ndarray) -> float:
    """FlagEmbedding's colbert_score: for each query token its best passage token, averaged over the query."""
    if len(q) == 0 or len(p) == 0:
        return 0.0
    return float((q @ p.T).max(axis=1).sum() / q.shape[0])


def colbert_maxsim_many(q: np.ndarray, passages: list[np.ndarray]) -> np.ndarray:
    """:func:`colbert_maxsim` for many passages with one matrix product over all their tokens."""
    if not passages:
        return np.zeros(0, np.float32)
    return colbert_maxsim_concat(q, np.concatenate(passages), np.array([len(p) for p in passages], np.int64))


def colbert_maxsim_concat(q: np.ndarray, tokens: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """:func:`colbert_maxsim` for passages given as one matrix of all their tokens and each one's token count."""
    scores = np.zeros(len(sizes), np.float32)
    if len(q) == 0 or not sizes.sum():
        return scores
    sim = q @ tokens.T  # (query tokens, all passage tokens)
    starts = np.concatenate([[0], np.cumsum(sizes[sizes > 0])[:-1]])
    scores[sizes > 0] = np.maximum.reduceat(sim, starts, axis=1).sum(axis=0) / q.shape[0]
    return scores


def lexical_score(q: dict[int, float], ids: list[int], weights: list[float]) -> float:
    """FlagEmbedding's compute_lexical_matching_score for one stored passage."""
    return float(sum(w * q[i] for i, w in zip(ids, weights) if i in q))


_helper_pool: ThreadPoolExecutor | None = None
_helper_lock = threading.Lock()


def _helper() -> ThreadPoolExecutor:
    """One thread for the semantic half of searches: queries queue there instead of competing for the cores."""
    global _helper_pool
    with _helper_lock:
        if _helper_pool is None:
            _helper_pool = ThreadPoolExecutor(1, thread_name_prefix="search-candidates")
        return _helper_pool


def shutdown_helper(wait: bool = True) -> None:
    """Stop the helper thread (the window's shutdown, the end of a test): queued jobs are cancelled, a running
    one finishes when ``wait``. A later search starts a new helper."""
    global _helper_pool
    with _helper_lock:
        pool, _helper_pool = _helper_pool, None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)


@dataclass
class KeywordMatches:
    """A query's keyword side: the analysed query, the language it was analysed in and the matching chunks
    (complete rows, best BM25 first, every one passing the phrase and exclusion checks)."""

    kq: KeywordQuery
    lang: str
    rows: list[Row] = field(default_factory=list)
    corrected: str | None = None  # the query as corrected by the typo fallback


SECONDARY_LANGUAGE_BOOST = 0.3
TYPO_MAX_WORDS = 4  # typo fallback for typed searches of up to this many words


class Searcher:
    """Answers queries over one Store; the encoder is optional (keyword-only without a model).

    Final hybrid ranking (``fusion="rrf"``, the default): reciprocal-rank fusion of the semantic ranking
    (FlagEmbedding's weighted dense + sparse + ColBERT score) and the keyword (BM25) ranking,
    ``score = 1 / (rrf_k + semantic rank) + keyword_weight / (rrf_k + BM25 rank)`` (a ranking a chunk is absent
    from adds nothing), so a chunk that BM25 ranks first for a rare exact term or a quoted phrase stays near the
    top whatever the model thinks of it. The per-mode scores reported with each hit stay FlagEmbedding's.
    ``fusion="none"``: the semantic score alone, keyword-only matches after it in BM25 order.
    """

    def __init__(
        self,
        store: Store,
        encoder: Any | None = None,
        *,
        weights: tuple[float, float, float] = setting_default("weights"),
        candidates_per_mode: int = setting_default("candidates_per_mode"),
        rerank_k: int = setting_default("rerank_k"),
        fusion: str = "rrf",
        rrf_k: int = 60,
        keyword_weight: float = 1.0,
        chunk_sum_weight: float = 0.0,
    ) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
        self.store = store
        self.encoder = encoder
        self.weights = weights
        self.candidates_per_mode = candidates_per_mode
        self.rerank_k = rerank_k
        self.fusion = fusion
        self.rrf_k = rrf_k
        self.keyword_weight = keyword_weight
        self.chunk_sum_weight = chunk_sum_weight
        self._query_cache: OrderedDict[str, _QueryVectors] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def semantic_ready(self) -> bool:
        return self.encoder is not None and self.store.count_vectors() > 0

    def search(self, query: str, k: int = 10, mode: SearchMode = "hybrid", flt: SearchFilter | None = None) -> SearchResult:
        last = None
        for last in self.stages(query, k, mode, flt):
            pass
        assert last is not None
        return last

    def stages(
        self, query: str, k: int = 10, mode: SearchMode = "hybrid", flt: SearchFilter | None = None
    ) -> Iterator[SearchResult]:
        """Keyword result first; in hybrid mode then the hybrid ranking and the ColBERT-reranked one."""
        pq = parse_query(unicodedata.normalize("NFC", query))  # indexed text is NFC too (extract.py)
        semantic = mode != "keyword" and self.encoder is not None
        # The query encoding and the dense and lexical-weight candidates (numpy with one BLAS thread, the
        # encoder) run on a helper thread while BM25 runs in LanceDB here, and later the rerank set's vectors
        # are read there while the hybrid stage's chunks are read here: on 2 cores the reranked stage arrives
        # ~10 ms sooner at 100k chunks, for ~3 ms on the keyword stage.
        early = _helper().submit(self._semantic_candidates, pq.text) if semantic and pq.text else None
        pending: list[Future[Any]] = [early] if early is not None else []
        snippets: dict[str, str] = {}  # the stages show mostly the same chunks: each snippet is made once
        try:
            keep = (flt or SearchFilter()).matcher(self.store)
            kw = self.keyword_matches(pq, k, keep)
            if not semantic:
                yield self._keyword_result(query, pq, kw, k, keep, snippets=snippets)
                return
            yield self._keyword_result(query, pq, kw, k, keep, mode="hybrid", snippets=snippets)
            yield from self._semantic(query, pq, kw, k, keep, early, pending, snippets)
        finally:
            for job in pending:  # an abandoned search waits for its helper jobs: no work outlives it
                if not job.cancel():
                    job.exception()

    # -- keyword ----------------------------------------------------------------------------------------
    def analyse_query(self, pq: ParsedQuery) -> tuple[KeywordQuery, str]:
        """The parsed query in index keys, in each language the index holds enough of (see
        ``Store.query_languages``), and the language it most likely is in (for corrections and snippets)."""
        langs = self.store.query_languages(pq.text) if pq.text else [analysis.UNKNOWN]
        text = analysis.strip_stop_runs(pq.text, langs[0]) if pq.prose else pq.text
        if not text.strip():
            text = pq.text
        should = [key for lang in langs for key in analysis.query_keys(text, lang)]
        # A key counts as often as the query says it (long queries repeat what matters, as BM25's sum over query
        # terms does); keys only another language of the index gives count less: the query is most likely in
        # langs[0]. A question or a pasted passage leaves out its function words (they match nearly every
        # passage and, repeated, outweigh the words that matter: +0.03 nDCG@10 on CISI, see benchmarks/README).
        stop = analysis.stop_keys(langs[0]) if pq.prose else frozenset()
        if stop and all(key in stop for key in should):
            stop = frozenset()
        should = [key for key in should if key not in stop]
        boosts: dict[str, float] = {}
        for key in analysis.analyse(text, langs[0]):
            if key not in stop:
                boosts[key] = boosts.get(key, 0.0) + 1.0
        for key in should:
            boosts.setdefault(key, SECONDARY_LANGUAGE_BOOST)
        phrases = []
        for p in pq.phrases:
            alternatives = tuple(dict.fromkeys(t for t in (tuple(analysis.analyse(p, lang)) for lang in langs) if t))
            if alternatives:
                phrases.append(alternatives)
        kq = KeywordQuery(
            should=tuple(dict.fromkeys(should)),
            boosts=boosts,
            phrases=tuple(phrases),
            excluded=tuple(dict.fromkeys(x for w in pq.excluded for lang in langs for x in analysis.exclusion_keys(w, lang))),
            raw=tuple(pq.text.split()),
        )
        return kq, langs[0]

    def keyword_matches(self, pq: ParsedQuery, k: int, keep: Keep) -> KeywordMatches:
        """Chunks matching the query by BM25, enough of them for ``k`` files to pass the filters (the fetch grows
        until it has them or the matches run out); a word with no match at all is retried with typo tolerance."""
        kq, lang = self.analyse_query(pq)
        kw = KeywordMatches(kq, lang)
        if not (kq.should or kq.phrases):
            return kw
        kw.rows = self._fetch(pq, kq, lang, k, keep)
        fuzzy = self._typo_keys(kq, kw.rows)
        if fuzzy:
            fuzzy_kq = dataclasses.replace(kq, fuzzy=fuzzy)
            rows = self._fetch(pq, fuzzy_kq, lang, k, keep)
            corrected = self._corrected(pq, lang, fuzzy, rows)
            if rows and corrected is not None:
                kw.kq, kw.rows, kw.corrected = fuzzy_kq, rows, corrected
        return kw

    def _fetch(self, pq: ParsedQuery, kq: KeywordQuery, lang: str, k: int, keep: Keep) -> list[Row]:
        limit = max(self.candidates_per_mode, 4 * k)
        while True:
            rows = self.store.keyword_rows(kq, limit)
            good = [r for r in rows if self._passes(pq, kq, lang, r)]
            files = {r["path"] for r in good if keep(r["path"])}
            if len(files) >= k or len(rows) < limit:
                return good
            limit *= 4

    def _typo_keys(self, kq: KeywordQuery, rows: list[Row]) -> dict[str, int]:
        """Query keys that match nothing in the index and are long enough for typo tolerance -> edits allowed."""
        if not self.store.has_terms or len(set(analysis.analyse(" ".join(kq.raw), "und"))) > TYPO_MAX_WORDS:
            return {}  # a pasted question or passage: a word it has that the index lacks is no typo to fix
        seen: set[str] = set()
        for r in rows[:50]:
            seen.update((r.get("terms") or "").split())
        out: dict[str, int] = {}
        for key in kq.should:
            edits = analysis.fuzziness_for(key)
            if (edits and "_" not in key and key not in seen and not analysis.is_unsegmented(key)
                    and not self.store.has_key(key)):
                out[key] = edits
        return out

    @staticmethod
    def _corrected(pq: ParsedQuery, lang: str, fuzzy: dict[str, int], rows: list[Row]) -> str | None:
        """The query with each typo replaced by the word the fuzzy matches found most often."""
        replacement: dict[str, str] = {}
        for key, edits in fuzzy.items():
            counts: dict[str, int] = {}
            for r in rows[:20]:
                for t in set((r.get("terms") or "").split()):
                    if t != key and abs(len(t) - len(key)) <= edits and analysis.edit_distance(t, key, edits) <= edits:
                        counts[t] = counts.get(t, 0) + 1
            if not counts:
                continue
            best = max(counts, key=lambda t: counts[t])
            word = analysis.word_for_key(best, [r["text"] for r in rows[:20]], lang)
            if word:
                replacement[key] = word
        if not replacement:
            return None
        words = []
        for w in pq.text.split():
            keys = analysis.query_keys(w, lang)
            words.append(replacement.get(keys[0], w) if len(keys) == 1 else w)
        return " ".join(words)

    def _keyword_result(
        self, query: str, pq: ParsedQuery, kw: KeywordMatches, k: int, keep: Keep, mode: SearchMode = "keyword",
        snippets: dict[str, str] | None = None,
    ) -> SearchResult:
        scored = []
        for r, s in zip(kw.rows, self._file_scores(kw.rows)):
            scored.append(Candidate(s, r, ModeScores(bm25=float(r.get("_score") or 0.0))))
        hits = self._group(scored, pq, k, keep, snippets=snippets, lang=kw.lang, corrected=kw.corrected)
        return SearchResult(query, mode, "keyword", hits, corrected=kw.corrected)

    def _file_scores(self, rows: list[Row]) -> list[float]:
        """Each chunk's score for ranking files: a file's best chunk gets the file's score, its best chunk's BM25
        plus ``chunk_sum_weight`` times the BM25 of its other matching chunks (a document cut into chunks spreads
        the query's words over them; see benchmarks/bench_quality.py), other chunks keep their own."""
        own = [float(r.get("_score") or 0.0) for r in rows]
        if not self.chunk_sum_weight:
            return own
        best: dict[str, int] = {}
        extra: dict[str, float] = {}
        for i, r in enumerate(rows):
            p = r["path"]
            if p not in best or own[i] > own[best[p]]:
                if p in best:
                    extra[p] = extra.get(p, 0.0) + own[best[p]]
                best[p] = i
            else:
                extra[p] = extra.get(p, 0.0) + own[i]
        out = list(own)
        for p, i in best.items():
            out[i] = own[i] + self.chunk_sum_weight * extra.get(p, 0.0)
        return out

    # -- semantic ---------------------------------------------------------------------------------------
    def _encode_query(self, text: str) -> _QueryVectors:
        with self._cache_lock:
            if text in self._query_cache:
                self._query_cache.move_to_end(text)
                return self._query_cache[text]
        assert self.encoder is not None, "semantic search without an encoder"
        enc = self.encoder.encode_query(text)
        q = (enc.dense[0], enc.sparse[0], enc.colbert[0])
        with self._cache_lock:
            self._query_cache[text] = q
            while len(self._query_cache) > 128:
                self._query_cache.popitem(last=False)
        return q

    def _semantic_candidates(self, text: str) -> tuple[np.ndarray, dict[int, float], np.ndarray, dict[str, None]]:
        """The query's three encodings and its dense and lexical-weight candidates (on the helper thread)."""
        q_dense, q_sparse, q_colbert = self._encode_query(text)
        n = self.candidates_per_mode
        candidates: dict[str, None] = dict.fromkeys(self.store.dense_neighbours(q_dense, n))
        candidates.update(dict.fromkeys(self.store.sparse_neighbours(q_sparse, n)))
        return q_dense, q_sparse, q_colbert, candidates

    def _fuse(self, semantic: list[Candidate], keyword_rows: list[Row], unencoded: list[Candidate]) -> list[Candidate]:
        """The final ordering of semantically scored chunks and keyword matches (see the class docstring); with
        ``fusion="none"`` the semantic order, then the keyword matches that have no vectors yet."""
        if self.fusion == "none":
            return semantic
        k = self.rrf_k
        kw_rank = {r["id"]: i for i, r in enumerate(keyword_rows, 1)}
        fused: dict[str, Candidate] = {}
        for i, (_s, r, sc) in enumerate(sorted(semantic, key=lambda t: t[0], reverse=True), 1):
            kr = kw_rank.get(r["id"])
            score = 1.0 / (k + i) + (self.keyword_weight / (k + kr) if kr else 0.0)
            fused[r["id"]] = Candidate(score, r, sc)
        for _s, r, sc in unencoded:
            if r["id"] not in fused and r["id"] in kw_rank:
                fused[r["id"]] = Candidate(self.keyword_weight / (k + kw_rank[r["id"]]), r, sc)
        return list(fused.values())

    def _semantic(
        self, query: str, pq: ParsedQuery, kw: KeywordMatches, k: int, keep: Keep, early: Future[Any] | None,
        pending: list[Future[Any]], snippets: dict[str, str],
    ) -> Iterator[SearchResult]:
        keyword_rows = kw.rows
        if early is None:
            yield SearchResult(query, "hybrid", "reranked", [], corrected=kw.corrected)
            return
        q_dense, q_sparse, q_colbert, candidates = early.result()
        bm25_by_chunk = {r["id"]: float(r.get("_score") or 0.0) for r in keyword_rows}
        candidates.update(dict.fromkeys(r["text_hash"] for r in keyword_rows))
        if not candidates:
            yield SearchResult(query, "hybrid", "reranked", [], corrected=kw.corrected)
            return
        wd, ws, wc = self.weights
        hashes = list(candidates)
        dense_s = self.store.dense_scores(q_dense, hashes)  # NaN: no vectors stored for that text (yet)
        have = ~np.isnan(dense_s)
        hashes = [h for h, ok in zip(hashes, have.tolist()) if ok]
        sparse_s = self.store.lexical_scores(q_sparse, hashes)
        pre: dict[str, tuple[float, float, float]] = {}
        for h, d, s in zip(hashes, dense_s[have].tolist(), sparse_s.tolist()):
            mix = (wd * d + ws * s) / (wd + ws) if wd + ws > 0 else 0.0
            pre[h] = (mix, d, s)
        # Candidates are grouped per file from the chunk map in memory (id, path); only the chunks shown are
        # read in full. Phrase and exclusion filters need every candidate's text, so they read them all.
        if pq.phrases or pq.excluded:
            chunk_rows = self.store.chunks_for_hashes(list(candidates))
        else:
            by_id = {r["id"]: r for r in keyword_rows}  # BM25 rows are complete already
            chunk_rows = [by_id.get(r["id"], r) for r in self.store.chunk_refs(list(candidates))]
        chunk_rows = [r for r in chunk_rows if "text" not in r or self._passes(pq, kw.kq, kw.lang, r)]
        complete = self._completer()

        hybrid_scored: list[Candidate] = []
        for r in chunk_rows:
            if r["text_hash"] not in pre:
                continue
            mix, d, s = pre[r["text_hash"]]
            hybrid_scored.append(Candidate(mix, r, ModeScores(d, s, None, bm25_by_chunk.get(r["id"]))))
        # Keyword matches whose text has no vectors yet (indexed before the model was ready, encoding still
        # catching up) stay in the list: fused by their BM25 rank, or after the semantically scored ones in BM25
        # order without fusion; a refinement must never make a visible match disappear.
        unencoded = [
            Candidate(0.0, r, ModeScores(bm25=bm25_by_chunk.get(r["id"])))
            for r in keyword_rows
            if r["text_hash"] not in pre
        ]
        tail = unencoded if self.fusion == "none" else None
        rerank_n = max(self.rerank_k, 2 * k)
        top = sorted(pre, key=lambda h: pre[h][0], reverse=True)[:rerank_n]
        # The reranked stage shows chunks of ``top`` only: read them with the hybrid stage's, in one go.
        top_set = set(top)
        prefetch = [r for r in chunk_rows if r["text_hash"] in top_set]
        # Exact dense vectors with the ColBERT ones (large indexes rank candidates with an int8 copy in RAM),
        # read on the helper thread while the hybrid stage reads its chunks and is shown.
        col_job = _helper().submit(self.store.vector_rows, top, ["dense", "colbert", "colbert_scale"])
        pending.append(col_job)
        yield SearchResult(
            query, "hybrid", "hybrid",
            self._group(
                self._fuse(hybrid_scored, keyword_rows, unencoded), pq, k, keep, tail=tail, complete=complete,
                prefetch=prefetch, snippets=snippets, lang=kw.lang,
            ),
            corrected=kw.corrected,
        )

        colrows = col_job.result()
        dim = self.store.dim or len(q_dense)
        q_col = np.asarray(q_colbert, np.float32)
        final: dict[str, tuple[float, float, float, float]] = {}
        ranked = [h for h in top if h in colrows]
        col_scores = colbert_maxsim_concat(
            q_col, *dequantize_colbert_many([(colrows[h]["colbert"], colrows[h]["colbert_scale"]) for h in ranked], dim)
        )
        exact_d = (
            np.asarray([colrows[h]["dense"] for h in ranked], np.float32) @ np.asarray(q_dense, np.float32)
            if ranked else np.zeros(0, np.float32)
        )
        for h, c, d in zip(ranked, col_scores.tolist(), exact_d.tolist()):
            _mix, _d, s = pre[h]
            total = (wd * d + ws * s + wc * c) / (wd + ws + wc)
            final[h] = (total, d, s, c)
        reranked: list[Candidate] = []
        for r in chunk_rows:
            if r["text_hash"] not in final:
                continue
            total, d, s, c = final[r["text_hash"]]
            reranked.append(Candidate(total, r, ModeScores(d, s, c, bm25_by_chunk.get(r["id"]), hybrid=total)))
        # Keyword matches outside the reranked set keep their hybrid-stage scores for fusion.
        in_final = {r["id"] for _t, r, _sc in reranked}
        kw_ids = set(bm25_by_chunk)
        kw_outside = [t for t in hybrid_scored if t[1]["id"] in kw_ids and t[1]["id"] not in in_final]
        yield SearchResult(
            query, "hybrid", "reranked",
            self._group(
                self._fuse(reranked, keyword_rows, unencoded + kw_outside), pq, k, keep, extra=hybrid_scored,
                tail=tail, complete=complete, snippets=snippets, lang=kw.lang,
            ),
            corrected=kw.corrected,
        )

    def _completer(self) -> Callable[[list[Row]], dict[str, Row]]:
        """rows -> the same rows with text, page and offsets, read once per search (stages share them)."""
        done: dict[str, Row] = {}

        def complete(rows: list[Row]) -> dict[str, Row]:
            todo = [r for r in rows if "text" not in r and r["id"] not in done]
            if todo:
                done.update((r["id"], r) for r in self.store.chunk_rows_for_refs(todo))
            return done

        return complete

    # -- shared -----------------------------------------------------------------------------------------
    @staticmethod
    def _passes(pq: ParsedQuery, kq: KeywordQuery, lang: str, row: Row) -> bool:
        """Every quoted phrase is in the chunk as words in a row (across line breaks, line-end hyphenation,
        punctuation, case and accents) and no excluded word or its stem is."""
        text = row["text"]
        if any(not analysis.contains_phrase(text, p) for p in pq.phrases):
            return False
        if not kq.excluded:
            return True
        terms = row.get("terms")
        if not terms:
            terms = " ".join(analysis.index_keys(text, row.get("lang") or lang))
        keys = set(terms.split())
        padded = f" {terms} "  # an exclusion of several keys (Chinese/Japanese text) excludes them in a row
        return not any(f" {x} " in padded if " " in x else x in keys for x in kq.excluded)

    def _group(
        self, scored: list[Candidate], pq: ParsedQuery, k: int, keep: Keep, extra: list[Candidate] | None = None,
        tail: list[Candidate] | None = None, complete: Callable[[list[Row]], dict[str, Row]] | None = None,
        prefetch: list[Row] | None = None, snippets: dict[str, str] | None = None,
        lang: str = analysis.UNKNOWN, corrected: str | None = None,
    ) -> list[Hit]:
        """Best chunk per file, sorted by score; ``more`` counts that file's other matching chunks. Rows without
        text (chunk refs) are completed by ``complete`` only if they are shown."""
        scored = sorted((t for t in scored if keep(t[1]["path"])), key=lambda t: t[0], reverse=True)
        scored += [t for t in (tail or []) if keep(t[1]["path"])]  # after all scored ones, order kept
        matched: dict[str, set[str]] = {}
        for _s, r, _sc in [*scored, *(extra or [])]:
            matched.setdefault(r["path"], set()).add(r["id"])
        chosen: dict[str, list[Candidate]] = {}  # path -> best chunk, then up to 5 others
        for t in scored:
            path = t[1]["path"]
            if path in chosen:
                group = chosen[path]
                if len(group) < 6 and t[1]["id"] != group[0][1]["id"]:
                    group.append(t)
            elif len(chosen) < k:
                chosen[path] = [t]
        full = complete([t[1] for group in chosen.values() for t in group] + (prefetch or [])) if complete else {}
        terms = pq.terms if corrected is None else parse_query(corrected).terms
        snippets = {} if snippets is None else snippets  # chunk id -> snippet, shared by a search's stages
        hits: list[Hit] = []
        for path, group in chosen.items():
            made = [self._hit(r if "text" in r else full[r["id"]], s, sc, terms, snippets) for s, r, sc in group
                    if "text" in r or r["id"] in full]
            if not made:
                continue
            best, *others = made
            best.others = others
            best.more = len(matched[path]) - 1
            hits.append(best)
        return hits

    @staticmethod
    def _hit(r: Row, s: float, sc: ModeScores, terms: list[str], snippets: dict[str, str]) -> Hit:
        snippet = snippets.get(r["id"])
        if snippet is None:
            snippet = snippets[r["id"]] = make_snippet(r["text"], terms, lang=r.get("lang") or analysis.UNKNOWN)
        return Hit(
            path=r["path"],
            page=r["page"],
            text=r["text"],
            snippet=snippet,
            score=float(s),
            scores=sc.as_dict(),
            char_start=r["char_start"],
            char_end=r["char_end"],
            chunk_id=r["id"],
        )
