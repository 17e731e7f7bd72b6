"""A local world for the mirror hunt: GitHub's REST API, CDNs, Software Heritage, forges, npm.

One threaded HTTP server on 127.0.0.1 answers in the real services' shapes, limits and headers, each
under its own prefix (`/github`, `/jsdelivr`, `/jsdelivr_purge`, `/unpkg`, `/swh`, `/gitlab`,
`/codeberg`, `/npm`). `World.seeded(...)` plants copies of a package's reconstructed files among
legitimate repositories and noise, and records the ground truth used for precision and recall.
Tests, benches and `respond rehearse` use it; nothing here ever talks to a public service.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import io
import json
import random
import re
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from playbook.scan.fingerprint import blob_sha1, is_first_party

Clock = Callable[[], float]
CODE_SEARCH_MAX_BYTES = 384 * 1024
HOST_DOMAINS = {"github": "github.com", "gitlab": "gitlab.com", "codeberg": "codeberg.org"}
ENDPOINT_NAMES = ("github", "jsdelivr", "jsdelivr_purge", "unpkg", "swh", "gitlab", "codeberg")
_TOKEN = re.compile(rb"[A-Za-z0-9_]+")
REFERENCE_TIME = "2026-03-31T04:00:00Z"  # the seeder writes its dates relative to this


class FakeClock:
    """A clock shared by the server and the client's governor: sleeping advances it at once."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        import asyncio

        with self._lock:
            self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@dataclass
class FakeRepo:
    """A repository on one of the forges; `label` is the ground truth the hunt must reach."""

    full_name: str
    files: dict[str, bytes]
    host: str = "github"
    default_branch: str = "main"
    description: str = ""
    created_at: str = "2026-03-31T12:00:00Z"
    pushed_at: str | None = None  # the last push; None means at creation
    parent: str | None = None  # full_name of the repository it was forked from
    stars: int = 0
    disabled: bool = False
    deleted: bool = False
    label: str = "noise"
    id: int = 0

    @property
    def url(self) -> str:
        return f"https://{HOST_DOMAINS[self.host]}/{self.full_name}"


@dataclass
class FakePackage:
    """A package on the npm registry's search endpoint (a republished copy, or an innocent one)."""

    name: str
    version: str
    files: dict[str, bytes]
    description: str = ""
    label: str = "noise"


@dataclass(frozen=True)
class Limits:
    """GitHub's limits as the server enforces them (sliding windows over the server's clock)."""

    code_search: int = 10
    code_search_window: float = 60.0
    search: int = 30
    search_window: float = 60.0
    core: int = 5000
    core_window: float = 3600.0
    # 1-based numbers of GitHub requests answered with a secondary rate limit instead.
    secondary_at: frozenset[int] = frozenset()
    secondary_status: int = 403
    secondary_retry_after: int = 3
    per_page_max: int = 100


@dataclass
class World:
    """Everything the server knows. `planted`: mirror URL -> the verdict the hunt must reach."""

    package: str
    version: str
    published_at: str = REFERENCE_TIME
    repos: dict[str, FakeRepo] = field(default_factory=dict)  # key: host/full_name
    packages: list[FakePackage] = field(default_factory=list)
    cdn_files: dict[str, bytes] = field(default_factory=dict)
    swh_origins: list[str] = field(default_factory=list)
    planted: dict[str, str] = field(default_factory=dict)
    official_orgs: tuple[str, ...] = ()
    official_repositories: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)

    def add(self, repo: FakeRepo) -> FakeRepo:
        repo.id = len(self.repos) + 1
        self.repos[f"{repo.host}/{repo.full_name}"] = repo
        return repo

    def repo(self, full_name: str, host: str = "github") -> FakeRepo | None:
        return self.repos.get(f"{host}/{full_name}")

    def forks_of(self, full_name: str, host: str = "github") -> list[FakeRepo]:
        return [r for r in self.repos.values() if r.host == host and r.parent == full_name]

    @property
    def expected_copies(self) -> frozenset[str]:
        return frozenset(u for u, v in self.planted.items() if v == "copy")

    @property
    def respond_toml(self) -> str:
        """The `[official]` table naming this world's vendor, for respond.toml."""
        orgs = ", ".join(json.dumps(o) for o in self.official_orgs)
        repos = ", ".join(json.dumps(r) for r in self.official_repositories)
        return f"[official]\ngithub_orgs = [{orgs}]\nrepositories = [{repos}]\n"

    @classmethod
    def seeded(
        cls,
        files: Mapping[str, bytes],
        package: str,
        version: str,
        seed: int = 0,
        *,
        official_forks: int = 230,
        limits: Limits | None = None,
        published_at: str | None = None,
    ) -> World:
        """The standard world: see `_Seeder` for what is planted where.

        Its clock is anchored at `published_at` (default: now): copies appear hours after it,
        legitimate repositories months before, so a rehearsal that publishes its leaky version
        a moment after building the world sees the same story as the tests.
        """
        world = cls(package=package, version=version, limits=limits or Limits())
        _Seeder(world, dict(files), random.Random(seed), official_forks).plant()
        anchor = _parse_time(published_at) if published_at else datetime.now(UTC)
        _shift(world, anchor.replace(microsecond=0) - _parse_time(REFERENCE_TIME))
        return world


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _shift(world: World, delta: timedelta) -> None:
    def moved(text: str) -> str:
        return (_parse_time(text) + delta).isoformat().replace("+00:00", "Z")

    world.published_at = moved(world.published_at)
    for repo in world.repos.values():
        repo.created_at = moved(repo.created_at)
        repo.pushed_at = moved(repo.pushed_at) if repo.pushed_at else None


