"""GraphQL: the document reader against graphql-core, the dry-run guard, GitHub's cost formula,
and fork networks listed through the local GitHub's /graphql and proven by tree oid."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest

from playbook.clock import Clock
from playbook.errors import DryRunViolation
from playbook.mirrors.collect import collect
from playbook.mirrors.fingerprints import manifest_dict, manifest_from_json
from playbook.mirrors.model import Mirror, Verdict
from playbook.mirrors.official import read_official
from playbook.mirrors.verify import Verifier
from playbook.net.graphql import cost, only_reads, operation_kinds, parse
from playbook.net.http import READ_ONLY, ClientOptions, RetryPolicy, build_client
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
from playbook.rehearsal.world.forknet import Network, plant_network
from playbook.services.github import github_api
from playbook.services.github_graphql import (
    HEADS_PER_QUERY,
    PageWanted,
    forks_query,
    github_graphql,
    heads_query,
)
from playbook.services.hub import MemoryCache, Services
from tests.support.services import run_closing

PKG, VER = "@acme/widget-cli", "2.1.88"
ROOT = "leaker/widget-cli-source"

DOCUMENTS = [
    "{ viewer { login } }",
    "query { viewer { login } }",
    'query Named($a: String = "mutation { x }") { repository(owner: $a, name: "b") { id } }',
    'mutation { addStar(input: {starrableId: "x"}) { clientMutationId } }',
    "# mutation { deleteRepository }\nquery { viewer { login } }",
    'query { search(query: """\nmutation {\n""", type: REPOSITORY, first: 1) { repositoryCount } }',
    "subscription S { thing }",
    "fragment F on User { login }\nquery { viewer { ...F } }",
    "query A { viewer { login } }\nmutation B { removeStar(input: {}) { clientMutationId } }",
    'query($f: Int = 3, $l: [String!]! = ["a", "b"]) { a: viewer @include(if: true) { login } }',
    'query { node(id: "\\u00e9\\"mutation") { ... on Repository { name } ... { id } } }',
]
NOT_DOCUMENTS = ["", "mutation", "query {", "{ a(b: ) }", "queryx { a }", "{ a } }", "{ a: }"]


def graphql_core_kinds(text: str) -> frozenset[str]:
    doc = graphql.parse(text)
    return frozenset(
        d.operation.value for d in doc.definitions if isinstance(d, graphql.OperationDefinitionNode)
    )


@pytest.mark.parametrize("text", DOCUMENTS)
def test_operation_kinds_agree_with_graphql_core(text: str) -> None:
    assert operation_kinds(text) == graphql_core_kinds(text)
    body = json.dumps({"query": text}).encode()
    assert only_reads(body) == (graphql_core_kinds(text) == {"query"})


@pytest.mark.parametrize("text", NOT_DOCUMENTS)
def test_what_graphql_core_refuses_is_never_taken_for_a_read(text: str) -> None:
    with pytest.raises(graphql.GraphQLError):
        graphql.parse(text)
    assert not only_reads(json.dumps({"query": text}).encode())


def test_request_bodies_that_are_not_a_query_count_as_writes() -> None:
    assert not only_reads(b"not json")
    assert not only_reads(b'{"mutation": "{ a }"}')
    assert not only_reads(json.dumps([{"query": "{ a }"}, {"query": "mutation { b }"}]).encode())
    assert only_reads(json.dumps([{"query": "{ a }"}, {"query": "query { b }"}]).encode())


def test_github_published_cost_and_node_examples() -> None:
    # GitHub's docs: 1 + 100 + 5,000 = 5,101 requests, 51 points.
    doc = parse(
        "query { viewer { login repositories(first: 100) { edges { node { id "
        "issues(first: 50) { edges { node { id labels(first: 60) { edges { node { id name } } } "
        "} } } } } } } }"
    )
    assert (cost(doc).requests, cost(doc).points) == (5101, 51)
    assert cost(doc).nodes == 100 + 100 * 50 + 100 * 50 * 60
    # GitHub's docs: the simple node example, 550 nodes.
    simple = parse(
        "query { viewer { repositories(first: 50) { edges { repository: node { name "
        "issues(first: 10) { totalCount edges { node { title bodyHTML } } } } } } } }"
    )
    assert cost(simple).nodes == 550 and cost(simple).points == 1
    assert cost(parse("{ a(first: 101) { nodes { id } } }")).problems
    assert cost(parse("{ a { nodes { id } } }")).problems  # items need first or last
    assert not cost(parse("{ a { totalCount } }")).problems  # a count alone does not
    # The heads of 100 repositories: no connection, one point.
    text, variables = heads_query([f"o{i}/r" for i in range(100)])
    assert (cost(parse(text), variables).points, cost(parse(text), variables).nodes) == (1, 0)
    # The hunt's own query: 20 listings of 100 forks, each fork's fork count: 20 x 101 requests.
    text, variables = forks_query([PageWanted(f"o{i}/r", None, 100) for i in range(20)])
    assert (cost(parse(text), variables).requests, cost(parse(text), variables).points) == (
        2020,
        20,
    )


# The local world: guard, limits, listings ----------------------------------------------------


def network_world(forks: int, limits: Limits | None = None) -> tuple[World, Network, dict]:
    files = sample_files(first_party=40, node_modules=0, seed=21)
    world = World(PKG, VER, limits=limits or Limits())
    world.add(FakeRepo(ROOT, dict(files), description="widget-cli leaked source", stars=50))
    world.planted[f"https://github.com/{ROOT}"] = "copy"
    world.add(FakeRepo("someone/unrelated", {"README.md": b"# mine\n"}))
    net = plant_network(world, ROOT, forks, seed=21)
    return world, net, files


def post(fake: FakeWorld, text: str, *, dry_run: bool, **extensions: Any) -> httpx.Response:
    options = ClientOptions(dry_run=dry_run, retry=RetryPolicy(attempts=1))

    async def go() -> httpx.Response:
        async with build_client(options, headers={"authorization": "Bearer t"}) as client:
            return await client.post(
                fake.endpoint("github") + "/graphql",
                json={"query": text},
                extensions=extensions or None,
            )

    return asyncio.run(go())


def test_dry_run_sends_queries_and_refuses_mutations_whatever_their_mark() -> None:
    world, _net, _files = network_world(3)
    with FakeWorld(world) as fake:
        query = 'query { repository(owner: "leaker", name: "widget-cli-source") { forks { totalCount } } }'
        answer = post(fake, query, dry_run=True)
        assert answer.status_code == 200
        direct = len(world.forks_of(ROOT))
        assert answer.json()["data"]["repository"]["forks"]["totalCount"] == direct >= 1
        sent = fake.stats.github
        mutation = 'mutation { addStar(input: {starrableId: "R_1"}) { clientMutationId } }'
        for extensions in ({}, READ_ONLY):
            with pytest.raises(DryRunViolation, match="POST"):
                post(fake, mutation, dry_run=True, **extensions)
        with pytest.raises(DryRunViolation):
            post(fake, "{ not a document", dry_run=True)
        assert fake.stats.github == sent  # nothing refused reached the server
        assert post(fake, mutation, dry_run=False).status_code == 200  # a live run sends it
        assert fake.stats.github == sent + 1


@dataclass
class Hunt:
    world: World
    net: Network
    mirrors: dict[str, Mirror]
    routes: dict[str, int]
    requests: int
    identity: int
    queries: list[tuple[str, dict[str, Any], dict[str, Any]]]
    waited: float  # seconds the governor waited on the world's clock


def hunt(tmp: Path, forks: int, limits: Limits | None = None) -> Hunt:
    world, net, files = network_world(forks, limits)
    clock = FakeClock()
    manifest = manifest_from_json(manifest_dict(files, PKG, VER, sample_identifiers(files)))
    with FakeWorld(world, clock=clock) as fake:
        settings = world_settings(fake, tmp)
        options = ClientOptions(dry_run=True, retry=RetryPolicy(attempts=1))
        services = Services(settings, options, cache=MemoryCache(), clock=Clock(clock, clock.sleep))
        official = read_official(settings)

        async def run() -> tuple[list[Mirror], int, int]:
            try:
                found = await collect(
                    manifest, services, official=official, published_at=world.published_at
                )
                verifier = Verifier(manifest, services, official, published_at=world.published_at)
                mirrors = await verifier.run(found.candidates.values())
                return mirrors, github_api(services).governor.requests, verifier.by_identity
            finally:
                await services.aclose()

        start = clock.now
        mirrors, requests, identity = asyncio.run(run())
        waited = clock.now - start
        routes = dict(fake.stats.requests)
        queries = list(fake.graphql.queries)
    by_url = {m.url: m for m in mirrors}
    return Hunt(world, net, by_url, routes, requests, identity, queries, waited)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Hunt:
    return hunt(tmp_path_factory.mktemp("net"), 300)


def test_every_fork_of_a_300_fork_network_is_judged_as_planted(network: Hunt) -> None:
    net, mirrors = network.net, network.mirrors
    assert len(net.forks) == 300 and net.cleaned and net.changed
    levels = {name.split("/")[0].rsplit("l", 1)[1] for name in net.forks}
    assert levels == {"1", "2", "3"}  # forks of forks of forks
    for name in net.forks:
        mirror = mirrors[f"https://github.com/{name}"]
        want = Verdict.UNRELATED if name in net.cleaned else Verdict.COPY
        assert mirror.verdict is want, (name, mirror.verdict, mirror.evidence)
        assert mirror.parent is not None and "forks" in mirror.found_by
    copies = {u for u, m in mirrors.items() if m.verdict is Verdict.COPY}
    assert copies == network.world.expected_copies  # cleaned forks are never listed as copies


def test_unmodified_forks_are_proven_by_their_tree_oid_with_their_own_commit(
    network: Hunt,
) -> None:
    root = network.mirrors[f"https://github.com/{ROOT}"]
    same = [
        network.mirrors[f"https://github.com/{n}"]
        for n in network.net.forks
        if n not in network.net.cleaned and n not in network.net.changed
    ]
    assert root.tree_sha and len(same) > 250
    for mirror in same:
        assert mirror.tree_sha == root.tree_sha and mirror.commit_sha
        assert "the same tree SHA" in mirror.evidence and ROOT in mirror.evidence
        assert mirror.matched_paths == root.matched_paths
    changed = network.mirrors[f"https://github.com/{sorted(network.net.changed)[0]}"]
    assert changed.tree_sha != root.tree_sha and changed.commit_sha
    assert network.identity >= len(same)


def test_the_network_costs_at_most_005_github_requests_per_fork(network: Hunt) -> None:
    # Only distinct trees are fetched: the root's, each cleaned and each changed fork's.
    distinct = len({m.tree_sha for m in network.mirrors.values() if m.tree_sha})
    assert network.routes["github.trees"] == distinct
    assert network.routes.get("github.forks", 0) == 0  # listed through GraphQL
    assert network.routes.get("github.commits", 0) <= 1  # forks come pinned to their commit
    searches = sum(v for k, v in network.routes.items() if k.startswith("github.search"))
    network_requests = network.requests - searches
    assert network_requests <= 0.05 * len(network.net.forks)
    assert network.routes["github.graphql"] <= 6


def test_graphql_points_are_waited_for_not_refused(tmp_path: Path) -> None:
    # One point per ten minutes: each query after the first waits for the reset.
    limits = Limits(graphql=1, graphql_window=600.0)
    result = hunt(tmp_path, 300, limits)
    points = sum(a["data"]["rateLimit"]["cost"] for _t, _v, a in result.queries)
    assert points == len(result.queries) >= 3
    assert result.waited >= 600 * (points - 1)
    assert all(not a.get("errors") for _t, _v, a in result.queries)  # no RATE_LIMITED answer
    for name in result.net.forks:
        assert result.mirrors[f"https://github.com/{name}"].verdict in (
            Verdict.COPY,
            Verdict.UNRELATED,
        )


# The contract: GitHub's official schema ------------------------------------------------------

SCHEMA = (
    Path(__file__).resolve().parent.parent
    / "contracts/graphql/node_modules/@octokit/graphql-schema/schema.json"
)


@pytest.fixture(scope="module")
def github_schema() -> graphql.GraphQLSchema:
    if not SCHEMA.exists():
        pytest.fail(
            f"{SCHEMA} is missing: `make setup` installs GitHub's schema (contracts/graphql)"
        )
    # The introspection result, as GitHub publishes it. assume_valid: the schema breaks two of
    # graphql-core's rules for schemas themselves (some implementations deprecate a field their
    # interface does not; the package's SDL copy defines two fields twice); queries are still
    # validated against it in full.
    return graphql.build_client_schema(json.loads(SCHEMA.read_text()), assume_valid=True)


def answer_by_key(source: Any, info: graphql.GraphQLResolveInfo, **_args: Any) -> Any:
    """Resolve each field from the world's answer by its response key (alias or name)."""
    return source.get(info.path.key) if isinstance(source, dict) else None


def type_by_name(value: Any, _info: Any, _abstract: Any) -> str | None:
    return value.get("__typename") if isinstance(value, dict) else None


def replay(
    schema: graphql.GraphQLSchema, text: str, variables: dict[str, Any], answer: dict[str, Any]
) -> graphql.ExecutionResult:
    """Execute `text` over `schema` with the world's answer as the data, resolved by key."""
    return graphql.execute_sync(
        schema,
        graphql.parse(text),
        root_value=answer["data"],
        variable_values=variables,
        field_resolver=answer_by_key,
        type_resolver=type_by_name,
    )


def test_every_query_respond_sent_validates_against_github_schema(
    network: Hunt, github_schema: graphql.GraphQLSchema
) -> None:
    sent = {text for text, _v, _a in network.queries}
    assert any(t.startswith("query Heads(") for t in sent)  # the searched repositories' heads
    assert any(t.startswith("query Forks(") for t in sent)
    sent.add(forks_query([PageWanted("a/b")])[0])
    sent.add(forks_query([PageWanted(f"o{i}/r", "c", 7) for i in range(20)])[0])
    sent.add(heads_query(["a/b"])[0])
    sent.add(heads_query([f"o{i}/r" for i in range(HEADS_PER_QUERY)])[0])
    assert len(sent) >= 5
    for text in sent:
        assert graphql.validate(github_schema, graphql.parse(text)) == [], text


def test_the_world_answers_in_github_schema_shapes(
    network: Hunt, github_schema: graphql.GraphQLSchema
) -> None:
    # Executing each query over GitHub's schema with the world's answer as the data: every
    # value must fit its declared type (nullability, lists, scalars, enums, interfaces).
    assert network.queries
    for text, variables, answer in network.queries:
        result = replay(github_schema, text, variables, answer)
        assert result.errors is None, result.errors
        assert result.data == answer["data"]


def test_heads_of_every_kind_of_repository_in_github_schema_shapes(
    tmp_path: Path, github_schema: graphql.GraphQLSchema
) -> None:
    # A copy, one deleted, one taken down, one empty: the world's answers fit GitHub's schema,
    # and the client reads each for what it is (REST then decides the three without a head).
    world, _net, _files = network_world(3)
    world.add(FakeRepo("gone/x", {"a.ts": b"x"}, deleted=True))
    world.add(FakeRepo("blocked/x", {"a.ts": b"x"}, disabled=True))
    world.add(FakeRepo("empty/x", {}))
    names = [ROOT, "gone/x", "blocked/x", "empty/x"]
    with FakeWorld(world) as fake:
        services = Services(world_settings(fake, tmp_path), ClientOptions(dry_run=False))
        heads = list(run_closing(services, lambda s: github_graphql(s).heads(names)))
        ((text, variables, answer),) = fake.graphql.queries
    assert [h.state.value for h in heads] == ["ok", "missing", "blocked", "empty"]
    repo = world.repo(ROOT)
    assert repo is not None and heads[0].default_branch == repo.default_branch
    assert heads[0].commit and heads[0].tree and heads[0].pushed_at
    assert "Repository access blocked" in heads[2].reason
    assert graphql.validate(github_schema, graphql.parse(text)) == []
    result = replay(github_schema, text, variables, answer)
    assert result.errors is None, result.errors
    assert result.data == answer["data"]


def test_the_world_refuses_what_github_refuses(github_schema: graphql.GraphQLSchema) -> None:
    world, _net, _files = network_world(3)
    with FakeWorld(world) as fake:
        url = fake.endpoint("github") + "/graphql"
        too_many = (
            'query { repository(owner: "a", name: "b") { forks(first: 101) { nodes { id } } } }'
        )
        assert graphql.validate(github_schema, graphql.parse(too_many)) == []  # schema-valid
        answer = httpx.post(url, json={"query": too_many}, headers={"authorization": "Bearer t"})
        assert answer.json()["errors"] and "data" not in answer.json()
        anonymous = httpx.post(url, json={"query": "{ rateLimit { remaining } }"})
        assert anonymous.status_code == 401
        missing = httpx.post(
            url,
            json={"query": 'query { repository(owner: "no", name: "such") { id } }'},
            headers={"authorization": "Bearer t"},
        ).json()
        assert missing["data"] == {"repository": None}
        assert missing["errors"][0]["type"] == "NOT_FOUND"


def test_fork_listing_through_the_client_pages_by_cursor(tmp_path: Path) -> None:
    world, net, _files = network_world(250)
    with FakeWorld(world) as fake:
        services = Services(world_settings(fake, tmp_path), ClientOptions(dry_run=False))
        gql = github_graphql(services)

        async def pages() -> list[int]:
            try:
                seen, after, sizes = set(), None, []
                while True:
                    (page,) = await gql.fork_pages([PageWanted(ROOT, after)])
                    sizes.append(len(page.forks))
                    seen |= {f.full_name for f in page.forks}
                    if page.after is None:
                        assert page.total == len(seen)
                        return sizes
                    after = page.after
            finally:
                await services.aclose()

        sizes = asyncio.run(pages())
    direct = sum(1 for r in world.repos.values() if r.parent == ROOT)
    assert sum(sizes) == direct and max(sizes) == 100 and len(sizes) == -(-direct // 100)
    assert direct < len(net.forks)  # the rest are forks of forks, not in the root's listing


def test_a_rate_limited_answer_waits_for_the_reset_then_goes_on(tmp_path: Path) -> None:
    # Another client spent the points: the first query meets RATE_LIMITED (HTTP 200, GraphQL's
    # way), and the governor waits for x-ratelimit-reset instead of retrying at once.
    world, _net, _files = network_world(5, Limits(graphql=1, graphql_window=300.0))
    clock = FakeClock()
    with FakeWorld(world, clock=clock) as fake:
        spent = httpx.post(
            fake.endpoint("github") + "/graphql",
            json={"query": "{ rateLimit { remaining } }"},
            headers={"authorization": "Bearer other"},
        )
        assert spent.json()["data"]["rateLimit"]["remaining"] == 0
        services = Services(
            world_settings(fake, tmp_path),
            ClientOptions(dry_run=False, retry=RetryPolicy(1)),
            clock=Clock(clock, clock.sleep),
        )
        gql = github_graphql(services)

        async def go() -> int:
            try:
                (page,) = await gql.fork_pages([PageWanted(ROOT)])
                return page.total
            finally:
                await services.aclose()

        start = clock.now
        total = asyncio.run(go())
        assert total == len(world.forks_of(ROOT))
        assert gql.governor.limited == 1 and fake.stats.limited == 1
        assert 300 <= clock.now - start <= 302


def test_without_graphql_points_the_rest_listing_takes_over(tmp_path: Path) -> None:
    # No points at all: the first query is refused until a reset further off than the hunt may
    # wait, so GraphQL stops and the REST fork listing lists the network; every fork is judged.
    result = hunt(tmp_path, 40, Limits(graphql=0))
    assert result.routes["github.graphql"] >= 1 and result.routes["github.forks"] >= 1
    for name in result.net.forks:
        want = Verdict.UNRELATED if name in result.net.cleaned else Verdict.COPY
        assert result.mirrors[f"https://github.com/{name}"].verdict is want


def test_graphql_endpoint_beside_the_rest_base() -> None:
    from playbook.services.github_graphql import graphql_url

    assert graphql_url("http://127.0.0.1:9/github") == "http://127.0.0.1:9/github/graphql"
    assert graphql_url("https://ghe.example/api/v3/") == "https://ghe.example/api/graphql"
