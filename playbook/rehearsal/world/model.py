"""The local world's data: repositories, packages, GitHub's limits, the shared clock."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

Clock = Callable[[], float]
HOST_DOMAINS = {"github": "github.com", "gitlab": "gitlab.com", "codeberg": "codeberg.org"}
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
    graphql: int = 5000  # points
    graphql_window: float = 3600.0
    # 1-based numbers of GitHub requests answered with a secondary rate limit instead.
    secondary_at: frozenset[int] = frozenset()
    secondary_status: int = 403
    secondary_retry_after: int | None = 3  # None: the answer carries no retry-after
    per_page_max: int = 100
    tree_entries: int = 100_000  # a recursive tree listing longer than this is truncated
    # Search terms whose searches time out on GitHub's side: `incomplete_results: true`.
    incomplete_terms: frozenset[str] = frozenset()


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
        # Imported here: the seeder builds FakeRepos, so it imports this module.
        from playbook.rehearsal.world.seed import plant

        world = cls(package=package, version=version, limits=limits or Limits())
        plant(world, files, seed, official_forks, published_at)
        return world


def planted_summary(world: World) -> dict[str, int]:
    """How many of each expected verdict the world planted (for reports and benches)."""
    return dict(collections.Counter(world.planted.values()))


def iter_repos(world: World, labels: Iterable[str]) -> list[FakeRepo]:
    wanted = set(labels)
    return [r for r in world.repos.values() if r.label in wanted]
