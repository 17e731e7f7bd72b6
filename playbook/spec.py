"""Package specs as a person types them (`name@version` or `@scope/name@version`), and npm's
naming rules for where a registry keeps a package: the one place each is written."""

from __future__ import annotations

import re
from dataclasses import dataclass

from playbook.errors import UsageError

# npm's own rules for new names: lowercase, URL-safe, at most 214 characters with the scope.
_NAME = re.compile(r"^(?:@([a-z0-9][a-z0-9._~-]*)/)?([a-z0-9][a-z0-9._~-]*)$")
# Semantic versioning 2.0.0, as npm accepts a published version (no leading "v", no ranges).
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
ACCEPTED = "accepted: name@1.2.3 or @scope/name@1.2.3 (an exact published version)"


@dataclass(frozen=True, order=True)
class PackageSpec:
    name: str
    version: str

    @property
    def scope(self) -> str | None:
        return self.name.split("/", 1)[0] if self.name.startswith("@") else None

    @property
    def escaped_name(self) -> str:
        """The name as it goes in a registry path: `@scope%2fname`."""
        return escape_name(self.name)

    @property
    def slug(self) -> str:
        """A file- and id-safe form: `scope-name-1.2.3`."""
        return re.sub(r"[^a-z0-9.]+", "-", f"{self.name}-{self.version}".lower()).strip("-")

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def escape_name(name: str) -> str:
    """`@scope/name` -> `@scope%2fname`, as npm writes a name in a registry path."""
    return name.replace("/", "%2f")


def unescape_name(path_part: str) -> str:
    """`@scope%2fname` -> `@scope/name` (a registry accepts either in a path)."""
    return path_part.replace("%2f", "/").replace("%2F", "/")


def bare_name(name: str) -> str:
    """`@scope/name` -> `name`: what npm names a package's tarball after."""
    return name.rsplit("/", 1)[-1]


def tarball_filename(name: str, version: str) -> str:
    return f"{bare_name(name)}-{version}.tgz"


def default_tarball_url(registry: str, name: str, version: str) -> str:
    """Where a registry serves a version's tarball when no packument says otherwise."""
    return f"{registry.rstrip('/')}/{name}/-/{tarball_filename(name, version)}"


def is_valid_version(version: str) -> bool:
    return bool(_SEMVER.match(version))


def parse_name(name: str) -> str:
    if len(name) > 214 or not _NAME.match(name):
        raise UsageError(
            f"{name!r} is not a valid npm package name; "
            "accepted: lowercase name or @scope/name (letters, digits, . _ ~ -)"
        )
    return name


def parse_spec(text: str) -> PackageSpec:
    """Parse one spec; any flaw is a UsageError whose one line names it and what is accepted."""
    raw = text.strip()
    at = raw.rfind("@")
    if at <= 0:
        raise UsageError(f"{text!r} has no version; {ACCEPTED}")
    name, version = raw[:at], raw[at + 1 :]
    if not version:
        raise UsageError(f"{text!r} has an empty version; {ACCEPTED}")
    if name.endswith("/") or name == "@" or ("/" in name and not name.startswith("@")):
        raise UsageError(f"{text!r} has an incomplete or malformed name; {ACCEPTED}")
    try:
        parse_name(name)
    except UsageError:
        raise UsageError(f"{text!r} does not name a valid npm package; {ACCEPTED}") from None
    if not is_valid_version(version):
        raise UsageError(f"{text!r}: {version!r} is not an exact semver version; {ACCEPTED}")
    return PackageSpec(name, version)
