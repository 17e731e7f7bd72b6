"""Differential: the credential respond sends on each request equals the one the npm CLI sends.

The oracle is npm 11 itself (oracle/npm), run with a throwaway userconfig against the local
Verdaccio through the recording proxy. For each .npmrc/environment setup both do `dist-tag add`
(GET the tags, PUT one); the proxy records, per request, the Host and a digest of Authorization
(compared, never printed). `expect` pins what npm does, so a misconfigured oracle cannot make the
comparison pass by sending nothing on both sides.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from playbook.config.settings import Settings
from playbook.errors import RespondError
from playbook.net.http import ClientOptions, RetryPolicy
from playbook.rehearsal.proxy import Recorded, RegistryProxy
from playbook.rehearsal.sandbox import LocalRegistry
from playbook.services.hub import Services
from playbook.services.npm import registry_for
from tests.support.npm_oracle import npm_env, require_oracle, run_npm

pytestmark = pytest.mark.registry
FAST = RetryPolicy(attempts=1, backoff=0.01, max_wait=0.05)
PASSWORD = "oracle-horse-battery"


@dataclass(frozen=True)
class Users:
    name: str
    token: str
    other: str  # a second user's token, so a digest tells which line was chosen


@dataclass(frozen=True)
class Setup:
    id: str
    registry: str  # the registry= line and npm's --registry; {P} main port, {Q} prefixed port
    lines: str  # the rest of the .npmrc
    expect: str  # what npm sends to the package's registry: "bearer", "basic" or "none"
    env: dict[str, str] = field(default_factory=dict)
    scope: str | None = None
    proxy: str = "main"  # main | prefix (serves under /npm) | port80 (127.0.0.x:80)


SETUPS = [
    Setup("token", "http://127.0.0.1:{P}/", "//127.0.0.1:{P}/:_authToken={T}", "bearer"),
    Setup("var-in-value", "http://127.0.0.1:{P}/", "//127.0.0.1:{P}/:_authToken=${{RT}}",
          "bearer", env={"RT": "{T}"}),
    Setup("var-in-key", "http://127.0.0.1:{P}/", "//${{RHOST}}/:_authToken={T}", "bearer",
          env={"RHOST": "127.0.0.1:{P}"}),
    Setup("_auth", "http://127.0.0.1:{P}/", "//127.0.0.1:{P}/:_auth={B64}", "basic"),
    Setup("username+_password", "http://127.0.0.1:{P}/",
          "//127.0.0.1:{P}/:username={U}\n//127.0.0.1:{P}/:_password={PW64}", "basic"),
    Setup("NPM_TOKEN-alone", "http://127.0.0.1:{P}/", "", "none", env={"NPM_TOKEN": "{T}"}),
    Setup("upper-case-host", "http://LOCALHOST:{P}/", "//localhost:{P}/:_authToken={T}",
          "bearer"),
    Setup("default-port-80", "http://{H80}:80/", "//{H80}/:_authToken={T}", "bearer",
          proxy="port80"),
    Setup("scoped-with-own-token", "http://127.0.0.1:{P}/",
          "@sc:registry=http://localhost:{P}/\n//127.0.0.1:{P}/:_authToken={T}\n"
          "//localhost:{P}/:_authToken={T2}", "bearer", scope="sc"),
    Setup("scoped-without-token", "http://127.0.0.1:{P}/",
          "@sc:registry=http://localhost:{P}/\n//127.0.0.1:{P}/:_authToken={T}", "none",
          scope="sc"),
    Setup("path-prefix", "http://127.0.0.1:{Q}/npm/", "//127.0.0.1:{Q}/npm/:_authToken={T}",
          "bearer", proxy="prefix"),
    Setup("prefix-no-trailing-slash", "http://127.0.0.1:{Q}/npm",
          "//127.0.0.1:{Q}/npm:_authToken={T}", "bearer", proxy="prefix"),
    Setup("longer-path-must-not-match", "http://127.0.0.1:{P}/",
          "//127.0.0.1:{P}/npm/:_authToken={T}", "none"),
    Setup("other-host-token-only", "http://localhost:{P}/", "//127.0.0.1:{P}/:_authToken={T}",
          "none"),
    Setup("no-credential", "http://127.0.0.1:{P}/", "", "none"),
]  # fmt: skip


@dataclass
class Proxies:
    main: RegistryProxy
    prefix: RegistryProxy
    port80: RegistryProxy | None

    def all(self) -> list[RegistryProxy]:
        return [p for p in (self.main, self.prefix, self.port80) if p is not None]


@pytest.fixture(scope="module")
def users(local_registry: LocalRegistry) -> Users:
    name = f"oracle-{uuid.uuid4().hex[:8]}"
    token = local_registry.add_user(name, PASSWORD)
    other = local_registry.add_user(f"oracle2-{uuid.uuid4().hex[:8]}", PASSWORD)
    return Users(name, token, other)


@pytest.fixture(scope="module")
def proxies(local_registry: LocalRegistry) -> Iterator[Proxies]:
    require_oracle()
    with (
        RegistryProxy(local_registry.url) as main,
        RegistryProxy(local_registry.url, prefix="/npm") as prefix,
    ):
        port80 = None
        try:  # an explicit default port needs port 80 on some loopback address
            port80 = RegistryProxy(
                local_registry.url, host=f"127.0.0.{random.randint(100, 250)}", port=80
            )
            port80.__enter__()
        except OSError:
            port80 = None
        try:
            yield Proxies(main, prefix, port80)
        finally:
            if port80 is not None:
                port80.close()


def fill(text: str, values: dict[str, str]) -> str:
    return text.format(**values)


def seen(proxies: Proxies) -> list[tuple[str, str, str, str]]:
    """(method, path with the tag normalised, host, credential digest) of every request."""
    out = []
    for proxy in proxies.all():
        for r in proxy.requests:
            out.append((r.method, re.sub(r"/dist-tags/\w+$", "/dist-tags/<tag>", r.path),
                        r.host, r.credential))  # fmt: skip
    return out


def clear(proxies: Proxies) -> None:
    for proxy in proxies.all():
        proxy.clear()


def respond_dist_tag(settings: Settings, name: str) -> None:
    services = Services(settings, ClientOptions(dry_run=False, retry=FAST, timeout=10.0))

    async def body() -> None:
        try:
            reg = registry_for(services, name)
            await reg.dist_tags(name)
            await reg.set_dist_tag(name, "rsptag", "1.0.0")
        except RespondError:
            pass  # a refused write is still a request sent; the proxy compares what was sent
        finally:
            await services.aclose()

    asyncio.run(body())


def kinds(requests: list[Recorded]) -> set[str]:
    return {"none" if not r.authorized else r.credential for r in requests}


@pytest.mark.parametrize("setup", SETUPS, ids=[s.id for s in SETUPS])
def test_respond_sends_the_credential_npm_sends(
    setup: Setup,
    tmp_path: Path,
    proxies: Proxies,
    users: Users,
    publish: Callable[..., None],
    unique_name: Callable[..., str],
) -> None:
    if setup.proxy == "port80" and proxies.port80 is None:
        pytest.skip("port 80 cannot be bound on loopback here (needs root)")
    name = unique_name(setup.scope, "parity")
    publish(name, "1.0.0")
    b64 = base64.b64encode(f"{users.name}:{PASSWORD}".encode()).decode()
    values = {
        "P": str(proxies.main.port),
        "Q": str(proxies.prefix.port),
        "H80": str(proxies.port80.server.server_address[0]) if proxies.port80 else "",
        "T": users.token,
        "T2": users.other,
        "U": users.name,
        "B64": b64,
        "PW64": base64.b64encode(PASSWORD.encode()).decode(),
    }
    registry = fill(setup.registry, values)
    rc = f"registry={registry}\n{fill(setup.lines, values)}\n"
    home = tmp_path / "home"
    env = npm_env(home, {k: fill(v, values) for k, v in setup.env.items()})
    (home / ".npmrc").write_text(rc)
    work = tmp_path / "work"

    clear(proxies)
    done = run_npm(["dist-tag", "add", f"{name}@1.0.0", "npmtag"], registry=registry,
                   env=env, cwd=work)  # fmt: skip
    by_npm = seen(proxies)
    npm_requests = [r for p in proxies.all() for r in p.requests]
    clear(proxies)
    respond_dist_tag(Settings(home=tmp_path / "respond", npm_env=env, cwd=work), name)
    by_respond = seen(proxies)

    assert [m for m, *_ in by_npm] == ["GET", "PUT"], done.stderr[-500:]
    wanted = {"bearer": "Bearer ", "basic": "Basic ", "none": None}[setup.expect]
    if wanted is None:
        assert kinds(npm_requests) == {"none"}, "the oracle sent a credential where none was due"
    else:
        assert "none" not in kinds(npm_requests), f"the oracle sent no credential: {done.stderr}"
    assert by_respond == by_npm


def test_oracle_refuses_a_non_loopback_registry(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="loopback registries only"):
        run_npm(["ping"], registry="https://registry.invalid/", env={}, cwd=tmp_path)
