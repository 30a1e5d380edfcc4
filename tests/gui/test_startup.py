"""Start-up as the user meets it: a query typed while the index is still opening is answered as soon as it is."""

from __future__ import annotations

from pathlib import Path

from tests.gui.conftest import wait_idle


def test_a_query_typed_before_the_index_opens_is_answered_when_it_opens(make_window, qtbot, docs, prefs):
    services, _w = make_window([docs])
    services.index_folders(services.prefs.folders())
    wait_idle(qtbot, services)
    services.shutdown()

    from desktop_search.gui.app import create

    services, window = create(prefs, load_model=False, start=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.keyClicks(window.search_field, "Hauptstadt")
    assert window.docs_label.text() == "opening index…"
    try:
        with qtbot.waitSignal(window.results_shown, timeout=60_000):
            services.start(load_model=False)
        assert [Path(p).name for p in window.model.paths()] == ["berlin.txt"]
        assert "keyword" in window.stage_label.text()
    finally:
        services.shutdown()
        assert services.pools.active() == 0
