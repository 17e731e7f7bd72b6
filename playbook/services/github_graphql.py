"""GitHub's GraphQL API for the hunt: fork listings (up to 100 forks a page) and the heads of
repositories found by search, each with its default branch's commit and tree oid.

One query lists a page of forks for each of several repositories (one alias each), and for every
fork its default branch, the commit that branch points at and that commit's tree `oid`: git
addresses content, so a fork whose tree oid equals a verified copy's holds exactly the same
files. Queries go through the host's one governor (serial with the REST calls, in the same
budget), priced beforehand by GitHub's point formula so a query never starts on fewer points
than it costs; each answer's `rateLimit` is fed back to the governor. The dry-run guard reads
the document and lets these queries through (playbook.net.http.changes_something).

Repositories found by search come without a commit: `heads` asks for up to HEADS_PER_QUERY of
them in one query (one alias each, no connection, so one point), each with its default branch's
commit and tree oid and its last push. Verification then lists the tree by that tree oid, so the
files checked are the files of the commit a notice cites, and needs no commit request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from playbook.errors import RemoteError
from playbook.net.governor import Governor
from playbook.net.graphql import cost, parse
from playbook.services.github import TreeState

if TYPE_CHECKING:
    from playbook.services.hub import Services

PAGE = 100
HEADS_PER_QUERY = 100  # aliases a query: no connection is selected, so one point whatever
FORK_FIELDS = """fragment ForkFields on Repository {
  nameWithOwner
  url
  description
  isFork
  pushedAt
  createdAt
  defaultBranchRef { name target { __typename ... on Commit { oid tree { oid } } } }
  forks { totalCount }
}"""


@dataclass(frozen=True)
class ForkNode:
    """A fork as a listing shows it: where it sits, and what its default branch holds."""

    full_name: str
    url: str
    parent: str  # full_name of the repository whose listing showed it
    description: str = ""
    pushed_at: str | None = None
    created_at: str | None = None
    default_branch: str | None = None
    commit: str | None = None  # the commit the default branch points at
    tree: str | None = None  # that commit's tree oid
    forks: int = 0


@dataclass(frozen=True)
class PageWanted:
    repo: str  # owner/name
    after: str | None = None
    first: int = PAGE


@dataclass(frozen=True)
class ForkPage:
    repo: str
    state: TreeState  # OK, MISSING (deleted, renamed, private) or BLOCKED (a takedown)
    forks: tuple[ForkNode, ...] = ()
    total: int = 0
    after: str | None = None  # the cursor of the next page; None at the end
    reason: str = ""


HEAD_FIELDS = """fragment HeadFields on Repository {
  nameWithOwner
  isFork
  pushedAt
  defaultBranchRef { name target { __typename ... on Commit { oid tree { oid } } } }
}"""


@dataclass(frozen=True)
class Head:
    """What a repository's default branch holds now: the commit and its tree oid.

    `state` is OK with `commit` and `tree` set, EMPTY for a repository without a branch, MISSING
    or BLOCKED when GitHub would not resolve it (`reason` says what GitHub said)."""

    repo: str  # owner/name as asked
    state: TreeState
    default_branch: str | None = None
    commit: str | None = None
    tree: str | None = None
    fork: bool = False
    pushed_at: str | None = None
    reason: str = ""


def heads_query(repos: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """One query for the default-branch commit and tree oid of each repository (owner/name)."""
    decls: list[str] = []
    parts: list[str] = []
    variables: dict[str, Any] = {}
    for n, repo in enumerate(repos):
        owner, name = repo.split("/", 1)
        decls.append(f"$o{n}: String!, $n{n}: String!")
        variables |= {f"o{n}": owner, f"n{n}": name}
        parts.append(f"  r{n}: repository(owner: $o{n}, name: $n{n}) {{ ...HeadFields }}")
    text = (
        f"query Heads({', '.join(decls)}) {{\n  rateLimit {{ cost remaining resetAt }}\n"
        + "\n".join(parts)
        + "\n}\n"
        + HEAD_FIELDS
    )
    return text, variables


def forks_query(wanted: Sequence[PageWanted]) -> tuple[str, dict[str, Any]]:
    """One query for a page of forks of each repository in `wanted`, and its variables."""
    decls: list[str] = []
    parts: list[str] = []
    variables: dict[str, Any] = {}
    for n, want in enumerate(wanted):
        owner, name = want.repo.split("/", 1)
        decls.append(f"$o{n}: String!, $n{n}: String!, $a{n}: String")
        variables |= {f"o{n}": owner, f"n{n}": name, f"a{n}": want.after}
        size = max(1, min(PAGE, want.first))
        parts.append(
            f"  r{n}: repository(owner: $o{n}, name: $n{n}) {{\n"
            f"    forks(first: {size}, after: $a{n}, "
            "orderBy: {field: CREATED_AT, direction: ASC}) {\n"
            "      totalCount\n      pageInfo { hasNextPage endCursor }\n"
            "      nodes { ...ForkFields }\n    }\n  }"
        )
    text = (
        f"query Forks({', '.join(decls)}) {{\n  rateLimit {{ cost remaining resetAt }}\n"
        + "\n".join(parts)
        + "\n}\n"
        + FORK_FIELDS
    )
    return text, variables


def graphql_url(rest_base: str) -> str:
    """GitHub's GraphQL endpoint beside a REST base (GitHub Enterprise: /api/v3 -> /api/graphql)."""
    base = rest_base.rstrip("/")
    if base.endswith("/api/v3"):
        return base.removesuffix("/v3") + "/graphql"
    return base + "/graphql"


