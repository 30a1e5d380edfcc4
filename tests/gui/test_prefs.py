"""Preferences: typed keys, defaults that are the core's own, and values that survive the INI round trip."""

from __future__ import annotations

import pytest

from desktop_search import config
from desktop_search.gui.prefs import Key, Prefs


def test_a_fresh_window_uses_the_same_settings_as_the_command_line(tmp_path):
    assert Prefs(tmp_path / "p.ini").to_settings() == config.load_settings()


def test_every_key_round_trips_through_the_ini_file(tmp_path):
    path = tmp_path / "p.ini"
    values = {Key.WEIGHTS: [0.5, 0.25, 0.25], Key.CHUNK_TOKENS: 256, Key.SHOW_SCORES: True,
              Key.DEVICE: "cpu", Key.PATH_MAP: ["/srv/docs=/Volumes/docs"], Key.WINDOW_GEOMETRY: b"\x01\xff"}
    writer = Prefs(path)
    for key, value in values.items():
        writer.set(key, value)
    reader = Prefs(path)  # a new process reading the file
    assert {key: reader.get(key) for key in values} == values
    assert "chunk_tokens=256" in path.read_text()  # the INI names are the keys' values


def test_only_key_members_name_a_preference(tmp_path):
    prefs = Prefs(tmp_path / "p.ini")
    with pytest.raises(AttributeError):
        prefs.get(Key.COLOUR)  # type: ignore[attr-defined]  # a typo fails where it is written
    for name in ("colour", "chunk_tokens"):  # a string is refused, even a key's INI name
        with pytest.raises(TypeError, match="Key members"):
            prefs.get(name)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Key members"):
            prefs.set(name, "blue")  # type: ignore[arg-type]
    assert set(Prefs.DEFAULTS) == set(Key)
