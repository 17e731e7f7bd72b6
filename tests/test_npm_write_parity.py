"""Differential: respond's writes equal the npm CLI's in method, path, body shape, npm-* headers.

npm 11 (oracle/npm) works on package A, respond on an identical package B, both through the same
recording proxy in front of the local Verdaccio. Names and revisions are normalised; everything
else must match, and every document read of the sequence carries `?write=true` on both sides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from playbook.config.settings import Settings
from playbook.net.http import ClientOptions, RetryPolicy
from playbook.rehearsal.proxy import Recorded, RegistryProxy
from playbook.secret import Secret
from playbook.services.hub import Services
from playbook.services.npm import HttpNpmRegistry, registry_for
from tests.support.npm_oracle import npm_home, require_oracle, run_npm
from tests.support.services import run_closing

pytestmark = pytest.mark.registry
FAST = RetryPolicy(attempts=1, backoff=0.01, max_wait=0.05)
MESSAGE = "leaked sources; use 1.0.0"
OTP = "135790"


@dataclass(frozen=True)
class Op:
    id: str
    npm: list[str]  # {name} is the package
    respond: Callable[[HttpNpmRegistry, str], Coroutine[Any, Any, Any]]
    otp: bool = False


OPS = [
    Op("dist-tag-add", ["dist-tag", "add", "{name}@1.0.1", "beta"],
       lambda r, n: r.set_dist_tag(n, "beta", "1.0.1")),
    Op("dist-tag-rm", ["dist-tag", "rm", "{name}", "next"], lambda r, n: r.delete_dist_tag(n, "next")),
    Op("deprecate", ["deprecate", "{name}@1.0.1", MESSAGE], lambda r, n: r.deprecate(n, "1.0.1", MESSAGE)),
    Op("unpublish-version", ["unpublish", "{name}@1.0.1"],
       lambda r, n: r.unpublish_version(n, "1.0.1")),
    Op("unpublish-package", ["unpublish", "{name}", "--force"],
       lambda r, n: r.unpublish_package(n, confirmed=True)),
    Op("deprecate-otp", ["deprecate", "{name}@1.0.1", MESSAGE, "--otp", OTP],
       lambda r, n: r.deprecate(n, "1.0.1", MESSAGE), otp=True),
    Op("dist-tag-add-otp", ["dist-tag", "add", "{name}@1.0.1", "beta", "--otp", OTP],
       lambda r, n: r.set_dist_tag(n, "beta", "1.0.1"), otp=True),
]  # fmt: skip


def shape(body: bytes) -> Any:
    """What a body says, without names, revisions or times."""
    if not body:
        return None
    data = json.loads(body)
    if not isinstance(data, dict):
        return data
    versions = data.get("versions") or {}
    return {
        "keys": sorted(data),
        "versions": sorted(versions),
        "deprecated": {v: d.get("deprecated") for v, d in versions.items() if d.get("deprecated")},
        "dist-tags": data.get("dist-tags"),
    }


def writes(requests: list[Recorded], name: str) -> list[tuple[Any, ...]]:
    escaped = name.replace("/", "%2f")
    out = []
    for r in requests:
        if not r.write:
            continue
        path = r.path.replace(escaped, "<pkg>").replace(name.rsplit("/", 1)[-1], "<file>")
        path = re.sub(r"/-rev/[^/?]+", "/-rev/<rev>", path)
        out.append((r.method, path, r.status, shape(r.body), r.npm_headers))
    return out


def document_reads(requests: list[Recorded], name: str) -> set[str]:
    escaped = name.replace("/", "%2f")
    return {r.path.split(escaped, 1)[1] for r in requests if r.path.startswith(f"/{escaped}?")}


@pytest.mark.parametrize("op", OPS, ids=[o.id for o in OPS])
def test_respond_writes_what_npm_writes(
    op: Op,
    tmp_path: Path,
    proxy: RegistryProxy,
    registry_token: str,
    publish: Callable[..., None],
    unique_name: Callable[..., str],
) -> None:
    require_oracle()
    names = [unique_name("acme", "wparity"), unique_name("acme", "wparity")]
    for name in names:
        publish(name, "1.0.0")
        publish(name, "1.0.1", tag="next")
    if op.otp:
        proxy.require_otp(OTP)
    env = npm_home(tmp_path / "home", proxy.url, registry_token)
    work = tmp_path / "work"

    proxy.clear()
    args = [a.format(name=names[0]) for a in op.npm]
    done = run_npm(args, registry=proxy.url, env=env, cwd=work)
    assert done.returncode == 0, done.stderr[-800:]
    by_npm = proxy.requests
    proxy.clear()
    settings = Settings(
        home=tmp_path / "respond", npm_env=env, cwd=work, otp=Secret(OTP) if op.otp else None
    )
    services = Services(settings, ClientOptions(dry_run=False, retry=FAST, timeout=10.0))
    run_closing(services, lambda s: op.respond(registry_for(s, names[1]), names[1]))
    by_respond = proxy.requests

    assert writes(by_respond, names[1]) == writes(by_npm, names[0])
    assert writes(by_npm, names[0]), "the oracle wrote nothing"
    assert document_reads(by_respond, names[1]) <= document_reads(by_npm, names[0])
    assert all("write=true" in q for q in document_reads(by_respond, names[1]))


def test_unpublishing_the_only_version_is_refused_by_npm_and_respond(
    tmp_path: Path,
    proxy: RegistryProxy,
    registry_token: str,
    publish: Callable[..., None],
    unique_name: Callable[..., str],
) -> None:
    from playbook.services.npm import LastVersion

    require_oracle()
    name = unique_name()
    publish(name, "1.0.0")
    env = npm_home(tmp_path / "home", proxy.url, registry_token)
    proxy.clear()
    done = run_npm(["unpublish", f"{name}@1.0.0"], registry=proxy.url, env=env, cwd=tmp_path / "w")
    assert done.returncode != 0 and "Refusing to delete the last version" in done.stderr
    settings = Settings(home=tmp_path / "respond", npm_env=env, cwd=tmp_path / "w")
    services = Services(settings, ClientOptions(dry_run=False, retry=FAST, timeout=10.0))
    with pytest.raises(LastVersion, match="Refusing to delete the last version of the package"):
        run_closing(services, lambda s: registry_for(s, name).unpublish_version(name, "1.0.0"))
    assert proxy.writes == []
