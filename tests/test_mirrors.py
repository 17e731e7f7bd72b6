"""The mirror hunt end to end against the seeded fake world over loopback: precision, recall, proof."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from playbook.clock import utcnow
from playbook.codec import to_json
from playbook.config.settings import Mode, Settings
from playbook.errors import DryRunViolation
from playbook.mirrors.fingerprints import manifest_dict
from playbook.mirrors.model import Verdict
from playbook.net.http import ClientOptions
from playbook.rehearsal.world import (
    FakeWorld,
    World,
    sample_files,
    sample_identifiers,
    world_settings,
)
from playbook.services.hub import MemoryCache, Services
from playbook.spec import PackageSpec
from playbook.steps.base import MemoryRecords, Records, StepContext, StepOutputs
from playbook.steps.mirrors import (
    CheckCdns,
    HuntMirrors,
    PurgeCdnTags,
    VerifyMirrors,
    list_mirrors,
    recheck,
)
from playbook.steps.npm import LookupOutput, ScanOutput
from playbook.store.sqlite import Incident, StepStatus, Store, StoreCache

PKG, VER = "@acme/widget-cli", "2.1.88"
GH = "https://github.com/"
RECORD_KEYS = {
    "url", "host", "kind", "name", "description", "verdict", "matched", "total", "tree_files",
    "sample_paths", "parent", "network_root", "network_has_non_copies", "found_by", "checked_at",
    "evidence", "status",
}  # fmt: skip


@dataclass
class Run:
    fake: FakeWorld
    world: World
    hunt: Mapping[str, Any]
    verify: Mapping[str, Any]
    mirrors: dict[str, dict[str, Any]]
    workdir: Path


def write_manifest(workdir: Path, files: Mapping[str, bytes]) -> None:
    data = manifest_dict(files, PKG, VER, sample_identifiers(files))
    (workdir / "scan").mkdir(parents=True, exist_ok=True)
    (workdir / "scan/manifest.json").write_text(json.dumps(data))


def context(
    settings: Settings,
    services: Services,
    workdir: Path,
    needs: Mapping[str, StepOutputs],
    records: Records,
    step_id: str = "hunt",
) -> StepContext:
    return StepContext(
        incident_id="inc-1", step_id=step_id, target=PackageSpec(PKG, VER), params={},
        inputs={}, needs=needs, settings=settings, services=services, workdir=workdir,
        records=records,
    )  # fmt: skip


def lookup_output(world: World) -> LookupOutput:
    return LookupOutput(published_at=world.published_at, tags_on_version=("latest",))


SCAN = ScanOutput(manifest_file="scan/manifest.json")


async def hunt_and_verify(
    settings: Settings, services: Services, workdir: Path, world: World, records: Records
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    base: dict[str, StepOutputs] = {"lookup": lookup_output(world), "scan": SCAN}
    try:
        ctx = context(settings, services, workdir, base, records)
        hunt = (await HuntMirrors().apply(ctx, await HuntMirrors().plan(ctx))).outputs
        assert hunt is not None
        ctx = context(settings, services, workdir, {**base, "hunt": hunt}, records, "verify")
        verify = (await VerifyMirrors().apply(ctx, await VerifyMirrors().plan(ctx))).outputs
        return to_json(hunt), to_json(verify)
    finally:
        await services.aclose()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    files = sample_files(seed=5)
    world = World.seeded(files, PKG, VER, seed=5)
    home = tmp_path_factory.mktemp("hunt")
    write_manifest(home, files)
    with FakeWorld(world) as fake:
        settings = world_settings(fake, home)
        services = Services(settings, ClientOptions(dry_run=False), cache=MemoryCache())
        records = StepRecordsMemory()
        hunt, verify = asyncio.run(hunt_and_verify(settings, services, home, world, records))
        yield Run(fake, world, hunt, verify, records.mirrors(), home)


class StepRecordsMemory(MemoryRecords):
    """Records kept in memory, with the store's JSON round trip (what a step really gets back)."""

    def mirrors(self) -> dict[str, dict[str, Any]]:
        return {m["url"]: m for m in self.rows.records(self.incident_id, "mirror")}


def verdicts(run: Run, verdict: str) -> set[str]:
    return {url for url, m in run.mirrors.items() if m["verdict"] == verdict}


def test_precision_is_one_nothing_unrelated_or_official_is_a_copy(run: Run) -> None:
    copies = verdicts(run, "copy")
    planted = run.world.expected_copies
    assert copies, "the hunt found no copies at all"
    assert copies <= planted, f"not planted, yet called copies: {sorted(copies - planted)}"
    for url in copies:
        assert run.mirrors[url]["matched"] * 2 >= run.mirrors[url]["total"]


