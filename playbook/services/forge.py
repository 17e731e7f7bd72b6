"""GitLab and Forgejo (Codeberg) project search and file trees with blob SHAs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from playbook.errors import RemoteError
from playbook.net.governor import Fetched, Governor
from playbook.services.github import Tree, TreeState

if TYPE_CHECKING:
    from playbook.services.hub import Services

_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
MAX_TREE_PAGES = 50


@dataclass(frozen=True)
class ForgeRepo:
    host: str  # "gitlab.com" | "codeberg.org"
    full_name: str
    url: str
    api_id: str  # GitLab's project id, Forgejo's owner/name
    default_branch: str | None = None
    description: str = ""
    created_at: str | None = None
    parent: str | None = None


class Forge(Protocol):
    @property
    def host(self) -> str: ...

    async def search(self, query: str) -> list[ForgeRepo]: ...

    async def tree(self, repo: ForgeRepo) -> Tree: ...


def _fail(host: str, fetched: Fetched) -> RemoteError:
    return RemoteError(
        f"{host} answered HTTP {fetched.status} to {fetched.url}.",
        "Check its RESPOND_*_API setting; the rest of the hunt goes on.",
        status=fetched.status,
    )


def _missing(fetched: Fetched) -> Tree | None:
    if fetched.status in (404, 410):
        return Tree(TreeState.MISSING, reason=fetched.message)
    if fetched.status in (403, 451):
        return Tree(TreeState.BLOCKED, reason=fetched.message)
    return None


@dataclass(frozen=True)
class GitLab:
    governor: Governor
    base_url: str
    host: str = "gitlab.com"

    async def search(self, query: str) -> list[ForgeRepo]:
        fetched = await self.governor.get(
            f"{self.base_url}/projects", {"search": query, "per_page": "100"}
        )
        if fetched.status != 200:
            raise _fail(self.host, fetched)
        return [self._repo(p) for p in fetched.json()]

    def _repo(self, p: dict[str, Any]) -> ForgeRepo:
        parent = (p.get("forked_from_project") or {}).get("web_url")
        return ForgeRepo(
            self.host,
            str(p["path_with_namespace"]),
            str(p["web_url"]),
            str(p["id"]),
            p.get("default_branch"),
            str(p.get("description") or ""),
            p.get("created_at"),
            parent,
        )

    async def tree(self, repo: ForgeRepo) -> Tree:
        url = f"{self.base_url}/projects/{repo.api_id}/repository/tree"
        fetched = await self.governor.get(url, {"recursive": "true", "per_page": "100"})
        entries: list[tuple[str, str]] = []
        for _ in range(MAX_TREE_PAGES):
            gone = _missing(fetched)
            if gone is not None:
                return gone
            if fetched.status != 200:
                raise _fail(self.host, fetched)
            entries += [
                (str(e["path"]), str(e["id"])) for e in fetched.json() if e["type"] == "blob"
            ]
            match = _NEXT.search(fetched.headers.get("link", ""))
            if match is None:
                return Tree(TreeState.OK, tuple(entries))
            fetched = await self.governor.get(match[1])
        return Tree(TreeState.OK, tuple(entries), truncated=True)


@dataclass(frozen=True)
class Forgejo:
    governor: Governor
    base_url: str
    host: str = "codeberg.org"

    async def search(self, query: str) -> list[ForgeRepo]:
        fetched = await self.governor.get(
            f"{self.base_url}/repos/search", {"q": query, "limit": "50"}
        )
        if fetched.status != 200:
            raise _fail(self.host, fetched)
        return [
            ForgeRepo(
                self.host,
                str(r["full_name"]),
                str(r["html_url"]),
                str(r["full_name"]),
                r.get("default_branch"),
                str(r.get("description") or ""),
                r.get("created_at"),
                (r.get("parent") or {}).get("html_url"),
            )
            for r in (fetched.json() or {}).get("data", [])
        ]

    async def tree(self, repo: ForgeRepo) -> Tree:
        ref = quote(repo.default_branch or "HEAD", safe="")
        url = f"{self.base_url}/repos/{repo.api_id}/git/trees/{ref}"
        entries: list[tuple[str, str]] = []
        for page in range(1, MAX_TREE_PAGES + 1):
            fetched = await self.governor.get(
                url, {"recursive": "true", "per_page": "1000", "page": str(page)}
            )
            gone = _missing(fetched)
            if gone is not None:
                return gone
            if fetched.status != 200:
                raise _fail(self.host, fetched)
            data = fetched.json()
            entries += [
                (str(e["path"]), str(e["sha"]))
                for e in data.get("tree", [])
                if e.get("type") == "blob"
            ]
            if not data.get("truncated"):
                return Tree(TreeState.OK, tuple(entries))
        return Tree(TreeState.OK, tuple(entries), truncated=True)


def gitlab(services: Services) -> GitLab:
    return services.gitlab()


def codeberg(services: Services) -> Forgejo:
    return services.codeberg()
