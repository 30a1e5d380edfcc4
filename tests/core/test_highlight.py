"""The window's highlighting (core/highlight.py, the keyword analysis' rule) marks whole words, script-aware,
and leaves stop words alone."""

from __future__ import annotations

from desktop_search.core.highlight import highlight_spans, mark
from desktop_search.core.search import make_snippet


def test_whole_words_only_in_space_separated_scripts():
    assert mark("art start artist Art", ["art"]) == "**art** start artist **Art**"
    assert mark("for traceable traces: Trace!", ["trace"]) == "for traceable traces: **Trace**!"
    assert mark("Привет мир, мировой", ["мир"]) == "Привет **мир**, мировой"


def test_stop_words_are_not_marked():
    assert mark("the theory of the trace", ["the", "trace"]) == "the theory of the **trace**"
    assert mark("Die Mauer und die Stadt", ["die", "Mauer"]) == "Die **Mauer** und die Stadt"


def test_scripts_without_spaces_match_inside_runs():
    assert mark("東京タワーは有名です", ["東京", "タワー"]) == "**東京****タワー**は有名です"
    assert mark("ภาษาไทยง่ายมาก", ["ไทย"]) == "ภาษา**ไทย**ง่ายมาก"
    assert mark("서울은 수도", ["서울"]) == "**서울**은 수도"


def test_phrase_terms_mark_their_words_and_spans_never_overlap():
    assert highlight_spans("trace trees grow", ["trace", "trace trees"]) == [(0, 5), (6, 11)]


def test_snippets_use_the_same_rule():
    snippet = make_snippet("Then these theories were traceable. The trace is here.", ["the", "trace"])
    assert "**trace**" in snippet and "**the" not in snippet.lower() and "**trace**able" not in snippet
