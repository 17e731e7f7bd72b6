"""The one HTTP client factory: timeouts, User-Agent, auth, bounded retries, dry-run guard."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from playbook import __version__, failpoints
from playbook.errors import DryRunViolation, LoopbackViolation, NetworkFatal
from playbook.net.graphql import only_reads

READ_METHODS = frozenset({"GET", "HEAD"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"respond/{__version__} (incident response; +dry-run guard)"

WaitHook = Callable[[str, float], None]

# A per-request mark of "this changes something", set with `extensions=`: a CDN purge is a GET
# that writes (WRITES). Without a mark, the method decides; a GraphQL POST is judged by its
# operation type (see changes_something). The dry-run guard, the retry rule and the crash seam
# all key on it.
MARK = "respond.writes"
READ_ONLY: dict[str, object] = {MARK: False}
WRITES: dict[str, object] = {MARK: True}
# A request whose rate-limit answers (429, 403) a governor decides on: the transport hands them
# back at once instead of retrying them behind the governor's back (GitHub's rules forbid early
# retries; see playbook.net.governor).
GOVERNED = "respond.governed"


def is_governed(request: httpx.Request) -> bool:
    return request.extensions.get(GOVERNED) is True


def changes_something(request: httpx.Request) -> bool:
    """True when the request writes: its explicit mark, else any method but GET and HEAD.

    A POST to a GraphQL endpoint (a path ending in /graphql) is judged by its document, whatever
    its mark: queries only read; a mutation, a subscription, or a body that does not parse writes.
    """
    if request.method == "POST" and request.url.path.endswith("/graphql"):
        try:
            body = request.content
        except httpx.RequestNotRead:
            return True  # a streamed body cannot be read here: not provably a read
        return not only_reads(body)
    mark = request.extensions.get(MARK)
    if isinstance(mark, bool):
        return mark
    return request.method not in READ_METHODS


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: `attempts` tries in all, exponential backoff, full jitter, capped waits."""

    attempts: int = 4
    backoff: float = 0.5
    max_wait: float = 60.0
    jitter: Callable[[float], float] = field(default=lambda hi: random.uniform(0, hi))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_wait)
        return min(self.jitter(self.backoff * 2**attempt), self.max_wait)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Layer(httpx.AsyncBaseTransport):
    """A transport that wraps another and closes it when closed."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def aclose(self) -> None:
        await self.inner.aclose()


class DryRunGuard(Layer):
    """Refuses every request that changes something before a byte leaves the process."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        super().__init__(inner)
        self.refused: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if changes_something(request):
            where = f"{request.method} {request.url.copy_with(query=None)}"
            self.refused.append(where)
            raise DryRunViolation(
                f"Dry run: refused to send {where}; a dry run reads and never writes.",
                "This is a bug in the step that tried it; run without --dry-run only after review.",
            )
        return await self.inner.handle_async_request(request)


Resolver = Callable[[str], list[str]]


def resolve(host: str) -> list[str]:
    """Every address `host` resolves to here (the system resolver, /etc/hosts included)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _loopback_ip(text: str) -> bool | None:
    """True/False for an IP literal (IPv4-mapped IPv6 judged by its IPv4), None for a name."""
    try:
        ip = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _numeric_looking(host: str) -> bool:
    """`0x7f.1`, `2130706433`, `127.1`: the C resolver reads these as addresses, `ipaddress` does
    not. No DNS name ends in an all-numeric or hex label, so these are refused, never resolved."""
    last = host.rstrip(".").rsplit(".", 1)[-1].lower()
    return last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdefx" for c in last))


def is_loopback(host: str, resolver: Resolver | None = None) -> bool:
    """True only when every address `host` stands for is a loopback address.

    An IP literal is parsed (`ipaddress`), never matched by prefix: `127.0.0.1.evil.example`
    and `localhost.attacker` are names, and a name counts only when it resolves, and every
    address it resolves to is loopback. Numeric forms `ipaddress` refuses are refused.
    """
    return loopback_addresses(host, resolver) is not None


def loopback_addresses(host: str, resolver: Resolver | None = None) -> list[str] | None:
    """The addresses `host` stands for when every one is loopback (an IP literal: itself), else
    None. The guard connects to one of these, so the name is not resolved a second time."""
    host = host.strip().rstrip(".")
    if not host:
        return None
    literal = _loopback_ip(host)
    if literal is not None:
        return [host.strip("[]")] if literal else None
    if _numeric_looking(host) or "[" in host or "]" in host:
        return None
    try:
        addresses = (resolver or resolve)(host)
    except (OSError, UnicodeError):
        return None
    if addresses and all(_loopback_ip(a) is True for a in addresses):
        return addresses
    return None


def _pin(request: httpx.Request, name: str, address: str) -> None:
    """Send to the address the guard judged, not to a second lookup of `name` (a resolver that
    answers loopback to the check and a public address to the connect would slip past it).
    The Host header stays the name's; TLS still checks the certificate against the name."""
    request.url = request.url.copy_with(host=address)
    if request.url.scheme == "https":
        request.extensions = {**request.extensions, "sni_hostname": name}


