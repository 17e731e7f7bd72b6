"""A throwaway local npm registry (the pinned Verdaccio) for rehearsals and tests."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from playbook.errors import RemoteError, RespondError
from playbook.spec import escape_name, tarball_filename

# A checkout's registry/, installed by `make setup`; an installed wheel uses rehearsal/install.py.
REGISTRY_DIR = Path(__file__).resolve().parents[2] / "registry"
START_TIMEOUT = 20.0
STOP_GRACE = 5.0

CONFIG_TEMPLATE = """\
storage: {storage}
auth:
  htpasswd:
    file: {htpasswd}
    max_users: 1000
uplinks: {{}}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
security:
  api:
    jwt:
      sign:
        expiresIn: 7d
web:
  enable: false
max_body_size: 300mb
listen: 127.0.0.1:{port}
log: {{type: stdout, format: pretty, level: warn}}
"""


class SandboxError(RespondError):
    """The local registry could not be started or used."""


def free_port() -> int:
    """A port the kernel just handed out on loopback (released again for the child to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def verdaccio_bin(root: Path = REGISTRY_DIR) -> Path:
    """The installed Verdaccio entry point, or a SandboxError saying how to install it."""
    entry = root / "node_modules" / "verdaccio" / "bin" / "verdaccio"
    if not entry.is_file():
        raise SandboxError(
            f"The local registry is not installed: {entry} is missing.",
            "In a checkout run `make setup`; `respond rehearse` installs it on first use.",
        )
    return entry


@dataclass(frozen=True)
class Tarball:
    """A package tarball and the digests npm records for it."""

    data: bytes

    @property
    def shasum(self) -> str:
        return hashlib.sha1(self.data).hexdigest()

    @property
    def integrity(self) -> str:
        return "sha512-" + base64.b64encode(hashlib.sha512(self.data).digest()).decode()


class LocalRegistry:
    """Verdaccio on a free loopback port with a throwaway storage; stopped by PID, never by name.

    Use as a context manager: it stops (and deletes its storage) on exit, exceptions included.
    """

    def __init__(self, root: Path = REGISTRY_DIR, *, node: str | None = None) -> None:
        self.entry = verdaccio_bin(root)
        self.node = node or shutil.which("node") or "node"
        self.port = 0
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def storage(self) -> Path:
        assert self.workdir is not None, "the registry is not started"
        return self.workdir / "storage"

    def __enter__(self) -> LocalRegistry:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="respond-registry-"))
        self.port = free_port()
        config = self.workdir / "config.yaml"
        config.write_text(
            CONFIG_TEMPLATE.format(
                storage=json.dumps(str(self.storage)),
                htpasswd=json.dumps(str(self.workdir / "htpasswd")),
                port=self.port,
            )
        )
        self._log = (self.workdir / "verdaccio.log").open("wb")
        # The child's environment, not configuration: Verdaccio inherits ours (node on PATH).
        env = {**os.environ, "VERDACCIO_HANDLE_KILL_SIGNALS": "true"}
        self._proc = subprocess.Popen(
            [self.node, str(self.entry), "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.workdir,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise SandboxError(
                    f"The local registry exited with status {self._proc.returncode} on start.",
                    f"See its log: {self.log_text()[-2000:]}",
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "-/ping", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        raise SandboxError(
            f"The local registry did not answer {self.url}-/ping within {START_TIMEOUT:g}s.",
            "Check that node 20 is installed and registry/node_modules is complete.",
        )

    def log_text(self) -> str:
        if self.workdir is None or not (self.workdir / "verdaccio.log").exists():
            return ""
        return (self.workdir / "verdaccio.log").read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM the child by its PID, SIGKILL it after a grace period, delete the storage."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_GRACE)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- helpers for fixtures and rehearsals (plain sync HTTP: they run before the async code) --

    def add_user(self, name: str, password: str) -> str:
        """Register a user and return its token (Verdaccio's htpasswd allows sign-up)."""
        body = {"name": name, "password": password, "type": "user", "roles": [], "date": ""}
        url = f"{self.url}-/user/org.couchdb.user:{name}"
        response = httpx.put(url, json=body, timeout=10.0)
        if response.status_code not in (200, 201):
            raise SandboxError(f"Registering user {name!r} at {url} failed: {response.text}")
        token: str = response.json()["token"]
        return token

    def publish(
        self,
        tarball: bytes,
        name: str,
        version: str,
        *,
        token: str,
        tag: str = "latest",
        deprecated: str | None = None,
        manifest: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish a version without npm: PUT /<name> with the packument and the base64 tarball."""
        publish_package(self.url, tarball, name, version, token=token, tag=tag, manifest=manifest)
        if deprecated is not None:
            self.deprecate(name, version, deprecated, token=token)

    def deprecate(self, name: str, version: str, message: str, *, token: str) -> None:
        escaped = escape_name(name)
        headers = {"authorization": f"Bearer {token}"}
        doc = httpx.get(f"{self.url}{escaped}?write=true", headers=headers, timeout=10.0).json()
        doc["versions"][version]["deprecated"] = message
        response = httpx.put(f"{self.url}{escaped}", json=doc, headers=headers, timeout=10.0)
        _check(response, f"deprecating {name}@{version}")

    def backdate(self, name: str, version: str, when: datetime) -> None:
        """Rewrite a version's publish time in the storage (Verdaccio reads it per request)."""
        doc_path = self.storage / name / "package.json"
        doc = json.loads(doc_path.read_text())
        doc.setdefault("time", {})[version] = when.isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )
        doc_path.write_text(json.dumps(doc))


def write_npmrc(folder: Path, registry: str, token_env: str) -> Path:
    """A project .npmrc naming `registry`, its token read from ${token_env} as npm expands it."""
    from playbook.config.npmrc import nerf_dart
    from playbook.fileio import write_atomic

    text = f"registry={registry}\n{nerf_dart(registry)}:_authToken=${{{token_env}}}\n"
    return write_atomic(folder / ".npmrc", text)


def publish_package(
    base_url: str,
    tarball: bytes,
    name: str,
    version: str,
    *,
    token: str,
    tag: str = "latest",
    manifest: Mapping[str, Any] | None = None,
) -> None:
    """The npm CLI's publish request: one PUT carrying the version, its tag and the tarball."""
    base = base_url.rstrip("/")
    escaped = escape_name(name)
    filename = tarball_filename(name, version)
    digest = Tarball(tarball)
    version_doc = {
        "name": name,
        "version": version,
        **(manifest or {}),
        "_id": f"{name}@{version}",
        "maintainers": [{"name": "respond", "email": "respond@localhost"}],
        "dist": {
            "integrity": digest.integrity,
            "shasum": digest.shasum,
            "tarball": f"{base}/{escaped}/-/{filename}",
        },
    }
    body = {
        "_id": name,
        "name": name,
        "dist-tags": {tag: version},
        "versions": {version: version_doc},
        "maintainers": version_doc["maintainers"],
        "_attachments": {
            filename: {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(tarball).decode(),
                "length": len(tarball),
            }
        },
    }
    headers = {"authorization": f"Bearer {token}"}
    response = httpx.put(f"{base}/{escaped}", json=body, headers=headers, timeout=60.0)
    _check(response, f"publishing {name}@{version}")


def _check(response: httpx.Response, doing: str) -> None:
    if response.status_code >= 400:
        raise RemoteError(
            f"The local registry refused {doing} at {response.request.url}: "
            f"HTTP {response.status_code} {response.text[:300]}",
            status=response.status_code,
        )