def _bare(package: str) -> str:
    return package.rsplit("/", 1)[-1]


def _vendor(package: str) -> str:
    return package[1:].split("/", 1)[0] if package.startswith("@") else f"{package}-dev"


class _Seeder:
    """Plants the standard world. Every planted copy gets `planted[url] = expected verdict`."""

    def __init__(
        self, world: World, files: dict[str, bytes], rng: random.Random, official_forks: int
    ) -> None:
        self.official_forks = official_forks
        self.w = world
        self.rng = rng
        self.first = {p: d for p, d in sorted(files.items()) if is_first_party(p)}
        self.all = dict(sorted(files.items()))
        self.bare = _bare(world.package)
        self.vendor = _vendor(world.package)

    def plant(self) -> None:
        self._official()
        self._copies()
        self._deep_forks()
        self._variants()
        self._innocents()
        self._elsewhere()

    def _noise_files(self, n: int, tag: str) -> dict[str, bytes]:
        return {
            f"src/{tag}{i}.ts": (
                f"// {tag} module {i}\nexport function {tag}Helper{i}(x: number) {{\n"
                f"  return x * {self.rng.randint(2, 999)} + {i};\n}}\n"
            ).encode()
            for i in range(n)
        }

    def _copy(self, name: str, label: str, files: Mapping[str, bytes], **kw: Any) -> FakeRepo:
        repo = self.w.add(FakeRepo(name, dict(files), label=label, **kw))
        if label in ("copy", "partial", "disabled"):
            self.w.planted[repo.url] = label
        return repo

    def _official(self) -> None:
        """The vendor's public repository: its own code plus two files the leak also holds."""
        shared = dict(list(self.first.items())[:2])
        own = {**self._noise_files(8, "official"), **shared, "README.md": b"# official\n"}
        name = f"{self.vendor}/{self.bare}"
        self.w.official_orgs = (self.vendor,)
        self.w.official_repositories = (name,)
        readme = f"# {self.bare}\nThe public home of {self.w.package}.\n".encode()
        self.w.add(
            FakeRepo(
                name,
                {**own, "README.md": readme},
                description=f"{self.w.package}",
                stars=900,
                label="official",
                created_at="2024-01-01T00:00:00Z",
            )
        )
        for i in range(self.official_forks):
            fork = self.w.add(
                FakeRepo(
                    f"dev{i}/{self.bare}",
                    dict(own),
                    parent=name,
                    label="legit-fork",
                    created_at=f"2025-{1 + i % 12:02d}-01T00:00:00Z",
                    # Half were pushed to after the leak: their content must be compared.
                    pushed_at="2026-04-02T00:00:00Z" if i % 2 else None,
                )
            )
            if i % 50 == 0:  # legitimate forks of legitimate forks
                self.w.add(
                    FakeRepo(
                        f"sub{i}/{self.bare}", dict(own), parent=fork.full_name, label="legit-fork"
                    )
                )
        # The 2.1.88 case: someone pushed the leak into a fork of the vendor's public repo.
        self._copy(f"dev999/{self.bare}", "copy", {**own, **self.all}, parent=name)

    def _copies(self) -> None:
        desc = f"{self.w.package} {self.w.version} leaked source"
        self._copy(f"leaker0/{self.bare}-source", "copy", self.all, description=desc, stars=300)
        self._copy(
            f"leaker1/{self.bare}-leak", "copy", self.first, description="source leak", stars=40
        )
        readme = f"{self.bare} source code {self.w.version}".encode()
        self._copy("leaker2/mirror", "copy", {**self.first, "README.md": readme}, stars=5)

    def _deep_forks(self) -> None:
        """Forks of copies four levels deep; one fork removed the leak; one was taken down."""
        parent = f"leaker0/{self.bare}-source"
        for depth in range(1, 5):
            kids = [
                self._copy(f"f{depth}x{i}/{self.bare}-source", "copy", self.all, parent=parent)
                for i in range(3 if depth < 4 else 2)
            ]
            parent = kids[0].full_name
        cleaned = {**self._noise_files(5, "cleaned"), "README.md": b"# my own rewrite\n"}
        self.w.add(
            FakeRepo(
                f"cleaner/{self.bare}-source",
                cleaned,
                parent=f"leaker0/{self.bare}-source",
                label="fork-not-copy",
            )
        )
        self._copy(
            f"takendown/{self.bare}-source",
            "disabled",
            self.all,
            parent=f"leaker1/{self.bare}-leak",
            disabled=True,
        )

    def _variants(self) -> None:
        """Renamed, reformatted and partial copies: the hard cases for blob matching."""
        renamed = {f"leak/{p.replace('/', '_')}": d for p, d in self.first.items()}
        self._copy(
            f"renamer/{self.bare}-src",
            "copy",
            renamed,
            description=f"{self.bare} source leak, flattened",
        )
        keys = list(self.first)
        cut = max(1, int(len(keys) * 0.45))
        reformatted = {
            p: (d.replace(b"\n", b"\r\n  ") if i >= cut else d)
            for i, (p, d) in enumerate(self.first.items())
        }
        self._copy(
            f"prettier/{self.bare}-leak",
            "copy",
            reformatted,
            description=f"{self.bare} leak reformatted",
        )
        part = dict(list(self.first.items())[: max(2, len(keys) // 6)])
        self._copy(
            f"snippets/{self.bare}-bits",
            "partial",
            {**part, **self._noise_files(20, "own")},
            description=f"bits of the {self.bare} leak",
        )

    def _innocents(self) -> None:
        """Repositories that mention the package but hold none of its files, and noise."""
        own = self._noise_files(12, "plugin")
        self.w.add(
            FakeRepo(
                f"fan/{self.bare}-plugin",
                own,
                description=f"A plugin for {self.w.package} {self.w.version} source "
                "leak discussion",
                label="unrelated",
            )
        )
        for i in range(15):
            self.w.add(
                FakeRepo(
                    f"noise{i}/project{i}",
                    self._noise_files(6, f"n{i}x"),
                    description="a leak detector" if i % 3 == 0 else "tools",
                    created_at="2025-06-01T00:00:00Z",
                    label="noise",
                )
            )
        # A copy nobody can find: a fork, with fewer stars, of a repository that is no candidate.
        self.w.add(FakeRepo("quiet/base", self._noise_files(3, "quiet"), label="noise"))
        self._copy("quiet2/base", "copy", self.first, parent="quiet/base")

    def _elsewhere(self) -> None:
        """GitLab, Codeberg, npm republished copies, the CDNs and Software Heritage."""
        self._copy(
            f"glcopy/{self.bare}-leak",
            "copy",
            self.first,
            host="gitlab",
            description=f"{self.bare} leak",
        )
        self.w.add(
            FakeRepo(
                f"glfan/{self.bare}-notes",
                self._noise_files(3, "gl"),
                host="gitlab",
                description=f"notes on {self.bare}",
                label="unrelated",
            )
        )
        self._copy(
            f"cbcopy/{self.bare}",
            "copy",
            self.first,
            host="codeberg",
            description=f"{self.bare} source leak",
        )
        self.w.add(
            FakeRepo(
                f"cbfan/{self.bare}-fan",
                self._noise_files(3, "cb"),
                host="codeberg",
                description=f"{self.bare} fan page",
                label="unrelated",
            )
        )
        leaked = {f"src/{p}" if not p.startswith("src/") else p: d for p, d in self.first.items()}
        self.w.packages.append(
            FakePackage(f"{self.bare}-leaked", "1.0.0", leaked, f"{self.bare} source", "copy")
        )
        self.w.planted[f"npm:{self.bare}-leaked@1.0.0"] = "copy"
        self.w.packages.append(
            FakePackage(
                f"{self.bare}-helper",
                "3.0.0",
                self._noise_files(3, "helper"),
                f"helpers for {self.bare}",
                "unrelated",
            )
        )
        self.w.cdn_files = {"cli.js.map": b'{"version":3,"sources":[]}', "cli.js": b"// cli\n"}
        self.w.swh_origins = [
            f"https://github.com/leaker0/{self.bare}-source",
            f"https://github.com/fan/{self.bare}-plugin",
        ]


# --- the server ----------------------------------------------------------------------------------


@dataclass
class Stats:
    """What the server saw, for assertions: counts by route and status, and rate-limit answers."""

    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    github: int = 0
    limited: int = 0  # 403/429 rate-limit answers (primary and secondary)
    secondary: int = 0
    not_modified: int = 0
    purges: list[str] = field(default_factory=list)
    log: list[tuple[float, str, str, int]] = field(
        default_factory=list
    )  # when, route, path, status

    def count(self, route: str) -> int:
        return self.requests[route]


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    route: str = "other"


def _json(status: int, data: Any, route: str, **headers: str) -> Reply:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Reply(
        status, body, {"content-type": "application/json; charset=utf-8", **headers}, route
    )


class FakeWorld:
    """The HTTP server playing every outside service for a World. Use as a context manager."""

    def __init__(self, world: World, clock: Clock = time.time) -> None:
        self.world = world
        self.clock = clock
        self.stats = Stats()
        self._lock = threading.Lock()
        self._windows: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._code_index: list[tuple[FakeRepo, str, bytes, frozenset[bytes]]] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------------

    def start(self) -> FakeWorld:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
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

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], host: str) -> Reply:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        prefix, _, rest = parts.path.lstrip("/").partition("/")
        base = f"http://{host}/{prefix}"
        routes: dict[str, Callable[[str, dict[str, str], str, Mapping[str, str]], Reply]] = {
            "github": self._github,
            "jsdelivr": self._jsdelivr,
            "jsdelivr_purge": self._purge,
            "unpkg": self._unpkg,
            "swh": self._swh,
            "gitlab": self._gitlab,
            "codeberg": self._codeberg,
            "npm": self._npm,
        }
        route = routes.get(prefix)
        if route is None:
            reply = _json(404, {"message": "Not Found"}, "other")
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

    # GitHub --------------------------------------------------------------------------------------

    def _github(
        self, path: str, query: dict[str, str], base: str, headers: Mapping[str, str]
    ) -> Reply:
        with self._lock:
            self.stats.github += 1
            number = self.stats.github
        if number in self.world.limits.secondary_at:
            return self._secondary()
        if path == "/search/code" and not headers.get("authorization"):
            msg = {
                "message": "Requires authentication",
                "documentation_url": "https://docs.github.com",
            }
            return _json(401, msg, "github.search_code")
        resource, reply = self._github_route(path, query, base)
        etag = '"' + hashlib.sha1(reply.body, usedforsecurity=False).hexdigest() + '"'
        if reply.status == 200:
            reply.headers["etag"] = etag
            if headers.get("if-none-match") == etag:
                with self._lock:
                    self.stats.not_modified += 1
                return Reply(304, b"", {"etag": etag, **self._quota(resource, False)}, reply.route)
        quota = self._quota(resource, True)
        if quota is None:
            return self._primary(resource, reply.route)
        reply.headers.update(quota)
        return reply

    def _limit_of(self, resource: str) -> tuple[int, float]:
        lim = self.world.limits
        return {
            "code_search": (lim.code_search, lim.code_search_window),
            "search": (lim.search, lim.search_window),
        }.get(resource, (lim.core, lim.core_window))

    def _quota(self, resource: str, spend: bool) -> Any:
        """Rate-limit headers after spending one request, or None when the window is full."""
        limit, window = self._limit_of(resource)
        now = self.clock()
        with self._lock:
            q = self._windows[resource]
            while q and q[0] <= now - window:
                q.popleft()
            if spend:
                if len(q) >= limit:
                    return None
                q.append(now)
            reset = (q[0] if q else now) + window
            return {
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": str(limit - len(q)),
                "x-ratelimit-used": str(len(q)),
                "x-ratelimit-reset": str(int(reset) + 1),
                "x-ratelimit-resource": resource,
            }

    def _primary(self, resource: str, route: str) -> Reply:
        limit, window = self._limit_of(resource)
        with self._lock:
            self.stats.limited += 1
            q = self._windows[resource]
            reset = (q[0] if q else self.clock()) + window
        msg = {
            "message": f"API rate limit exceeded for {resource}.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits",
        }
        return _json(
            403,
            msg,
            route,
            **{
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(reset) + 1),
                "x-ratelimit-resource": resource,
            },
        )

    def _secondary(self) -> Reply:
        lim = self.world.limits
        with self._lock:
            self.stats.limited += 1
            self.stats.secondary += 1
        msg = {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
            "before you try again.",
            "documentation_url": "https://docs.github.com/rest",
        }
        return _json(
            lim.secondary_status,
            msg,
            "github.secondary",
            **{"retry-after": str(lim.secondary_retry_after)},
        )

    def _github_route(self, path: str, query: dict[str, str], base: str) -> tuple[str, Reply]:
        if path == "/search/code":
            return "code_search", self._search_code(query, base)
        if path == "/search/repositories":
            return "search", self._search_repos(query, base)
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if m is None:
            return "core", _json(404, {"message": "Not Found"}, "github.other")
        repo = self.world.repo(f"{m[1]}/{m[2]}")
        sub = m[3] or ""
        route = "github." + (sub.split("/")[1] if sub else "repo")
        if route == "github.git":
            route = "github." + sub.split("/")[2]
        if repo is None or repo.deleted:
            return "core", _json(404, {"message": "Not Found"}, route)
        if repo.disabled:
            return "core", _json(
                451,
                {
                    "message": "Repository access blocked",
                    "block": {
                        "reason": "dmca",
                        "created_at": "2026-04-01T00:00:00Z",
                        "html_url": "https://github.com/github/dmca/blob/master/notice.md",
                    },
                },
                route,
            )
        return "core", self._repo_route(repo, sub, query, base, route)

    def _repo_route(
        self, repo: FakeRepo, sub: str, query: dict[str, str], base: str, route: str
    ) -> Reply:
        if sub == "":
            return _json(200, self._repo_json(repo, full=True), route)
        if sub == "/forks":
            forks = sorted(self.world.forks_of(repo.full_name), key=lambda r: -r.id)
            link = f"{base}/repos/{repo.full_name}/forks"
            return self._page([self._repo_json(r) for r in forks], query, link, route)
        m = re.fullmatch(r"/git/trees/([^/]+)", sub)
        if m:
            tree = _tree(repo, base)
            if unquote(m[1]) not in (repo.default_branch, "HEAD", _commit_sha(tree["sha"])):
                return _json(404, {"message": "Not Found"}, route)
            return _json(200, tree, route)
        m = re.fullmatch(r"/commits/([^/]+)", sub)
        if m:
            if unquote(m[1]) not in (repo.default_branch, "HEAD"):
                return _json(404, {"message": "Not Found"}, route)
            tree_sha = _tree(repo, base)["sha"]
            commit = {"tree": {"sha": tree_sha}, "message": "import"}
            return _json(200, {"sha": _commit_sha(tree_sha), "commit": commit}, route)
        m = re.fullmatch(r"/git/blobs/([0-9a-f]{40})", sub)
        if m:
            for data in repo.files.values():
                if blob_sha1(data) == m[1]:
                    content = base64.encodebytes(data).decode()
                    return _json(
                        200,
                        {"sha": m[1], "size": len(data), "encoding": "base64", "content": content},
                        route,
                    )
        return _json(404, {"message": "Not Found"}, route)

    def _repo_json(self, repo: FakeRepo, full: bool = False) -> dict[str, Any]:
        owner = repo.full_name.split("/")[0]
        data: dict[str, Any] = {
            "id": repo.id,
            "name": repo.full_name.split("/")[1],
            "full_name": repo.full_name,
            "owner": {"login": owner, "type": "User"},
            "html_url": repo.url,
            "description": repo.description or None,
            "fork": repo.parent is not None,
            "created_at": repo.created_at,
            "pushed_at": repo.pushed_at or repo.created_at,
            "default_branch": repo.default_branch,
            "forks_count": len(self.world.forks_of(repo.full_name)),
            "stargazers_count": repo.stars,
            "visibility": "public",
        }
        if full and repo.parent:
            parent = self.world.repo(repo.parent)
            source = parent
            while source is not None and source.parent:
                source = self.world.repo(source.parent)
            if parent is not None and source is not None:
                data["parent"] = self._repo_json(parent)
                data["source"] = self._repo_json(source)
        return data

    def _page(
        self,
        items: list[Any],
        query: dict[str, str],
        link: str,
        route: str,
        wrap: Callable[[list[Any]], Any] | None = None,
        cap: int | None = None,
    ) -> Reply:
        per_page = min(int(query.get("per_page", "30")), self.world.limits.per_page_max)
        page = max(1, int(query.get("page", "1")))
        visible = items[:cap] if cap is not None else items
        last = max(1, -(-len(visible) // per_page))
        chunk = visible[(page - 1) * per_page : page * per_page]
        extra = {k: v for k, v in query.items() if k not in ("page", "per_page")}

        def url(n: int) -> str:
            q = "&".join(f"{k}={quote(v)}" for k, v in extra.items())
            return f"{link}?{q + '&' if q else ''}per_page={per_page}&page={n}"

        links = []
        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if page > 1:
            links += [f'<{url(1)}>; rel="first"', f'<{url(page - 1)}>; rel="prev"']
        headers = {"link": ", ".join(links)} if links else {}
        return _json(200, wrap(chunk) if wrap else chunk, route, **headers)

    def _indexed(self) -> list[tuple[FakeRepo, str, bytes, frozenset[bytes]]]:
        """Code search's index: default branches, files under 384 KB, forks only if starrier."""
        if self._code_index is None:
            index = []
            for repo in self.world.repos.values():
                parent = self.world.repo(repo.parent) if repo.parent else None
                if repo.host != "github" or (parent is not None and repo.stars <= parent.stars):
                    continue
                for path, data in repo.files.items():
                    if len(data) < CODE_SEARCH_MAX_BYTES:
                        tokens = frozenset(t.lower() for t in _TOKEN.findall(data))
                        index.append((repo, path, data, tokens))
            self._code_index = index
        return self._code_index

    def _search_code(self, query: dict[str, str], base: str) -> Reply:
        terms, quals = _parse_q(query.get("q", ""))
        if not terms and not quals:
            return _json(422, {"message": "Validation Failed"}, "github.search_code")
        hits = []
        for repo, path, data, tokens in self._indexed():
            if repo.disabled or repo.deleted or not all(t in tokens for t in terms):
                continue
            if "path" in quals and quals["path"].lower() not in path.lower():
                continue
            if "filename" in quals and path.rsplit("/", 1)[-1] != quals["filename"]:
                continue
            hits.append(
                {
                    "name": path.rsplit("/", 1)[-1],
                    "path": path,
                    "sha": blob_sha1(data),
                    "html_url": f"{repo.url}/blob/{repo.default_branch}/{path}",
                    "repository": {
                        k: v
                        for k, v in self._repo_json(repo).items()
                        if k not in ("default_branch", "forks_count", "created_at")
                    },
                    "score": 1.0,
                }
            )
        total = len(hits)
        return self._page(
            hits,
            query,
            f"{base}/search/code",
            "github.search_code",
            wrap=lambda c: {"total_count": total, "incomplete_results": False, "items": c},
            cap=1000,
        )

    def _search_repos(self, query: dict[str, str], base: str) -> Reply:
        terms, quals = _parse_q(query.get("q", ""))
        after = quals.get("created", "").lstrip(">=")
        hits = []
        for repo in self.world.repos.values():
            if repo.host != "github" or repo.disabled or repo.deleted:
                continue
            if repo.parent and quals.get("fork") not in ("true", "only"):
                continue
            if after and repo.created_at[:10] < after[:10]:
                continue
            text = " ".join(
                [
                    repo.full_name,
                    repo.description,
                    repo.files.get("README.md", b"").decode(errors="replace"),
                ]
            ).lower()
            words = set(re.findall(r"[a-z0-9_]+", text))
            if all(t.decode() in words for t in terms):
                hits.append(self._repo_json(repo))
        total = len(hits)
        return self._page(
            hits,
            query,
            f"{base}/search/repositories",
            "github.search_repos",
            wrap=lambda c: {"total_count": total, "incomplete_results": False, "items": c},
            cap=1000,
        )

    # CDNs ----------------------------------------------------------------------------------------

    def _cdn_file(self, spec_path: str, route: str) -> Reply:
        name, version, file = _split_cdn(spec_path)
        if (
            name == self.world.package
            and version == self.world.version
            and file in (self.world.cdn_files)
        ):
            return Reply(
                200,
                self.world.cdn_files[file],
                {
                    "content-type": "application/octet-stream",
                    "cache-control": "public, max-age=31536000, immutable",
                },
                route,
            )
        return Reply(404, b"Not found", {"content-type": "text/plain"}, route)

    def _jsdelivr(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        return self._cdn_file(path.removeprefix("/npm/"), "jsdelivr")

    def _unpkg(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        return self._cdn_file(path.lstrip("/"), "unpkg")

    def _purge(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        with self._lock:
            self.stats.purges.append(path)
        return _json(
            200,
            {"id": "purge-1", "status": "finished", "paths": {path: {"throttled": False}}},
            "jsdelivr_purge",
        )

    # Software Heritage ---------------------------------------------------------------------------

    def _swh(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        m = re.fullmatch(r"/origin/search/([^/]+)/?", path)
        if m is None:
            return _json(404, {"exception": "NotFoundExc", "reason": "not found"}, "swh")
        pattern = unquote(m[1]).lower()
        hits = [
            {"url": u, "origin_visits_url": f"{base}/origin/{quote(u, safe='')}/visits/"}
            for u in self.world.swh_origins
            if pattern in u.lower()
        ]
        return _json(
            200,
            hits[: int(q.get("limit", "50"))],
            "swh",
            **{"x-ratelimit-remaining": "119", "x-ratelimit-limit": "120"},
        )

    # GitLab and Forgejo --------------------------------------------------------------------------

    def _forge_repos(self, host: str, text: str) -> list[FakeRepo]:
        words = re.findall(r"[a-z0-9_]+", text.lower())
        out = []
        for repo in self.world.repos.values():
            hay = f"{repo.full_name} {repo.description}".lower()
            if repo.host == host and not repo.deleted and all(w in hay for w in words):
                out.append(repo)
        return out

    def _gitlab(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        path = path.removeprefix("/api/v4")
        if path == "/projects":
            items = [
                {
                    "id": r.id,
                    "path_with_namespace": r.full_name,
                    "web_url": r.url,
                    "default_branch": r.default_branch,
                    "description": r.description,
                    "created_at": r.created_at,
                    "forked_from_project": None,
                }
                for r in self._forge_repos("gitlab", q.get("search", ""))
            ]
            return self._page(items, q, f"{base}/api/v4/projects", "gitlab.search")
        m = re.fullmatch(r"/projects/(\d+)/repository/tree", path)
        repo = next(
            (
                r
                for r in self.world.repos.values()
                if m and r.host == "gitlab" and r.id == int(m[1])
            ),
            None,
        )
        if repo is None:
            return _json(404, {"message": "404 Project Not Found"}, "gitlab.tree")
        entries = [
            {
                "id": blob_sha1(d),
                "name": p.rsplit("/", 1)[-1],
                "type": "blob",
                "path": p,
                "mode": "100644",
            }
            for p, d in sorted(repo.files.items())
        ]
        return self._page(
            entries, q, f"{base}/api/v4/projects/{repo.id}/repository/tree", "gitlab.tree"
        )

    def _codeberg(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        path = path.removeprefix("/api/v1")
        if path == "/repos/search":
            items = [
                {
                    "id": r.id,
                    "full_name": r.full_name,
                    "html_url": r.url,
                    "default_branch": r.default_branch,
                    "description": r.description,
                    "fork": r.parent is not None,
                    "created_at": r.created_at,
                }
                for r in self._forge_repos("codeberg", q.get("q", ""))
            ]
            limit = int(q.get("limit", "10"))
            return _json(
                200,
                {"ok": True, "data": items[:limit]},
                "codeberg.search",
                **{"x-total-count": str(len(items))},
            )
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/git/trees/([^/]+)", path)
        repo = self.world.repo(f"{m[1]}/{m[2]}", "codeberg") if m else None
        if repo is None or m is None or m[3] not in (repo.default_branch, "HEAD"):
            return _json(404, {"message": "The target couldn't be found."}, "codeberg.tree")
        tree = _tree(repo, base)["tree"]
        per_page = int(q.get("per_page", "1000"))
        page = int(q.get("page", "1"))
        chunk = tree[(page - 1) * per_page : page * per_page]
        return _json(
            200,
            {
                "sha": "0" * 40,
                "tree": chunk,
                "page": page,
                "truncated": page * per_page < len(tree),
                "total_count": len(tree),
            },
            "codeberg.tree",
        )

    # npm (search, packuments, tarballs) ----------------------------------------------------------

    def _npm(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        if path == "/-/v1/search":
            words = re.findall(r"[a-z0-9_]+", q.get("text", "").lower())
            objects = [
                {
                    "package": {
                        "name": p.name,
                        "version": p.version,
                        "description": p.description,
                        "links": {},
                    },
                    "score": {"final": 0.5},
                    "searchScore": 1.0,
                }
                for p in self.world.packages
                if all(w in f"{p.name} {p.description}".lower() for w in words)
            ]
            size = int(q.get("size", "20"))
            return _json(
                200,
                {"objects": objects[:size], "total": len(objects), "time": "2026-04-01T00:00:00Z"},
                "npm.search",
            )
        m = re.fullmatch(r"/(.+)/-/([^/]+)\.tgz", path)
        if m:
            pkg = self._npm_package(unquote(m[1]))
            return (
                Reply(
                    200,
                    package_tarball(pkg.files),
                    {"content-type": "application/octet-stream"},
                    "npm.tarball",
                )
                if pkg
                else _json(404, {"error": "not found"}, "npm")
            )
        pkg = self._npm_package(unquote(path.lstrip("/")))
        if pkg is None:
            return _json(404, {"error": "Not found"}, "npm.packument")
        tarball = f"{base}/{pkg.name}/-/{_bare(pkg.name)}-{pkg.version}.tgz"
        return _json(
            200,
            {
                "name": pkg.name,
                "dist-tags": {"latest": pkg.version},
                "versions": {
                    pkg.version: {
                        "name": pkg.name,
                        "version": pkg.version,
                        "dist": _dist(tarball, pkg.files),
                    }
                },
            },
            "npm.packument",
        )

    def _npm_package(self, name: str) -> FakePackage | None:
        return next((p for p in self.world.packages if p.name == name.replace("%2f", "/")), None)


def _tree(repo: FakeRepo, base: str) -> dict[str, Any]:
    api = f"{base}/repos/{repo.full_name}/git"
    dirs = sorted({p.rsplit("/", 1)[0] for p in repo.files if "/" in p})
    entries: list[dict[str, Any]] = [
        {
            "path": d,
            "mode": "040000",
            "type": "tree",
            "sha": hashlib.sha1(d.encode(), usedforsecurity=False).hexdigest(),
            "url": f"{api}/trees/x",
        }
        for d in dirs
    ]
    for path, data in sorted(repo.files.items()):
        sha = blob_sha1(data)
        entries.append(
            {
                "path": path,
                "mode": "100644",
                "type": "blob",
                "sha": sha,
                "size": len(data),
                "url": f"{api}/blobs/{sha}",
            }
        )
    entries.sort(key=lambda e: str(e["path"]))
    # Git addresses content: the same files give the same tree SHA in every repository.
    content = [(e["path"], e["sha"]) for e in entries if e["type"] == "blob"]
    digest = hashlib.sha1(json.dumps(content).encode(), usedforsecurity=False).hexdigest()
    return {"sha": digest, "url": f"{api}/trees/{digest}", "tree": entries, "truncated": False}


def _commit_sha(tree_sha: str) -> str:
    """One commit per tree: an unmodified fork shares its parent's commit, as on GitHub."""
    return hashlib.sha1(f"commit {tree_sha}".encode(), usedforsecurity=False).hexdigest()


def _dist(tarball: str, files: Mapping[str, bytes]) -> dict[str, str]:
    data = package_tarball(files)
    sri = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    return {"tarball": tarball, "shasum": sha1, "integrity": sri}


def package_tarball(files: Mapping[str, bytes]) -> bytes:
    """A .tgz with `files` under `package/`, as npm packs it (fixed mtime: same bytes each time)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(data)
            info.mtime = 499162500
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _parse_q(q: str) -> tuple[list[bytes], dict[str, str]]:
    """Search terms (punctuation ignored, lowercased) and `key:value` qualifiers."""
    terms: list[bytes] = []
    quals: dict[str, str] = {}
    for word in q.split():
        key, sep, value = word.partition(":")
        if sep and key in ("path", "filename", "in", "created", "fork", "language", "repo"):
            quals[key] = value.strip('"')
        else:
            terms += [t.lower() for t in _TOKEN.findall(word.encode())]
    return terms, quals


def _split_cdn(spec_path: str) -> tuple[str, str, str]:
    """`@scope/name@1.2.3/dir/file` -> (name, version, file)."""
    scoped = spec_path.startswith("@")
    head, _, rest = spec_path.partition("/")
    if scoped:
        second, _, rest = rest.partition("/")
        head = f"{head}/{second}"
    name, _, version = head.rpartition("@")
    return name, version, rest


def _make_handler(world: FakeWorld) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's algorithm and delayed
        # ACKs add 40 ms to every keep-alive request.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = world.handle(self.command, self.path, headers, headers.get("host", ""))
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


def planted_summary(world: World) -> dict[str, int]:
    """How many of each expected verdict the world planted (for reports and benches)."""
    return dict(collections.Counter(world.planted.values()))


def iter_repos(world: World, labels: Iterable[str]) -> list[FakeRepo]:
    wanted = set(labels)
    return [r for r in world.repos.values() if r.label in wanted]


def sample_files(first_party: int = 60, node_modules: int = 10, seed: int = 0) -> dict[str, bytes]:
    """Reconstructed files of a small leak: each first-party file carries a rare identifier
    (`sample_identifiers` lists them), so code search can find every one."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    areas = ("tools", "permissions", "ui/dialogs", "services/api", "state")
    for i in range(first_party):
        area = areas[i % len(areas)]
        ident = f"{_camel(area)}Handler{i}V{seed}"
        body = "\n".join(
            f"  const step{j} = await runStep{rng.randint(1000, 9999)}(input, {j});"
            for j in range(rng.randint(6, 24))
        )
        text = (
            f"// {area} module {i}\nimport {{ runTool }} from '../core';\n\n"
            f"export async function {ident}(input: string) {{\n{body}\n"
            "  return runTool(input);\n}\n"
        )
        files[f"src/{area}/Module{i}.ts"] = text.encode()
    for i in range(node_modules):
        files[f"node_modules/lib{i}/index.js"] = f"module.exports = {i} * {seed};\n".encode() * 4
    return files


def sample_identifiers(files: Mapping[str, bytes]) -> list[str]:
    """The rare identifiers `sample_files` planted, one per first-party file."""
    found = (re.search(rb"export async function (\w+)", data) for data in files.values())
    return [m[1].decode() for m in found if m]


def _camel(area: str) -> str:
    words = re.split(r"[/_]", area)
    return words[0] + "".join(w.title() for w in words[1:])


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