class LoopbackGuard(Layer):
    """Refuses any host but loopback (RESPOND_LOOPBACK_ONLY=1): tests and rehearsals set it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, resolver: Resolver | None = None) -> None:
        super().__init__(inner)
        self.resolver = resolver

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        ok = _loopback_ip(host)
        if ok is None:  # a name: resolved off the event loop, then pinned
            addresses = await asyncio.to_thread(loopback_addresses, host, self.resolver)
            ok = addresses is not None
            if addresses is not None:
                _pin(request, host, addresses[0])
        if not ok:
            raise LoopbackViolation(
                f"Refused {request.method} {request.url.copy_with(query=None)}: "
                "RESPOND_LOOPBACK_ONLY allows loopback addresses only.",
                "Point the registry and RESPOND_<NAME>_API settings at a local server.",
            )
        return await self.inner.handle_async_request(request)


class FailpointTransport(Layer):
    """Crash-test seam: dies after a write's answer arrives (see playbook.failpoints)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if changes_something(request):
            failpoints.hit("write")
        return response


NAME_NOT_FOUND = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def fatal_connect_error(request: httpx.Request, exc: httpx.ConnectError) -> NetworkFatal | None:
    """A connect failure that no retry can heal (the name does not exist, the certificate does
    not verify), as one clear error; None for one that may (refused, reset, a resolver timeout)."""
    host = request.url.host
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror) and cause.errno in NAME_NOT_FOUND:
            return NetworkFatal(
                f"{host}: no such host name (DNS says it does not exist); "
                f"{request.method} {request.url.copy_with(query=None)} was not sent.",
                f"Check the spelling of {host} in the registry URL or RESPOND_<NAME>_API, "
                "or the network's DNS (a VPN or proxy may be needed).",
            )
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or cause.reason or "certificate verification failed"
            return NetworkFatal(
                f"{host}: its TLS certificate does not verify ({why}); "
                f"{request.method} {request.url.copy_with(query=None)} was not sent.",
                "A proxy may be intercepting TLS: set SSL_CERT_FILE to your organisation's CA "
                "bundle, or check the host's certificate; respond never skips verification.",
            )
    return None


PREREAD_LIMIT = 8 * 1024 * 1024


async def _preread(response: httpx.Response) -> None:
    """Read a small answer here, so a body cut short is retried like any other read failure.

    Large bodies (tarballs) stream on; their integrity check and the step's retry cover them.
    """
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) <= PREREAD_LIMIT:
        await response.aread()


class RetryTransport(Layer):
    """Retries transient failures a bounded number of times.

    Reads are retried on network errors and 429/5xx. Writes are retried only when the server
    cannot have acted: the connection never opened, or it answered 429 (it refused to process).
    A governed request's 429 goes back to its governor untouched: only the governor decides when
    a rate-limited host is asked again.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        policy: RetryPolicy,
        on_wait: WaitHook | None = None,
    ) -> None:
        super().__init__(inner)
        self.policy = policy
        self.on_wait = on_wait

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        is_read = not changes_something(request)
        for attempt in range(self.policy.attempts):
            last = attempt == self.policy.attempts - 1
            try:
                response = await self.inner.handle_async_request(request)
                if is_read:
                    await _preread(response)
            except httpx.ConnectError as exc:
                fatal = fatal_connect_error(request, exc)
                if fatal is not None:
                    raise fatal from exc
                if last:
                    raise
                await self._sleep(request, attempt, None, "connection failed")
                continue
            except (httpx.ReadError, httpx.TimeoutException, httpx.RemoteProtocolError):
                if last or not is_read:
                    raise
                await self._sleep(request, attempt, None, "read failed")
                continue
            limited = response.status_code == 429 and not is_governed(request)
            retryable = limited or (is_read and response.status_code in RETRY_STATUSES - {429})
            if not retryable or last:
                return response
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            await response.aclose()
            await self._sleep(request, attempt, retry_after, f"HTTP {response.status_code}")
        raise AssertionError("unreachable: the loop returns or raises on its last attempt")

    async def _sleep(
        self, request: httpx.Request, attempt: int, retry_after: float | None, why: str
    ) -> None:
        wait = self.policy.delay(attempt, retry_after)
        if self.on_wait is not None:
            self.on_wait(f"{request.url.host}: {why}, retrying", wait)
        await asyncio.sleep(wait)


@dataclass(frozen=True)
class ClientOptions:
    """What every client shares; built once from Settings."""

    dry_run: bool
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.AsyncBaseTransport | None = None
    on_wait: WaitHook | None = None
    loopback_only: bool = False


def build_client(
    options: ClientOptions,
    *,
    base_url: str = "",
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient with the house policy. Auth goes in `headers`, never in the URL."""
    inner = options.transport or httpx.AsyncHTTPTransport()
    if failpoints.armed("write"):
        inner = FailpointTransport(inner)
    transport: httpx.AsyncBaseTransport = RetryTransport(inner, options.retry, options.on_wait)
    if options.dry_run:
        transport = DryRunGuard(transport)
    if options.loopback_only:
        transport = LoopbackGuard(transport)
    all_headers = {"user-agent": USER_AGENT, **(headers or {})}
    return httpx.AsyncClient(
        base_url=base_url,
        headers=all_headers,
        transport=transport,
        timeout=httpx.Timeout(options.timeout, connect=min(10.0, options.timeout)),
        follow_redirects=True,
    )
