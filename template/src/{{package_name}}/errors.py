"""The ways a command stops early on purpose: a user-fixable problem (`ConfigError`, exit 2; a data
set's problems all at once, `DataError`), and a fit stopped on purpose (`RunStoppedError`: a
signal, a non-finite loss), and a file that could not be written (`WriteError`: the disk is full).
The command line prints each as one line; nothing here imports a library, so every module can raise them."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ConfigError(ValueError):
    """A user-fixable problem; its message is one line that names the field, file or option."""


class DataError(ConfigError):
    """Every problem a data set's reading found, one line each: `check` prints them all; any other
    command refuses with the first and how many more there are."""

    def __init__(self, problems: list[str]) -> None:
        more = f" (and {len(problems) - 1} more: `check` lists them all)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)
        self.problems = problems


class Problems:
    """Collects the problems found while a data set is read, so that one pass names them all."""

    def __init__(self) -> None:
        self.found: list[str] = []

    @contextmanager
    def gathered(self) -> Iterator[None]:
        """A `ConfigError` raised inside is noted, and reading goes on after the block."""
        try:
            yield
        except DataError as problems:
            self.found += problems.problems
        except ConfigError as problem:
            self.found.append(str(problem))

    def raise_if_any(self) -> None:
        if self.found:
            raise DataError(self.found)


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (its type's name if it has none), for a `ConfigError`."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class RunStoppedError(RuntimeError):
    """A fit stopped before its end on purpose (a signal, a non-finite loss); the message says what
    was kept and how to go on, `exit_code` is the command's exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class WriteError(RuntimeError):
    """A file could not be written (no space left, the quota spent, a read-only file system): the
    message names the file and what it was to hold; the file's previous version, if any, is intact."""

    exit_code = 1


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
"""What a write fails with when the disk is full or the user's quota spent."""


def unwritten(error: BaseException, writes_to: Path | None = None) -> WriteError | None:
    """The `WriteError` behind `error`, or one made of an `OSError` saying the disk is full where a
    library wrote (a logger's files): what the command line reports in one line instead of a
    traceback. Another error raised while the first was handled (a logger closing on the full
    disk) is looked through to the first. A write's error names no file: `writes_to`, the folder
    the command writes below, is named instead. None for any other error."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, WriteError):
            return seen
        if isinstance(seen, OSError) and seen.errno in NO_SPACE:
            if seen.filename:
                return WriteError(f"{seen.filename}: cannot write it: {seen.strerror}")
            where = f"{writes_to}: cannot write below it" if writes_to else "cannot write a file"
            return WriteError(f"{where}: {seen.strerror}")
        seen = seen.__context__
    return None
