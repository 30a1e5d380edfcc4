"""Numbers as people read them: byte counts and durations, one way everywhere (command line, window, failure
details). Qt-free, so the core, the CLI and the GUI share it."""

from __future__ import annotations

__all__ = ["format_bytes", "format_duration"]


def format_bytes(n: float) -> str:
    """``512 B``, ``1.5 KB``, ``412.0 MB``, ``2.2 GB``: powers of 1024, one decimal above bytes."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def format_duration(seconds: float | None) -> str:
    """``45 s``, ``3 min``, ``2.5 h``; ``?`` when unknown (an ETA before the first measurement)."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min"
    return f"{seconds / 3600:.1f} h"
