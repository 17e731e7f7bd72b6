"""Canary secrets: a live run and a failed run leave no trace of them in anything the tool wrote."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from playbook.rehearsal.proxy import RegistryProxy
from playbook.rehearsal.run import ORG_DETAILS
from playbook.rehearsal.sandbox import LocalRegistry, write_npmrc
from playbook.rehearsal.synth import make_package, reconstructed_files
from playbook.rehearsal.world import FakeWorld, World
from playbook.scan.detect import checksummed_token
from tests.support.cli import cli_env, respond

pytestmark = pytest.mark.registry
SHAPE = {"sources": 30, "first_party": 20, "seed": 5}


def every_byte(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_no_canary_reaches_store_logs_evidence_notices_or_reports(
    tmp_path: Path, local_registry: LocalRegistry
) -> None:
    npmrc_token = local_registry.add_user(f"canary-{uuid.uuid4().hex[:8]}", "pw-canary-1")
    canaries = {
        "npmrc token": npmrc_token,
        "NPM_TOKEN": "npm_CANARYnpmtoken0123456789abcdefABCDEF",
        "GITHUB_TOKEN": "ghp_CANARYgithub0123456789abcdefABCDEFGH",
        "OTP": "31415926",
    }
    leaked_key = checksummed_token("ghp_", "LEAKED" + "0123456789abcdefghijklmnopqrstuvwx"[:24])
    name = f"canary-{uuid.uuid4().hex[:8]}"
    local_registry.publish(
        make_package(name, "1.0.0", sources=0, first_party=0, with_map=False),
        name,
        "1.0.0",
        token=npmrc_token,
    )
    leaky = make_package(name, "1.0.1", with_map=True, secret=leaked_key, env_file=True, **SHAPE)
    local_registry.publish(leaky, name, "1.0.1", token=npmrc_token)
    other = f"{name}-b"  # for the failed run
    local_registry.publish(
        make_package(other, "1.0.0", sources=0, first_party=0, with_map=False),
        other,
        "1.0.0",
        token=npmrc_token,
    )
    local_registry.publish(
        make_package(other, "1.0.1", with_map=True, **SHAPE), other, "1.0.1", token=npmrc_token
    )
    files = reconstructed_files(name, "1.0.1", secret=leaked_key, **SHAPE)
    home = tmp_path / "home"
    cwd = tmp_path / "work"
    cwd.mkdir()
    outputs = b""
    with FakeWorld(World.seeded(files, name, "1.0.1", official_forks=3)) as fake:
        (cwd / "respond.toml").write_text(ORG_DETAILS + fake.world.respond_toml)
        env = cli_env(
            cwd, home, CANARY_NPMRC=npmrc_token, NPM_TOKEN=canaries["NPM_TOKEN"],
            GITHUB_TOKEN=canaries["GITHUB_TOKEN"], NPM_OTP=canaries["OTP"], **fake.env(),
        )  # fmt: skip

        def run(registry_url: str, *args: str) -> subprocess.CompletedProcess[str]:
            write_npmrc(cwd, registry_url, "CANARY_NPMRC")
            return respond(env, *args, cwd=cwd)

        live = run(local_registry.url, "leak", f"{name}@1.0.1", "--yes", "--json", "--verbose")
        assert live.returncode == 0, live.stderr
        with RegistryProxy(local_registry.url) as proxy:
            proxy.require_otp("00000000", times=None)  # the canary OTP is refused: a failed run
            proxy.fail("PUT", "dist-tags", 401, times=100)
            failed = run(
                proxy.url,
                "leak",
                f"{name}@1.0.0",
                "--yes",
                "--json",
                "--verbose",
                "--safe-version",
                "1.0.0",
            )
        assert failed.returncode != 0
        outputs = (live.stdout + live.stderr + failed.stdout + failed.stderr).encode()
    written = every_byte(home) + outputs
    assert len(written) > 10_000, "the runs wrote almost nothing: the test proves nothing"
    for label, value in canaries.items():
        assert value.encode() not in written, f"the {label} canary leaked"
    assert leaked_key.encode() not in written, "the secret found in the artifact was stored raw"
    assert b"ghp_" in written, "the leaked key's redacted form is missing: was it found at all?"
