"""Query -> what the user asked for, and which files they want: parsed query syntax and result filters.

Kept free of numpy, Arrow and LanceDB so the window can import it while it is still appearing; the search
pipeline itself (search.py) re-exports these names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from desktop_search.core.paths import is_under, under_any

if TYPE_CHECKING:
    from desktop_search.core.store import Store

_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


@dataclass(frozen=True)
class ParsedQuery:
    """``"exact phrase"`` must appear, ``-word`` must not; the rest is free text for the models and BM25."""

    text: str
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    prose: bool = False  # a question or a pasted passage (is_prose): no operators, function words left out

    @property
    def terms(self) -> list[str]:
        """Words to highlight: query words, and for CJK runs their 2-character pieces (no spaces to split on)."""
        out: list[str] = []
        for phrase in self.phrases:
            out.append(phrase)
        for w in _WORD_RE.findall(self.text):
            if _CJK_RE.fullmatch(w) and len(w) > 2:
                out.append(w)
                out.extend(w[i : i + 2] for i in range(len(w) - 1))
            elif len(w) >= 3 or _CJK_RE.fullmatch(w):
                # two-letter words ("of", "in", "de") would light up every line of a page
                out.append(w)
        return list(dict.fromkeys(out))


PROSE_WORDS = 12  # a query of this many words outside quotes is a pasted passage
_QUESTION_END = ("?", "？", "؟", ";", "՞")  # Greek's question mark is ";" after NFC


def is_prose(raw: str) -> bool:
    """A typed question (3+ words ending in a question mark) or a pasted passage (``PROSE_WORDS`` words or more
    outside quotes): text, not search syntax. Its quotation marks are punctuation (a question that quotes a name
    is not asking for that exact phrase) and its hyphens are not exclusions."""
    words = re.sub(r'"[^"]*"?', " ", raw).split()
    if len(words) >= PROSE_WORDS:
        return True
    n_words = len(raw.split()) + sum(len(run) for run in _CJK_RE.findall(raw)) // 2  # ~2 characters a word
    return n_words >= 3 and raw.rstrip().endswith(_QUESTION_END)


def parse_query(raw: str) -> ParsedQuery:
    """``raw`` -> free text, ``"phrases"`` that must appear and ``-words`` that must not; prose (:func:`is_prose`)
    is all free text."""
    if is_prose(raw):
        return ParsedQuery(text=" ".join(raw.replace('"', " ").split()), prose=True)
    phrases = tuple(p.strip() for p in re.findall(r'"([^"]+)"', raw) if p.strip())
    rest = re.sub(r'"[^"]*"?', " ", raw)
    excluded = tuple(t[1:] for t in rest.split() if t.startswith("-") and len(t) > 1)
    words = [t for t in rest.split() if not (t.startswith("-") and len(t) > 1)]
    text = " ".join([*phrases, *words]).strip()
    return ParsedQuery(text=text, phrases=phrases, excluded=excluded)


_DIR_RE = re.compile(r'(?:^|\s)dir:(?:"([^"]+)"|(\S+))')


def split_dirs(raw: str) -> tuple[str, tuple[str, ...]]:
    """``dir:papers`` / ``dir:"My Files/2024"`` / ``dir:/abs/path`` tokens out of a query: (the rest, dirs)."""
    dirs = tuple(m.group(1) or m.group(2) for m in _DIR_RE.finditer(raw))
    return " ".join(_DIR_RE.sub(" ", raw).split()), dirs


def in_dir(path: str, d: str) -> bool:
    """``path`` is inside folder ``d``: an absolute folder, or a folder name / relative path such as
    ``papers`` or ``work/2024`` matched against whole folder names anywhere in the path (case-insensitive)."""
    if os.path.isabs(d):
        return is_under(path, d)
    parent = os.path.dirname(path).replace("\\", "/").casefold() + "/"
    return "/" + d.strip("/\\").replace("\\", "/").casefold() + "/" in parent


@dataclass(frozen=True)
class SearchFilter:
    """Narrows hits by folder (a watched folder, or any folder via ``dirs``), file type and modification time
    (seconds since the epoch)."""

    folders: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()  # extractor registry kinds: "pdf", "text", ...
    modified_after: float | None = None
    modified_before: float | None = None
    dirs: tuple[str, ...] = ()  # from ``dir:`` in the query: every one must hold

    @property
    def active(self) -> bool:
        return bool(self.folders or self.kinds or self.modified_after or self.modified_before or self.dirs)

    def matcher(self, store: "Store") -> Callable[[str], bool]:
        """A path -> bool predicate; file facts are read once per search, only when a filter is active."""
        if not self.active:
            return lambda path: True
        records = store.file_records()
        roots = list(self.folders)

        def keep(path: str) -> bool:
            if roots and not under_any(path, roots):
                return False
            if self.dirs and not all(in_dir(path, d) for d in self.dirs):
                return False
            rec = records.get(path)
            if rec is None:
                return False
            if self.kinds and rec.kind not in self.kinds:
                return False
            mtime = rec.mtime_ns / 1e9
            if self.modified_after is not None and mtime < self.modified_after:
                return False
            return self.modified_before is None or mtime <= self.modified_before

        return keep
