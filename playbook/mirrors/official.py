"""The organization's own repositories and scopes (respond.toml [official]): never a copy."""

from __future__ import annotations

from typing import Protocol

from playbook.config.org import Official
from playbook.config.settings import Settings


class Listed(Protocol):
    """A candidate or a mirror record: where it is and what it is called."""

    @property
    def url(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def name(self) -> str: ...


def read_official(settings: Settings) -> Official:
    """[official] from respond.toml in the working directory, else in RESPOND_HOME."""
    return settings.org.official


def is_official(candidate: Listed, official: Official) -> bool:
    """On the allowlist: a GitHub org or `owner/repo` listed, or an npm scope listed.

    The one rule for candidates (the hunt) and mirror records (the notices).

    Only the listed names count: a fork of an official repository is someone else's repository
    and is judged by its content like any other.
    """
    if candidate.host == "npm":
        scope = candidate.name.split("/", 1)[0] if candidate.name.startswith("@") else None
        return scope is not None and scope.lstrip("@").lower() in _lower(official.npm_scopes)
    if candidate.host != "github.com":
        return candidate.url.split("://", 1)[-1].lower() in _lower(official.repositories)
    owner = candidate.name.split("/", 1)[0].lower()
    return owner in _lower(official.github_orgs) or candidate.name.lower() in _lower(
        official.repositories
    )


def _lower(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.lower().lstrip("@") for v in values)
