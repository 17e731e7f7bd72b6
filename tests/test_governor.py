"""The governor keeps GitHub requests inside every limit, against a local server enforcing them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from playbook.clock import Clock
from playbook.net.governor import (
    BudgetSpent,
    Governor,
    GovernorConfig,
    Pace,
    QuotaStatus,
    is_blocked,
    limit_kind,
)
from playbook.net.http import ClientOptions, RetryPolicy
from playbook.rehearsal.world import FakeClock, FakeWorld, Limits, World, world_settings
from playbook.services.github import RestGitHub, TreeState, github_api
from playbook.services.hub import MemoryCache, Services

PKG, VER = "@acme/widget-cli", "2.1.88"
WAITS: list[tuple[str, float]] = []  # what the live display was told


def small_world(limits: Limits) -> World:
    world = World(PKG, VER, limits=limits)
    from playbook.rehearsal.world import FakeRepo

    words = " ".join(f"word{i}" for i in range(30))
    text = f"export const someIdentifier42 = 1; // {words}\n".encode()
    world.add(FakeRepo("someone/repo", {"a.ts": text}))
    world.add(FakeRepo("blocked/repo", {"a.ts": b"x"}, disabled=True))
    return world


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def services_for(
    fake: FakeWorld, tmp: Path, clock: FakeClock, cache: MemoryCache | None = None, **env: str
) -> tuple[Services, RestGitHub]:
    settings = world_settings(fake, tmp)
    settings = type(settings).resolve(env={**settings.npm_env, **env}, cwd=tmp)
    # One attempt in the transport: the governor alone must handle every limit answer.
    options = ClientOptions(
        dry_run=False, retry=RetryPolicy(attempts=1), on_wait=lambda m, s: WAITS.append((m, s))
    )
    services = Services(
        settings, options, cache=cache or MemoryCache(), clock=Clock(clock, clock.sleep)
    )
    return services, github_api(services)


@pytest.fixture
def server(clock: FakeClock, request: pytest.FixtureRequest) -> Iterator[FakeWorld]:
    limits = getattr(request, "param", Limits())
    with FakeWorld(small_world(limits), clock=clock) as fake:
        yield fake


@pytest.mark.parametrize("server", [Limits(code_search=10, code_search_window=60)], indirect=True)
def test_code_search_at_ten_a_minute_never_meets_a_403_or_429(
    server: FakeWorld, clock: FakeClock, tmp_path: Path
) -> None:
    services, gh = services_for(server, tmp_path, clock)
    start = clock.now
    WAITS.clear()

    async def run() -> list[int]:
        try:
            # Distinct queries: a repeated one would be answered 304 and cost nothing.
            return [len(await gh.search_code(f"someIdentifier42 word{i}")) for i in range(25)]
        finally:
            await services.aclose()

    hits = asyncio.run(run())
    assert hits == [1] * 25
    assert server.stats.limited == 0
    assert gh.governor.limited == 0
    # 25 requests at 9 a minute need two full windows of waiting, and no more than three.
    assert 120 <= clock.now - start <= 180
    # The live display was told the quota left and each wait, as it happened.
    assert len(WAITS) >= 2
    assert all("code_search" in m and "left" in m and "waiting" in m for m, _s in WAITS)
    assert sum(s for _m, s in WAITS) == pytest.approx(clock.now - start, abs=1.0)
    times = [t for t, route, _p, _s in server.stats.log if route == "github.search_code"]
    assert all(
        sum(1 for u in times if t - 60 < u <= t) <= 10 for t in times
    )  # the server's own sliding window never saw more than 10


@pytest.mark.parametrize(
    "server",
    [
        Limits(secondary_at=frozenset({3}), secondary_retry_after=7, secondary_status=403),
        Limits(secondary_at=frozenset({3}), secondary_retry_after=7, secondary_status=429),
    ],
    indirect=True,
)
def test_secondary_limit_is_honoured_with_retry_after(
    server: FakeWorld, clock: FakeClock, tmp_path: Path
) -> None:
    services, gh = services_for(server, tmp_path, clock)

    async def run() -> list[TreeState]:
        try:
            return [(await gh.tree("someone/repo", "main")).state for _ in range(5)]
        finally:
            await services.aclose()

    states = asyncio.run(run())
    assert states == [TreeState.OK] * 5
    assert server.stats.secondary == 1
    assert gh.governor.limited == 1
    log = [(t, s) for t, _r, _p, s in server.stats.log]
    refused = next(i for i, (_t, s) in enumerate(log) if s in (403, 429))
    assert log[refused + 1][0] - log[refused][0] >= 7  # the next request waited retry-after


@pytest.mark.parametrize("server", [Limits(code_search=10)], indirect=True)
def test_primary_limit_waits_for_reset_when_pace_is_off(
    server: FakeWorld, clock: FakeClock, tmp_path: Path
) -> None:
    services, gh = services_for(server, tmp_path, clock)
    gh.governor.config = GovernorConfig(paces={})  # no pace: only the server's headers guide it
    waits: list[QuotaStatus] = []

    async def run() -> int:
        try:
            with gh.governor.listening(waits.append):
                found = [len(await gh.search_code(f"someIdentifier42 word{i}")) for i in range(12)]
                return sum(found)
        finally:
            await services.aclose()

    assert asyncio.run(run()) == 12
    # The 10th answer said remaining 0: the governor waited for the reset before the 11th.
    assert server.stats.limited == 0
    assert any(s.waiting > 0 and "quota spent" in s.reason for s in waits)


def test_blocked_repository_is_not_a_rate_limit(
    server: FakeWorld, clock: FakeClock, tmp_path: Path
) -> None:
    services, gh = services_for(server, tmp_path, clock)

    async def run() -> TreeState:
        try:
            return (await gh.tree("blocked/repo", "main")).state
        finally:
            await services.aclose()

    assert asyncio.run(run()) is TreeState.BLOCKED
    assert gh.governor.requests == 1 and gh.governor.limited == 0
    body = {"message": "Repository access blocked", "block": {"reason": "dmca"}}
    assert is_blocked(403, body) and limit_kind(403, {}, body) is None
    assert limit_kind(403, {"x-ratelimit-remaining": "0"}, {"message": "x"}) == "primary"
    assert limit_kind(403, {}, {"message": "You have exceeded a secondary rate limit"}) == (
        "secondary"
    )
    assert limit_kind(429, {}, None) == "secondary"


def test_budget_is_never_exceeded(server: FakeWorld, clock: FakeClock, tmp_path: Path) -> None:
    services, gh = services_for(server, tmp_path, clock, RESPOND_GITHUB_BUDGET="3")

    async def run() -> None:
        try:
            for _ in range(5):
                await gh.repo("someone/repo")
        finally:
            await services.aclose()

    with pytest.raises(BudgetSpent, match=r"budget for github \(3\) is spent") as info:
        asyncio.run(run())
    assert "RESPOND_GITHUB_BUDGET" in (info.value.hint or "")
    assert server.stats.github == 3


def test_etag_reuse_turns_repeats_into_304s(
    server: FakeWorld, clock: FakeClock, tmp_path: Path
) -> None:
    cache = MemoryCache()
    counts = []
    for _ in range(2):
        services, gh = services_for(server, tmp_path, clock, cache)  # durable between runs

        async def run(gh: RestGitHub = gh, services: Services = services) -> int:
            try:
                return len((await gh.tree("someone/repo", "main")).entries)
            finally:
                await services.aclose()

        counts.append(asyncio.run(run()))
    assert counts == [1, 1]
    assert server.stats.not_modified == 1
    assert server.stats.statuses[304] == 1


def test_pace_counts_on_the_governors_clock(clock: FakeClock) -> None:
    gov = Governor(
        None,  # type: ignore[arg-type]  # never sends: _before alone is under test
        "github",
        MemoryCache(),
        GovernorConfig(paces={"code_search": Pace(2, 10.0)}),
        clock=clock,
        sleep=clock.sleep,
    )

    async def run() -> float:
        start = clock.now
        for _ in range(5):
            await gov._before("code_search", "u")
        return clock.now - start

    assert asyncio.run(run()) >= 20  # 5 requests at 2 per 10 s: two waits of 10 s


@pytest.mark.parametrize(
    "server",
    [
        Limits(secondary_at=frozenset({2}), secondary_retry_after=None, secondary_status=429),
        Limits(secondary_at=frozenset({2}), secondary_retry_after=None, secondary_status=403),
    ],
    indirect=True,
)
def test_with_the_transports_own_retries_on_only_the_governor_retries_a_limit(
    server: FakeWorld, clock: FakeClock, tmp_path: Path
) -> None:
    """The client's default RetryPolicy retries 429s of other hosts; never a governed GitHub one."""
    settings = world_settings(server, tmp_path)
    clocked = Clock(clock, clock.sleep)
    services = Services(settings, ClientOptions(dry_run=False), MemoryCache(), clock=clocked)
    gh = github_api(services)

    async def run() -> list[TreeState]:
        try:
            return [(await gh.tree("someone/repo", "main")).state for _ in range(3)]
        finally:
            await services.aclose()

    assert asyncio.run(run()) == [TreeState.OK] * 3
    log = [(t, s) for t, _r, _p, s in server.stats.log]
    assert [s for _t, s in log].count(server.world.limits.secondary_status) == 1
    refused = next(i for i, (_t, s) in enumerate(log) if s in (403, 429))
    # No retry-after: the governor waited a minute before asking again, and nothing asked sooner.
    assert log[refused + 1][0] - log[refused][0] >= 60
    assert len(log) == 4
