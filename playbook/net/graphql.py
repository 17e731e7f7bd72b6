"""GraphQL documents: a small parser, the operation type (read or write), and GitHub's cost model.

Three readers need the same reading of a document: the dry-run guard (a query only reads; a
mutation or subscription writes; a document that does not parse is treated as a write), the
GraphQL client (what a query will cost before it is sent), and the local world (which answers
the queries). The parser covers the executable part of the GraphQL grammar (operations,
fragments, variables, arguments, directives, every literal); it needs no schema.

GitHub's cost model (docs: "Rate limits and query limits for the GraphQL API"): for each
connection, the requests needed to fill it, i.e. the product of the `first`/`last` of the
connections above it; summed, divided by 100, rounded, at least 1 point. Nodes: for each
connection whose items are selected, its page size times those above it; at most 500,000 a
query; `first`/`last` between 1 and 100, and required on every connection whose items are
selected. A field is a connection here when it selects `nodes`, `edges`, `pageInfo` or
`totalCount` (the schema's naming rule for connections).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

MAX_PAGE = 100
MAX_NODES = 500_000
CONNECTION_KEYS = frozenset({"nodes", "edges", "pageInfo", "totalCount"})
ITEM_KEYS = frozenset({"nodes", "edges"})
OPERATIONS = frozenset({"query", "mutation", "subscription"})


class GraphQLSyntaxError(ValueError):
    """The text is not a GraphQL document this parser can read."""


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Enum:
    name: str


@dataclass(frozen=True)
class Field:
    name: str
    alias: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    selections: tuple[Selection, ...] = ()

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class InlineFragment:
    on: str | None
    selections: tuple[Selection, ...]


@dataclass(frozen=True)
class Spread:
    name: str


Selection = Union[Field, InlineFragment, Spread]  # noqa: UP007 (a runtime alias, forward refs)


@dataclass(frozen=True)
class Operation:
    kind: str  # query | mutation | subscription
    name: str | None
    defaults: Mapping[str, Any]
    selections: tuple[Selection, ...]


@dataclass(frozen=True)
class Document:
    operations: tuple[Operation, ...]
    fragments: Mapping[str, InlineFragment]

    def operation(self, name: str | None = None) -> Operation:
        """The operation to run: the one named, or the only one."""
        if name is not None:
            for op in self.operations:
                if op.name == name:
                    return op
            raise GraphQLSyntaxError(f"no operation named {name!r}")
        if len(self.operations) != 1:
            raise GraphQLSyntaxError("several operations and no operationName")
        return self.operations[0]


_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<block>\"\"\"(?:\\\"\"\"|[^"]|"(?!""))*\"\"\")
  | (?P<string>"(?:[^"\\\n\r]|\\.)*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<punct>\.\.\.|[!$&()\[\]{}:=@|])
    """,
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise GraphQLSyntaxError(f"unexpected character {text[pos]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "skip":
            out.append((kind, m.group()))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        return value is None or self.toks[self.i][1] == value

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        if self.i >= len(self.toks):
            raise GraphQLSyntaxError(f"unexpected end, expected {value or kind}")
        k, v = self.toks[self.i]
        if (value is not None and v != value) or (kind is not None and k != kind):
            raise GraphQLSyntaxError(f"unexpected {v!r}, expected {value or kind}")
        if value is None and kind is None and k != "name":
            raise GraphQLSyntaxError(f"unexpected {v!r}, expected a name")
        self.i += 1
        return v

    def document(self) -> Document:
        ops: list[Operation] = []
        frags: dict[str, InlineFragment] = {}
        if not self.toks:
            raise GraphQLSyntaxError("an empty document")
        while self.peek():
            if self.peek("{"):
                ops.append(Operation("query", None, {}, self.selection_set()))
            elif self.peek("fragment"):
                self.take("fragment")
                frag = self.take()
                self.take("on")
                on = self.take()
                self.directives()
                frags[frag] = InlineFragment(on, self.selection_set())
            elif self.toks[self.i][1] in OPERATIONS and self.toks[self.i][0] == "name":
                kind = self.take()
                named = self.take() if self.peek() and self.toks[self.i][0] == "name" else None
                defaults = self.variable_definitions() if self.peek("(") else {}
                self.directives()
                ops.append(Operation(kind, named, defaults, self.selection_set()))
            else:
                raise GraphQLSyntaxError(f"unexpected {self.toks[self.i][1]!r} at the top level")
        return Document(tuple(ops), frags)

    def variable_definitions(self) -> dict[str, Any]:
        self.take("(")
        defaults: dict[str, Any] = {}
        while not self.peek(")"):
            self.take("$")
            name = self.take()
            self.take(":")
            self.type_ref()
            if self.peek("="):
                self.take("=")
                defaults[name] = self.value(const=True)
            self.directives()
        self.take(")")
        return defaults

    def type_ref(self) -> None:
        if self.peek("["):
            self.take("[")
            self.type_ref()
            self.take("]")
        else:
            self.take()
        if self.peek("!"):
            self.take("!")

    def directives(self) -> None:
        while self.peek("@"):
            self.take("@")
            self.take()
            if self.peek("("):
                self.arguments()

    def selection_set(self) -> tuple[Selection, ...]:
        self.take("{")
        out: list[Selection] = []
        while not self.peek("}"):
            out.append(self.selection())
        self.take("}")
        if not out:
            raise GraphQLSyntaxError("an empty selection set")
        return tuple(out)

    def selection(self) -> Selection:
        if self.peek("..."):
            self.take("...")
            if self.peek("on"):
                self.take("on")
                on = self.take()
                self.directives()
                return InlineFragment(on, self.selection_set())
            if self.peek("{") or self.peek("@"):
                self.directives()
                return InlineFragment(None, self.selection_set())
            name = self.take()
            self.directives()
            return Spread(name)
        name = self.take()
        alias: str | None = None
        if self.peek(":"):
            self.take(":")
            alias, name = name, self.take()
        args = self.arguments() if self.peek("(") else {}
        self.directives()
        subs = self.selection_set() if self.peek("{") else ()
        return Field(name, alias, args, subs)

    def arguments(self) -> dict[str, Any]:
        self.take("(")
        args: dict[str, Any] = {}
        while not self.peek(")"):
            name = self.take()
            self.take(":")
            args[name] = self.value()
        self.take(")")
        return args

    def value(self, const: bool = False) -> Any:
        if self.i >= len(self.toks):
            raise GraphQLSyntaxError("unexpected end, expected a value")
        kind, text = self.toks[self.i]
        if text == "$" and not const:
            self.take("$")
            return Var(self.take())
        if text == "[":
            self.take("[")
            items = []
            while not self.peek("]"):
                items.append(self.value(const))
            self.take("]")
            return items
        if text == "{":
            self.take("{")
            obj = {}
            while not self.peek("}"):
                key = self.take()
                self.take(":")
                obj[key] = self.value(const)
            self.take("}")
            return obj
        self.i += 1
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "string":
            return json.loads(text)
        if kind == "block":
            return text[3:-3].replace('\\"""', '"""')
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(text, Enum(text))
        raise GraphQLSyntaxError(f"unexpected {text!r}, expected a value")


def parse(text: str) -> Document:
    """The document, or GraphQLSyntaxError."""
    return _Parser(text).document()


def operation_kinds(text: str) -> frozenset[str]:
    """The kinds of operation a document holds (query, mutation, subscription)."""
    return frozenset(op.kind for op in parse(text).operations)


@functools.lru_cache(maxsize=8)  # each transport layer judges the same body: parse it once
def only_reads(body: bytes) -> bool:
    """True when a GraphQL request body holds queries only; anything unreadable is a write."""
    try:
        payload = json.loads(body)
        documents = payload if isinstance(payload, list) else [payload]  # batched requests too
        kinds: set[str] = set()
        for item in documents:
            kinds |= operation_kinds(str(item["query"]))
    except (ValueError, TypeError, KeyError, RecursionError):
        return False
    return kinds == {"query"}


@dataclass(frozen=True)
class Cost:
    points: int
    requests: int  # requests needed to fill every connection (the points before dividing)
    nodes: int
    problems: tuple[str, ...] = ()  # GitHub would refuse the query for these


def resolve(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, Var):
        return variables.get(value.name)
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    return value


def cost(
    doc: Document, variables: Mapping[str, Any] | None = None, name: str | None = None
) -> Cost:
    """What GitHub charges for the operation, by its published formula (see the module doc)."""
    op = doc.operation(name)
    values = {**op.defaults, **(variables or {})}
    requests = 0
    nodes = 0
    problems: list[str] = []

    def walk(selections: tuple[Selection, ...], above: int, depth: int) -> None:
        nonlocal requests, nodes
        if depth > 64:
            problems.append("the query nests deeper than 64 levels")
            return
        for sel in selections:
            if isinstance(sel, Spread):
                frag = doc.fragments.get(sel.name)
                if frag is None:
                    problems.append(f"unknown fragment {sel.name}")
                    continue
                walk(frag.selections, above, depth + 1)
                continue
            if isinstance(sel, InlineFragment):
                walk(sel.selections, above, depth + 1)
                continue
            keys = {s.name for s in sel.selections if isinstance(s, Field)}
            if not keys & CONNECTION_KEYS:
                walk(sel.selections, above, depth + 1)
                continue
            requests += above
            size = resolve(sel.args.get("first", sel.args.get("last")), values)
            if not keys & ITEM_KEYS:
                continue  # totalCount or pageInfo only: no items, no nodes
            if not isinstance(size, int):
                problems.append(f"the `{sel.name}` connection needs `first` or `last`")
                size = MAX_PAGE
            elif not 1 <= size <= MAX_PAGE:
                problems.append(
                    f"`first`/`last` of {size} on `{sel.name}` is outside 1 to {MAX_PAGE}"
                )
                size = max(1, min(size, MAX_PAGE))
            nodes += above * size
            walk(sel.selections, above * size, depth + 1)

    walk(op.selections, 1, 0)
    if nodes > MAX_NODES:
        problems.append(f"{nodes:,} nodes requested, more than GitHub's {MAX_NODES:,}")
    points = max(1, math.floor(requests / 100 + 0.5))
    return Cost(points, requests, nodes, tuple(problems))
