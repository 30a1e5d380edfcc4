"""The one base class of expected failures. A ``UserError``'s message is written for the person using the app
(no index yet, no model, index in use, disk full): the command line prints it as one line, the window shows it
as is. Anything else that escapes is a bug and is shown with its traceback."""

from __future__ import annotations

__all__ = ["UserError", "is_user_error"]


class UserError(Exception):
    """An expected failure whose message says what happened and what to do."""


def is_user_error(e: BaseException) -> bool:
    """Whether ``e`` is expected (its message is for users): a ``UserError``, or a cancelled operation."""
    return isinstance(e, (UserError, InterruptedError))
