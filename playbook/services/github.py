"""GitHub's REST API for the mirror hunt: code and repository search, forks, trees, blobs."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from playbook.errors import RemoteError
from playbook.net.governor import Fetched, Governor, is_blocked

if TYPE_CHECKING:
    from playbook.services.hub import Services

GITHUB = "github.com"
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass(frozen=True)
class RepoInfo:
    full_name: str
    url: str
    description: str = ""
    fork: bool = False
    default_branch: str | None = None
    created_at: str | None = None
    pushed_at: str | None = None
    forks_count: int | None = None
    stars: int = 0
    parent: str | None = None  # full_name; known from GET /repos or from the fork listing
    source: str | None = None  # the network root's full_name, from GET /repos


@dataclass(frozen=True)
class CodeHit:
    repo: RepoInfo
    path: str
    sha: str


class TreeState(StrEnum):
    OK = "ok"
    BLOCKED = "blocked"  # disabled by a takedown: 451/403 "Repository access blocked"
    MISSING = "missing"  # 404: deleted, renamed or private
    EMPTY = "empty"  # 409: a repository with no commits


@dataclass(frozen=True)
class Tree:
    state: TreeState
    entries: tuple[tuple[str, str], ...] = ()  # (path, blob sha) of every file
    truncated: bool = False
    cached: bool = False
    reason: str = ""
    sha: str = ""  # the tree's own SHA: identical trees hold identical files


@dataclass(frozen=True)
class Commit:
    """A commit a branch pointed at, and its tree: what a permalink in a notice is pinned to."""

    sha: str
    tree_sha: str


@dataclass(frozen=True)
class RepoLookup:
    state: TreeState
    repo: RepoInfo | None = None
    reason: str = ""


class GitHubApi(Protocol):
    @property
    def governor(self) -> Governor: ...

    async def search_code(self, query: str, max_pages: int = 1) -> list[CodeHit]: ...

    async def search_repos(self, query: str, max_pages: int = 3) -> list[RepoInfo]: ...

    async def repo(self, full_name: str) -> RepoLookup: ...

    async def forks(self, full_name: str) -> list[RepoInfo]: ...

    async def tree(self, full_name: str, ref: str) -> Tree: ...

    async def blob(self, full_name: str, sha: str) -> bytes | None: ...

    async def commit(self, full_name: str, ref: str) -> Commit | None: ...


def repo_info(data: dict[str, Any], parent: str | None = None) -> RepoInfo:
    """A repository object from any GitHub listing; `parent` when the listing implies it."""
    parent_obj = data.get("parent") or {}
    source_obj = data.get("source") or {}
    return RepoInfo(
        full_name=str(data["full_name"]),
        url=str(data.get("html_url") or f"https://{GITHUB}/{data['full_name']}"),
        description=str(data.get("description") or ""),
        fork=bool(data.get("fork", False)),
        default_branch=data.get("default_branch"),
        created_at=data.get("created_at"),
        pushed_at=data.get("pushed_at"),
        forks_count=data.get("forks_count"),
        stars=int(data.get("stargazers_count") or 0),
        parent=parent_obj.get("full_name") or parent,
        source=source_obj.get("full_name"),
    )


def _shrink_tree(body: bytes) -> bytes:
    """Keep only what verification reads, so cached trees stay small in the store."""
    data = json.loads(body)
    files = [[e["path"], e["sha"]] for e in data.get("tree", []) if e.get("type") == "blob"]
    kept = {"files": files, "truncated": bool(data.get("truncated")), "sha": data.get("sha", "")}
    return json.dumps(kept).encode()


def _shrink_commit(body: bytes) -> bytes:
    """A commit answer carries its whole diff; a permalink needs the two SHAs only."""
    data = json.loads(body)
    tree = (data.get("commit") or {}).get("tree") or {}
    return json.dumps({"sha": data.get("sha", ""), "tree_sha": tree.get("sha", "")}).encode()


@dataclass(frozen=True)
class RestGitHub:
    """GitHubApi over the REST API; every request goes through the host's governor."""

    governor: Governor
    base_url: str

    def _fail(self, what: str, fetched: Fetched) -> RemoteError:
        return RemoteError(
            f"GitHub answered HTTP {fetched.status} to {what} ({fetched.url}): "
            f"{fetched.message or 'no message'}.",
            "Check RESPOND_GITHUB_API and GITHUB_TOKEN; the rest of the hunt goes on.",
            status=fetched.status,
        )

    async def _pages(
        self, url: str, params: dict[str, str], resource: str, max_pages: int | None
    ) -> list[Any]:
        """Every page of a listing, following Link rel="next"."""
        items: list[Any] = []
        fetched = await self.governor.get(url, params, resource=resource)
        pages = 1
        while True:
            if fetched.status != 200:
                raise self._fail(f"the listing {url}", fetched)
            data = fetched.json()
            items += data["items"] if isinstance(data, dict) else data
            match = _NEXT.search(fetched.headers.get("link", ""))
            if match is None or (max_pages is not None and pages >= max_pages):
                return items
            fetched = await self.governor.get(match[1], resource=resource)
            pages += 1

    async def search_code(self, query: str, max_pages: int = 1) -> list[CodeHit]:
        url = f"{self.base_url}/search/code"
        params = {"q": query, "per_page": "100"}
        items = await self._pages(url, params, "code_search", max_pages)
        return [CodeHit(repo_info(i["repository"]), str(i["path"]), str(i["sha"])) for i in items]

    async def search_repos(self, query: str, max_pages: int = 3) -> list[RepoInfo]:
        url = f"{self.base_url}/search/repositories"
        items = await self._pages(url, {"q": query, "per_page": "100"}, "search", max_pages)
        return [repo_info(i) for i in items]

    async def repo(self, full_name: str) -> RepoLookup:
        fetched = await self.governor.get(f"{self.base_url}/repos/{full_name}")
        state = _state(fetched)
        if state is None:
            raise self._fail(f"the repository {full_name}", fetched)
        repo = repo_info(fetched.json()) if state is TreeState.OK else None
        return RepoLookup(state, repo, fetched.message)

    async def forks(self, full_name: str) -> list[RepoInfo]:
        url = f"{self.base_url}/repos/{full_name}/forks"
        items = await self._pages(url, {"per_page": "100", "sort": "oldest"}, "core", None)
        return [repo_info(i, parent=full_name) for i in items]

    async def tree(self, full_name: str, ref: str) -> Tree:
        url = f"{self.base_url}/repos/{full_name}/git/trees/{quote(ref, safe='')}"
        fetched = await self.governor.get(url, {"recursive": "1"}, shrink=_shrink_tree)
        state = _state(fetched)
        if state is None:
            raise self._fail(f"the tree of {full_name}", fetched)
        if state is not TreeState.OK:
            return Tree(state, reason=fetched.message)
        data = fetched.json()
        if "files" not in data:  # a 200 without an ETag is not shrunk by the cache path
            data = json.loads(_shrink_tree(fetched.body))
        entries = tuple((str(p), str(s)) for p, s in data["files"])
        sha = str(data.get("sha") or "")
        return Tree(TreeState.OK, entries, bool(data["truncated"]), fetched.cached, sha=sha)

    async def commit(self, full_name: str, ref: str) -> Commit | None:
        """The commit `ref` points at now, with its tree SHA; None when the host will not say."""
        url = f"{self.base_url}/repos/{full_name}/commits/{quote(ref, safe='')}"
        fetched = await self.governor.get(url, shrink=_shrink_commit)
        if fetched.status != 200:
            return None
        data = fetched.json()
        if "tree_sha" not in data:  # a 200 without an ETag is not shrunk by the cache path
            data = json.loads(_shrink_commit(fetched.body))
        sha, tree_sha = str(data.get("sha") or ""), str(data.get("tree_sha") or "")
        return Commit(sha, tree_sha) if sha else None

    async def blob(self, full_name: str, sha: str) -> bytes | None:
        fetched = await self.governor.get(f"{self.base_url}/repos/{full_name}/git/blobs/{sha}")
        if fetched.status != 200:
            return None
        data = fetched.json()
        return (
            base64.b64decode(data.get("content", "")) if data.get("encoding") == "base64" else None
        )


def _state(fetched: Fetched) -> TreeState | None:
    if fetched.status == 200:
        return TreeState.OK
    if is_blocked(fetched.status, fetched.json() if fetched.body else None):
        return TreeState.BLOCKED
    if fetched.status == 404:
        return TreeState.MISSING
    if fetched.status == 409:
        return TreeState.EMPTY
    return None


def github_api(services: Services) -> RestGitHub:
    """The run's GitHub client (built by Services: token as Bearer, one governor)."""
    return services.github()
