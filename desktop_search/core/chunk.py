"""Pages of text -> token-budgeted chunks, the unit that is encoded, stored and returned as a hit.

A chunk never crosses a page (so every hit maps to exactly one page for the preview and "open at page") nor a
file. Budgets are counted in the model's own tokens when its tokenizer is installed: the tokenizer's character
offsets say where each token sits, and a chunk ends at the strongest boundary (paragraph > sentence > line >
clause > word > between CJK characters) in the last part of its budget. Without a model a conservative regex
estimate stands in (it over-counts, so a chunk never exceeds the encoder's window later). Offsets are kept so
snippets and the preview can point into the page text, and ``text == page.text[char_start:char_end]`` always.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol, Sequence

from desktop_search.core.extract import Page

# Long pages (a 300 MB log file is one "page") are tokenised in segments so memory stays bounded.
_SEGMENT_CHARS = 100_000
# <s> and </s> are added by the encoder; the chunk budget includes them.
_SPECIAL_TOKENS = 2

_SENTENCE_END = set(".!?;。！？；؟۔।॥…")
_CLAUSE_END = set(",:、，：")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@dataclass(frozen=True)
class Chunk:
    ordinal: int  # position within its file, 0-based
    page: int | None  # 1-based page, None for text files
    char_start: int  # offsets into that page's text
    char_end: int
    text: str
    n_tokens: int  # model tokens including <s> and </s> (estimated when no tokenizer is installed)


class TokenSpans(Protocol):
    """Character spans of the tokens of ``text`` (no special tokens); the tokenizer or an estimate."""

    exact: bool

    def spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]: ...


class HFTokenSpans:
    """Spans from a Hugging Face fast tokenizer file (``tokenizer.json``) via the light `tokenizers` package."""

    exact = True

    def __init__(self, tokenizer_json: Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(tokenizer_json))
        self._tok.no_truncation()
        self._tok.no_padding()

    def spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        out = []
        for enc in encs:
            # Metaspace tokenizers give a lone "▁" token a zero-width span; it still costs a token, so keep it.
            out.append([(s, e) for s, e in enc.offsets])
        return out


class EstimatedTokenSpans:
    """Regex stand-in used before a model is installed: over-counts relative to XLM-R's SentencePiece."""

    exact = False
    # Words cut into 3-character pieces, each CJK character and each other symbol one token: XLM-R averages
    # ~4 characters per token on Latin text, so this errs on the side of smaller chunks.
    _RE = re.compile(
        r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W\d_]{1,3}|\d{1,3}|[^\w\s]",
        re.UNICODE,
    )

    def spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[m.span() for m in self._RE.finditer(t)] for t in texts]


def token_spans_for(model_dir: Path | None) -> TokenSpans:
    """The exact counter when the model's tokenizer is on disk, else the estimate."""
    if model_dir is not None:
        path = Path(model_dir) / "tokenizer.json"
        try:
            st = path.stat()
        except OSError:
            return EstimatedTokenSpans()
        try:
            return _load_spans(str(path), st.st_size, st.st_mtime_ns)
        except Exception:  # a damaged tokenizer file must not stop keyword indexing
            pass
    return EstimatedTokenSpans()


@functools.lru_cache(maxsize=4)
def _load_spans(path: str, _size: int, _mtime_ns: int) -> HFTokenSpans:
    # Every indexing job (each watcher batch too) asks for the counter: the real tokenizer.json is 17 MB,
    # so it is parsed once per file version, not once per job.
    return HFTokenSpans(Path(path))


def _boundary_strength(text: str, prev_end: int, next_start: int) -> float:
    """How good a place it is to end a chunk between the token ending at prev_end and the next one."""
    gap = text[prev_end:next_start]
    last = text[prev_end - 1] if prev_end > 0 else ""
    if "\n" in gap and gap.count("\n") >= 2:
        return 5.0
    if last in _SENTENCE_END and (gap or _CJK_RE.match(last) or last in "。！？；"):
        return 4.0
    if "\n" in gap:
        return 3.0
    if last in _CLAUSE_END:
        return 2.0
    if gap.strip() == "" and gap:
        return 1.0
    nxt = text[next_start] if next_start < len(text) else ""
    if last and nxt and _CJK_RE.match(last) and _CJK_RE.match(nxt):
        return 0.5
    return 0.0


