"""After `copier copy`: make the new project a git repository with a first commit, and say what next.

`copier update` works on a git repository with a clean worktree; a project that starts as one
can be updated at once. A destination already inside a repository (a monorepo, say) is left for
its owner to commit. Runs in the new project's folder with Copier's Python, needs no network, and
never fails the copy: without git, or when git refuses, it says so and leaves the files as they are.

A template copied from a relative path is stored with that path, relative to where `copier copy`
ran, and `copier update` from inside the project then fails ("Updating is only supported in
git-tracked templates", Copier issues #2396 and #2371): this warns and names the absolute path.

Usage (from copier.yml's `_tasks`): post_copy.py AUTHOR_NAME AUTHOR_EMAIL DESTINATION PACKAGE
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ANSWERS_FILE = ".copier-answers.yml"


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def main(author_name: str, author_email: str, destination: str, package: str) -> int:
    warn_about_a_relative_source(destination)
    make_repository(author_name, author_email)
    print_next_steps(destination, package)
    return 0


def make_repository(author_name: str, author_email: str) -> None:
    if shutil.which("git") is None:
        print("copier-lightning: git not found; run `git init` and commit before `copier update`", file=sys.stderr)
        return
    if git("rev-parse", "--is-inside-work-tree").returncode == 0:
        print("copier-lightning: inside an existing git repository; commit the new files yourself", file=sys.stderr)
        return
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
            return


def warn_about_a_relative_source(destination: str) -> None:
    answers = yaml.safe_load(Path(ANSWERS_FILE).read_text(encoding="utf-8")) or {}
    source = str(answers.get("_src_path", ""))
    if not source or "://" in source or source.startswith(("gh:", "gl:", "git@")) or Path(source).is_absolute():
        return
    # The task runs in the destination; Copier ran where the destination path starts from.
    started_in = Path.cwd()
    if not Path(destination).is_absolute():
        parts = Path(destination).parts
        started_in = started_in.parents[len(parts) - 1] if ".." not in parts and parts else started_in
    absolute = (started_in / source).resolve()
    print(
        f"copier-lightning: warning: copied from the relative path {source!r}, which `copier update` cannot "
        f"use from inside the project; copy from an absolute path ({absolute}) or a URL, "
        f"or set _src_path: {absolute} in {ANSWERS_FILE}",
        file=sys.stderr,
    )


def print_next_steps(destination: str, package: str) -> None:
    print(
        f"\nNext steps:\n"
        f"  cd {destination}\n"
        f"  pip install -e '.[dev]'   # CPU-only torch: add --extra-index-url https://download.pytorch.org/whl/cpu\n"
        f"  {package} fit              # trains on the built-in synthetic data, then prints its metrics\n"
    )


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
