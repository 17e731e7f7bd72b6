"""GitHub's GraphQL API (`POST /graphql`) as the world plays it: repositories and fork networks.

The types and field names are GitHub's (`Query.repository`, `Query.rateLimit`, `Repository`,
`RepositoryConnection`, `Ref`, `Commit`, `Tree`, `PageInfo`, `RateLimit`); the contract test
checks the queries respond sends against GitHub's published schema and the answers given here
against the same schema. GitHub's limits are enforced as published: a token is required; each
query costs points by GitHub's formula (playbook.net.graphql.cost) out of 5,000 an hour on the
world's clock; `first`/`last` within 1 to 100 and required where items are selected; at most
500,000 nodes. Limits are reported in `x-ratelimit-*` headers (resource `graphql`) and in
`rateLimit`; a query over the points left gets a `RATE_LIMITED` error.

Modelled, not documented by GitHub: a repository disabled by a takedown answers a `FORBIDDEN`
error ("Repository access blocked") and, listed as a fork, shows no `defaultBranchRef` (its
content is not served); a deleted repository is `NOT_FOUND` and is not listed. Mutations are
not played: the hunt never sends one. A commit answered as a `defaultBranchRef` target stays
listable through the REST trees endpoint by its commit id and tree oid after the branch moves.
"""

from __future__ import annotations

import base64
import collections
import json
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from playbook.net.graphql import (
    Document,
    Enum,
    Field,
    GraphQLSyntaxError,
    InlineFragment,
    Selection,
    Spread,
    cost,
    parse,
    resolve,
)
from playbook.rehearsal.world.github import commit_sha, folder_shas
from playbook.rehearsal.world.model import Clock, FakeRepo, World
from playbook.rehearsal.world.wire import Reply, Service, Stats, json_reply

ROUTE = "github.graphql"
INTERFACES = {
    "Repository": {"Repository", "Node", "RepositoryInfo", "UniformResourceLocatable", "Starrable"},
    "Commit": {"Commit", "Node", "GitObject", "UniformResourceLocatable"},
    "Tree": {"Tree", "Node", "GitObject"},
    "Ref": {"Ref", "Node"},
}


Resolver = Callable[
    [Any, dict[str, Any], list[str | int], list[dict[str, Any]], Mapping[str, Any], str],
    tuple[str | None, Any],
]


class QueryError(Exception):
    """An error GitHub reports for the whole query (no data)."""


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:v2:{index}".encode()).decode()


def _index(cursor: object) -> int:
    try:
        return int(base64.b64decode(str(cursor)).decode().rsplit(":", 1)[1])
    except (ValueError, IndexError) as exc:
        raise QueryError(f"`{cursor}` does not appear to be a valid cursor.") from exc


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


