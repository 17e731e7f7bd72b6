"""GitLab and Forgejo (Codeberg) project search and file trees with blob SHAs.

A tree is listed at a commit: the default branch's endpoint first (GitLab's
`GET /projects/:id/repository/branches/:branch`, Forgejo's `GET /repos/{owner}/{repo}/branches/
{branch}`, both answering `commit.id`), then the tree at that commit id, so the files a notice
names are the files of the commit its permalinks cite, even if the branch moves in between. Two
requests per repository (one more per further page of the tree); a repository with no default
branch known is listed at the host's default, without a commit.
"""

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


async def _branch_commit(governor: Governor, host: str, api: str, branch: str | None) -> str | Tree:
    """The commit id `branch` points at (`{api}/branches/{branch}`, `commit.id`; "" with no
    branch), or the Tree saying why there is none."""
    if not branch:
        return ""
    url = f"{api}/branches/{quote(branch, safe='')}"
    fetched = await governor.get(url)
    gone = _missing(fetched)
    if gone is not None:
        return gone
    if fetched.status != 200:
        raise _fail(host, fetched)
    commit = (fetched.json() or {}).get("commit") or {}
    sha = str(commit.get("id") or "")
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
        raise RemoteError(
            f"{host} answered {url} without a commit id (commit.id: {sha[:80]!r}).",
            "Expected a 40- or 64-hex commit id; the rest of the hunt goes on.",
        )
    return sha


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
        project = f"{self.base_url}/projects/{repo.api_id}/repository"
        query = {"recursive": "true", "per_page": "100"}
        commit = await _branch_commit(self.governor, self.host, project, repo.default_branch)
        if isinstance(commit, Tree):
            return commit
        if commit:
            query["ref"] = commit
        fetched = await self.governor.get(f"{project}/tree", query)
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
                return Tree(TreeState.OK, tuple(entries), commit=commit)
            fetched = await self.governor.get(match[1])
        return Tree(TreeState.OK, tuple(entries), truncated=True, commit=commit)


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
        api = f"{self.base_url}/repos/{repo.api_id}"
        commit = await _branch_commit(self.governor, self.host, api, repo.default_branch)
        if isinstance(commit, Tree):
            return commit
        url = f"{api}/git/trees/{commit or 'HEAD'}"
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
            sha = str(data.get("sha") or "")  # the tree's own SHA (the commit's tree)
            if not data.get("truncated"):
                return Tree(TreeState.OK, tuple(entries), sha=sha, commit=commit)
        return Tree(TreeState.OK, tuple(entries), truncated=True, sha=sha, commit=commit)


def gitlab(services: Services) -> GitLab:
    return services.gitlab()


def codeberg(services: Services) -> Forgejo:
    return services.codeberg()