def test_recall_of_planted_copies_is_stated_and_high(run: Run) -> None:
    planted = run.world.expected_copies
    found = verdicts(run, "copy") & planted
    recall = len(found) / len(planted)
    # One copy is planted where no source can see it (a fork of a non-candidate, fewer stars).
    assert planted - found == {f"{GH}quiet2/base"}
    assert recall == pytest.approx((len(planted) - 1) / len(planted))
    assert recall >= 0.95


def test_every_kind_of_planted_copy_is_proven(run: Run) -> None:
    for name in ("leaker0/widget-cli-source", "renamer/widget-cli-src", "prettier/widget-cli-leak",
                 "f4x1/widget-cli-source", "dev999/widget-cli"):  # fmt: skip
        assert run.mirrors[GH + name]["verdict"] == "copy", name
    crlf = run.mirrors[GH + "crlf/widget-cli-leak"]
    assert crlf["verdict"] == "copy" and crlf["matched_by_content"] > 0
    assert "identical but for whitespace" in crlf["evidence"]
    # Reformatted throughout (quotes, semicolons, indent, wrapped calls, trailing commas) or
    # only re-indented: not one blob matches, the token fingerprints of a sample prove them.
    for name in ("prettier/widget-cli-leak", "reindent/widget-cli-leak"):
        copy = run.mirrors[GH + name]
        assert copy["verdict"] == "copy" and copy["matched_by_blob"] == 0, name
        assert copy["matched_by_content"] == copy["matched"] >= copy["total"] / 2
        assert "all 6 files sampled from them are" in copy["evidence"]
        assert 1 <= len(copy["matched_paths"]) <= 6  # a claim names the proven files only
    prettier = run.mirrors[GH + "prettier/widget-cli-leak"]
    assert "reformatted (token fingerprint similarity" in prettier["evidence"]
    # The same paths with other code: a sample is downloaded, nothing is proven.
    rewrite = run.mirrors[GH + "rewrite/widget-cli-clone"]
    assert rewrite["verdict"] == "unrelated" and rewrite["matched"] == 0
    assert run.mirrors["https://gitlab.com/glcopy/widget-cli-leak"]["verdict"] == "copy"
    assert run.mirrors["https://codeberg.org/cbcopy/widget-cli"]["verdict"] == "copy"
    assert run.mirrors["npm:widget-cli-leaked@1.0.0"]["verdict"] == "copy"


def test_official_and_legitimate_forks_are_never_copies(run: Run) -> None:
    assert run.mirrors[f"{GH}acme/widget-cli"]["verdict"] == "official"
    legit = [
        u for u in run.mirrors if u.startswith(f"{GH}dev") and not u.endswith("dev999/widget-cli")
    ]
    assert len(legit) == 230
    assert {run.mirrors[u]["verdict"] for u in legit} == {"unrelated"}
    assert run.mirrors[f"{GH}fan/widget-cli-plugin"]["verdict"] == "unrelated"
    assert run.mirrors[f"{GH}snippets/widget-cli-bits"]["verdict"] == "partial"
    assert run.mirrors[f"{GH}cleaner/widget-cli-source"]["verdict"] == "unrelated"


def test_deep_forks_carry_parent_and_network_root(run: Run) -> None:
    deep = run.mirrors[f"{GH}f4x0/widget-cli-source"]
    assert deep["parent"] == f"{GH}f3x0/widget-cli-source"
    assert deep["network_root"] == f"{GH}leaker0/widget-cli-source"
    assert "forks" in deep["found_by"]


def test_archived_origins_are_tracked_but_not_claimed_as_proven(run: Run) -> None:
    archived = {m["name"]: m for m in run.mirrors.values() if m["kind"] == "archive"}
    assert set(archived) == set(run.world.swh_origins)
    assert {m["verdict"] for m in archived.values()} == {"unverified"}
    assert "verified a copy" in archived[f"{GH}leaker0/widget-cli-source"]["evidence"]
    assert "verified a copy" not in archived[f"{GH}fan/widget-cli-plugin"]["evidence"]


def test_disabled_repository_is_recorded_as_disabled(run: Run) -> None:
    taken = run.mirrors[f"{GH}takendown/widget-cli-source"]
    assert taken["verdict"] == "disabled"
    assert "Repository access blocked" in taken["evidence"]


def test_network_warning_marks_networks_with_non_copies(run: Run) -> None:
    # leaker0's network holds a fork that removed the leak; dev999 sits in the vendor's network.
    assert run.mirrors[f"{GH}leaker0/widget-cli-source"]["network_has_non_copies"] is True
    assert run.mirrors[f"{GH}dev999/widget-cli"]["network_has_non_copies"] is True
    assert run.mirrors[f"{GH}dev999/widget-cli"]["network_root"] == f"{GH}acme/widget-cli"
    # leaker2 has no forks: its network is itself, a copy.
    assert run.mirrors[f"{GH}leaker2/mirror"]["network_has_non_copies"] is False


