"""Paths stored in a shared index, as this machine sees them: ``/srv/docs/a.pdf`` on the file server that indexed
it is ``\\\\fileserver\\docs\\a.pdf`` on a Windows laptop and ``/Volumes/docs/a.pdf`` on a Mac.

A :class:`PathMap` is a list of ``FROM=TO`` prefix rules (settings ``path_map``, ``--path-map``,
``DESKTOP_SEARCH_PATH_MAP`` separated by ``;``); the longest matching prefix wins, matched on whole path
components. The rest of the path keeps its components and takes the target's separator. Opening a result and
the preview go through :meth:`PathMap.locate`, which says in one line why a file cannot be reached from here
instead of failing somewhere inside a viewer.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable

__all__ = ["PathMap", "Located", "parse_rules"]

_WINDOWS_ROOT = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


def parse_rules(items: Iterable[str] | str | None) -> tuple[tuple[str, str], ...]:
    """``["/srv/docs=/Volumes/docs"]`` or ``"/srv/docs=/Volumes/docs;/data=D:\\data"`` -> rules. Raises ValueError
    naming a bad rule."""
    if not items:
        return ()
    if isinstance(items, str):
        items = [part for part in items.split(";") if part.strip()]
    rules = []
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"path mapping {item!r} is not FROM=TO (e.g. /srv/docs=/Volumes/docs)")
        rules.append((src.strip(), dst.strip()))
    return tuple(rules)


def _components(path: str) -> list[str]:
    return [c for c in re.split(r"[\\/]+", path) if c]


@dataclass(frozen=True)
class Located:
    """Where a stored path is on this machine, and why it cannot be opened (None when it can)."""

    stored: str
    local: str
    problem: str | None


@dataclass(frozen=True)
class PathMap:
    rules: tuple[tuple[str, str], ...] = ()

    def to_local(self, stored: str) -> str:
        """The path on this machine for a path stored in the index (unchanged when no rule matches)."""
        parts = _components(stored)
        best: tuple[int, str] | None = None
        for src, dst in self.rules:
            prefix = _components(src)
            anchored = stored.startswith(("/", "\\")) == src.startswith(("/", "\\"))
            if anchored and parts[: len(prefix)] == prefix and (best is None or len(prefix) > best[0]):
                best = (len(prefix), dst)
        if best is None:
            return stored
        n, dst = best
        rest = parts[n:]
        sep = "\\" if _WINDOWS_ROOT.match(dst) else "/"
        base = dst.rstrip("\\/") if dst.rstrip("\\/") else dst
        return sep.join([base, *rest]) if rest else base

    def locate(self, stored: str) -> Located:
        from desktop_search.core.store import fs_path

        local = fs_path(self.to_local(stored))
        if os.path.exists(local):
            return Located(stored, local, None)
        if local != stored:
            problem = (f"{stored} is not reachable from this machine: looked for it at {local} "
                       "(is the share mounted? check the path mapping in Settings)")
        elif self.rules:
            problem = (f"{stored} is not reachable from this machine, and no path mapping applies to it "
                       "(add one in Settings, e.g. /srv/docs -> /Volumes/docs)")
        else:
            problem = (f"{stored} is not reachable from this machine (moved or deleted, or indexed on another machine: "
                       "add a path mapping in Settings, e.g. /srv/docs -> /Volumes/docs)")
        return Located(stored, local, problem)
