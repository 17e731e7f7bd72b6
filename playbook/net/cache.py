"""The small durable key-value cache the governors keep ETags and bodies in."""

from __future__ import annotations

from typing import Protocol


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