def _segments(text: str) -> Iterable[tuple[int, str]]:
    """Split very long text at paragraph (else line) breaks into pieces of at most ~_SEGMENT_CHARS."""
    start = 0
    n = len(text)
    while start < n:
        end = min(n, start + _SEGMENT_CHARS)
        if end < n:
            cut = text.rfind("\n\n", start + _SEGMENT_CHARS // 2, end)
            if cut < 0:
                cut = text.rfind("\n", start + _SEGMENT_CHARS // 2, end)
            if cut < 0:
                cut = text.rfind(" ", start + _SEGMENT_CHARS // 2, end)
            end = cut + 1 if cut >= 0 else end
        yield start, text[start:end]
        start = end


def _pack(text: str, spans: list[tuple[int, int]], budget: int, overlap: int) -> list[tuple[int, int, int]]:
    """Greedy packing of token spans into (char_start, char_end, n_tokens) windows of <= budget tokens."""
    out: list[tuple[int, int, int]] = []
    n = len(spans)
    i = 0
    while i < n:
        j = min(n, i + budget)
        if j < n:
            # Best boundary in the second half of the window: strongest first, latest among equals.
            best_k, best_s = j, -1.0
            for k in range(j, i + max(1, budget // 2) - 1, -1):
                s = _boundary_strength(text, spans[k - 1][1], spans[k][0])
                if s > best_s:
                    best_k, best_s = k, s
                    if s >= 5.0:
                        break
            j = best_k
        start_c, end_c = spans[i][0], spans[j - 1][1]
        out.append((start_c, end_c, j - i))
        if j >= n:
            break
        # Overlap begins at a word/sentence start inside the last `overlap` tokens, never before i + 1.
        nxt = j
        if overlap > 0:
            lo = max(i + 1, j - overlap)
            for k in range(lo, j):
                if _boundary_strength(text, spans[k - 1][1], spans[k][0]) >= 1.0:
                    nxt = k
                    break
        i = nxt
    return out


def chunk_pages(
    pages: Sequence[Page],
    counter: TokenSpans,
    *,
    max_tokens: int = 512,
    overlap_tokens: int = 48,
    max_chunks: int | None = None,
) -> list[Chunk]:
    """Cut every page into chunks of at most ``max_tokens`` tokens (special tokens included). Raises
    :class:`TooManyChunks` as soon as there would be more than ``max_chunks``, before cutting the rest."""
    budget = max(8, max_tokens - _SPECIAL_TOKENS)
    overlap = min(overlap_tokens, budget // 4)
    chunks: list[Chunk] = []
    for page in pages:
        for base, seg in _segments(page.text):
            spans = counter.spans([seg])[0]
            if not spans:
                continue
            windows = _fit(seg, _pack(seg, spans, budget, overlap), counter, budget)
            for cs, ce, ntok in windows:
                chunks.append(
                    Chunk(
                        ordinal=len(chunks),
                        page=page.number,
                        char_start=base + cs,
                        char_end=base + ce,
                        text=seg[cs:ce],
                        n_tokens=ntok + _SPECIAL_TOKENS,
                    )
                )
            if max_chunks is not None and len(chunks) > max_chunks:
                raise TooManyChunks(max_chunks)
    return chunks


class TooManyChunks(ValueError):
    """A document would make more passages than the per-file limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit:,} passages")
        self.limit = limit


def _trim(seg: str, cs: int, ce: int) -> tuple[int, int]:
    raw = seg[cs:ce]
    return cs + (len(raw) - len(raw.lstrip())), ce - (len(raw) - len(raw.rstrip()))


def _fit(
    seg: str, windows: list[tuple[int, int, int]], counter: TokenSpans, budget: int
) -> list[tuple[int, int, int]]:
    """Trim whitespace, then recount each window on its own: tokenising a piece out of context can differ
    by a token or two from its in-context spans, and the budget must hold for exactly the text encoded."""
    pending = [_trim(seg, cs, ce) for cs, ce, _ in windows]
    out: list[tuple[int, int, int]] = []
    for _ in range(8):
        pending = [(cs, ce) for cs, ce in pending if ce > cs]
        if not pending:
            break
        counts = [len(sp) for sp in counter.spans([seg[cs:ce] for cs, ce in pending])]
        retry: list[tuple[int, int]] = []
        for (cs, ce), n in zip(pending, counts):
            if n <= budget:
                out.append((cs, ce, n))
                continue
            piece = seg[cs:ce]
            sub = _pack(piece, counter.spans([piece])[0], max(4, budget - (n - budget) - 4), 0)
            retry.extend(_trim(seg, cs + a, cs + b) for a, b, _ in sub)
        pending = retry
    else:
        # Pathological tokenisation that never fits: keep the text (the encoder window is far larger than
        # the budget) rather than drop it from the index.
        counts = [len(sp) for sp in counter.spans([seg[cs:ce] for cs, ce in pending])]
        out.extend((cs, ce, n) for (cs, ce), n in zip(pending, counts) if ce > cs)
    out.sort()
    return out
