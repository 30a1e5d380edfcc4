"""The results list as a user reads it at the default window size: heading line over a readable snippet,
"+N more" that matches the expansion, whole-word highlights, and a layout remembered between launches."""

from __future__ import annotations

from PySide6.QtGui import QFontMetrics

from desktop_search.core.search import Hit, SearchResult
from desktop_search.gui.results import COL_RESULT, HEADING_ROLE, SNIPPET_HTML_ROLE, ResultDelegate
from tests.gui.test_main_window import indexed_window, search


def _hit(path: str, page: int, snippet: str, others=(), more: int = 0) -> Hit:
    return Hit(path, page, snippet.replace("**", ""), snippet, 1.0, {}, 0, 10, f"{path}:{page}", more, list(others))


def test_results_are_readable_at_the_default_window_size(make_window, qtbot, docs):
    _s, window = indexed_window(make_window, qtbot, docs)
    window.show()
    qtbot.waitExposed(window)
    assert (window.width(), window.height()) == (1280, 800)
    search(qtbot, window, "Hauptstadt")
    index = window.model.index(0, COL_RESULT)
    rect = window.view.visualRect(index)
    line = QFontMetrics(window.view.font()).height()
    # a snippet column wide enough for whole sentences, and the snippet on lines of its own under the name
    assert rect.width() >= 400
    assert rect.height() >= 3 * line
    name, details, count = index.data(HEADING_ROLE)
    assert name == "berlin.txt" and details  # the modification date
    html = index.data(SNIPPET_HTML_ROLE)
    assert "<span" in html and ">Hauptstadt</span>" in html


def test_more_count_agrees_with_the_expansion_and_never_hides_the_name(make_window, qtbot, docs):
    _s, window = make_window()
    long_name = "/docs/A rather long report name about tracing JIT compilers (final).pdf"
    others = [_hit(long_name, p, f"page {p} **trace**") for p in (3, 7, 9)]
    window._current_seq = 1
    window._on_stage(1, SearchResult("trace", "hybrid", "reranked", [_hit(long_name, 1, "**trace**", others, more=100)]))
    top = window.model.index(0, COL_RESULT)
    name, _details, count = top.data(HEADING_ROLE)
    assert count == "+3 more" and window.model.rowCount(top) == 3
    assert [window.model.index(r, 0, top).data(HEADING_ROLE)[1] for r in range(3)] == ["page 3", "page 7", "page 9"]
    font = window.view.font()
    width = QFontMetrics(font).horizontalAdvance(name) * 2  # a result column with room to spare
    assert ResultDelegate.shown_name(top.data(HEADING_ROLE), width, font) == name
    # a narrow column elides the name in the middle (extension kept); the count is drawn separately
    narrow = ResultDelegate.shown_name(top.data(HEADING_ROLE), 220, font)
    assert "…" in narrow and narrow.endswith(".pdf") and "+3" not in narrow


def test_highlights_mark_whole_words_without_stop_words(make_window, qtbot, docs):
    from tests.conftest import write

    write(docs / "en" / "theory.txt", "Then these theories of the trace were traceable: the trace trees.")
    _s, window = indexed_window(make_window, qtbot, docs)
    search(qtbot, window, "the trace")
    row = [p.rsplit("/", 1)[-1] for p in window.model.paths()].index("theory.txt")
    html = window.model.index(row, COL_RESULT).data(SNIPPET_HTML_ROLE)
    marked = [part.split("</span>")[0].rsplit(">", 1)[-1] for part in html.split("<span")[1:]]
    assert marked == ["trace", "trace"]  # not "the", "Then", "these", "theories" or "traceable"


def test_window_size_splitter_and_columns_are_remembered(make_window, qtbot, prefs):
    _s, window = make_window()
    window.show()
    window.resize(760, 560)  # within the offscreen screen (800x600): restoreGeometry fits windows to it
    window.splitter.setSizes([300, 200])
    window.view.setColumnWidth(1, 230)
    sizes = window.splitter.sizes()
    window.close()
    _s2, again = make_window()
    again.show()
    qtbot.waitExposed(again)
    assert (again.width(), again.height()) == (760, 560)
    assert again.splitter.sizes() == sizes
    assert again.view.columnWidth(1) == 230


def test_a_match_late_in_a_long_snippet_is_on_the_lines_shown(make_window, qtbot):
    _s, window = make_window()
    window.show()
    qtbot.waitExposed(window)
    late = ("REGARDING THE INFORMATION PROVIDED. THE CREATORS DISCLAIM LIABILITY FOR ANY DAMAGES RESULTING FROM ITS "
            "USE. THIS WORK IS AVAILABLE UNDER A CREATIVE COMMONS ATTRIBUTION SHARE-ALIKE LICENSE. SOME **RIGHTS** "
            "RESERVED. BUILDING SECTION A3.1")
    early = ("Universal Declaration of **Human** **Rights** Preamble Whereas recognition of the inherent dignity and "
             "of the equal and inalienable rights of all members of the human family is the foundation of freedom")
    window._current_seq = 1
    window._on_stage(1, SearchResult("human rights", "keyword", "keyword",
                                     [_hit("/d/brotli.pdf", 19, late), _hit("/d/udhr.txt", 0, early)]))
    font = window.view.font()
    width = window.view.visualRect(window.model.index(0, COL_RESULT)).width() - 2 * ResultDelegate.PAD
    # At the default window size the passage's first two lines end before "RIGHTS" (a snippet without a marked
    # term is drawn from its start): the marked one starts nearer its match instead.
    assert "RIGHTS" not in ResultDelegate.visible_text(late.replace("**", ""), width, font)
    shown = ResultDelegate.visible_text(late, width, font)
    assert shown.startswith("… ") and "SOME RIGHTS RESERVED" in shown
    # A match already on the lines shown leaves the snippet as it is.
    assert ResultDelegate.visible_text(early, width, font).startswith("Universal Declaration of Human Rights")
    window.view.viewport().grab()  # painting lays the rows out the same way (and must not fail doing it)
