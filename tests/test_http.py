"""The client factory: bounded retries with backoff, Retry-After, writes not repeated, the guard."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from playbook.errors import DryRunViolation, LoopbackViolation, NetworkFatal
from playbook.net.http import (
    GOVERNED,
    READ_ONLY,
    WRITES,
    ClientOptions,
    LoopbackGuard,
    RetryPolicy,
    build_client,
    is_loopback,
    parse_retry_after,
)

NO_JITTER = RetryPolicy(attempts=4, backoff=0.01, max_wait=0.05, jitter=lambda hi: hi)


def scripted(
    *answers: int | type[Exception], retry_after: str | None = None
) -> tuple[httpx.MockTransport, list[str]]:
    """A transport answering with each status (or raising each exception) in turn."""
    seen: list[str] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, type):
            raise answer("scripted failure", request=request)  # type: ignore[call-arg]
        headers = {"retry-after": retry_after} if retry_after and answer == 429 else {}
        return httpx.Response(answer, headers=headers, text="body")

    return httpx.MockTransport(handler), seen


async def call(
    transport: httpx.MockTransport,
    method: str,
    *,
    dry_run: bool = False,
    waits: list[float] | None = None,
) -> httpx.Response:
    options = ClientOptions(
        dry_run=dry_run,
        retry=NO_JITTER,
        transport=transport,
        on_wait=(lambda why, s: waits.append(s)) if waits is not None else None,
    )
    async with build_client(options, base_url="http://127.0.0.1:9") as client:
        return await client.request(method, "/thing")


def test_reads_retry_5xx_then_succeed() -> None:
    transport, seen = scripted(503, 502, 200)
    response = asyncio.run(call(transport, "GET"))
    assert response.status_code == 200 and seen == ["GET"] * 3


def test_retries_are_bounded_and_the_last_answer_is_returned() -> None:
    transport, seen = scripted(500)
    response = asyncio.run(call(transport, "GET"))
    assert response.status_code == 500 and len(seen) == NO_JITTER.attempts


def test_writes_are_not_repeated_on_5xx_or_read_errors() -> None:
    transport, seen = scripted(502, 200)
    assert asyncio.run(call(transport, "PUT")).status_code == 502
    assert seen == ["PUT"]
    transport, seen = scripted(httpx.ReadError, 200)
    with pytest.raises(httpx.ReadError):
        asyncio.run(call(transport, "DELETE"))
    assert seen == ["DELETE"], "a write whose answer was lost must not be sent again blindly"


def test_writes_retry_429_and_connect_errors_where_the_server_did_not_act() -> None:
    transport, seen = scripted(429, 200, retry_after="0")
    assert asyncio.run(call(transport, "PUT")).status_code == 200 and seen == ["PUT", "PUT"]
    transport, seen = scripted(httpx.ConnectError, 201)
    assert asyncio.run(call(transport, "PUT")).status_code == 201 and seen == ["PUT", "PUT"]


def test_retry_after_is_honoured_and_capped() -> None:
    waits: list[float] = []
    transport, _ = scripted(429, 200, retry_after="3600")
    asyncio.run(call(transport, "GET", waits=waits))
    assert waits == [NO_JITTER.max_wait], "Retry-After beyond the cap must be capped"
    waits.clear()
    transport, _ = scripted(503, 503, 200)
    asyncio.run(call(transport, "GET", waits=waits))
    assert waits == [0.01, 0.02], "backoff must grow exponentially"


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(90.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_dry_run_guard_refuses_every_write_before_sending(method: str) -> None:
    transport, seen = scripted(200)
    with pytest.raises(DryRunViolation, match=f"refused to send {method}"):
        asyncio.run(call(transport, method, dry_run=True))
    assert seen == []
    assert asyncio.run(call(transport, "GET", dry_run=True)).status_code == 200
    assert asyncio.run(call(transport, "HEAD", dry_run=True)).status_code == 200


def test_loopback_only_refuses_every_other_host() -> None:
    transport, seen = scripted(200)
    options = ClientOptions(dry_run=False, retry=NO_JITTER, transport=transport, loopback_only=True)

    async def get(url: str) -> int:
        async with build_client(options) as client:
            return (await client.get(url)).status_code

    assert asyncio.run(get("http://127.0.0.1:9/x")) == 200
    assert asyncio.run(get("http://localhost:9/x")) == 200
    with pytest.raises(LoopbackViolation, match="loopback addresses only"):
        asyncio.run(get("https://example.com/x"))
    assert len(seen) == 2


def marked(method: str, extensions: dict[str, object], dry_run: bool) -> list[str]:
    transport, seen = scripted(200)
    options = ClientOptions(dry_run=dry_run, retry=NO_JITTER, transport=transport)

    async def go() -> None:
        async with build_client(options, base_url="http://127.0.0.1:9") as client:
            await client.request(method, "/thing", extensions=extensions)

    asyncio.run(go())
    return seen


def test_a_read_marked_post_passes_the_dry_run_guard() -> None:
    # A GraphQL query is a POST that only reads: its mark lets it through.
    assert marked("POST", READ_ONLY, dry_run=True) == ["POST"]


def test_a_write_marked_get_is_refused_in_a_dry_run() -> None:
    # A CDN purge is a GET that changes something: its mark stops it before it is sent.
    with pytest.raises(DryRunViolation):
        marked("GET", WRITES, dry_run=True)


def test_a_write_marked_get_goes_through_in_a_live_run() -> None:
    assert marked("GET", WRITES, dry_run=False) == ["GET"]


# -- loopback by address -------------------------------------------------------------------------


def fake_resolver(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    def resolver(host: str) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolver


LOOPBACK = ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]"]
HOSTILE = [
    "127.evil.example",  # starts with "127." and is a name that resolves elsewhere
    "127.0.0.1.evil.com",
    "localhost.attacker",
    "0x7f.1",  # the C resolver reads this as 127.0.0.1; ipaddress does not: refused
    "0x7f000001",
    "2130706433",
    "127.1",
    "[::ffff:10.0.0.1]",
    "::ffff:8.8.8.8",
    "10.0.0.1",
    "0.0.0.0",
    "mixed.example",  # resolves to loopback AND elsewhere
    "unknown.example",  # does not resolve
    "",
]
RESOLVES = {
    "localhost": ["127.0.0.1", "::1"],
    "registry.test": ["127.0.0.1"],
    "127.evil.example": ["203.0.113.7"],
    "127.0.0.1.evil.com": ["203.0.113.7"],
    "localhost.attacker": ["203.0.113.8"],
    "mixed.example": ["127.0.0.1", "203.0.113.9"],
    "0x7f.1": ["127.0.0.1"],
    "127.1": ["127.0.0.1"],
}


@pytest.mark.parametrize("host", [*LOOPBACK, "localhost", "registry.test"])
def test_loopback_addresses_and_names_resolving_only_to_loopback_pass(host: str) -> None:
    assert is_loopback(host, fake_resolver(RESOLVES))


@pytest.mark.parametrize("host", HOSTILE)
def test_hostile_host_names_are_not_loopback(host: str) -> None:
    assert not is_loopback(host, fake_resolver(RESOLVES))


def test_localhost_resolves_to_loopback_through_the_system_resolver() -> None:
    assert is_loopback("localhost")


@pytest.mark.parametrize("host", ["127.evil.example", "127.0.0.1.evil.com", "localhost.attacker"])
def test_the_loopback_guard_refuses_a_hostile_name_before_sending(host: str) -> None:
    transport, seen = scripted(200)
    guarded = LoopbackGuard(transport, fake_resolver(RESOLVES))

    async def go() -> None:
        async with httpx.AsyncClient(transport=guarded) as client:
            await client.get(f"http://{host}:9/x")

    with pytest.raises(LoopbackViolation, match="loopback addresses only"):
        asyncio.run(go())
    assert seen == []


def test_the_rehearsal_start_guard_refuses_a_hostile_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playbook.config.settings import DEFAULT_ENDPOINTS, Settings
    from playbook.errors import UsageError
    from playbook.net import http
    from playbook.rehearsal.run import assert_loopback

    monkeypatch.setattr(http, "resolve", fake_resolver(RESOLVES))
    env = {f"RESPOND_{n.upper()}_API": "http://127.0.0.1:1" for n in DEFAULT_ENDPOINTS}
    env |= {"RESPOND_HOME": str(tmp_path), "RESPOND_UNPKG_API": "http://127.0.0.1.evil.com:1"}
    settings = Settings.resolve(env=env)
    with pytest.raises(UsageError, match="unpkg would reach"):
        assert_loopback(settings, "http://127.0.0.1:4873/")


# -- fail fast where a retry cannot help ---------------------------------------------------------


def test_a_name_that_does_not_exist_fails_at_once_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real transport and the real connect path; only the system resolver's answer is
    # scripted (a test never sends a DNS query).
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name == "registry.nowhere.test":  # anyio passes the name IDNA-encoded, as bytes
            asked.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    waits: list[float] = []
    options = ClientOptions(dry_run=False, retry=NO_JITTER, on_wait=lambda why, s: waits.append(s))

    async def go() -> None:
        async with build_client(options) as client:
            await client.get("http://registry.nowhere.test/pkg")

    with pytest.raises(NetworkFatal) as caught:
        asyncio.run(go())
    assert asked == ["registry.nowhere.test"], "retried although the name does not exist"
    assert waits == []
    assert "no such host name" in caught.value.message and "\n" not in caught.value.message
    assert caught.value.hint and "RESPOND_<NAME>_API" in caught.value.hint


def test_a_resolver_timeout_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    # EAI_AGAIN (the resolver did not answer in time) may heal: it keeps its retries.
    asked: list[str] = []

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        asked.append(str(host))
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    options = ClientOptions(dry_run=False, retry=NO_JITTER)

    async def go() -> None:
        async with build_client(options) as client:
            await client.get("http://registry.slow-dns.test/pkg")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(go())
    assert len(asked) == NO_JITTER.attempts


@pytest.fixture(scope="module")
def self_signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real TLS server on loopback whose certificate no trust store holds."""
    import http.server
    import ssl
    import subprocess
    import threading

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    hits: list[int] = []
    real_get_request = server.get_request

    def counting() -> tuple[object, object]:
        hits.append(1)
        return real_get_request()

    server.get_request = counting  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_certificate_that_does_not_verify_fails_at_once_with_a_hint(
    self_signed_server: str,
) -> None:
    waits: list[float] = []
    options = ClientOptions(dry_run=False, retry=NO_JITTER, on_wait=lambda why, s: waits.append(s))

    async def go() -> None:
        async with build_client(options) as client:
            await client.get(self_signed_server + "pkg")

    with pytest.raises(NetworkFatal) as caught:
        asyncio.run(go())
    assert waits == [], "retried although the certificate cannot verify on a second try"
    assert "TLS certificate does not verify" in caught.value.message
    assert "self-signed" in caught.value.message or "verify" in caught.value.message
    assert caught.value.hint and "SSL_CERT_FILE" in caught.value.hint


