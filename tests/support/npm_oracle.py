"""The npm CLI itself (oracle/npm, pinned by its lockfile), run against loopback registries only.

Every run gets a throwaway HOME, userconfig, globalconfig and cache: the user's ~/.npmrc is never
read, and the registry always comes from the run's own config pointing at a loopback proxy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from playbook.config.npmrc import nerf_dart

ROOT = Path(__file__).resolve().parents[2]
NPM_CLI = ROOT / "oracle" / "npm" / "node_modules" / "npm" / "bin" / "npm-cli.js"
LOOPBACK = ("127.", "localhost", "[::1]")


def require_oracle() -> Path:
    """The oracle's npm-cli.js, or a skip (a fail in CI) saying how to install it."""
    if not NPM_CLI.is_file() or shutil.which("node") is None:
        reason = "oracle/npm/node_modules is missing: run `make setup` (or `make oracle`)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the npm parity tests; {reason}")
        pytest.skip(reason)
    return NPM_CLI


def npm_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: PATH for node, a throwaway HOME, userconfig, globalconfig, cache."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "global.npmrc").touch()
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "NPM_CONFIG_USERCONFIG": str(home / ".npmrc"),
        "NPM_CONFIG_GLOBALCONFIG": str(home / "global.npmrc"),
        "npm_config_cache": str(home / "npm-cache"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_loglevel": "error",
        "RESPOND_LOOPBACK_ONLY": "1",
        **(extra or {}),
    }


def npm_home(home: Path, registry_url: str, token: str) -> dict[str, str]:
    """`npm_env(home)` whose userconfig points npm at `registry_url`, authenticated by ${T}=token."""
    env = npm_env(home, {"T": token})
    (home / ".npmrc").write_text(
        f"registry={registry_url}\n{nerf_dart(registry_url)}:_authToken=${{T}}\n"
    )
    return env


def run_npm(
    args: list[str], *, registry: str, env: Mapping[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`npm <args> --registry <registry>`; refuses any registry that is not loopback."""
    host = registry.split("://", 1)[-1].lower()
    if not host.startswith(LOOPBACK):
        raise AssertionError(f"the npm oracle runs against loopback registries only, not {host}")
    cli = require_oracle()
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["node", str(cli), *args, "--registry", registry],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
