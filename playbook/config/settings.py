"""Frozen Settings, resolved once from flags, RESPOND_* environment and defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from playbook.secret import Secret


class Mode(StrEnum):
    LIVE = "live"
    DRY_RUN = "dry-run"
    REHEARSAL = "rehearsal"


DEFAULT_ENDPOINTS = {
    "github": "https://api.github.com",
    "jsdelivr": "https://cdn.jsdelivr.net",
    "jsdelivr_purge": "https://purge.jsdelivr.net",
    "unpkg": "https://unpkg.com",
    "swh": "https://archive.softwareheritage.org/api/1",
    "gitlab": "https://gitlab.com/api/v4",
    "codeberg": "https://codeberg.org/api/v1",
}


def default_home(env: Mapping[str, str]) -> Path:
    if env.get("RESPOND_HOME"):
        return Path(env["RESPOND_HOME"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("respond", appauthor=False))


def _endpoints(env: Mapping[str, str]) -> dict[str, str]:
    """Each public API's base URL; RESPOND_<NAME>_API overrides it (tests point it at loopback)."""
    return {
        name: env.get(f"RESPOND_{name.upper()}_API", url).rstrip("/")
        for name, url in DEFAULT_ENDPOINTS.items()
    }


def _secret(env: Mapping[str, str], *names: str) -> Secret | None:
    for name in names:
        if env.get(name):
            return Secret(env[name])
    return None


@dataclass(frozen=True)
class Settings:
    home: Path
    mode: Mode = Mode.LIVE
    cwd: Path = field(default_factory=Path.cwd)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    registry: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)
    github_token: Secret | None = None
    otp: Secret | None = None
    interactive: bool = False
    yes: bool = False
    approve: frozenset[str] = frozenset()
    safe_version: str | None = None
    unpublish_all: bool = False
    timeout: float = 30.0
    # Seconds a request to a hunt service (GitHub, forges, archive, CDNs) may take; the
    # registry keeps `timeout`. RESPOND_SERVICE_TIMEOUT; None: the same as `timeout`.
    service_timeout: float | None = None
    # First retry's wait ceiling in seconds (doubling, full jitter): RESPOND_RETRY_BACKOFF.
    retry_backoff: float = 0.5
    operator: str = "unknown"

    @property
    def dry_run(self) -> bool:
        return self.mode is Mode.DRY_RUN

    def endpoint(self, name: str) -> str:
        return self.endpoints.get(name) or DEFAULT_ENDPOINTS[name]

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None, **flags: object) -> Settings:
        """Flags win over RESPOND_* / standard environment variables, which win over defaults."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {
            "home": default_home(env),
            "env": env,
            "endpoints": _endpoints(env),
            "github_token": _secret(env, "GITHUB_TOKEN", "GH_TOKEN"),
            "otp": _secret(env, "NPM_OTP"),
            "operator": _operator(env),
            "timeout": _timeout(env),
            "retry_backoff": _timeout(env, "RESPOND_RETRY_BACKOFF")
            if env.get("RESPOND_RETRY_BACKOFF")
            else 0.5,
            "service_timeout": _timeout(env, "RESPOND_SERVICE_TIMEOUT")
            if env.get("RESPOND_SERVICE_TIMEOUT")
            else None,
        }
        values.update({k: v for k, v in flags.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _operator(env: Mapping[str, str]) -> str:
    """Who is at the keyboard, for the audit trail: the OS user."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return env.get("USER", "unknown")


def _timeout(env: Mapping[str, str], name: str = "RESPOND_HTTP_TIMEOUT") -> float:
    """Seconds an HTTP request may take (RESPOND_HTTP_TIMEOUT), 30 by default."""
    raw = env.get(name, "30")
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        from playbook.errors import UsageError

        raise UsageError(
            f"{name}={raw!r} is not a number of seconds; accepted: 0 < seconds <= 3600"
        )
    return value
