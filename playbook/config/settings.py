"""Frozen Settings, resolved once from flags, RESPOND_* environment and defaults.

This module is the only reader of the process environment and of respond.toml (`Settings.org`):
every other module is handed a typed field. `npm_env` is the one mapping passed on, to
config/npmrc.py alone, because npm's own configuration is defined over the whole environment
(npm_config_* in any case, ${VAR} inside .npmrc lines, PATH and HOME for npm itself).
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from playbook.config.org import OrgConfig, load_org
from playbook.errors import UsageError
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
class RateLimits:
    """Request paces and budgets (GitHub's published limits less a margin; tests raise them)."""

    github_budget: int = 3000  # RESPOND_GITHUB_BUDGET
    github_code_search_per_minute: int = 9  # RESPOND_GITHUB_CODE_SEARCH_PER_MINUTE
    github_search_per_minute: int = 28  # RESPOND_GITHUB_SEARCH_PER_MINUTE
    swh_search_per_minute: int = 9  # RESPOND_SWH_SEARCH_PER_MINUTE


_LIMIT_VARIABLES = {
    "github_budget": "RESPOND_GITHUB_BUDGET",
    "github_code_search_per_minute": "RESPOND_GITHUB_CODE_SEARCH_PER_MINUTE",
    "github_search_per_minute": "RESPOND_GITHUB_SEARCH_PER_MINUTE",
    "swh_search_per_minute": "RESPOND_SWH_SEARCH_PER_MINUTE",
}


def _limits(env: Mapping[str, str]) -> RateLimits:
    values: dict[str, int] = {}
    for name, variable in _LIMIT_VARIABLES.items():
        raw = env.get(variable)
        if not raw:
            continue
        if not raw.strip().isdigit() or int(raw) < 1:
            raise UsageError(f"{variable}={raw!r} is not a count; accepted: a whole number >= 1")
        values[name] = int(raw)
    return RateLimits(**values)


@dataclass(frozen=True)
class Settings:
    home: Path
    mode: Mode = Mode.LIVE
    cwd: Path = field(default_factory=Path.cwd)
    # What npm itself would see (config/npmrc.py only); see the module docstring.
    npm_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
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
    loopback_only: bool = False  # RESPOND_LOOPBACK_ONLY=1: refuse every host but this machine
    limits: RateLimits = field(default_factory=RateLimits)
    step_modules: tuple[str, ...] = ()  # RESPOND_STEP_MODULES: a team's own step types
    templates: Path | None = None  # RESPOND_TEMPLATES: wins over respond.toml's templates_dir

    @property
    def dry_run(self) -> bool:
        return self.mode is Mode.DRY_RUN

    @functools.cached_property
    def npm(self) -> str | None:
        """npm's executable on npm_env's PATH (None: not installed), looked up on first use:
        `respond scan DIR` asks it for the file list, npmrc for the default registry."""
        return shutil.which("npm", path=self.npm_env.get("PATH"))

    @functools.cached_property
    def org(self) -> OrgConfig:
        """respond.toml (working directory, then home), read once for these settings."""
        return load_org(self.cwd, self.home, self.templates)

    def endpoint(self, name: str) -> str:
        return self.endpoints.get(name) or DEFAULT_ENDPOINTS[name]

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None, **flags: object) -> Settings:
        """Flags win over RESPOND_* / standard environment variables, which win over defaults."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {
            "home": default_home(env),
            "npm_env": env,
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
            "loopback_only": env.get("RESPOND_LOOPBACK_ONLY") == "1",
            "limits": _limits(env),
            "step_modules": tuple(
                m.strip() for m in env.get("RESPOND_STEP_MODULES", "").split(",") if m.strip()
            ),
            "templates": Path(env["RESPOND_TEMPLATES"]).expanduser()
            if env.get("RESPOND_TEMPLATES")
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
        raise UsageError(
            f"{name}={raw!r} is not a number of seconds; accepted: 0 < seconds <= 3600"
        )
    return value
