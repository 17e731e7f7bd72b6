"""Running one piece of async work against a Services hub, closing its clients either way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from playbook.services.hub import Services

T = TypeVar("T")


def run_closing(services: Services, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run `work(services)` to completion on a fresh event loop, then close the hub's clients."""

    async def go() -> T:
        try:
            return await work(services)
        finally:
            await services.aclose()

    return asyncio.run(go())
