"""The keyword (BM25) side of the chunks table: analysed ``lang``/``terms`` columns, their full-text index and the
LanceDB full-text queries built from an analysed query.

Chunks are analysed before they are written (``core/analysis.py``: language, stems, folding, identifier parts) and
the full-text index reads the analysed ``terms`` column; its ICU tokenizer only splits at spaces and segments runs
of Thai-like text (Chinese and Japanese arrive as character-pair keys already). A query arrives as a
:class:`KeywordQuery` of the same keys: should-keys rank by BM25, phrases and exclusions are clauses of the same
full-text query, so they hold over the whole index rather than over a first page of results.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from desktop_search.core import analysis

__all__ = ["FTS_INDEX", "KeywordQuery", "fts_config", "fulltext_query", "with_terms"]

FTS_INDEX = "text_terms_fts"  # BM25 over the analysed ``terms`` column


@dataclass(frozen=True)
class KeywordQuery:
    """An analysed keyword query (keys from core/analysis.py): ``should`` keys rank by BM25 (weighted by
    ``boosts``, default 1); each phrase is a set of alternative key sequences (one per language the query was
    analysed in), one of which must occur; no chunk with an ``excluded`` key is returned (an entry of several keys
    joined by spaces, Chinese/Japanese text, excludes them in a row); ``fuzzy`` gives keys that may match with that
    many edits (typo fallback)."""

    should: tuple[str, ...] = ()
    boosts: dict[str, float] = dataclasses.field(default_factory=dict)
    phrases: tuple[tuple[tuple[str, ...], ...], ...] = ()
    excluded: tuple[str, ...] = ()
    fuzzy: dict[str, int] = dataclasses.field(default_factory=dict)
    raw: tuple[str, ...] = ()  # the words as typed (for an index from before analysis)


def with_terms(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chunk rows with their ``lang`` and ``terms`` (analysed here when the caller did not). A chunk's language
    is its file's (detected on the file's first chunks) unless the chunk itself is clearly in another one."""
    by_path: dict[str, list[str]] = {}
    for r in rows:
        if r.get("terms") is None:
            by_path.setdefault(r["path"], []).append(r["text"])
    file_lang = {path: analysis.detect_language("\n".join(texts)[:3000]) for path, texts in by_path.items()}
    out = []
    for r in rows:
        if r.get("terms") is None:
            lang = r.get("lang") or analysis.chunk_language(r["text"], file_lang[r["path"]])
            r = {**r, "lang": lang, "terms": " ".join(analysis.index_keys(r["text"], lang))}
        out.append(r)
    return out


def fts_config() -> Any:
    """The full-text index on ``terms``: the keys are analysed already, so ICU only splits them at spaces and
    segments the runs of Thai-like text with its dictionaries (no case folding, stemming or stop words here)."""
    from lancedb.index import FTS

    return FTS(
        with_position=True,
        base_tokenizer="icu",
        lower_case=False,
        stem=False,
        remove_stop_words=False,
        ascii_folding=False,
        max_token_length=60,
    )


def fulltext_query(kq: KeywordQuery) -> Any:
    """The LanceDB full-text query for ``kq`` over the ``terms`` column."""
    from lancedb.query import BooleanQuery, MatchQuery, Occur, PhraseQuery

    clauses: list[tuple[Any, Any]] = []
    for key in kq.should:
        clauses.append((Occur.SHOULD, MatchQuery(key, "terms", boost=kq.boosts.get(key, 1.0),
                                                 fuzziness=kq.fuzzy.get(key, 0), max_expansions=20)))
    for alternatives in kq.phrases:
        options = [_phrase_clause(words) for words in alternatives]
        clauses.append((Occur.MUST, options[0] if len(options) == 1 else
                        BooleanQuery([(Occur.SHOULD, o) for o in options])))
    for key in kq.excluded:
        clauses.append((Occur.MUST_NOT, PhraseQuery(key, "terms") if " " in key else MatchQuery(key, "terms")))
    return clauses[0][1] if len(clauses) == 1 else BooleanQuery(clauses)


def _phrase_clause(words: Sequence[str]) -> Any:
    """The keys of a phrase in a row; with Chinese/Japanese in it, every character (the phrase itself is then
    checked on the text, across the punctuation and line breaks where the text's bigrams stop)."""
    from lancedb.query import BooleanQuery, MatchQuery, Occur, PhraseQuery

    if not any(analysis.is_cjk_key(w) for w in words):
        return PhraseQuery(" ".join(words), "terms")
    keys = analysis.phrase_filter_keys(words)
    return BooleanQuery([(Occur.MUST, MatchQuery(k, "terms")) for k in keys])
