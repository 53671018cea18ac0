"""After `copier copy`: make the new project a git repository with a first commit.

`copier update` works on a git repository with a clean worktree; a project that starts as one
can be updated at once. A destination already inside a repository (a monorepo, say) is left for
its owner to commit. Runs in the new project's folder with Copier's Python, needs no network, and
never fails the copy: without git, or when git refuses, it says so and leaves the files as they are.

Usage (from copier.yml's `_tasks`): post_copy.py AUTHOR_NAME AUTHOR_EMAIL
"""

from __future__ import annotations

import shutil
import subprocess
import sys


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def main(author_name: str, author_email: str) -> int:
    if shutil.which("git") is None:
        print("copier-lightning: git not found; run `git init` and commit before `copier update`", file=sys.stderr)
        return 0
    if git("rev-parse", "--is-inside-work-tree").returncode == 0:
        print("copier-lightning: inside an existing git repository; commit the new files yourself", file=sys.stderr)
        return 0
    identity: list[str] = []
    if not git("config", "user.email").stdout.strip():  # no identity configured: the project's author
        identity = ["-c", f"user.name={author_name}", "-c", f"user.email={author_email}"]
    steps = {
        "init": ["init", "--quiet"],
        "add": ["add", "--all"],
        "commit": [*identity, "commit", "--quiet", "-m", "Start from copier-lightning"],
    }
    for name, args in steps.items():
        result = git(*args)
        if result.returncode != 0:
            reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
            print(
                f"copier-lightning: git {name} failed ({reason}); the project is complete, commit it yourself",
                file=sys.stderr,
            )
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
