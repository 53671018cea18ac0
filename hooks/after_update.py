"""After `copier update`: name the files the update left with conflict markers, and what to do.

Copier's inline conflicts leave the update's exit code at 0 and print nothing about them; the user
finds out from `git status` (`UU README.md`) or a failing commit hook. This lists them at once.
Runs in the project's folder with Copier's Python (from copier.yml's `_migrations`, stage `after`);
it only reads, and never fails the update.

Usage: after_update.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MARKERS = (b"<<<<<<< ", b">>>>>>> ")
"""The lines Copier writes around a conflict (`<<<<<<< before updating` ... `>>>>>>> after updating`)."""


def conflicted_files() -> list[str]:
    """Files git tracks or would track (not ignored) that hold a conflict marker at a line's start."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        return []
    names = sorted({name.decode() for name in listed.stdout.split(b"\0") if name})
    return [name for name in names if Path(name).is_file() and _has_markers(Path(name))]


def _has_markers(path: Path) -> bool:
    with path.open("rb") as lines:
        return any(line.startswith(MARKERS) for line in lines)


def main() -> int:
    conflicts = conflicted_files()
    if conflicts:
        print(
            f"copier-lightning: the update left conflict markers in {len(conflicts)} file(s): {', '.join(conflicts)}\n"
            "  In each, keep what you want between '<<<<<<< before updating' and '>>>>>>> after updating' and\n"
            "  delete the markers; then `git add` the files and commit. `pre-commit run check-merge-conflict\n"
            "  --all-files` finds any left (the hook refuses a commit that still has them).",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
