"""Query terms -> the character spans to highlight in a text, for the window's views: the text preview, the
page's text view and the words boxed on a rendered PDF page (render.py). Snippets (search.py) use the same
rule, so a word marked in a result is the word marked in its preview.

The rule is the keyword analysis' (:func:`analysis.highlight_spans`): whole words (``the`` never marks "then"),
accents folded and stems matched in a known language, Chinese/Japanese/Korean/Thai runs matched inside longer
runs (no spaces between words there), stop words left out.
"""

from __future__ import annotations

from typing import Sequence

from desktop_search.core import analysis


def highlight_spans(text: str, terms: Sequence[str], lang: str = analysis.UNKNOWN) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ``(start, end)`` spans of ``text`` to highlight for the query's ``terms``."""
    words = [t.text for term in terms for t in analysis.tokens(term)]
    return analysis.highlight_spans(text, words, lang)


def mark(text: str, terms: Sequence[str], open_mark: str = "**", close_mark: str = "**") -> str:
    """``text`` with each highlighted span wrapped in the marks."""
    out, pos = [], 0
    for a, b in highlight_spans(text, terms):
        out += [text[pos:a], open_mark, text[a:b], close_mark]
        pos = b
    out.append(text[pos:])
    return "".join(out)
