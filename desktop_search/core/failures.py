"""Why a file could not be indexed: a ``Failure`` value with a ``Reason`` code and a human-readable detail.

Errors are data: extraction, the indexer and the isolation pool hand a ``Failure`` along instead of raising,
the index stores ``reason`` and ``detail`` per file, and the window and ``status`` show them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["REASONS", "Failure", "Reason"]


class Reason(str, enum.Enum):
    """The reason codes a failed file is recorded with (stored as their value)."""

    ENCRYPTED = "encrypted"
    NO_TEXT = "no_text"
    CORRUPT = "corrupt"
    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    PERMISSION_DENIED = "permission_denied"
    DECODE_ERROR = "decode_error"

    def __str__(self) -> str:
        return self.value


REASONS: tuple[str, ...] = tuple(r.value for r in Reason)


@dataclass(frozen=True)
class Failure:
    """A file that could not be indexed, and why."""

    reason: Reason
    detail: str