def test_records_and_outputs_follow_the_contract(run: Run) -> None:
    for record in run.mirrors.values():
        assert set(record) >= RECORD_KEYS
        assert record["status"] == "open"
    assert set(run.hunt) >= {"candidates", "by_source", "skipped_sources"}
    assert run.hunt["candidates"] == len(run.mirrors)
    assert set(run.hunt["by_source"]) >= {"code-search", "repo-search", "forks", "npm", "gitlab"}
    assert run.hunt["skipped_sources"] == []
    keys = {"copies", "partial", "unrelated", "official", "disabled", "unreachable", "requests"}
    assert set(run.verify) >= keys
    assert run.verify["copies"] == len(verdicts(run, "copy"))
    assert run.verify["disabled"] == 1 and run.verify["official"] == 1
    # One tree per GitHub candidate plus the few bounded downloads for reformatted files.
    # Forks not pushed to since before the publish time cost nothing, and neither do forks
    # whose listed tree SHA is a tree already verified (the vendor's forks share one tree, the
    # deep forks leaker0's).
    github = sum(1 for u in run.mirrors if u.startswith(GH))
    untouched = sum(1 for m in run.mirrors.values() if "last push" in m["evidence"])
    same_tree = sum(1 for m in run.mirrors.values() if "the same tree SHA" in m["evidence"])
    assert untouched >= 100 and same_tree >= 100
    fetched = github - untouched - same_tree
    assert fetched <= run.verify["requests"] <= fetched + 24
    on_disk = json.loads((run.workdir / "mirrors/mirrors.json").read_text())
    assert len(on_disk) == len(run.mirrors)


def test_without_a_token_code_search_is_skipped_with_a_hint(tmp_path: Path) -> None:
    files = sample_files(seed=6)
    world = World.seeded(files, PKG, VER, seed=6, official_forks=5)
    write_manifest(tmp_path, files)
    with FakeWorld(world) as fake:
        settings = world_settings(fake, tmp_path, token=None)
        services = Services(settings, ClientOptions(dry_run=False), cache=MemoryCache())
        records = StepRecordsMemory()
        hunt, verify = asyncio.run(hunt_and_verify(settings, services, tmp_path, world, records))
        assert fake.stats.count("github.search_code") == 0
    skipped = {s["source"]: s["reason"] for s in hunt["skipped_sources"]}
    assert "GITHUB_TOKEN" in skipped["code-search"]
    assert "code-search" not in hunt["by_source"]
    assert verify["copies"] >= 10  # repository search, forks and the other hosts still ran
    assert {u for u, m in records.mirrors().items() if m["verdict"] == "copy"} <= (
        world.expected_copies
    )


def test_cdn_check_records_copies_and_the_purge_step_purges_tags_only(tmp_path: Path) -> None:
    files = sample_files(seed=7)
    world = World.seeded(files, PKG, VER, seed=7, official_forks=0)
    write_manifest(tmp_path, files)
    with FakeWorld(world) as fake:
        for dry in (True, False):
            settings = world_settings(fake, tmp_path)
            if dry:
                settings = dataclasses.replace(settings, mode=Mode.DRY_RUN)
            services = Services(settings, ClientOptions(dry_run=dry), cache=MemoryCache())
            needs: dict[str, StepOutputs] = {"lookup": lookup_output(world), "scan": SCAN}
            records = StepRecordsMemory()

            async def go(
                services: Services = services,
                needs: dict[str, StepOutputs] = needs,
                records: StepRecordsMemory = records,
                settings: Settings = settings,
            ) -> tuple[Any, Any, Any]:
                try:
                    ctx = context(settings, services, tmp_path, needs, records, "cdn")
                    cdn = (await CheckCdns().apply(ctx, await CheckCdns().plan(ctx))).outputs
                    assert cdn is not None
                    ctx = context(settings, services, tmp_path, {**needs, "cdn": cdn}, records)
                    plan = await PurgeCdnTags().plan(ctx)
                    try:
                        done = to_json((await PurgeCdnTags().apply(ctx, plan)).outputs)
                    except DryRunViolation as exc:
                        done = exc
                    return to_json(cdn), plan, done
                finally:
                    await services.aclose()

            out, plan, done = asyncio.run(go())
            assert {c["cdn"] for c in out["copies"]} == {"jsdelivr", "unpkg"}
            assert out["requests_needed"] == ["jsdelivr", "unpkg"]
            assert {m["kind"] for m in records.mirrors().values()} == {"cdn"}
            urls = [a.url for a in plan.actions]
            assert urls and all("@latest/" in u for u in urls), urls
            assert not any(f"@{VER}/" in u for u in urls)
            assert {a.method for a in plan.actions} == {"GET"}
            if dry:
                # The purge is a GET: only its WRITES mark stops it, at the transport.
                assert isinstance(done, DryRunViolation), done
                assert fake.stats.purges == []
            else:
                assert {p["ok"] for p in done["purged"]} == {True}
        assert fake.stats.purges and all("@latest/" in p for p in fake.stats.purges)


