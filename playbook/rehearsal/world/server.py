"""The world's HTTP server: one threaded server on 127.0.0.1, one prefix per service.

`/github`, `/jsdelivr`, `/jsdelivr_purge`, `/unpkg`, `/swh`, `/gitlab`, `/codeberg` and `/npm`
answer in the real services' shapes, limits and headers; nothing here talks to a public service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playbook.rehearsal.world.cdn import Cdn
from playbook.rehearsal.world.forges import Forges
from playbook.rehearsal.world.github import GitHub
from playbook.rehearsal.world.graphql import GraphQL
from playbook.rehearsal.world.model import Clock, World
from playbook.rehearsal.world.npm import Npm
from playbook.rehearsal.world.swh import SoftwareHeritage
from playbook.rehearsal.world.wire import Reply, Stats, json_reply

ENDPOINT_NAMES = ("github", "jsdelivr", "jsdelivr_purge", "unpkg", "swh", "gitlab", "codeberg")


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 refuses connections when a loaded machine is slow to
    # accept them and several clients (GitHub, forges, npm, archive) connect at once.
    request_queue_size = 128


class FakeWorld:
    """The HTTP server playing every outside service for a World. Use as a context manager."""

    def __init__(self, world: World, clock: Clock = time.time) -> None:
        self.world = world
        self.clock = clock
        self.stats = Stats()
        self._lock = threading.Lock()
        shared = (world, clock, self.stats, self._lock)
        self.github = GitHub(*shared)
        self.graphql = GraphQL(*shared, keep=self.github.keep)
        cdn, forges = Cdn(*shared), Forges(*shared)
        self._routes: dict[str, Callable[[str, dict[str, str], str, Mapping[str, str]], Reply]] = {
            "github": self.github,
            "jsdelivr": cdn.jsdelivr,
            "jsdelivr_purge": cdn.purge,
            "unpkg": cdn.unpkg,
            "swh": SoftwareHeritage(*shared),
            "gitlab": forges.gitlab,
            "codeberg": forges.codeberg,
            "npm": Npm(*shared),
        }
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------------

    def start(self) -> FakeWorld:
        handler = _make_handler(self)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        server = self._server
        # A short poll interval makes stop() prompt (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake world is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def endpoint(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    @property
    def registry(self) -> str:
        """The npm registry URL (search, packuments, tarballs) this world plays."""
        return f"{self.base_url}/npm/"

    def env(self) -> dict[str, str]:
        """RESPOND_<NAME>_API for every endpoint this world plays."""
        return {f"RESPOND_{n.upper()}_API": self.endpoint(n) for n in ENDPOINT_NAMES}

    # world changes while running (a takedown, a deletion) ----------------------------------------

    def disable(self, full_name: str) -> None:
        repo = self.world.repo(full_name)
        if repo is None:
            raise KeyError(full_name)
        repo.disabled = True

    def delete(self, full_name: str) -> None:
        repo = self.world.repo(full_name)
        if repo is None:
            raise KeyError(full_name)
        repo.deleted = True

    # dispatch ------------------------------------------------------------------------------------

    def _graphql(self, body: bytes, headers: Mapping[str, str], base: str) -> Reply:
        """GitHub's GraphQL endpoint: counted and limited as a GitHub request (secondary too)."""
        limited = self.github.count_request()
        return limited if limited is not None else self.graphql(body, headers, base)

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], host: str, body: bytes = b""
    ) -> Reply:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        prefix, _, rest = parts.path.lstrip("/").partition("/")
        base = f"http://{host}/{prefix}"
        route = self._routes.get(prefix)
        if prefix == "github" and rest == "graphql" and method == "POST":
            reply = self._graphql(body, headers, base)
        elif route is None:
            reply = json_reply(404, {"message": "Not Found"}, "other")
        else:
            reply = route("/" + rest, query, base, headers)
        if method == "HEAD":
            reply.headers["content-length"] = str(len(reply.body))
            reply.body = b""
        with self._lock:
            self.stats.requests[reply.route] += 1
            self.stats.statuses[reply.status] += 1
            self.stats.log.append((self.clock(), reply.route, parts.path, reply.status))
        return reply


def _make_handler(world: FakeWorld) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's algorithm and delayed
        # ACKs add 40 ms to every keep-alive request.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = world.handle(self.command, self.path, headers, headers.get("host", ""), body)
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if "content-length" not in reply.headers:
                self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            if reply.body:
                self.wfile.write(reply.body)

        do_GET = _serve
        do_HEAD = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the stats hold what tests need."""

    return Handler


def world_settings(fake: FakeWorld, home: Path, *, token: str | None = "fake-github-token") -> Any:
    """Settings that point every service at `fake` (and npm at its registry), home under `home`.

    Writes the world's respond.toml ([official]) into `home`, which is also the working directory.
    """
    from playbook.config.settings import Settings

    home.mkdir(parents=True, exist_ok=True)
    (home / "respond.toml").write_text(fake.world.respond_toml)
    env = {**fake.env(), "RESPOND_HOME": str(home), "HOME": str(home)}
    if token:
        env["GITHUB_TOKEN"] = token
    return Settings.resolve(env=env, cwd=home, registry=fake.registry)
