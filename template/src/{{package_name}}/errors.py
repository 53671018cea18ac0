"""The two ways a command stops early on purpose: a user-fixable problem (`ConfigError`, exit 2),
and a fit stopped on purpose (`RunStoppedError`: a signal, a non-finite loss). The command line
prints either as one line; neither imports anything, so every module can raise them."""

from __future__ import annotations


class ConfigError(ValueError):
    """A user-fixable problem; its message is one line that names the field, file or option."""


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (its type's name if it has none), for a `ConfigError`."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class RunStoppedError(RuntimeError):
    """A fit stopped before its end on purpose (a signal, a non-finite loss); the message says what
    was kept and how to go on, `exit_code` is the command's exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
