"""Software Heritage: which archived origins (repository URLs) match a pattern."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from playbook.errors import RemoteError
from playbook.net.governor import Governor

if TYPE_CHECKING:
    from playbook.services.hub import Services

SWH = "softwareheritage"


@dataclass(frozen=True)
class Origin:
    url: str


class Archive(Protocol):
    @property
    def base_url(self) -> str: ...

    async def search_origins(self, pattern: str, limit: int = 50) -> list[Origin]: ...

    def browse_url(self, origin: str) -> str: ...


@dataclass(frozen=True)
class SoftwareHeritage:
    """The archive's origin search (10 searches a minute without a token: paced at 9)."""

    governor: Governor
    base_url: str

    async def search_origins(self, pattern: str, limit: int = 50) -> list[Origin]:
        url = f"{self.base_url}/origin/search/{quote(pattern, safe='')}/"
        fetched = await self.governor.get(url, {"limit": str(limit)}, resource="search")
        if fetched.status == 404:
            return []
        if fetched.status != 200:
            raise RemoteError(
                f"Software Heritage answered HTTP {fetched.status} to {url}.",
                "Check RESPOND_SWH_API; the rest of the hunt goes on.",
                status=fetched.status,
            )
        return [Origin(str(o["url"])) for o in fetched.json() or []]

    def browse_url(self, origin: str) -> str:
        """Where a person sees the archived origin (the record key; a takedown names the origin)."""
        site = self.base_url.removesuffix("/api/1")
        return f"{site}/browse/origin/?origin_url={quote(origin, safe='')}"


def software_heritage(services: Services) -> SoftwareHeritage:
    return services.software_heritage()
