"""The per-run hub through which steps reach outside services: clients built once, closed once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import httpx

from playbook.config.settings import Settings
from playbook.net.http import ClientOptions, build_client

T = TypeVar("T")


class Cache(Protocol):
    """A small durable key-value cache (ETags and their bodies), kept in the incident store."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class MemoryCache:
    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def put(self, key: str, value: str) -> None:
        self._data[key] = value


class Services:
    """Builds each client once per run with the house policy (see playbook.net.http).

    Service modules expose a function `(services, ...) -> Client` that calls `cached` with its
    own key, so this hub knows no service by name and a new one needs no change here.
    """

    def __init__(
        self, settings: Settings, options: ClientOptions, cache: Cache | None = None
    ) -> None:
        self.settings = settings
        self.options = options
        self.cache: Cache = cache or MemoryCache()
        self._clients: list[httpx.AsyncClient] = []
        self._cached: dict[str, Any] = {}

    def client(
        self,
        base_url: str = "",
        headers: dict[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> httpx.AsyncClient:
        """A client with the house policy; `timeout` overrides the run's (a hunt service's)."""
        options = self.options if timeout is None else replace(self.options, timeout=timeout)
        client = build_client(options, base_url=base_url, headers=headers)
        self._clients.append(client)
        return client

    def cached(self, key: str, factory: Callable[[], T]) -> T:
        if key not in self._cached:
            self._cached[key] = factory()
        value: T = self._cached[key]
        return value

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        self._cached.clear()
