"""GitHub's REST API for the mirror hunt: code and repository search, forks, trees, blobs."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from playbook.errors import RemoteError
from playbook.net.governor import Fetched, Governor, is_blocked

if TYPE_CHECKING:
    from playbook.services.hub import Services

GITHUB = "github.com"
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
SEARCH_CAP = 1000  # GitHub's search API returns at most this many results per query
SUBTREE_REQUESTS = 64  # sub-tree requests one truncated tree may cost before it stays truncated
T = TypeVar("T")


@dataclass(frozen=True)
class Search(Generic[T]):
    """One query's results and what GitHub said about their completeness."""

    items: tuple[T, ...]
    total: int = 0  # total_count: what GitHub says matched
    incomplete: bool = False  # incomplete_results on some page: the search timed out
    pages: int = 0
    more: bool = False  # a next page was left unread

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def unread(self) -> int:
        """Matches GitHub reported that were not read (the 1,000 cap included)."""
        return max(0, self.total - len(self.items))

    @property
    def capped(self) -> bool:
        """More matched than GitHub's search API will ever return for this query."""
        return self.total > SEARCH_CAP


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
    subtrees: int = 0  # sub-tree requests made because the recursive listing was truncated
    commit: str = ""  # the commit listed, when the client asked for the tree at a commit


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

    async def search_code(self, query: str, max_pages: int = 1) -> Search[CodeHit]: ...

    async def search_repos(self, query: str, max_pages: int = 3) -> Search[RepoInfo]: ...

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
    entries = data.get("tree", [])
    files = [[e["path"], e["sha"]] for e in entries if e.get("type") == "blob"]
    dirs = [[e["path"], e["sha"]] for e in entries if e.get("type") == "tree"]
    truncated = bool(data.get("truncated"))
    kept = {"files": files, "dirs": dirs, "truncated": truncated, "sha": data.get("sha", "")}
    return json.dumps(kept).encode()


def _tree_data(fetched: Fetched) -> dict[str, Any]:
    data = fetched.json()
    if "files" not in data:  # a 200 without an ETag is not shrunk by the cache path
        data = json.loads(_shrink_tree(fetched.body))
    return dict(data)


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
    subtree_requests: int = field(default=SUBTREE_REQUESTS)

    def _fail(self, what: str, fetched: Fetched) -> RemoteError:
        return RemoteError(
            f"GitHub answered HTTP {fetched.status} to {what} ({fetched.url}): "
            f"{fetched.message or 'no message'}.",
            "Check RESPOND_GITHUB_API and GITHUB_TOKEN; the rest of the hunt goes on.",
            status=fetched.status,
        )

    async def _pages(
        self, url: str, params: dict[str, str], resource: str, max_pages: int | None
    ) -> Search[Any]:
        """Every page of a listing (at most `max_pages`), following Link rel="next"."""
        items: list[Any] = []
        fetched = await self.governor.get(url, params, resource=resource)
        pages, total, incomplete = 1, 0, False
        while True:
            if fetched.status != 200:
                raise self._fail(f"the listing {url}", fetched)
            data = fetched.json()
            if isinstance(data, dict):
                items += data["items"]
                total = max(total, int(data.get("total_count") or 0))
                incomplete = incomplete or bool(data.get("incomplete_results"))
            else:
                items += data
            match = _NEXT.search(fetched.headers.get("link", ""))
            if match is None or (max_pages is not None and pages >= max_pages):
                more = match is not None
                return Search(tuple(items), max(total, len(items)), incomplete, pages, more)
            fetched = await self.governor.get(match[1], resource=resource)
            pages += 1

    async def search_code(self, query: str, max_pages: int = 1) -> Search[CodeHit]:
        url = f"{self.base_url}/search/code"
        params = {"q": query, "per_page": "100"}
        found = await self._pages(url, params, "code_search", max_pages)
        hits = [CodeHit(repo_info(i["repository"]), str(i["path"]), str(i["sha"])) for i in found]
        return _same(found, hits)

    async def search_repos(self, query: str, max_pages: int = 3) -> Search[RepoInfo]:
        url = f"{self.base_url}/search/repositories"
        found = await self._pages(url, {"q": query, "per_page": "100"}, "search", max_pages)
        return _same(found, [repo_info(i) for i in found])

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
        """Every file of the tree at `ref`; a truncated recursive listing is read sub-tree by
        sub-tree (at most `subtree_requests` more requests), else it stays `truncated`."""
        url = f"{self.base_url}/repos/{full_name}/git/trees/{quote(ref, safe='')}"
        fetched = await self.governor.get(url, {"recursive": "1"}, shrink=_shrink_tree)
        state = _state(fetched)
        if state is None:
            raise self._fail(f"the tree of {full_name}", fetched)
        if state is not TreeState.OK:
            return Tree(state, reason=fetched.message)
        data = _tree_data(fetched)
        entries = tuple((str(p), str(s)) for p, s in data["files"])
        sha = str(data.get("sha") or "")
        if data["truncated"]:
            return await self._split(full_name, ref, sha, fetched.cached)
        return Tree(TreeState.OK, entries, False, fetched.cached, sha=sha)

    async def _split(self, full_name: str, ref: str, sha: str, cached: bool) -> Tree:
        """A truncated tree, read again one level at a time: recursive listings of each sub-tree,
        and of a truncated sub-tree its own children, until every file is listed or the
        allowance is spent (the tree then stays truncated: it proves no absence)."""
        base = f"{self.base_url}/repos/{full_name}/git/trees"
        files: list[tuple[str, str]] = []
        queue: list[tuple[str, str, bool]] = [("", quote(ref, safe=""), False)]
        spent, truncated = 0, False
        while queue:
            if spent >= self.subtree_requests:
                truncated = True
                break
            prefix, tree_ref, recursive = queue.pop(0)
            params = {"recursive": "1"} if recursive else None
            fetched = await self.governor.get(f"{base}/{tree_ref}", params, shrink=_shrink_tree)
            spent += 1
            if fetched.status != 200:
                truncated = True  # a sub-tree that would not list: the tree is not whole
                continue
            data = _tree_data(fetched)
            if recursive and data["truncated"]:
                queue.append((prefix, tree_ref, False))  # too big itself: one level at a time
                continue
            files += [(prefix + str(p), str(s)) for p, s in data["files"]]
            if not recursive:
                kids = [(prefix + str(p) + "/", str(s)) for p, s in data.get("dirs", [])]
                queue += [(path, tree_sha, True) for path, tree_sha in kids]
        return Tree(TreeState.OK, tuple(files), truncated, cached, sha=sha, subtrees=spent)

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


def _same(found: Search[Any], items: list[T]) -> Search[T]:
    return Search(tuple(items), found.total, found.incomplete, found.pages, found.more)


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
