"""A local world for the mirror hunt: GitHub, CDNs, Software Heritage, forges and npm.

`World.seeded(...)` plants copies of a package's reconstructed files among legitimate repositories
and noise, with the ground truth used for precision and recall; `FakeWorld` serves it over HTTP on
127.0.0.1. Tests, benches and `respond rehearse` use it; nothing here talks to a public service.
"""

from playbook.rehearsal.world.github import CODE_SEARCH_MAX_BYTES
from playbook.rehearsal.world.model import (
    HOST_DOMAINS,
    REFERENCE_TIME,
    FakeClock,
    FakePackage,
    FakeRepo,
    Limits,
    World,
    iter_repos,
    planted_summary,
)
from playbook.rehearsal.world.npm import package_tarball
from playbook.rehearsal.world.seed import sample_files, sample_identifiers
from playbook.rehearsal.world.server import ENDPOINT_NAMES, FakeWorld, world_settings
from playbook.rehearsal.world.wire import Reply, Stats

__all__ = [
    "CODE_SEARCH_MAX_BYTES",
    "ENDPOINT_NAMES",
    "HOST_DOMAINS",
    "REFERENCE_TIME",
    "FakeClock",
    "FakePackage",
    "FakeRepo",
    "FakeWorld",
    "Limits",
    "Reply",
    "Stats",
    "World",
    "iter_repos",
    "package_tarball",
    "planted_summary",
    "sample_files",
    "sample_identifiers",
    "world_settings",
]
