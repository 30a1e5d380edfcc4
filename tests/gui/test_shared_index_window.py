"""The window connected to a shared index in a bucket (moto's S3 server on 127.0.0.1): search only, and results
opened and previewed through the path mapping, with a clear message for a file this machine cannot reach."""

from __future__ import annotations

import shutil
from pathlib import Path

from desktop_search.core.location import IndexLocation
from desktop_search.gui import opener
from desktop_search.gui.prefs import Key
from tests.gui.test_main_window import search, shown_paths
from tests.s3_fixtures import aws_keys, s3, shared  # noqa: F401 - fixtures


def index_into_bucket(shared: str, endpoint: str, docs: Path, settings) -> None:
    """What the team's file server does: index its folder into the bucket."""
    from desktop_search.core.indexer import Indexer
    from desktop_search.core.store import Store

    store = Store(IndexLocation.parse(shared, [("endpoint", endpoint)]), create=True)
    report = Indexer(store, settings, None).index([docs])
    assert report.indexed == 7, report


def test_connected_window_searches_and_opens_through_the_path_mapping(
    make_window, qtbot, prefs, tmp_path, docs, settings, s3, shared, aws_keys, monkeypatch
):
    index_into_bucket(shared, s3.endpoint, docs, settings)
    # On this laptop the server's folder is mounted elsewhere: the indexed paths do not exist here.
    mounted = tmp_path / "Volumes" / "docs"
    shutil.move(str(docs), str(mounted))
    prefs.set(Key.SHARED_INDEX, shared)
    prefs.set(Key.STORAGE_OPTIONS, [f"endpoint={s3.endpoint}"])
    prefs.set(Key.PATH_MAP, [f"{docs}={mounted}"])
    prefs.set(Key.REFRESH_S, 1)

    services, window = make_window()
    assert services.shared and services.store.index_dir.uri == shared
    assert not window.add_folder_action.isEnabled() and window.folders_dock.isHidden()
    assert shared in window.windowTitle()

    search(qtbot, window, "sourdough")
    assert shown_paths(window) == [str(docs / "kitchen" / "bread.md")]  # as the server stored it
    with qtbot.waitSignal(window.preview.rendered, timeout=30_000):
        window.view.setCurrentIndex(window.model.index(0, 0))
    assert "Sourdough bread" in window.preview.text.toPlainText()  # read from the mounted copy

    urls = []
    monkeypatch.setattr(opener.QDesktopServices, "openUrl", lambda url: urls.append(url.toLocalFile()) or True)
    window.open_current()
    assert urls == [str(mounted / "kitchen" / "bread.md")]

    (mounted / "de" / "berlin.txt").unlink()  # gone from the share
    search(qtbot, window, "Hauptstadt")
    with qtbot.waitSignal(window.preview.rendered, timeout=30_000):
        window.view.setCurrentIndex(window.model.index(0, 0))
    assert "not reachable from this machine" in window.preview.message.text()
    window.open_current()
    assert urls == [str(mounted / "kitchen" / "bread.md")]  # nothing launched
    assert "not reachable from this machine" in window.statusBar().currentMessage()
    assert str(mounted / "de" / "berlin.txt") in window.statusBar().currentMessage()


def test_connect_dialog_keeps_no_secret_in_the_settings_file(qtbot, prefs, monkeypatch):
    from desktop_search.gui.shared_dialog import SharedIndexDialog

    monkeypatch.setenv("DESKTOP_SEARCH_NO_KEYCHAIN", "1")  # a machine without a keychain
    dlg = SharedIndexDialog(prefs)
    qtbot.addWidget(dlg)
    dlg.uri.setText("s3://team-bucket/docs-index/")
    dlg.endpoint.setText("http://minio.lab:9000")
    dlg.allow_http.setChecked(True)
    dlg.path_map.setPlainText("/srv/docs=/Volumes/docs\n")
    dlg.key_id.setText("AKIAEXAMPLE")
    dlg.secret.setText("very-secret")
    dlg.accept()
    assert "no keychain" in dlg.error.text() and not prefs.get(Key.SHARED_INDEX)  # refused, dialog stays open

    dlg.key_id.clear()
    dlg.secret.clear()
    dlg.accept()
    assert prefs.get(Key.SHARED_INDEX) == "s3://team-bucket/docs-index"
    assert prefs.get(Key.STORAGE_OPTIONS) == ["allow_http=true", "endpoint=http://minio.lab:9000"]
    assert prefs.get(Key.PATH_MAP) == ["/srv/docs=/Volumes/docs"]
    assert "very-secret" not in prefs.path.read_text("utf-8")
    settings = prefs.to_settings()
    assert settings.index_uri == "s3://team-bucket/docs-index" and settings.paths.to_local("/srv/docs/a.pdf") == "/Volumes/docs/a.pdf"