def test_recheck_uses_304s_and_records_a_takedown(tmp_path: Path) -> None:
    files = sample_files(seed=8)
    world = World.seeded(files, PKG, VER, seed=8, official_forks=20)
    store = Store(tmp_path / "home")
    incident = Incident(
        "inc-1", utcnow(), "live", (f"{PKG}@{VER}",), {}, "rb.yaml", "h", "", "open"
    )
    store.create_incident(incident, [("lookup", f"{PKG}@{VER}", "lookup", "npm.lookup")])
    store.transition("inc-1", "lookup", StepStatus.SUCCEEDED, outputs=to_json(lookup_output(world)))
    workdir = store.incident_dir("inc-1")
    write_manifest(workdir, files)
    try:
        with FakeWorld(world) as fake:
            settings = world_settings(fake, tmp_path / "home")
            services = Services(settings, ClientOptions(dry_run=False), cache=StoreCache(store))
            records = Records(store, "inc-1")
            asyncio.run(hunt_and_verify(settings, services, workdir, world, records))
            before = {m.url: m for m in list_mirrors(store, "inc-1")}
            assert before[f"{GH}leaker2/mirror"].verdict is Verdict.COPY
            fake.disable("leaker2/mirror")
            fake.delete("renamer/widget-cli-src")
            trees_before = fake.stats.count("github.trees")
            log_before = len(fake.stats.log)
            revalidated_before = fake.stats.not_modified
            services = Services(settings, ClientOptions(dry_run=False), cache=StoreCache(store))

            async def again() -> Any:
                try:
                    return await recheck(store, "inc-1", services)
                finally:
                    await services.aclose()

            changes = asyncio.run(again())
            trees = fake.stats.count("github.trees") - trees_before
            fresh_trees = sum(
                1 for _, route, _, status in fake.stats.log[log_before:]
                if route == "github.trees" and status == 200
            )  # fmt: skip
            revalidated = fake.stats.not_modified - revalidated_before
            github = [
                (route, status)
                for _, route, _, status in fake.stats.log[log_before:]
                if route.startswith("github.")
            ]
    finally:
        after = {m.url: m for m in list_mirrors(store, "inc-1")}
        store.close()
    verdict_changes = {(c.url, c.old, c.new) for c in changes if c.field == "verdict"}
    assert verdict_changes == {
        (f"{GH}leaker2/mirror", "copy", "disabled"),
        (f"{GH}renamer/widget-cli-src", "copy", "gone"),
    }
    assert after[f"{GH}leaker2/mirror"].status == "resolved"
    assert after[f"{GH}renamer/widget-cli-src"].status == "resolved"
    assert after[f"{GH}leaker0/widget-cli-source"].status == "open"
    rechecked = [
        m for m in after.values() if m.host == "github.com" and "last push" not in m.evidence
    ]
    gone = [m for m in rechecked if m.verdict in (Verdict.DISABLED, Verdict.GONE)]
    distinct = {m.tree_sha for m in rechecked if m.tree_sha}
    assert len(gone) == 3 and len(distinct) < len(rechecked) - len(gone)
    # One tree request per distinct tree, at the oid GraphQL answered (a repository whose tree
    # oid was verified already costs none), and one by branch for each repository GraphQL did
    # not resolve (the REST answer tells a takedown from a deletion).
    assert trees == len(distinct) + len(gone)
    # Every tree asked for again at the same oid: 304s. The only fresh GitHub answer is the one
    # GraphQL query for the heads; no commit request.
    assert fresh_trees == 0
    assert [route for route, status in github if status == 200] == ["github.graphql"]
    assert "github.commits" not in {route for route, _ in github}
    assert revalidated >= trees - len(gone)


def test_coverage_names_every_source_searched_and_only_standing_limits(run: Run) -> None:
    coverage = run.verify["coverage"]
    searched = {s["source"] for s in coverage["searched"]}
    assert searched >= {"code-search", "repo-search", "forks-graphql", "npm", "gitlab", "verify"}
    # Every search read to its end on the seeded world: the one gap left is code search's own
    # limit (forks indexed only when starrier than their parent), which hid quiet2/base.
    assert [g["kind"] for g in coverage["gaps"]] == ["unindexed-forks"], coverage["gaps"]
    assert run.hunt["coverage"]["gaps"] == coverage["gaps"]
