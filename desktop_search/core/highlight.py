"""Query terms -> the character spans to highlight in a text: snippets (search.py), the text preview and the
words on a rendered PDF page (render.py) all ask this one function, so they mark the same things.

Whole words only in scripts that separate words with spaces (``the`` marks "the", never "then" or "these");
in scripts without spaces between words (Chinese, Japanese, Korean, Thai, Lao, Khmer, Myanmar) a term marks
wherever it occurs. Common function words ("the", "of", "und", "les"…) are not marked when the query has other
words to mark; a query made only of them still marks them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

# Scripts written without spaces between words: a term is matched inside longer runs of them.
_NO_SPACE_RE = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)

STOP_WORDS = frozenset(
    # English
    "a an and are as at be but by for from has have he her his if in into is it its of on or our she so than that "
    "the their them then there these they this those to was we were what when which who will with you your "
    # German
    "aber als am auch auf aus bei das dass dem den der des die ein eine einem einen einer eines er es für ist "
    "im in mit nicht noch oder sich sie sind und von vom zu zum zur "
    # French
    "au aux avec ce ces dans de des du elle en est et il ils la le les leur mais ne on ou par pas pour qu que qui "
    "sa se ses son sur un une "
    # Spanish, Italian, Portuguese
    "al como con del el ella es esta este las los más para por se su sus una y "
    "che di gli il nel per sono una della dei delle "
    "ao os as da das do dos em na nas no nos um uma é "
    # Dutch
    "de een het en van op te dat die zijn niet met voor "
    # Russian
    "и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было "
    "вот от меня еще нет о из ему для".split()
)


def significant_terms(terms: Sequence[str]) -> list[str]:
    """``terms`` without stop words, unless nothing else would be left."""
    kept = [t for t in terms if t.casefold() not in STOP_WORDS]
    return kept if kept else list(terms)


@lru_cache(maxsize=256)
def _pattern(term: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(part) for part in term.split())
    # A word character on either side would make this part of a longer word. Terms in scripts without
    # spaces only need that check on their space-delimited ends (e.g. a Latin acronym inside a Thai text).
    head = "" if _NO_SPACE_RE.match(term[0]) else r"(?<![^\W_])"
    tail = "" if _NO_SPACE_RE.match(term[-1]) else r"(?![^\W_])"
    return re.compile(head + body + tail, re.IGNORECASE)


def highlight_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ``(start, end)`` spans of ``text`` to highlight for ``terms`` (longer terms win)."""
    spans: list[tuple[int, int]] = []
    for term in sorted({t.strip() for t in significant_terms(terms) if t.strip()}, key=len, reverse=True):
        for m in _pattern(term).finditer(text):
            a, b = m.span()
            if a < b and not any(x < b and a < y for x, y in spans):
                spans.append((a, b))
    return sorted(spans)


def mark(text: str, terms: Sequence[str], open_mark: str = "**", close_mark: str = "**") -> str:
    """``text`` with each highlighted span wrapped in the marks."""
    out, pos = [], 0
    for a, b in highlight_spans(text, terms):
        out += [text[pos:a], open_mark, text[a:b], close_mark]
        pos = b
    out.append(text[pos:])
    return "".join(out)
