"""The organization's details for notices, read from respond.toml (working directory, then home)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from playbook.errors import UsageError

FILE_NAME = "respond.toml"
ORG_FIELDS = (
    "name",
    "copyright_owner",
    "signer",
    "legal_email",
    "telephone",
    "legal_address",
    "advisory_contact",
    "security_url",
)
OFFICIAL_FIELDS = ("github_orgs", "repositories", "npm_scopes")
NOTICE_FIELDS = ("dmca_per_network",)


@dataclass(frozen=True)
class Official:
    """What belongs to the organization itself: never listed as an infringing copy."""

    github_orgs: tuple[str, ...] = ()
    repositories: tuple[str, ...] = ()
    npm_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoticeOptions:
    """[notices]: how drafts are cut. One GitHub DMCA notice per incident unless asked to split."""

    dmca_per_network: bool = False


@dataclass(frozen=True)
class OrgConfig:
    """[organization] details (None when not given), [official] lists and [notices] options."""

    details: Mapping[str, str | None] = field(default_factory=dict)
    official: Official = field(default_factory=Official)
    templates_dir: Path | None = None
    source: Path | None = None
    notices: NoticeOptions = field(default_factory=NoticeOptions)
    # The [scan] table as written: the guard's allowlist (playbook/scan/allowlist.py) parses it,
    # so that this layer reads the file once and knows nothing of the guard's rules.
    scan: Mapping[str, Any] = field(default_factory=dict)

    def detail(self, name: str) -> str | None:
        return self.details.get(name)


def find_config(cwd: Path, home: Path) -> Path | None:
    """respond.toml in the working directory wins over the one in RESPOND_HOME."""
    for folder in (cwd, home):
        path = folder / FILE_NAME
        if path.is_file():
            return path
    return None


def load_org(cwd: Path, home: Path, templates: Path | None = None) -> OrgConfig:
    """Read respond.toml; no file gives an empty config (every notice then shows its blanks).

    `templates` (Settings.templates, from RESPOND_TEMPLATES) wins over the file's templates_dir.
    Commands get it once as `Settings.org`; this function is for that and for tests.
    """
    path = find_config(cwd, home)
    config = OrgConfig() if path is None else _parse(path)
    if templates is not None:
        config = replace(config, templates_dir=templates)
    return config


def _parse(path: Path) -> OrgConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"{path} cannot be read as TOML: {exc}.",
            "Fix the file, or write a fresh one with `respond init`.",
        ) from None
    org = _table(path, data, "organization", ORG_FIELDS)
    official = _table(path, data, "official", OFFICIAL_FIELDS)
    details = {name: _text(path, "organization", name, org.get(name)) for name in ORG_FIELDS}
    lists = {name: _strings(path, name, official.get(name)) for name in OFFICIAL_FIELDS}
    options = _table(path, data, "notices", NOTICE_FIELDS)
    split = options.get("dmca_per_network", False)
    if not isinstance(split, bool):
        raise UsageError(f"{path}: [notices] dmca_per_network must be true or false.")
    templates = data.get("templates_dir")
    if templates is not None and not isinstance(templates, str):
        raise UsageError(f"{path}: templates_dir must be a string (a folder path).")
    folder = (path.parent / templates).expanduser() if templates else None
    scan = data.get("scan", {})
    return OrgConfig(details, Official(**lists), folder, path, NoticeOptions(split), scan)


def _table(path: Path, data: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [{name}] must be a table.")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise UsageError(
            f"{path}: [{name}] has unknown key(s) {', '.join(unknown)}.",
            f"Known keys: {', '.join(keys)}.",
        )
    return table


def _text(path: Path, table: str, name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{path}: [{table}] {name} must be a string.")
    return value.strip() or None


def _strings(path: Path, name: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{path}: [official] {name} must be a list of strings.")
    return tuple(v.strip() for v in value if v.strip())


def init_text() -> str:
    """A commented respond.toml for `respond init` to write."""
    return _INIT_TEXT


_INIT_TEXT = """\
# respond.toml: your organization's details for the notices `respond` drafts.
# respond reads this file from the working directory, else from RESPOND_HOME.
# A notice that needs a detail left empty here is drafted with a visible
# [MISSING: <detail>] blank and the status `needs_details`: fill it in, then
# run the notices step again (or edit the draft by hand before sending it).

# A folder of your own Jinja2 templates; a file there replaces the shipped one
# of the same name (e.g. notices/dmca-github.md.j2). RESPOND_TEMPLATES wins.
# templates_dir = "respond-templates"

[organization]
# Legal name of the company, as it should appear on notices.
name = ""
# The owner of the copyright in the leaked source (often the same company).
copyright_owner = ""
# The person who reviews and signs takedown notices (full legal name).
signer = ""
# Where hosts and infringers answer notices.
legal_email = ""
# Telephone for takedown notices (GitHub's guide asks for it; its form takes this or the address).
telephone = ""
# Postal address, required by DMCA notices.
legal_address = ""
# Contact printed on the security advisory and the customer notice.
advisory_contact = ""
# Your security page or advisory index (e.g. https://example.com/security).
security_url = ""

[official]
# Your own GitHub organizations and repositories: never reported as copies.
github_orgs = []
repositories = []   # "owner/repo"
# Your own npm scopes (e.g. "@acme").
npm_scopes = []

[notices]
# One GitHub DMCA notice per incident lists every fork network in its own section. Set true
# to draft one notice per fork network instead (a runbook's `with: {dmca_per_network: true}`
# on notices.draft does the same for one run).
dmca_per_network = false

# `respond scan` (the guard before `npm publish`) fails on what a release adds. What you accept
# goes here, one entry each, and every entry must say why:
# [[scan.allow]]
# rule = "secret"           # original-source, source-map, source-growth, secret, sensitive-file,
#                           # partial (leave out: any)
# path = "test/fixtures/*"  # a glob on the file; package = "@acme/*" limits it to packages
# reason = "keys generated for the fixtures, never used anywhere"
"""
