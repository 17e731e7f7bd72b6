"""One request governor per host: serial requests, rate-limit headers, paces, a budget, ETag reuse.

GitHub's rules (DOMAIN.md): make requests serially; honour `retry-after`; when
`x-ratelimit-remaining` is 0 wait for `x-ratelimit-reset`; a secondary limit (403 naming it, or
429) without `retry-after` means wait a minute and back off. Code search allows about 10 requests
a minute, so the governor paces it at 9 per minute on its own clock before the server has to say
no. A 403/451 "Repository access blocked" is an answer about a repository, never a rate limit.
Conditional requests that return 304 cost no quota: bodies are cached with their ETag in the
store's cache, so a resume or a recheck costs 304s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from playbook.clock import Seconds, Sleep
from playbook.errors import NetworkFatal, RemoteError, RespondError
from playbook.net.cache import Cache
from playbook.net.http import GOVERNED, parse_retry_after

Clock = Seconds
KEPT_HEADERS = (
    "link",
    "etag",
    "retry-after",
    "x-total-count",
    "x-next-page",
    "x-total-pages",
    "x-ratelimit-resource",
    "x-ratelimit-remaining",
)


class ServiceDown(RemoteError):
    """The host failed for good this run (unreachable, too slow, 5xx after retries): later
    requests to it fail at once instead of each waiting out its own timeouts and retries."""


class BudgetSpent(RespondError):
    """The configured request budget for a host is used up."""


class QuotaExhausted(RemoteError):
    """A host's quota resets later than the governor is allowed to wait."""


@dataclass(frozen=True)
class Pace:
    """At most `requests` in any `window` seconds, counted on the governor's own clock."""

    requests: int
    window: float = 60.0


@dataclass(frozen=True)
class GovernorConfig:
    budget: int = 3000
    paces: Mapping[str, Pace] = field(
        default_factory=lambda: {"code_search": Pace(9), "search": Pace(28)}
    )
    max_attempts: int = 5
    max_wait: float = 900.0
    secondary_wait: float = 60.0


@dataclass(frozen=True)
class QuotaStatus:
    """What the live display shows: quota left, when it resets, and any wait under way."""

    host: str
    resource: str
    remaining: int | None
    reset_in: float | None
    waiting: float
    spent: int
    budget: int
    reason: str = ""

    def describe(self) -> str:
        left = "?" if self.remaining is None else str(self.remaining)
        text = f"{self.host} {self.resource}: {left} left, {self.spent}/{self.budget} budget used"
        if self.waiting > 0:
            text += f"; waiting {self.waiting:.0f}s ({self.reason})"
        return text


@dataclass(frozen=True)
class Fetched:
    """A response reduced to what callers use; `cached` when a 304 let the cache answer."""

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str]
    cached: bool = False

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def message(self) -> str:
        try:
            data = self.json()
        except ValueError:
            return ""
        return str(data.get("message", "")) if isinstance(data, dict) else ""


def is_blocked(status: int, body: Any) -> bool:
    """GitHub's answer for a repository disabled by a takedown (451, or 403 with a block)."""
    if status not in (403, 451) or not isinstance(body, dict):
        return False
    return "block" in body or "access blocked" in str(body.get("message", "")).lower()


def limit_kind(status: int, headers: Mapping[str, str], body: Any) -> str | None:
    """'primary', 'secondary' or None: never a blocked repository."""
    if is_blocked(status, body):
        return None
    message = str(body.get("message", "")).lower() if isinstance(body, dict) else ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and any(
        isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in errors
    ):  # GraphQL says so in its body, with HTTP 200 or 403
        return "primary" if headers.get("x-ratelimit-remaining") == "0" else "secondary"
    if status == 429 or (status == 403 and "secondary rate limit" in message):
        return "primary" if headers.get("x-ratelimit-remaining") == "0" else "secondary"
    if status == 403 and (headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message):
        return "primary"
    return None


Listener = Callable[[QuotaStatus], None]


