"""Checks that what each Dockerfile COPYs from the build context (the repository root) exists and is not
excluded by .dockerignore. Images cannot be built in CI here, so this is what catches a renamed source path or
an over-eager ignore pattern before an operator's `docker build` does.

Usage: python copy_sources.py .dockerignore Dockerfile...
"""

from __future__ import annotations

import os
import re
import shlex
import sys


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over slash-separated paths: `*` and `?` stay within one path segment,
    `**` spans any number of them (Docker's rules; character classes are not used in this repository)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def read_ignore(path: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        rules.append((negated, pattern_regex(os.path.normpath(line.lstrip("!").strip("/")))))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker excludes a path when the last rule matching it, or any of its parent directories, excludes it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negated, regex in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            result = not negated
    return result


def copy_sources(dockerfile: str) -> list[tuple[int, str]]:
    """(line number, source) of every COPY/ADD from the build context; `COPY --from=...` copies between stages."""
    found, pending, start = [], "", 0
    for number, raw in enumerate(open(dockerfile, encoding="utf-8"), 1):
        line = raw.rstrip("\n")
        if not pending:
            start = number
            if line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        words, pending = shlex.split(pending + line, comments=False), ""
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [word for word in words[1:] if not word.startswith("--")]
        if any(word.startswith("--from") for word in words[1:]) or len(args) < 2:
            continue
        found.extend((start, source) for source in args[:-1])
    return found


def main() -> int:
    rules = read_ignore(sys.argv[1])
    problems = 0
    for dockerfile in sys.argv[2:]:
        for number, source in copy_sources(dockerfile):
            path = os.path.normpath(source)
            if not os.path.exists(path):
                print(f"{dockerfile}:{number}: COPY source {source} does not exist", file=sys.stderr)
                problems += 1
            elif ignored(path, rules):
                print(f"{dockerfile}:{number}: COPY source {source} is excluded by {sys.argv[1]}", file=sys.stderr)
                problems += 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
