"""GitHub's rules kept and coverage stated: truncated trees, forks in code search, timed-out and
capped searches, budgets; each recorded as a gap the report can show."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from playbook.clock import Clock
from playbook.config.org import Official
from playbook.mirrors.collect import collect
from playbook.mirrors.coverage import Coverage, Gap, GapKind
from playbook.mirrors.fingerprints import manifest_dict, manifest_from_json
from playbook.mirrors.model import Candidate, Collection, Mirror, Verdict
from playbook.mirrors.queries import plan_queries
from playbook.mirrors.verify import Verifier, verification_coverage
from playbook.net.http import ClientOptions, RetryPolicy
from playbook.rehearsal.world import (
    FakeClock,
    FakeRepo,
    FakeWorld,
    Limits,
    World,
    sample_files,
    sample_identifiers,
    world_settings,
)
from playbook.services.github import RestGitHub, Tree, github_api
from playbook.services.hub import MemoryCache, Services
from tests.support.services import run_closing

PKG, VER = "@acme/widget-cli", "2.1.88"
GH = "https://github.com/"
FILES = sample_files(seed=9)
FIRST = {p: d for p, d in FILES.items() if not p.startswith("node_modules/")}
MANIFEST = manifest_from_json(manifest_dict(FILES, PKG, VER, sample_identifiers(FILES)))
T = TypeVar("T")


def run(
    world: World, tmp: Path, work: Callable[[Services], Awaitable[T]], **env: str
) -> tuple[T, FakeWorld]:
    clock = FakeClock()
    with FakeWorld(world, clock=clock) as fake:
        settings = world_settings(fake, tmp)
        if env:
            settings = type(settings).resolve(
                env={**settings.npm_env, **env}, cwd=tmp, registry=settings.registry
            )
        clocked = Clock(clock, clock.sleep)
        options = ClientOptions(dry_run=False, retry=RetryPolicy(attempts=1))
        services = Services(settings, options, MemoryCache(), clock=clocked)

        return run_closing(services, work), fake


def hunt(services: Services) -> Awaitable[Collection]:
    return collect(MANIFEST, services, official=Official(), published_at=None)


def kinds(coverage: Coverage) -> set[str]:
    return {g.kind for g in coverage.gaps}


def big_world(limits: Limits) -> World:
    world = World(PKG, VER, limits=limits)
    world.add(FakeRepo("big/leak", dict(FIRST)))
    own = {f"lib/part{i}/own{j}.ts": f"export const own{i}x{j} = {j};\n".encode() * 8
           for i in range(6) for j in range(10)}  # fmt: skip
    world.add(FakeRepo("big/own", own))
    return world


def test_a_truncated_tree_is_read_again_by_sub_tree(tmp_path: Path) -> None:
    world = big_world(Limits(tree_entries=20))
    tree, fake = run(world, tmp_path, lambda s: github_api(s).tree("big/leak", "main"))
    assert not tree.truncated
    assert dict(tree.entries) == dict(
        Tree(tree.state, tuple((p, e) for p, e in tree.entries)).entries
    )
    assert {p for p, _ in tree.entries} == set(FIRST)
    assert tree.subtrees >= 2  # the root one level deep, then each folder
    assert fake.stats.count("github.trees") == 1 + tree.subtrees


def test_a_tree_still_truncated_is_unverified_never_unrelated(tmp_path: Path) -> None:
    world = big_world(Limits(tree_entries=5))

    async def work(s: Services) -> tuple[list[Mirror], Coverage]:
        gh = github_api(s)
        object.__setattr__(gh, "subtree_requests", 2)  # a small allowance: it runs out
        assert isinstance(gh, RestGitHub)
        verifier = Verifier(MANIFEST, s, Official())
        cands = [Candidate(GH + n, "github.com", "repo", n) for n in ("big/own", "big/leak")]
        mirrors = await verifier.run(cands)
        return mirrors, verification_coverage(verifier, mirrors)

    (mirrors, coverage), _ = run(world, tmp_path, work)
    by = {m.name: m for m in mirrors}
    assert by["big/own"].verdict is Verdict.UNVERIFIED  # not one leaked file seen, yet no verdict
    assert "truncated" in by["big/own"].evidence and "not proven" in by["big/own"].evidence
    assert by["big/leak"].verdict in (Verdict.UNVERIFIED, Verdict.PARTIAL)
    assert GapKind.TRUNCATED_TREE in kinds(coverage)
    assert not coverage.complete


def test_code_search_asks_for_forks_and_finds_a_starred_fork(tmp_path: Path) -> None:
    world = World(PKG, VER)
    world.add(FakeRepo("plain/base", {"README.md": b"# base\n"}))
    # A fork with more stars than its parent is indexed, but returned only with fork:true.
    world.add(FakeRepo("starry/base", dict(FIRST), parent="plain/base", stars=5))
    found, _ = run(world, tmp_path, hunt)
    assert f"{GH}starry/base" in found.candidates
    assert "code-search" in found.candidates[f"{GH}starry/base"].found_by
    assert found.queries["code"] and all(q.endswith(" fork:true") for q in found.queries["code"])
    token = sample_identifiers(FILES)[0]

    async def both(s: Services) -> tuple[int, int]:
        gh = github_api(s)
        return len(await gh.search_code(token)), len(await gh.search_code(f"{token} fork:true"))

    assert run(world, tmp_path, both)[0] == (0, 1)  # as on GitHub: no fork without fork:true


def test_timed_out_and_capped_searches_are_gaps(tmp_path: Path) -> None:
    token = plan_queries(MANIFEST, None).code[0].query.split()[0]
    path = next(i.files[0] for i in MANIFEST.identifiers if i.token == token)
    world = World(PKG, VER, limits=Limits(incomplete_terms=frozenset({token.lower()})))
    one = {path: FILES[path]}
    for i in range(230):  # one leaked file in 230 repositories: more than two pages of hits
        world.add(FakeRepo(f"many{i}/bits", dict(one)))
    found, _ = run(world, tmp_path, hunt)
    gaps = {g.kind: g for g in found.coverage.gaps}
    assert "incomplete_results" in gaps[GapKind.INCOMPLETE].detail
    assert "200 of 230 results read" in gaps[GapKind.RESULT_CAP].detail
    assert GapKind.UNINDEXED_FORKS in gaps  # a standing limit, stated every time
    assert not found.coverage.complete
    assert "INCOMPLETE" in found.coverage.statement()
    searched = {s.source: s.what for s in found.coverage.searched}
    assert "queries (forks included)" in searched["code-search"]


def test_a_spent_budget_is_a_gap_and_leaves_candidates_unverified(tmp_path: Path) -> None:
    world = big_world(Limits())

    async def work(s: Services) -> tuple[list[Mirror], Coverage]:
        verifier = Verifier(MANIFEST, s, Official())
        cands = [Candidate(GH + n, "github.com", "repo", n) for n in ("big/own", "big/leak")]
        mirrors = await verifier.run(cands)
        return mirrors, verification_coverage(verifier, mirrors)

    (mirrors, coverage), _ = run(world, tmp_path, work, RESPOND_GITHUB_BUDGET="2")
    # The copy's tree and commit spend the budget of 2: the other candidate is left unverified.
    assert {m.name: m.verdict for m in mirrors} == {
        "big/leak": Verdict.COPY,
        "big/own": Verdict.UNVERIFIED,
    }
    assert {g.kind for g in coverage.run_gaps} == {GapKind.BUDGET}
    assert "1 unverified" in coverage.run_gaps[0].detail


def test_a_complete_hunt_says_so_and_still_names_the_standing_limits() -> None:
    limit = Gap("code-search", GapKind.UNINDEXED_FORKS, "forks")
    coverage = Coverage(gaps=(limit,))
    assert coverage.complete and coverage.limits == (limit,)
    assert coverage.statement().startswith("Complete as far as the searched sources index")
    assert "how complete the list of copies is, is unknown" in Coverage().statement()


def test_the_report_says_how_complete_the_list_of_copies_is(tmp_path: Path) -> None:
    from dataclasses import replace

    from playbook.mirrors.coverage import Searched
    from playbook.notices.report import render_documents
    from playbook.notices.view import load_view
    from tests.test_notices_fixture import INCIDENT, NOW, build_incident, full_org

    org = full_org(tmp_path)
    view = load_view(build_incident(tmp_path / "home", org=org), INCIDENT)
    gaps = (
        Gap("code-search", GapKind.RATE_LIMIT, "code search quota resets in 3600s"),
        Gap("code-search", GapKind.UNINDEXED_FORKS, "forks <b>are</b> not indexed"),
    )
    searched = (Searched("code-search", "3 of 9 queries (forks included)"),)
    cases = {
        "gaps": Coverage(searched, gaps),
        "complete": Coverage(searched, gaps[1:]),
    }
    for name, coverage in cases.items():
        targets = tuple(replace(t, coverage=coverage) for t in view.targets)
        md = render_documents(replace(view, targets=targets), org, "md", now=NOW)
        html = render_documents(replace(view, targets=targets), org, "html", now=NOW)
        section = md.split("## How complete the list of copies is", 1)[1].split("\n## ", 1)[0]
        assert "3 of 9 queries (forks included)" in section
        assert "Standing limit (code-search)" in section
        if name == "gaps":
            assert "INCOMPLETE: 1 gap(s) (rate-limit)" in section
            assert "| code-search | rate-limit | code search quota resets in 3600s |" in section
        else:
            assert "Complete as far as the searched sources index" in section
            assert "rate-limit" not in section
        assert "forks &lt;b&gt;are&lt;/b&gt; not indexed" in html  # inert, as every value
    targets = tuple(replace(t, coverage=None) for t in view.targets)
    md = render_documents(replace(view, targets=targets), org, "md", now=NOW)
    assert "No hunt ran: nothing is known about how complete" in md


def test_reformatted_copies_past_the_download_allowance_are_named_not_guessed(
    tmp_path: Path,
) -> None:
    from playbook.rehearsal.world.seed import prettier_style

    world = World(PKG, VER)
    pretty = {p: prettier_style(d) for p, d in FIRST.items()}
    for i in range(5):  # 5 samples of 6 files: past the pass's 24 downloads (distinct trees)
        world.add(FakeRepo(f"pretty{i}/leak", {**pretty, "README.md": f"# {i}\n".encode()}))
    # The same tree as pretty4's: never `unrelated` by identity with a tree left uncompared.
    world.add(FakeRepo("twin/leak", {**pretty, "README.md": b"# 4\n"}))

    async def work(s: Services) -> tuple[list[Mirror], Coverage]:
        verifier = Verifier(MANIFEST, s, Official())
        names = [f"pretty{i}/leak" for i in range(5)] + ["twin/leak"]
        mirrors = await verifier.run(Candidate(GH + n, "github.com", "repo", n) for n in names)
        return mirrors, verification_coverage(verifier, mirrors)

    (mirrors, coverage), fake = run(world, tmp_path, work)
    verdicts = [m.verdict for m in mirrors]
    assert verdicts == [Verdict.COPY] * 4 + [Verdict.UNVERIFIED] * 2  # not compared: no absence
    assert mirrors[4].tree_sha == mirrors[5].tree_sha
    assert all("allowance was spent" in m.evidence for m in mirrors[4:])
    assert fake.stats.count("github.blobs") == 24
    gap = next(g for g in coverage.run_gaps if g.kind == GapKind.UNVERIFIED)
    assert "2 candidates hold leaked paths" in gap.detail and "pretty4/leak" in gap.detail


def test_the_scanners_own_manifest_proves_a_prettier_copy(tmp_path: Path) -> None:
    """From a leaky tarball (a map with its sources) through the real scanner's manifest."""
    import json as jsonlib

    from playbook.mirrors.fingerprints import manifest_from_json as parse
    from playbook.rehearsal.world import package_tarball
    from playbook.rehearsal.world.seed import prettier_style
    from playbook.scan.api import scan_tarball
    from playbook.scan.output import MANIFEST_FILE, write_outputs

    sources = sorted(FIRST)
    sourcemap = {
        "version": 3,
        "file": "cli.js",
        "sources": [f"../{p}" for p in sources],
        "sourcesContent": [FIRST[p].decode() for p in sources],
        "mappings": "",
    }
    tgz = tmp_path / "cli.tgz"
    tgz.write_bytes(
        package_tarball(
            {
                "package.json": jsonlib.dumps({"name": PKG, "version": VER}).encode(),
                "cli.js": b"console.log(1)\n//# sourceMappingURL=cli.js.map\n",
                "cli.js.map": jsonlib.dumps(sourcemap).encode(),
            }
        )
    )
    written: dict[str, bytes] = {}
    write_outputs(
        scan_tarball(tgz, package=PKG, version=VER),
        lambda name, data: written.__setitem__(name, data) or tmp_path / name,
    )
    manifest = parse(jsonlib.loads(written[MANIFEST_FILE]))
    assert 0 < len(manifest.winnow) <= 48

    world = World(PKG, VER)
    world.add(FakeRepo("pretty/leak", {p: prettier_style(d) for p, d in FIRST.items()}))

    async def work(s: Services) -> list[Mirror]:
        name = "pretty/leak"
        return await Verifier(manifest, s, Official()).run(
            [Candidate(GH + name, "github.com", "repo", name)]
        )

    (mirror,), _ = run(world, tmp_path, work)
    assert mirror.verdict is Verdict.COPY and mirror.matched_by_blob == 0
    assert "reformatted (token fingerprint similarity" in mirror.evidence


