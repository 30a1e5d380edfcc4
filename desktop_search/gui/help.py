"""Help menu contents: About (versions, licences, where the index, model and settings live), the query syntax
and the keyboard shortcuts. Plain text built by functions (testable without dialogs); the window shows it."""

from __future__ import annotations

import html
import sys
from typing import TYPE_CHECKING, Any

from desktop_search import config

if TYPE_CHECKING:
    from importlib import metadata  # imported when About opens: ~30 ms the window need not wait for

# What the app is made of, as a user might want to cite or check it (package name -> what it does here).
COMPONENTS = (
    ("desktop-search", "this application"),
    ("PySide6_Essentials", "the window (Qt for Python)"),
    ("lancedb", "the index"),
    ("pymupdf", "reading and rendering PDFs"),
    ("FlagEmbedding", "BGE-M3 (dense, sparse, ColBERT)"),
    ("transformers", "the model's tokenizer and network"),
    ("torch", "running the model"),
    ("onnxruntime", "the fast int8 CPU encoder"),
)
MODEL_LICENCE = "BGE-M3 (BAAI): MIT"
DECLARED_ELSEWHERE = {"FlagEmbedding": "MIT"}  # packages whose metadata names no licence (their repository does)

QUERY_SYNTAX = (
    ("words", "matched by meaning and by keyword; results refine from keyword to semantic to reranked"),
    ('"exact phrase"', "the phrase must appear as written"),
    ("-word", "leave out files whose passage contains the word"),
    ("a question?", "a question (ending in ?) or a pasted passage (12+ words) is plain text: its quotes and "
                    "hyphens are punctuation, and words such as \"what\" or \"the\" are left out"),
    ("dir:papers", "only files in a folder named papers (anywhere); dir:/full/path for one folder; "
                   'dir:"two words" for names with spaces'),
    ("filters", "folder, file type and date beside the search field"),
)

SHORTCUTS = (
    ("Ctrl+F, Ctrl+L", "go to the search field"),
    ("↓", "from the search field into the results"),
    ("Enter, double-click", "open the file (at the page, with a page-aware PDF viewer)"),
    ("Esc", "clear the search"),
    ("Ctrl++ / Ctrl+=, Ctrl+-", "zoom the preview in / out (also Ctrl+wheel)"),
    ("Ctrl+0", "fit the page to the preview's width"),
    ("F3, Shift+F3", "next / previous page with a match"),
    ("Ctrl+Q", "quit"),
)


def _licence(name: str, dist: metadata.Distribution) -> str:
    md: Any = dist.metadata  # an email.message.Message (the PackageMetadata protocol has no .get before 3.12)
    expr = (md.get("License-Expression") or "").strip()
    if expr:
        return expr
    classifiers = [c.split(" :: ")[-1] for c in md.get_all("Classifier") or [] if c.startswith("License ::")]
    text = (md.get("License") or "").strip()
    short = text if text and len(text) < 100 and "\n" not in text else ""
    return short or "; ".join(classifiers) or DECLARED_ELSEWHERE.get(name, "see the third-party notices")


def components() -> list[tuple[str, str, str, str]]:
    """(package, version, licence, role) of each installed component; missing ones are left out."""
    from importlib import metadata

    out = []
    for name, role in COMPONENTS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        out.append((name, dist.version, _licence(name, dist), role))
    return out


def locations(settings: config.Settings) -> list[tuple[str, str]]:
    return [
        ("Index", str(settings.index_dir)),
        ("Model", str(settings.model_dir)),
        ("Settings", str(config.default_config_dir() / "desktop-search.ini")),
        ("Cache (int8 model copy)", str(config.default_cache_dir())),
        ("Third-party notices", str(config.resources_dir() / "licenses" / "THIRD_PARTY_NOTICES.txt")),
    ]


def _table(rows, header=()) -> str:
    head = "".join(f"<th align='left'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}&nbsp;&nbsp;</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{'<tr>' + head + '</tr>' if head else ''}{body}</table>"


def about_html(settings: config.Settings) -> str:
    py = f"Python {sys.version.split()[0]}"
    return (
        "<h3>desktop_search</h3><p>Offline multilingual semantic search over your own documents. Nothing leaves "
        f"this computer. Licensed under the GNU AGPL v3. {html.escape(py)}.</p>"
        + _table(components(), ("Component", "Version", "Licence", "Used for"))
        + f"<p>{html.escape(MODEL_LICENCE)}</p><h4>Where things are</h4>" + _table(locations(settings))
    )


def query_syntax_html() -> str:
    return "<h3>Query syntax</h3>" + _table(QUERY_SYNTAX)


def shortcuts_html() -> str:
    return "<h3>Keyboard shortcuts</h3>" + _table(SHORTCUTS)
