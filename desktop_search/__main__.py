"""Entry point for `python -m desktop_search`, the `desktop-search` script and the frozen app.

Order matters here: multiprocessing's freeze support, TRANSFORMERS_NO_TF and OPENBLAS_NUM_THREADS must be in
place before anything imports transformers or numpy, and a windowed build has no stdout/stderr, which would make the first print crash.
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
    # numpy's OpenBLAS only runs the small query-time products (dense search, ColBERT rerank); waking its threads
    # costs more than they save, and they would compete with the encoder's own threads. Read when numpy loads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _fix_std_streams()
    from desktop_search import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
