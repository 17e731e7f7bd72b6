"""On a terminal: the registry's two-factor challenge is answered at a prompt, and the run goes on."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from playbook.rehearsal.proxy import RegistryProxy
from playbook.rehearsal.sandbox import LocalRegistry, write_npmrc
from tests.support.cli import RESPOND, ROOT, cli_env

pytestmark = pytest.mark.registry


def read_until(fd: int, needle: bytes, seconds: float = 60) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def test_otp_challenge_is_prompted_on_a_terminal(
    tmp_path: Path,
    local_registry: LocalRegistry,
    registry_token: str,
    leaked: str,
) -> None:
    name = leaked
    cwd = tmp_path / "work"
    cwd.mkdir()
    with RegistryProxy(local_registry.url) as proxy:
        proxy.require_otp("246810", times=None)
        write_npmrc(cwd, proxy.url, "T")
        env = cli_env(cwd, tmp_path / "home", T=registry_token, TERM="dumb", COLUMNS="120")
        leader, follower = pty.openpty()
        runbook = str(ROOT / "runbooks" / "npm-contain.yaml")
        proc = subprocess.Popen(
            [*RESPOND, "leak", f"{name}@1.0.1", "--runbook", runbook, "--yes"],
            cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower, close_fds=True,
        )  # fmt: skip
        os.close(follower)
        try:
            prompt = read_until(leader, b"One-time password")
            assert b"One-time password" in prompt, prompt.decode(errors="replace")[-2000:]
            os.write(leader, b"246810\r")
            rest = b""
            deadline = time.monotonic() + 90
            while proc.poll() is None and time.monotonic() < deadline:
                rest += read_until(leader, b"\0", seconds=0.5)  # keep the terminal drained
            assert proc.wait(timeout=5) == 0, rest.decode(errors="replace")[-3000:]
        finally:
            proc.kill()
            proc.wait()
            os.close(leader)
        assert any(r.method == "PUT" and r.status < 300 for r in proxy.requests)
    doc = httpx.get(local_registry.url + name.replace("/", "%2f")).json()
    assert doc["dist-tags"] == {"latest": "1.0.0"}
