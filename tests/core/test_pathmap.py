"""Path mapping: paths stored by the machine that indexed a shared index, as this machine reaches them."""

from __future__ import annotations

import pytest

from desktop_search.core.pathmap import PathMap, parse_rules
from tests.conftest import write


def test_longest_matching_prefix_wins_on_whole_components():
    pm = PathMap(parse_rules("/srv/docs=/Volumes/docs;/srv/docs/legal=/Volumes/legal"))
    assert pm.to_local("/srv/docs/a/b.pdf") == "/Volumes/docs/a/b.pdf"
    assert pm.to_local("/srv/docs/legal/c.pdf") == "/Volumes/legal/c.pdf"
    assert pm.to_local("/srv/docs2/x.txt") == "/srv/docs2/x.txt"  # not a component match
    assert pm.to_local("/home/me/x.txt") == "/home/me/x.txt"


def test_windows_targets_take_backslashes():
    pm = PathMap(parse_rules(["/srv/docs=\\\\fileserver\\docs", "/data=D:\\data"]))
    assert pm.to_local("/srv/docs/Reports 2024/q1.pdf") == "\\\\fileserver\\docs\\Reports 2024\\q1.pdf"
    assert pm.to_local("/data/x.txt") == "D:\\data\\x.txt"


def test_locate_finds_the_mapped_file_or_says_why_not(tmp_path):
    local = write(tmp_path / "mnt" / "docs" / "a.txt", "hello")
    pm = PathMap(((str("/srv/docs"), str(tmp_path / "mnt" / "docs")),))
    found = pm.locate("/srv/docs/a.txt")
    assert found.problem is None and found.local == str(local)
    missing = pm.locate("/srv/docs/gone.txt")
    assert "not reachable from this machine" in missing.problem and str(tmp_path / "mnt" / "docs" / "gone.txt") in missing.problem
    unmapped = pm.locate("/elsewhere/x.txt")
    assert "no path mapping applies" in unmapped.problem


@pytest.mark.parametrize("bad", ["/srv/docs", "=/Volumes/docs", "/srv/docs="])
def test_bad_rules_are_one_clear_error(bad):
    with pytest.raises(ValueError, match="is not FROM=TO"):
        parse_rules([bad])
