"""One answer to "is this path inside that folder?", right on POSIX and on Windows."""

from __future__ import annotations

import ntpath
import posixpath

from desktop_search.core.paths import is_under
from desktop_search.core.progress import RecentRate
from desktop_search.core.query import SearchFilter, in_dir, split_dirs


def test_posix_folders_match_whole_names():
    assert is_under("/home/a/docs/x.pdf", "/home/a/docs", flavour=posixpath)
    assert is_under("/home/a/docs", "/home/a/docs/", flavour=posixpath)
    assert not is_under("/home/a/docs2/x.pdf", "/home/a/docs", flavour=posixpath)
    assert is_under("/x.pdf", "/", flavour=posixpath)
    assert not is_under("/home/A/docs/x.pdf", "/home/a/docs", flavour=posixpath)


def test_windows_folders_ignore_case_and_separator():
    assert is_under(r"C:\Users\Ann\Docs\x.pdf", "c:/users/ann/docs", flavour=ntpath)
    assert is_under("C:/Users/Ann/Docs/x.pdf", r"C:\Users\Ann\Docs" + "\\", flavour=ntpath)
    assert is_under(r"D:\x.pdf", "D:\\", flavour=ntpath)
    assert not is_under(r"C:\Users\Ann\Docs2\x.pdf", r"C:\Users\Ann\Docs", flavour=ntpath)


def test_dir_terms_narrow_to_folder_names_anywhere_in_the_path():
    assert split_dirs('trace dir:papers dir:"My Files/2024" loops') == ("trace loops", ("papers", "My Files/2024"))
    assert in_dir("/home/a/Docs/papers/x.pdf", "papers") and in_dir("/home/a/Docs/papers/x.pdf", "docs/PAPERS")
    assert not in_dir("/home/a/Docs/papers2/x.pdf", "papers") and not in_dir("/home/a/papers.pdf", "papers")
    assert SearchFilter(dirs=("x",)).active


def test_recent_rate_follows_the_current_pace():
    r = RecentRate(window_s=10)
    for t, done in [(0, 0), (1, 100), (2, 200)]:  # fast at first…
        r.add(t, done)
    for t in range(3, 30):  # …then one item a second
        r.add(t, 200 + (t - 2))
    assert abs(r.rate() - 1.0) < 0.01 and round(r.eta_s(60)) == 60
    r.add(31, 0)  # a new count starts over
    assert r.rate() == 0.0 and r.eta_s(10) is None
