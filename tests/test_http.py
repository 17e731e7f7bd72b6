"""The client factory: bounded retries with backoff, Retry-After, writes not repeated, the guard."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from playbook.errors import DryRunViolation, LoopbackViolation
from playbook.net.http import (
    GOVERNED,
    READ_ONLY,
    WRITES,
    ClientOptions,
    RetryPolicy,
    build_client,
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


def test_a_governed_429_is_handed_back_at_once_and_5xx_still_retried() -> None:
    async def go(*answers: int) -> tuple[int, list[str]]:
        transport, seen = scripted(*answers)
        options = ClientOptions(dry_run=False, retry=NO_JITTER, transport=transport)
        async with build_client(options, base_url="http://127.0.0.1:9") as client:
            got = await client.get("/thing", extensions={GOVERNED: True})
        return got.status_code, seen

    assert asyncio.run(go(429, 200)) == (429, ["GET"])  # the governor decides when to ask again
    assert asyncio.run(go(503, 200)) == (200, ["GET", "GET"])