def test_a_host_that_does_not_answer_is_an_unreachable_gap(tmp_path: Path) -> None:
    world = World(PKG, VER)
    world.add(FakeRepo("leaker/copy", dict(FIRST)))
    # GitLab's endpoint points at a closed loopback port: nothing answers there.
    found, _ = run(world, tmp_path, hunt, RESPOND_GITLAB_API="http://127.0.0.1:9/api/v4")
    gaps = [g for g in found.coverage.run_gaps if g.source == "gitlab"]
    assert [g.kind for g in gaps] == [GapKind.UNREACHABLE]
    assert "could not be reached" in gaps[0].detail
    assert f"{GH}leaker/copy" in found.candidates  # the other sources went on
    assert "INCOMPLETE" in found.coverage.statement()


def test_a_query_past_githubs_cap_says_so() -> None:
    from playbook.mirrors.collect import Collector
    from playbook.services.github import Search

    collector = Collector.__new__(Collector)
    collector.gaps = []
    capped = Search(tuple(range(200)), total=4_321, pages=2, more=True)
    read_all = Search(tuple(range(80)), total=80, pages=1)
    assert capped.capped and capped.unread == 4_121 and not read_all.unread
    collector._results("code-search", "someToken fork:true", capped, 2)
    collector._results("code-search", "other fork:true", read_all, 2)
    assert [g.detail for g in collector.gaps] == [
        "'someToken fork:true': 200 of 4,321 results read (GitHub returns at most 1,000 results)"
    ]
