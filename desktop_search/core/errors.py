"""Failures of the surroundings, not of the program, as one line that names the problem and what to do.

The index folder can be a file, read-only, full, someone else's, or damaged on disk (LanceDB then raises a
``RuntimeError`` "lance error: …", or its async runtime panics with a ``PanicException``, which is not even an
``Exception``). Front ends (the command line, the window) ask :func:`describe` for the sentence to show instead
of a traceback; it returns None for anything else, which is a bug and keeps its traceback. Nothing here imports
Qt or LanceDB.
"""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = ["describe", "is_damage"]

_DAMAGE_MARKERS = ("corrupt", "lance error", "lanceerror", "not appear to be a lance file", "panicked",
                   "arrow error")


def is_damage(exc: BaseException) -> bool:
    """LanceDB could not read its own files: a damaged (truncated, garbled, partly deleted) index."""
    name = type(exc).__name__
    if name == "PanicException":  # pyo3: a Rust panic, raised as a BaseException subclass
        return True
    if not isinstance(exc, (RuntimeError, ValueError, OSError)):
        return False
    text = str(exc).lower()
    return any(m in text for m in _DAMAGE_MARKERS)


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(exc: BaseException, index_dir: Path | None) -> str | None:
    """The one line to show for an expected failure around the index at ``index_dir``, or None."""
    where = f"the index folder {index_dir}" if index_dir is not None else "the index folder"
    if is_damage(exc):
        return (f"{where} is damaged ({_first_line(exc)}); run `desktop-search doctor --repair` "
                "(your documents are not touched)")
    if not isinstance(exc, OSError):
        return None
    from desktop_search.core.lock import LockFileUnsafe

    if isinstance(exc, LockFileUnsafe):
        return exc.strerror
    name = exc.filename if exc.filename else index_dir
    code = exc.errno
    if code == errno.EROFS:
        return f"cannot write to {name}: the file system is read-only; choose a writable folder with --index-dir"
    if code in (errno.EACCES, errno.EPERM):
        return f"no permission to write {name}; make it writable or choose another folder with --index-dir"
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"cannot write to {name}: the disk is full; free some space and run again"
    if code in (errno.EEXIST, errno.ENOTDIR) and index_dir is not None and Path(index_dir).exists() \
            and not Path(index_dir).is_dir():
        return f"{index_dir} is a file, not a folder; choose a folder for the index with --index-dir"
    detail = exc.strerror or _first_line(exc)
    return f"cannot use {name}: {detail}"
