"""The local registry's lifecycle, the proxy's seams, and the test suite's loopback guard."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from playbook.config.settings import Settings
from playbook.net.http import ClientOptions
from playbook.rehearsal.proxy import RegistryProxy
from playbook.rehearsal.sandbox import LocalRegistry, SandboxError
from playbook.services.hub import Services
from playbook.services.npm import registry_for
from tests import conftest


def test_missing_install_says_run_make_setup(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="not installed") as info:
        LocalRegistry(tmp_path)
    assert info.value.hint is not None and "make setup" in info.value.hint


@pytest.mark.registry
def test_registry_stops_by_pid_and_cleans_up_even_on_error(local_registry: LocalRegistry) -> None:
    pid, workdir = None, None
    with pytest.raises(RuntimeError, match="boom"), LocalRegistry() as registry:
        pid, workdir = registry.pid, registry.workdir
        assert httpx.get(registry.url + "-/ping", timeout=5).status_code == 200
        raise RuntimeError("boom")
    assert pid is not None and workdir is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not workdir.exists()
    assert local_registry.pid != pid  # the shared registry is another process, still running
    assert httpx.get(local_registry.url + "-/ping", timeout=5).status_code == 200


@pytest.mark.registry
def test_tarball_on_another_origin_gets_no_token(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any,
    local_registry: LocalRegistry,
) -> None:  # fmt: skip
    name = unique_name()
    publish(name, "1.0.0")
    env = {"HOME": str(tmp_path), "PATH": "", "NPM_TOKEN": registry_token}
    settings = Settings(home=tmp_path / "r", npm_env=env, cwd=tmp_path, registry=local_registry.url)
    services = Services(settings, ClientOptions(dry_run=False))

    async def body() -> None:
        reg = registry_for(services, name)
        doc = await reg.packument(name)
        assert doc is not None
        dist = doc.versions["1.0.0"].dist
        elsewhere = str(dist.tarball).replace(local_registry.url, proxy.url)
        await reg.download(elsewhere, tmp_path / "t.tgz", integrity=dist.integrity, shasum=None)
        await services.aclose()

    asyncio.run(body())
    assert [(r.method, r.authorized) for r in proxy.requests] == [("GET", False)]


def test_loopback_guard_refuses_other_addresses() -> None:
    reached: list[Any] = []
    connect = conftest._guarded(lambda _sock, address: reached.append(address))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        for address in (("192.0.2.1", 443), ("8.8.8.8", 53), ("example.invalid", 80)):
            with pytest.raises(AssertionError, match="loopback only"):
                connect(sock, address)
        connect(sock, ("127.0.0.1", 9))
        connect(sock, ("localhost", 9))
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock6:
        connect(sock6, ("::1", 9, 0, 0))
    assert reached == [("127.0.0.1", 9), ("localhost", 9), ("::1", 9, 0, 0)]
    assert socket.socket.connect is not conftest._real_connect  # the autouse guard is active
