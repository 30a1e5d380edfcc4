"""Entry point for `python -m desktop_search`, the `desktop-search` script and the frozen app.

Order matters here: multiprocessing's freeze support and TRANSFORMERS_NO_TF must be in place before anything
imports transformers, and a windowed build has no stdout/stderr, which would make the first print crash.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _fix_std_streams() -> None:
    # PyInstaller's windowed builds set sys.stdout/sys.stderr to None; libraries that print (tqdm, logging)
    # would then raise on the first write.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()
    os.environ.setdefault("TRANSFORMERS_NO_TF", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _fix_std_streams()
    from desktop_search import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
