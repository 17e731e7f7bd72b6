"""The issue's seeded case end to end: hunt, verify and draft against the local GitHub.

The standard world plus the repository the issue describes: 60 of the 120 leaked files beside
200 files of its own. The hunt and the verifier run for real (tests/test_mirrors.py's helpers);
the drafts are read as a reviewer would read them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from playbook.net.http import ClientOptions
from playbook.notices.drafts import Draft
from playbook.rehearsal.world import (
    FakeRepo,
    FakeWorld,
    World,
    sample_files,
    world_settings,
)
from playbook.scan.fingerprint import is_first_party
from playbook.services.hub import MemoryCache, Services
from tests.test_mirrors import PKG, VER, StepRecordsMemory, hunt_and_verify, write_manifest
from tests.test_notices_contradictions import contradictions
from tests.test_notices_fixture import FULL_TOML, build_incident, store_drafts

GH = "https://github.com/"
HALF = "halfway/widget-app"


@dataclass
class Seeded:
    drafts: dict[str, Draft]
    mirrors: dict[str, dict[str, Any]]
    world: World


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    files = sample_files(first_party=120, seed=5)
    world = World.seeded(files, PKG, VER, seed=5)
    # Files the vendor's own repositories also carry prove nothing (verify.py): leave them out,
    # so that 60 files are exactly half of what counts, as in the issue.
    public = {d for r in world.repos.values() if r.label == "official" for d in r.files.values()}
    first = sorted(p for p in files if is_first_party(p) and files[p] not in public)
    own = {f"app/own{i}.ts": f"export const own{i} = {i};\n".encode() for i in range(200)}
    pushed = (datetime.fromisoformat(world.published_at) + timedelta(hours=3)).isoformat()
    halfway = {**{p: files[p] for p in first[:60]}, **own}
    world.add(FakeRepo(HALF, halfway, label="copy", created_at=pushed, pushed_at=pushed))
    world.planted[GH + HALF] = "copy"
    home = tmp_path_factory.mktemp("seeded")
    write_manifest(home, files)
    with FakeWorld(world) as fake:
        settings = world_settings(fake, home)
        services = Services(settings, ClientOptions(dry_run=False), cache=MemoryCache())
        records = StepRecordsMemory()
        asyncio.run(hunt_and_verify(settings, services, home, world, records))
    (home / "respond.toml").write_text(FULL_TOML.split("[official]")[0] + world.respond_toml)
    from playbook.config.org import load_org

    org = load_org(home, home)
    mirrors = records.mirrors()
    store = build_incident(home / "store", with_notices=False, mirror_list=list(mirrors.values()))
    yield Seeded({d.record["id"]: d for d in store_drafts(store, org)}, mirrors, world)


def claim_block(text: str, name: str) -> str:
    """The lines of the DMCA notice about one repository."""
    start = text.index(f"- {GH}{name}")
    end = text.find("\n- https://", start + 1)
    return text[start : end if end != -1 else None]


def test_half_the_leak_beside_its_own_code_names_its_60_files(seeded: Seeded) -> None:
    record = seeded.mirrors[GH + HALF]
    assert record["verdict"] == "copy"  # the verdict says the leak is there...
    text = seeded.drafts["dmca-github-files"].text  # ...the claim is files
    assert f"- {GH}{HALF}" not in seeded.drafts["dmca-github"].text
    block = claim_block(text, HALF)
    links = re.findall(rf"{GH}{HALF}/blob/([0-9a-f]{{40}})/(\S+)", block)
    assert len(links) == 60
    assert {sha for sha, _ in links} == {record["commit_sha"]}
    assert "60 of its 260 files" in block


def test_the_partial_copy_names_every_matched_file(seeded: Seeded) -> None:
    partial = next(u for u, v in seeded.world.planted.items() if v == "partial")
    record = seeded.mirrors[partial]
    matched = {p for p, _ in record["matched_paths"]}
    name = partial.removeprefix(GH)
    text = seeded.drafts["dmca-github-files"].text
    links = re.findall(rf"{GH}{name}/blob/[0-9a-f]{{40}}/(\S+)", text)
    assert record["verdict"] == "partial" and len(matched) == record["matched"] >= 10
    assert set(links) == matched and len(links) == len(matched)


def test_every_entire_claim_is_a_repository_that_is_the_leak(seeded: Seeded) -> None:
    text = seeded.drafts["dmca-github"].text
    assert "Based on the above, I confirm that: The entire repository is infringing." in text
    entire = text.split("\n## Infringing material")[1].split("\n## ")[0]
    shares = re.findall(r"\((\d+\.\d)%, at least 90%\)", entire)
    listed = re.findall(r"^- (https://github.com/\S+)", entire, re.M)
    assert shares and len(shares) + entire.count("is identical to that of") == len(listed)
    assert all(float(share) >= 90.0 for share in shares)
    assert f"- {GH}{HALF}" not in entire


def test_the_seeded_drafts_carry_no_contradiction_and_a_telephone(seeded: Seeded) -> None:
    found = [(i, c) for i, d in seeded.drafts.items() for c in contradictions(d.text)]
    assert found == []
    for notice_id in ("dmca-github", "dmca-github-files", "dmca-npm"):
        assert "Telephone: +1 555 0100" in seeded.drafts[notice_id].text
    # One GitHub notice per kind of claim (the form takes one answer each), not per network.
    assert sorted(i for i in seeded.drafts if i.startswith("dmca-github")) == [
        "dmca-github",
        "dmca-github-files",
    ]
