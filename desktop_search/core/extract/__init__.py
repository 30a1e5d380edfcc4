"""Text extraction: the first step of indexing, turning one file path into positions (pages, slides, sheets,
sections, messages) of text.

``extract(path)`` asks the registry (``registry.py``) which extractor reads the file and returns an
``Extraction`` value; failures are values with a reason code from ``REASONS``, never exceptions. One module per
kind does the reading (``pdf.py``, ``text.py``, ...); ``base.py`` holds what they share. Callers that must
survive hostile files run the isolated kinds through ``isolate.ExtractorPool`` instead of calling ``extract``
in their own process.
"""

from __future__ import annotations

from desktop_search.core.extract.base import READERS_IMPROVED_AT, REASONS, Extraction, ExtractOptions, Page
from desktop_search.core.extract.registry import (
    Extractor,
    extract,
    extractors,
    for_path,
    is_supported,
    kind_of,
    runs_isolated,
)

__all__ = [
    "READERS_IMPROVED_AT",
    "REASONS",
    "Page",
    "Extraction",
    "ExtractOptions",
    "Extractor",
    "extract",
    "extractors",
    "for_path",
    "is_supported",
    "kind_of",
    "runs_isolated",
]
