"""Shared fixtures: loopback-only sockets, one local Verdaccio per run, the recording proxy."""

from __future__ import annotations

import io
import ipaddress
import json
import os
import socket
import tarfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from playbook.rehearsal.proxy import RegistryProxy
from playbook.rehearsal.sandbox import REGISTRY_DIR, LocalRegistry

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _allowed(sock: socket.socket, address: Any) -> bool:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return True
    host = address[0] if isinstance(address, tuple) else address
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _guarded(real: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any) -> Any:
        if not _allowed(self, address):
            raise AssertionError(f"test tried to connect to {address!r}: tests use loopback only")
        return real(self, address)

    return connect


# Subprocesses the tests start inherit this: every HTTP client respond builds then refuses any
# host but loopback, the same guard the socket patch below gives this process.
os.environ["RESPOND_LOOPBACK_ONLY"] = "1"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connect outside 127.0.0.0/8, ::1 and AF_UNIX fails the test."""
    monkeypatch.setattr(socket.socket, "connect", _guarded(_real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded(_real_connect_ex))


@pytest.fixture(scope="session")
def local_registry() -> Iterator[LocalRegistry]:
    """One Verdaccio for the whole run (about 1 s to start), stopped by PID at the end."""
    if not (REGISTRY_DIR / "node_modules" / "verdaccio").is_dir():
        reason = "registry/node_modules is missing: run `make setup` (npm ci --prefix registry)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the registry tests; {reason}")
        pytest.skip(reason)
    with LocalRegistry() as registry:
        yield registry


@pytest.fixture(scope="session")
def registry_token(local_registry: LocalRegistry) -> str:
    return local_registry.add_user(f"tester-{uuid.uuid4().hex[:8]}", "correct-horse-battery")


@pytest.fixture
def proxy(local_registry: LocalRegistry) -> Iterator[RegistryProxy]:
    """A fresh recording proxy in front of the shared registry, with no injections."""
    with RegistryProxy(local_registry.url) as recording:
        yield recording


@pytest.fixture
def unique_name() -> Callable[..., str]:
    """Per-test package names, so tests sharing the registry never see each other's packages."""

    def make(scope: str | None = None, stem: str = "leak") -> str:
        name = f"{stem}-{uuid.uuid4().hex[:10]}"
        return f"@{scope}/{name}" if scope else name

    return make


def make_tarball(name: str, version: str, files: Mapping[str, bytes | str] | None = None) -> bytes:
    """A package tarball as npm packs it: every entry under `package/`."""
    entries: dict[str, bytes | str] = {
        "package.json": json.dumps({"name": name, "version": version}),
        "index.js": f"module.exports = {json.dumps(version)};\n",
        **(files or {}),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for path, data in entries.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def leaky_files() -> dict[str, str]:
    """A bundle whose source map carries the original source: what the scan must call leaky."""
    source_map = {
        "version": 3,
        "file": "cli.js",
        "sources": ["../src/main.ts", "../node_modules/dep/index.js"],
        "sourcesContent": ["export const main = () => 42;\n", "module.exports = 1;\n"],
        "mappings": "AAAA",
    }
    return {
        "cli.js": "console.log(42);\n//# sourceMappingURL=cli.js.map\n",
        "cli.js.map": json.dumps(source_map),
    }


@pytest.fixture
def publish(local_registry: LocalRegistry, registry_token: str) -> Callable[..., None]:
    """Publish `name@version` straight to Verdaccio (leaky=True plants a source map)."""

    def do(
        name: str, version: str, *, tag: str = "latest", leaky: bool = False,
        deprecated: str | None = None,
    ) -> None:  # fmt: skip
        files = leaky_files() if leaky else None
        local_registry.publish(
            make_tarball(name, version, files),
            name,
            version,
            token=registry_token,
            tag=tag,
            deprecated=deprecated,
        )

    return do


@pytest.fixture
def leaked(publish: Callable[..., None], unique_name: Callable[..., str]) -> str:
    """A fresh package: 1.0.0 clean, then 1.0.1 leaky on latest (the usual incident)."""
    name = unique_name()
    publish(name, "1.0.0")
    publish(name, "1.0.1", leaky=True)
    return name
