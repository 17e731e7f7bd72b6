"""The guard's allowlist: `[[scan.allow]]` entries in respond.toml, each with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playbook.config.org import OrgConfig
from playbook.errors import UsageError
from playbook.scan.verdict import RULES, AllowRule

_KEYS = ("reason", "rule", "path", "package")
EXAMPLE = """\
[[scan.allow]]
rule = "source-map"          # one of: original-source, source-map, source-growth, secret,
                             #         sensitive-file, partial (empty: any)
path = "test/fixtures/*"     # a glob on the finding's file (secrets, sensitive files)
package = "@acme/ui"         # a glob on the package name (empty: any)
reason = "we publish our maps with sources on purpose (MIT)"
"""


def load_allowlist(org: OrgConfig) -> tuple[AllowRule, ...]:
    """The `[[scan.allow]]` entries of respond.toml as Settings read it (`Settings.org`)."""
    if org.source is None:
        return ()
    return parse_allowlist(org.source, {"scan": org.scan})


def parse_allowlist(path: Path, data: dict[str, Any]) -> tuple[AllowRule, ...]:
    scan = data.get("scan", {})
    if not isinstance(scan, dict):
        raise UsageError(f"{path}: [scan] must be a table.", f"Write entries as:\n{EXAMPLE}")
    unknown = sorted(set(scan) - {"allow"})
    if unknown:
        raise UsageError(f"{path}: [scan] has unknown key(s) {', '.join(unknown)}; known: allow.")
    entries = scan.get("allow", [])
    if not isinstance(entries, list):
        raise UsageError(f"{path}: scan.allow must be [[scan.allow]] entries.", EXAMPLE)
    return tuple(_entry(path, i + 1, e) for i, e in enumerate(entries))


def _entry(path: Path, n: int, entry: object) -> AllowRule:
    where = f"{path}: [[scan.allow]] entry {n}"
    if not isinstance(entry, dict):
        raise UsageError(f"{where} must be a table.", EXAMPLE)
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise UsageError(
            f"{where} has unknown key(s) {', '.join(unknown)}; known: {', '.join(_KEYS)}."
        )
    values = {k: entry.get(k, "") for k in _KEYS}
    bad = [k for k, v in values.items() if not isinstance(v, str)]
    if bad:
        raise UsageError(f"{where}: {', '.join(bad)} must be text.")
    if not values["reason"].strip():
        raise UsageError(
            f"{where} has no reason; every allowlist entry must say why it is safe.", EXAMPLE
        )
    if values["rule"] and values["rule"] not in RULES:
        raise UsageError(f"{where}: rule {values['rule']!r} is not one of {', '.join(RULES)}.")
    return AllowRule(
        reason=values["reason"].strip(), rule=values["rule"], path=values["path"],
        package=values["package"],
    )  # fmt: skip