class GraphQL(Service):
    """`POST /graphql`: parses the query, charges its points, resolves it over the world."""

    def __init__(
        self,
        world: World,
        clock: Clock,
        stats: Stats,
        lock: threading.Lock,
        keep: Callable[[FakeRepo, str], None] = lambda _repo, _tree: None,
    ) -> None:
        super().__init__(world, clock, stats, lock)
        self._keep = keep  # a commit answered stays listable through REST (world.github)
        self._spent: collections.deque[tuple[float, int]] = collections.deque()
        self._children: dict[str, list[FakeRepo]] = {}
        self._children_of = -1  # len(world.repos) when the index was built
        # id(files) -> (files, root tree SHA): the files are held so their id is never reused
        self._trees: dict[int, tuple[dict[str, bytes], str]] = {}
        # Every query answered, with its variables and the answer (tests check them against
        # GitHub's published schema).
        self.queries: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def __call__(self, body: bytes, headers: Mapping[str, str], base: str) -> Reply:
        if not headers.get("authorization"):
            msg = {
                "message": "This endpoint requires you to be authenticated.",
                "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql",
            }
            return json_reply(401, msg, ROUTE)
        try:
            payload = json.loads(body)
            text = str(payload["query"])
            variables = dict(payload.get("variables") or {})
            doc = parse(text)
            op = doc.operation(payload.get("operationName"))
        except (ValueError, KeyError, TypeError, GraphQLSyntaxError) as exc:
            return json_reply(200, {"errors": [{"message": f"Parse error: {exc}"}]}, ROUTE)
        if op.kind != "query":
            refused = f"the local world plays queries only, not a {op.kind}"
            return json_reply(200, {"errors": [{"message": refused}]}, ROUTE)
        price = cost(doc, variables, op.name)
        if price.problems:
            invalid = [{"type": "MAX_NODE_LIMIT_EXCEEDED", "message": p} for p in price.problems]
            return json_reply(200, {"errors": invalid}, ROUTE)
        quota = self._charge(price.points)
        if quota is None:
            return self._limited()
        values = {**op.defaults, **variables}
        errors: list[dict[str, Any]] = []
        rate = {
            "cost": price.points,
            "limit": self.world.limits.graphql,
            "remaining": int(quota["x-ratelimit-remaining"]),
            "used": int(quota["x-ratelimit-used"]),
            "resetAt": _iso(float(quota["x-ratelimit-reset"])),
            "nodeCount": price.nodes,
        }
        try:
            data = self._object("Query", None, op.selections, doc, values, errors, [], rate, base)
        except QueryError as exc:
            return json_reply(200, {"errors": [{"message": str(exc)}]}, ROUTE, **quota)
        answer: dict[str, Any] = {"data": data}
        if errors:
            answer["errors"] = errors
        with self._lock:
            self.queries.append((text, variables, answer))
        return json_reply(200, answer, ROUTE, **quota)

    # limits ------------------------------------------------------------------------------------

    def _charge(self, points: int) -> dict[str, str] | None:
        lim = self.world.limits
        now = self.clock()
        with self._lock:
            while self._spent and self._spent[0][0] <= now - lim.graphql_window:
                self._spent.popleft()
            used = sum(p for _, p in self._spent)
            if used + points > lim.graphql:
                return None
            self._spent.append((now, points))
            reset = self._spent[0][0] + lim.graphql_window
            return {
                "x-ratelimit-limit": str(lim.graphql),
                "x-ratelimit-remaining": str(lim.graphql - used - points),
                "x-ratelimit-used": str(used + points),
                "x-ratelimit-reset": str(int(reset) + 1),
                "x-ratelimit-resource": "graphql",
            }

    def _limited(self) -> Reply:
        lim = self.world.limits
        with self._lock:
            self.stats.limited += 1
            reset = (self._spent[0][0] if self._spent else self.clock()) + lim.graphql_window
            used = sum(p for _, p in self._spent)
        msg = {"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}
        return json_reply(
            200,
            {"errors": [msg]},
            ROUTE,
            **{
                "x-ratelimit-limit": str(lim.graphql),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": str(used),
                "x-ratelimit-reset": str(int(reset) + 1),
                "x-ratelimit-resource": "graphql",
            },
        )

    # resolution --------------------------------------------------------------------------------

    def _object(
        self,
        typename: str,
        obj: Any,
        selections: tuple[Selection, ...],
        doc: Document,
        values: Mapping[str, Any],
        errors: list[dict[str, Any]],
        path: list[str | int],
        rate: Mapping[str, Any],
        base: str,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in _fields(typename, selections, doc):
            args = {k: resolve(v, values) for k, v in field.args.items()}
            here = [*path, field.key]
            resolver = self._resolver(typename, field.name)
            if resolver is None:
                raise QueryError(f"Field '{field.name}' doesn't exist on type '{typename}'")
            kind, value = resolver(obj, args, here, errors, rate, base)
            out[field.key] = self._shape(kind, value, field, doc, values, errors, here, rate, base)
        return out

    def _shape(
        self,
        kind: str | None,
        value: Any,
        field: Field,
        doc: Document,
        values: Mapping[str, Any],
        errors: list[dict[str, Any]],
        path: list[str | int],
        rate: Mapping[str, Any],
        base: str,
    ) -> Any:
        if kind is None or value is None:
            return value
        if isinstance(value, list):
            return [
                self._object(kind, v, field.selections, doc, values, errors, [*path, n], rate, base)
                for n, v in enumerate(value)
            ]
        return self._object(kind, value, field.selections, doc, values, errors, path, rate, base)

    def _resolver(self, typename: str, name: str) -> Resolver | None:
        if name == "__typename":
            return lambda *_: (None, typename)
        table: dict[str, dict[str, Resolver]] = {
            "Query": {"repository": self._repository, "rateLimit": lambda *a: ("RateLimit", a[4])},
            "RateLimit": {k: _key(k) for k in ("cost", "limit", "remaining", "used", "resetAt")}
            | {"nodeCount": _key("nodeCount")},
            "Repository": self._repository_fields(),
            "Ref": {
                "name": lambda o, *_: (None, o["name"]),
                "prefix": lambda o, *_: (None, "refs/heads/"),
                "target": lambda o, *_: ("Commit", o["commit"]),
            },
            "Commit": {
                "oid": lambda o, *_: (None, o["oid"]),
                "abbreviatedOid": lambda o, *_: (None, o["oid"][:7]),
                "tree": lambda o, *_: ("Tree", {"oid": o["tree"]}),
            },
            "Tree": {"oid": lambda o, *_: (None, o["oid"])},
            "RepositoryConnection": {
                "totalCount": lambda o, *_: (None, o["total"]),
                "nodes": lambda o, *_: ("Repository", o["nodes"]),
                "edges": lambda o, *_: ("RepositoryEdge", o["edges"]),
                "pageInfo": lambda o, *_: ("PageInfo", o["page"]),
            },
            "RepositoryEdge": {
                "cursor": lambda o, *_: (None, o["cursor"]),
                "node": lambda o, *_: ("Repository", o["node"]),
            },
            "PageInfo": {k: _key(k) for k in ("hasNextPage", "hasPreviousPage")}
            | {k: _key(k) for k in ("startCursor", "endCursor")},
            "User": {"login": lambda o, *_: (None, o)},
        }
        return table.get(typename, {}).get(name)

    def _repository(
        self,
        _obj: Any,
        args: dict[str, Any],
        path: list[str | int],
        errors: list[dict[str, Any]],
        *_: Any,
    ) -> tuple[str | None, Any]:
        name = f"{args.get('owner')}/{args.get('name')}"
        repo = self.world.repo(name)
        if repo is None or repo.deleted:
            errors.append(
                {
                    "type": "NOT_FOUND",
                    "path": path,
                    "message": f"Could not resolve to a Repository with the name '{name}'.",
                }
            )
            return None, None
        if repo.disabled:
            errors.append(
                {"type": "FORBIDDEN", "path": path, "message": "Repository access blocked"}
            )
            return None, None
        return "Repository", repo

    def _repository_fields(self) -> dict[str, Resolver]:
        def simple(get: Callable[[FakeRepo], Any]) -> Resolver:
            return lambda o, *_: (None, get(o))

        return {
            "id": simple(lambda r: base64.b64encode(f"R_{r.id}".encode()).decode()),
            "name": simple(lambda r: r.full_name.split("/", 1)[1]),
            "nameWithOwner": simple(lambda r: r.full_name),
            "url": simple(lambda r: r.url),
            "description": simple(lambda r: r.description or None),
            "isFork": simple(lambda r: r.parent is not None),
            "isPrivate": simple(lambda r: False),
            "isArchived": simple(lambda r: False),
            "isDisabled": simple(lambda r: r.disabled),
            "createdAt": simple(lambda r: r.created_at),
            "pushedAt": simple(lambda r: r.pushed_at or r.created_at),
            "stargazerCount": simple(lambda r: r.stars),
            "forkCount": simple(lambda r: len(self._forks(r))),
            "owner": lambda o, *_: ("User", o.full_name.split("/", 1)[0]),
            "parent": lambda o, *_: ("Repository", self.world.repo(o.parent) if o.parent else None),
            "defaultBranchRef": lambda o, *a: ("Ref", self._ref(o, a[4])),
            "forks": lambda o, args, *a: ("RepositoryConnection", self._connection(o, args)),
        }

    def _ref(self, repo: FakeRepo, base: str) -> dict[str, Any] | None:
        if repo.disabled or not repo.files:
            return None  # content not served / an empty repository has no branch
        known = self._trees.get(id(repo.files))
        if known is None:
            known = self._trees[id(repo.files)] = (repo.files, folder_shas(repo)[""])
        tree = known[1]
        self._keep(repo, tree)
        return {"name": repo.default_branch, "commit": {"oid": commit_sha(tree), "tree": tree}}

    def _forks(self, repo: FakeRepo) -> list[FakeRepo]:
        if self._children_of != len(self.world.repos):
            children: dict[str, list[FakeRepo]] = collections.defaultdict(list)
            for r in self.world.repos.values():
                if r.host == "github" and r.parent:
                    children[r.parent].append(r)
            self._children, self._children_of = children, len(self.world.repos)
        return [r for r in self._children.get(repo.full_name, []) if not r.deleted]

    def _connection(self, repo: FakeRepo, args: dict[str, Any]) -> dict[str, Any]:
        order = args.get("orderBy") or {}
        field = _enum(order.get("field"), "CREATED_AT")
        keys: dict[str, Callable[[FakeRepo], Any]] = {
            "CREATED_AT": lambda r: (r.created_at, r.id),
            "NAME": lambda r: (r.full_name.split("/", 1)[1].lower(), r.id),
            "PUSHED_AT": lambda r: (r.pushed_at or r.created_at, r.id),
            "UPDATED_AT": lambda r: (r.pushed_at or r.created_at, r.id),
            "STARGAZERS": lambda r: (r.stars, r.id),
        }
        items = sorted(self._forks(repo), key=keys.get(field, keys["CREATED_AT"]))
        if _enum(order.get("direction"), "ASC") == "DESC":
            items.reverse()
        start = _index(args["after"]) + 1 if args.get("after") else 0
        end = _index(args["before"]) if args.get("before") else len(items)
        window = list(enumerate(items))[start:end]
        if args.get("first") is not None:
            window = window[: int(args["first"])]
        elif args.get("last") is not None:
            window = window[-int(args["last"]) :]
        page = {
            "hasNextPage": bool(window) and window[-1][0] + 1 < len(items),
            "hasPreviousPage": bool(window) and window[0][0] > 0,
            "startCursor": _cursor(window[0][0]) if window else None,
            "endCursor": _cursor(window[-1][0]) if window else None,
        }
        return {
            "total": len(items),
            "nodes": [r for _, r in window],
            "edges": [{"cursor": _cursor(n), "node": r} for n, r in window],
            "page": page,
        }


def _enum(value: object, default: str) -> str:
    """An enum argument, given inline (Enum) or in a variable (a string)."""
    if isinstance(value, Enum):
        return value.name
    return str(value) if value else default


def _key(name: str) -> Resolver:
    return lambda o, *_: (None, o[name])


def _fields(typename: str, selections: tuple[Selection, ...], doc: Document) -> list[Field]:
    """The fields selected on an object of `typename`, fragments applied where they match."""
    out: list[Field] = []
    for sel in selections:
        if isinstance(sel, Field):
            out.append(sel)
            continue
        frag = doc.fragments.get(sel.name) if isinstance(sel, Spread) else sel
        if frag is None:
            raise QueryError(f"Fragment {getattr(sel, 'name', '')} was used, but not defined")
        assert isinstance(frag, InlineFragment)
        if frag.on is None or frag.on in INTERFACES.get(typename, {typename}):
            out += _fields(typename, frag.selections, doc)
    return out