def test_a_governed_429_is_handed_back_at_once_and_5xx_still_retried() -> None:
    async def go(*answers: int) -> tuple[int, list[str]]:
        transport, seen = scripted(*answers)
        options = ClientOptions(dry_run=False, retry=NO_JITTER, transport=transport)
        async with build_client(options, base_url="http://127.0.0.1:9") as client:
            got = await client.get("/thing", extensions={GOVERNED: True})
        return got.status_code, seen

    assert asyncio.run(go(429, 200)) == (429, ["GET"])  # the governor decides when to ask again
    assert asyncio.run(go(503, 200)) == (200, ["GET", "GET"])


def test_the_loopback_guard_connects_to_the_address_it_judged_not_to_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: a name that answers loopback to the guard's check and something else to
    the connect must not get past it. The guard pins the request to the address it judged; the
    server still sees the name in Host, and the system resolver is never asked for the name."""
    import http.server
    import threading

    seen_hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen_hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    asked: list[str] = []
    real = socket.getaddrinfo

    def system_resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(str(host))
        if host == "rebind.test":  # the second answer a rebinding resolver would give
            return real("203.0.113.7", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", system_resolver)
    guarded = LoopbackGuard(
        httpx.AsyncHTTPTransport(), fake_resolver({"rebind.test": ["127.0.0.1"]})
    )

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=guarded) as client:
            return await client.get(f"http://rebind.test:{port}/x")

    try:
        answer = asyncio.run(go())
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == 200 and answer.text == "ok"
    assert seen_hosts == [f"rebind.test:{port}"]
    assert "rebind.test" not in asked
