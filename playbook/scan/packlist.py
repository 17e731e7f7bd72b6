"""The files `npm pack` would ship from a package directory (an approximation of npm-packlist).

Followed: package.json `files` (globs and directories; then root ignore files are not used), else
`.npmignore`, else `.gitignore`, in the root and in every subdirectory (rules are relative to the
directory holding them, `!` re-includes, a trailing `/` means directories only, `**` spans
directories); always shipped: package.json, README*, LICENSE*/LICENCE*, `main` and `bin` files;
never shipped: .git, .svn, .hg, CVS, node_modules, .npmrc, package-lock.json, .DS_Store, `*.orig`,
`.*.swp`, npm-debug.log, .gitignore/.npmignore themselves.
Approximated: bundled dependencies are not added, symbolic links are skipped (npm follows some),
and `files` globs use gitignore matching, which is close to but not exactly npm's minimatch.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

_NEVER_DIRS = frozenset({".git", ".svn", ".hg", "CVS", "node_modules"})
_NEVER_FILES = frozenset(
    {".npmrc", "package-lock.json", ".DS_Store", "npm-debug.log", ".gitignore", ".npmignore",
     ".lock-wscript", "config.gypi"}
)  # fmt: skip
_NEVER = re.compile(r"^(?:\..*\.swp|\._.*|.*\.orig|\.wafpickle-\d+)$")
_ALWAYS = re.compile(r"^(?:package\.json|readme(?:\..*)?|licen[cs]e(?:\..*)?)$", re.IGNORECASE)


@dataclass(frozen=True)
class _Rule:
    source: str
    full: re.Pattern[str]  # the path itself
    under: re.Pattern[str]  # something inside a matching directory
    negate: bool
    dir_only: bool
    anchored: bool

    def matches(self, rel: str, is_dir: bool) -> bool:
        if self.under.match(rel):
            return True
        return bool(self.full.match(rel)) and (is_dir or not self.dir_only)


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(c) or re.escape(c))
        i += 1
    return "".join(out)


def parse_rules(text: str) -> list[_Rule]:
    """gitignore lines as rules matched against paths relative to the ignore file's directory."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        dir_only = line.endswith("/")
        line = line.strip("/")
        if not line:
            continue
        anchored = "/" in line
        body = ("" if anchored else "(?:.*/)?") + _glob_regex(line)
        full, under = re.compile(f"^{body}$"), re.compile(f"^{body}/.*$")
        rules.append(_Rule(line, full, under, negate, dir_only, anchored))
    return rules


def _ignored(rel: str, is_dir: bool, rules: list[_Rule], current: bool) -> bool:
    for rule in rules:
        if rule.matches(rel, is_dir):
            current = not rule.negate
    return current


def _manifest(root: Path) -> dict[str, object]:
    try:
        doc = json.loads((root / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _forced(manifest: dict[str, object]) -> set[str]:
    out = set()
    main = manifest.get("main")
    if isinstance(main, str):
        out.add(os.path.normpath(main).lstrip("./"))
    bins = manifest.get("bin")
    values = (
        [bins] if isinstance(bins, str) else list(bins.values()) if isinstance(bins, dict) else []
    )
    out |= {os.path.normpath(b).lstrip("./") for b in values if isinstance(b, str)}
    return out


def _dir_rules(directory: Path, prefix: str, use_root: bool) -> list[tuple[str, list[_Rule]]]:
    if not use_root and not prefix:
        return []
    for name in (".npmignore", ".gitignore"):
        path = directory / name
        if path.is_file() and not path.is_symlink():
            return [(prefix, parse_rules(path.read_text("utf-8", "replace")))]
    return []


def pack_list(root: Path) -> tuple[list[str], list[str]]:
    """(relative paths npm would pack, notes on what was skipped), sorted."""
    manifest = _manifest(root)
    files_field = manifest.get("files")
    include = (
        parse_rules("\n".join(f for f in files_field if isinstance(f, str)))
        if isinstance(files_field, list)
        else None
    )
    forced = _forced(manifest)
    out: list[str] = []
    notes: list[str] = []
    _walk(root, "", include, forced, [], out, notes)
    return sorted(out), notes


def _walk(
    directory: Path,
    prefix: str,
    include: list[_Rule] | None,
    forced: set[str],
    inherited: list[tuple[str, list[_Rule]]],
    out: list[str],
    notes: list[str],
) -> None:
    rules = inherited + _dir_rules(directory, prefix, use_root=include is None)
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        rel = prefix + entry.name
        if entry.is_symlink():
            notes.append(f"{rel}: symbolic link skipped")
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        if _excluded(rel, entry.name, is_dir, rules, include, forced):
            continue
        if is_dir:
            _walk(Path(entry.path), rel + "/", include, forced, rules, out, notes)
        elif entry.is_file(follow_symlinks=False):
            out.append(rel)


def _excluded(
    rel: str,
    name: str,
    is_dir: bool,
    rules: list[tuple[str, list[_Rule]]],
    include: list[_Rule] | None,
    forced: set[str],
) -> bool:
    if is_dir and name in _NEVER_DIRS:
        return True
    if not is_dir and (name in _NEVER_FILES or _NEVER.match(name)):
        return True
    top = "/" not in rel
    if not is_dir and (rel in forced or (top and _ALWAYS.match(name))):
        return False
    if include is not None and not is_dir and not _ignored(rel, False, include, False):
        return True
    if include is not None and is_dir and not _dir_may_match(rel, include):
        return True
    ignored = False
    for base, base_rules in rules:
        if rel.startswith(base):
            ignored = _ignored(rel[len(base) :], is_dir, base_rules, ignored)
    return ignored


def _dir_may_match(rel: str, include: list[_Rule]) -> bool:
    """A directory is walked when a `files` entry could match it or something inside it."""
    parts = rel.split("/")
    for rule in include:
        if rule.negate:
            continue
        if not rule.anchored or rule.matches(rel, True):
            return True
        segs = rule.source.split("/")
        if "**" in segs[: len(parts)]:
            return True
        if len(parts) < len(segs) and all(
            fnmatchcase(p, g) for p, g in zip(parts, segs, strict=False)
        ):
            return True
    return False
