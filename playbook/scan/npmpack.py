"""The files npm itself would ship from a package directory: `npm pack --dry-run --json`.

Run in the directory with `--ignore-scripts` (no prepack/prepare build runs: the list is the files
on disk now), `--offline` and `--no-update-notifier` (npm makes no network request: a test runs it
against a registry that records every connection). When npm is not installed, `packlist` (an
approximation of npm-packlist) is the fallback, and the result says so in its notes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from playbook.errors import RespondError
from playbook.scan.names import printable
from playbook.scan.packlist import pack_list

COMMAND = (
    "pack", "--dry-run", "--json", "--ignore-scripts", "--offline", "--no-update-notifier",
    "--no-audit", "--no-fund", "--loglevel=error",
)  # fmt: skip
TIMEOUT = 120.0
FALLBACK_NOTE = (
    "file list: npm is not on PATH, so this is respond's approximation of npm-packlist "
    "(a fallback, not npm's own list); install npm to scan exactly what it would publish"
)
_BUILD_SCRIPTS = ("prepack", "prepare", "prepublishOnly", "prepublish")


def files_to_ship(root: Path, npm: str | None) -> tuple[list[str], list[str]]:
    """(relative paths `npm pack` would put in the tarball, notes), sorted."""
    if npm is None:
        paths, notes = pack_list(root)
        return paths, [FALLBACK_NOTE, *notes]
    return _ask_npm(root, npm), _script_notes(root)


def _fail(root: Path, what: str) -> RespondError:
    return RespondError(
        f"`npm pack --dry-run` in {printable(str(root))} {what}.",
        "Run `npm pack --dry-run` there to see why; `npm publish` would stop on it too.",
    )


def _ask_npm(root: Path, npm: str) -> list[str]:
    try:
        done = subprocess.run(
            [npm, *COMMAND], cwd=root, capture_output=True, text=True, timeout=TIMEOUT,
            check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise _fail(root, f"took more than {TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise _fail(root, f"could not start ({exc.strerror})") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        said = printable(lines[-1][:300]) if lines else "nothing"
        raise _fail(root, f"failed with status {done.returncode} ({said})")
    try:
        doc = json.loads(done.stdout)
        files = doc[0]["files"]
        paths = [f["path"] for f in files]
    except (ValueError, LookupError, TypeError):
        raise _fail(root, "printed something other than its JSON file list") from None
    if not all(isinstance(p, str) for p in paths):
        raise _fail(root, "printed a file list with a non-text path")
    return sorted(paths)


def _script_notes(root: Path) -> list[str]:
    """Say so when a build script would have run before a real `npm pack` / `npm publish`."""
    try:
        scripts = json.loads((root / "package.json").read_text("utf-8")).get("scripts")
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(scripts, dict):
        return []
    named = [s for s in _BUILD_SCRIPTS if isinstance(scripts.get(s), str)]
    if not named:
        return []
    return [
        f"package.json has {', '.join(named)} script(s), not run here (--ignore-scripts): "
        "this scans the files on disk now; build first, or scan the packed tarball"
    ]
