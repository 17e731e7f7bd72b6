"""jsDelivr and unpkg: probe a version's files; purge jsDelivr's cache for tags, never versions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from playbook.errors import RemoteError
from playbook.net.http import WRITES

if TYPE_CHECKING:
    from playbook.services.hub import Services


@dataclass(frozen=True)
class CdnProbe:
    cdn: str
    url: str
    status: int
    size: int | None = None
    sha256: str | None = None  # only when the body was fetched


@dataclass(frozen=True)
class PurgeResult:
    url: str
    status: int
    ok: bool


class Cdn(Protocol):
    @property
    def name(self) -> str: ...

    def file_url(self, package: str, version: str, file: str) -> str: ...

    async def probe(
        self, package: str, version: str, file: str, body: bool = False
    ) -> CdnProbe: ...


@dataclass(frozen=True)
class HttpCdn:
    """A CDN serving npm files at `<base><prefix><name>@<version>/<file>`."""

    name: str
    client: httpx.AsyncClient
    base: str
    prefix: str

    def file_url(self, package: str, version: str, file: str) -> str:
        return f"{self.base}{self.prefix}{package}@{version}/{file}"

    async def probe(self, package: str, version: str, file: str, body: bool = False) -> CdnProbe:
        """HEAD the file (a 60 MB map is never downloaded), or GET it to hash a small one."""
        url = self.file_url(package, version, file)
        try:
            response = await (self.client.get(url) if body else self.client.head(url))
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"{self.name} could not be reached for {url}: {exc!r}.",
                f"Check RESPOND_{self.name.upper()}_API.",
            ) from exc
        length = response.headers.get("content-length")
        digest = hashlib.sha256(response.content).hexdigest() if body else None
        size = len(response.content) if body else (int(length) if length else None)
        return CdnProbe(self.name, url, response.status_code, size, digest)


@dataclass(frozen=True)
class JsDelivrPurge:
    """jsDelivr's purge endpoint: it refreshes tags and ranges; static versions cannot be purged."""

    client: httpx.AsyncClient
    base: str

    def url(self, package: str, tag: str, file: str) -> str:
        return f"{self.base}/npm/{package}@{tag}/{file}"

    async def purge(self, package: str, tag: str, file: str) -> PurgeResult:
        return await self.purge_url(self.url(package, tag, file))

    async def purge_url(self, url: str) -> PurgeResult:
        """A GET that changes something: marked WRITES, so a dry run's transport refuses it."""
        try:
            response = await self.client.get(url, extensions=WRITES)
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"jsDelivr's purge could not be reached for {url}: {exc!r}.",
                "Check RESPOND_JSDELIVR_PURGE_API.",
            ) from exc
        return PurgeResult(url, response.status_code, response.status_code == 200)


def cdns(services: Services) -> tuple[HttpCdn, HttpCdn]:
    return services.cdns()


def jsdelivr_purge(services: Services) -> JsDelivrPurge:
    return services.jsdelivr_purge()