class Governor:
    """Serial, paced, budgeted GETs against one host, with ETag reuse through `cache`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        host: str,
        cache: Cache,
        config: GovernorConfig | None = None,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.host = host
        self.cache = cache
        self.config = config or GovernorConfig()
        self.clock = clock
        self.sleep = sleep
        self.requests = 0  # sent, 304s included
        self.not_modified = 0
        self.limited = 0  # rate-limit answers received (the goal is zero)
        self.waited = 0.0
        self._lock = asyncio.Lock()
        self._sent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._quota: dict[str, tuple[int, float]] = {}  # resource -> (remaining, reset epoch)
        self._hold_until = 0.0
        self._listeners: list[Listener] = []
        self.down: str | None = None  # why the host is considered down for the rest of the run

    @contextlib.contextmanager
    def listening(self, listener: Listener) -> Iterator[None]:
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)

    def status(self, resource: str = "core", waiting: float = 0.0, reason: str = "") -> QuotaStatus:
        remaining, reset = self._quota.get(resource, (None, None))
        reset_in = None if reset is None else max(0.0, reset - self.clock())
        return QuotaStatus(
            self.host,
            resource,
            remaining,
            reset_in,
            waiting,
            self.requests,
            self.config.budget,
            reason,
        )

    def _notify(self, status: QuotaStatus) -> None:
        for listener in list(self._listeners):
            listener(status)

    async def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        *,
        resource: str = "core",
        shrink: Callable[[bytes], bytes] | None = None,
    ) -> Fetched:
        """GET `url` within every limit; 304 answers come back as the cached 200."""
        full = f"{url}?{urlencode(sorted((params or {}).items()))}" if params else url
        return await self._within_limits(
            resource, full, 1, lambda: self._send(full, resource, shrink)
        )

    async def post(
        self, url: str, payload: Mapping[str, Any], *, resource: str = "graphql", cost: int = 1
    ) -> Fetched:
        """POST a JSON body (a GraphQL query) within every limit; `cost` in the resource's points.

        Serial with the host's GETs, counted in the same budget; never cached (a POST has no
        ETag). A query costing more than the points left waits for the reset first.
        """
        return await self._within_limits(
            resource, url, cost, lambda: self._post(url, payload, resource)
        )

    async def _within_limits(
        self, resource: str, url: str, cost: int, send: Callable[[], Awaitable[Fetched]]
    ) -> Fetched:
        """Send serially, after any wait the limits ask for; back off on each limit answer.

        A host found down earlier in the run is not asked again: the caller records a gap."""
        async with self._lock:
            if self.down is not None:
                raise ServiceDown(
                    f"{self.host} is down for this run ({self.down}); {url} was not requested.",
                    "Resume the incident once the service answers again.",
                )
            for attempt in range(self.config.max_attempts):
                await self._before(resource, url, cost)
                fetched = await send()
                kind = limit_kind(fetched.status, fetched.headers, _safe_json(fetched))
                if kind is None:
                    return fetched
                self.limited += 1
                self._back_off(kind, fetched, attempt)
            raise RemoteError(
                f"{self.host} kept refusing {url} with rate limits after "
                f"{self.config.max_attempts} attempts.",
                "Wait for the quota to reset (see the live display), then resume the incident.",
                status=429,
            )

    def note(self, resource: str, remaining: int, reset: float) -> None:
        """Quota a body reported (GraphQL's `rateLimit`): honoured like the headers."""
        self._quota[resource] = (remaining, reset)

    async def _post(self, url: str, payload: Mapping[str, Any], resource: str) -> Fetched:
        self.requests += 1
        try:
            response = await self.client.post(url, json=payload, extensions={GOVERNED: True})
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"{self.host} could not be reached for {url}: {exc!r}.",
                "Check the network or the RESPOND_*_API setting.",
            ) from exc
        kept = self._received(response, resource)
        return Fetched(url, response.status_code, response.content, kept)

    async def _before(self, resource: str, url: str, cost: int = 1) -> None:
        if self.requests >= self.config.budget:
            raise BudgetSpent(
                f"The request budget for {self.host} ({self.config.budget}) is spent; "
                f"{url} was not requested.",
                "Raise RESPOND_GITHUB_BUDGET and resume: cached answers make the resume cheap.",
            )
        now = self.clock()
        wait, reason = self._hold_until - now, "secondary rate limit"
        remaining, reset = self._quota.get(resource, (1, 0.0))
        if remaining < cost and reset - now > wait:
            wait, reason = reset - now, f"{resource} quota spent until reset"
        pace = self.config.paces.get(resource)
        sent = self._sent[resource]
        if pace is not None:
            while sent and sent[0] <= now - pace.window:
                sent.popleft()
            if len(sent) >= pace.requests and sent[0] + pace.window - now > wait:
                wait, reason = sent[0] + pace.window - now + 0.01, f"{resource} pace"
        if wait > self.config.max_wait:
            raise QuotaExhausted(
                f"{self.host} {resource} quota resets in {wait:.0f}s, longer than the "
                f"{self.config.max_wait:.0f}s the hunt may wait, before {url}.",
                "Resume the incident later; answers so far are kept and cached.",
            )
        if wait > 0:
            self._notify(self.status(resource, wait, reason))
            self.waited += wait
            await self.sleep(wait)
        self._sent[resource].append(self.clock())

    async def _send(
        self, url: str, resource: str, shrink: Callable[[bytes], bytes] | None
    ) -> Fetched:
        key = f"etag:{self.host}:{url}"
        cached = self.cache.get(key)
        entry = json.loads(cached) if cached else None
        headers = {"if-none-match": entry["etag"]} if entry else {}
        self.requests += 1
        try:
            response = await self.client.get(url, headers=headers, extensions={GOVERNED: True})
        except NetworkFatal as exc:
            self.down = exc.message
            raise
        except httpx.HTTPError as exc:
            self.down = f"{type(exc).__name__} after retries"
            raise ServiceDown(
                f"{self.host} could not be reached for {url}: {exc!r}.",
                "Check the network or the RESPOND_*_API setting.",
            ) from exc
        if response.status_code >= 500:
            self.down = f"HTTP {response.status_code} after retries"
        kept = self._received(response, resource)
        if response.status_code == 304 and entry is not None:
            self.not_modified += 1
            return Fetched(url, 200, entry["body"].encode(), entry["headers"], cached=True)
        body = response.content
        if response.status_code == 200 and "etag" in response.headers:
            small = shrink(body) if shrink else body
            record = {"etag": response.headers["etag"], "body": small.decode(), "headers": kept}
            self.cache.put(key, json.dumps(record))
            body = small
        return Fetched(url, response.status_code, body, kept)

    def _received(self, response: httpx.Response, resource: str) -> dict[str, str]:
        """The headers callers keep from an answer, once its quota headers are noted and shown."""
        self._remember(response.headers, resource)
        self._notify(self.status(resource))
        return {k: v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS}

    def _remember(self, headers: httpx.Headers, resource: str) -> None:
        remaining, reset = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-reset")
        if remaining is not None and reset is not None:
            named = headers.get("x-ratelimit-resource", resource)
            self._quota[named] = (int(remaining), float(reset))

    def _back_off(self, kind: str, fetched: Fetched, attempt: int) -> None:
        """Decide how long the next request must wait after a rate-limit answer."""
        retry_after = parse_retry_after(fetched.headers.get("retry-after"))
        if retry_after is not None:
            wait = retry_after
        elif kind == "primary" and self._quota.get(fetched_resource(fetched), (1, 0.0))[0] <= 0:
            wait = 0.0  # _before waits for x-ratelimit-reset, which _remember recorded
        else:
            wait = self.config.secondary_wait * 2**attempt
        self._hold_until = max(self._hold_until, self.clock() + wait)


def fetched_resource(fetched: Fetched) -> str:
    return fetched.headers.get("x-ratelimit-resource", "core")


def _safe_json(fetched: Fetched) -> Any:
    try:
        return fetched.json()
    except ValueError:
        return None
