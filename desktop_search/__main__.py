"""Entry point for `python -m desktop_search`, the `desktop-search` script and the frozen app.

Order matters here: multiprocessing's freeze support and the process environment (``environment.py``:
TRANSFORMERS_NO_TF, OPENBLAS_NUM_THREADS, ...) must be in place before anything imports transformers or numpy, and a windowed build has no stdout/stderr, which would make the first print crash.
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
    from desktop_search.environment import defer_collections, prepare_process

    defer_collections()  # until the index is open (cli.common.open_store, the window's services) or a command starts
    prepare_process()
    _fix_std_streams()
    from desktop_search import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