@dataclass(frozen=True)
class GraphQLGitHub:
    governor: Governor
    url: str

    async def query(
        self, text: str, variables: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """`data` and `errors` of a query, priced and sent through the governor."""
        price = cost(parse(text), variables)
        if price.problems:  # a query built here that GitHub would refuse: a bug, say which
            raise ValueError(f"GitHub would refuse this query: {'; '.join(price.problems)}")
        payload = {"query": text, "variables": dict(variables)}
        fetched = await self.governor.post(self.url, payload, cost=price.points)
        body = fetched.json() if fetched.body else None
        if fetched.status != 200 or not isinstance(body, dict):
            raise RemoteError(
                f"GitHub's GraphQL API answered HTTP {fetched.status} ({fetched.url}): "
                f"{fetched.message or 'no message'}.",
                "Check RESPOND_GITHUB_API and GITHUB_TOKEN; the hunt falls back to REST.",
                status=fetched.status,
            )
        data = body.get("data") or {}
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        if not data and errors:
            raise RemoteError(
                f"GitHub's GraphQL API refused the query: {errors[0].get('message', errors[0])}.",
                "The hunt falls back to REST for what is left.",
                status=fetched.status,
            )
        rate = data.get("rateLimit")
        if isinstance(rate, dict) and "remaining" in rate and "resetAt" in rate:
            reset = datetime.fromisoformat(str(rate["resetAt"]).replace("Z", "+00:00"))
            self.governor.note("graphql", int(rate["remaining"]), reset.timestamp())
        return data, errors

    async def fork_pages(self, wanted: Sequence[PageWanted]) -> list[ForkPage]:
        """A page of forks for each repository in `wanted`, in one query."""
        text, variables = forks_query(wanted)
        data, errors = await self.query(text, variables)
        pages = []
        for want, repo, state, message in _by_alias(data, errors, wanted):
            if repo is None:
                pages.append(ForkPage(want.repo, state, reason=message))
                continue
            conn = repo["forks"]
            info = conn["pageInfo"]
            nodes = tuple(_node(n, want.repo) for n in conn["nodes"] if n)
            after = info["endCursor"] if info["hasNextPage"] else None
            pages.append(ForkPage(want.repo, TreeState.OK, nodes, int(conn["totalCount"]), after))
        return pages

    async def heads(self, repos: Sequence[str]) -> list[Head]:
        """The default-branch commit and tree oid of each repository, in one query."""
        text, variables = heads_query(repos)
        data, errors = await self.query(text, variables)
        out = []
        for name, repo, state, message in _by_alias(data, errors, repos):
            if repo is None:
                out.append(Head(name, state, reason=message))
                continue
            ref = repo.get("defaultBranchRef") or {}
            target = ref.get("target") or {}
            commit, tree = target.get("oid"), (target.get("tree") or {}).get("oid")
            state = TreeState.OK if commit and tree else TreeState.EMPTY
            out.append(
                Head(
                    name,
                    state,
                    ref.get("name"),
                    commit if state is TreeState.OK else None,
                    tree if state is TreeState.OK else None,
                    bool(repo.get("isFork")),
                    repo.get("pushedAt"),
                )
            )
        return out


T = TypeVar("T")


def _by_alias(
    data: Mapping[str, Any], errors: Sequence[Mapping[str, Any]], asked: Sequence[T]
) -> Iterator[tuple[T, Mapping[str, Any] | None, TreeState, str]]:
    """Each item asked for beside its aliased answer `r{n}`, or None and why GitHub refused it."""
    trouble = {str(e["path"][0]): e for e in errors if e.get("path")}
    for n, item in enumerate(asked):
        repo = data.get(f"r{n}")
        if repo is None:
            yield item, None, *_refused(trouble.get(f"r{n}", {}))
        else:
            yield item, repo, TreeState.OK, ""


def _refused(err: Mapping[str, Any]) -> tuple[TreeState, str]:
    """A repository GitHub did not resolve: blocked by a takedown, or not found."""
    message = str(err.get("message", "no answer"))
    blocked = err.get("type") == "FORBIDDEN" or "blocked" in message.lower()
    return (TreeState.BLOCKED if blocked else TreeState.MISSING), message


def _node(data: Mapping[str, Any], parent: str) -> ForkNode:
    ref = data.get("defaultBranchRef") or {}
    target = ref.get("target") or {}
    return ForkNode(
        full_name=str(data["nameWithOwner"]),
        url=str(data["url"]),
        parent=parent,
        description=str(data.get("description") or ""),
        pushed_at=data.get("pushedAt"),
        created_at=data.get("createdAt"),
        default_branch=ref.get("name"),
        commit=target.get("oid"),
        tree=(target.get("tree") or {}).get("oid"),
        forks=int((data.get("forks") or {}).get("totalCount") or 0),
    )


def github_graphql(services: Services) -> GraphQLGitHub:
    """The run's GraphQL client (built by Services on the REST client's governor)."""
    return services.github_graphql()
