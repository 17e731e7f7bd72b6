"""What the world's services answer with: replies, statistics, GitHub-style pagination."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from playbook.rehearsal.world.model import Clock, World


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


def json_reply(status: int, data: Any, route: str, **headers: str) -> Reply:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Reply(
        status, body, {"content-type": "application/json; charset=utf-8", **headers}, route
    )


class Service:
    """One outside service played by the world: what it needs of the server's shared state."""

    def __init__(self, world: World, clock: Clock, stats: Stats, lock: threading.Lock) -> None:
        self.world = world
        self.clock = clock
        self.stats = stats
        self._lock = lock

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
        return json_reply(200, wrap(chunk) if wrap else chunk, route, **headers)
