"""GitHub's REST API as the world plays it: repositories, forks, trees, blobs, search, limits."""

from __future__ import annotations

import base64
import collections
import functools
import hashlib
import json
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from playbook.rehearsal.world.model import Clock, FakeRepo, World
from playbook.rehearsal.world.wire import Reply, Service, Stats, json_reply
from playbook.scan.fingerprint import blob_sha1

CODE_SEARCH_MAX_BYTES = 384 * 1024
_TOKEN = re.compile(rb"[A-Za-z0-9_]+")


class GitHub(Service):
    """GitHub's REST API with its sliding-window rate limits and secondary limits."""

    def __init__(self, world: World, clock: Clock, stats: Stats, lock: threading.Lock) -> None:
        super().__init__(world, clock, stats, lock)
        self._windows: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._code_index: list[tuple[FakeRepo, str, bytes, frozenset[bytes]]] | None = None

    def __call__(
        self, path: str, query: dict[str, str], base: str, headers: Mapping[str, str]
    ) -> Reply:
        with self._lock:
            self.stats.github += 1
            number = self.stats.github
        if number in self.world.limits.secondary_at:
            return self._secondary()
        if path == "/search/code" and not headers.get("authorization"):
            msg = {
                "message": "Requires authentication",
                "documentation_url": "https://docs.github.com",
            }
            return json_reply(401, msg, "github.search_code")
        resource, reply = self._github_route(path, query, base)
        etag = '"' + hashlib.sha1(reply.body, usedforsecurity=False).hexdigest() + '"'
        if reply.status == 200:
            reply.headers["etag"] = etag
            if headers.get("if-none-match") == etag:
                with self._lock:
                    self.stats.not_modified += 1
                return Reply(304, b"", {"etag": etag, **self._quota(resource, False)}, reply.route)
        quota = self._quota(resource, True)
        if quota is None:
            return self._primary(resource, reply.route)
        reply.headers.update(quota)
        return reply

    def _limit_of(self, resource: str) -> tuple[int, float]:
        lim = self.world.limits
        return {
            "code_search": (lim.code_search, lim.code_search_window),
            "search": (lim.search, lim.search_window),
        }.get(resource, (lim.core, lim.core_window))

    def _quota(self, resource: str, spend: bool) -> Any:
        """Rate-limit headers after spending one request, or None when the window is full."""
        limit, window = self._limit_of(resource)
        now = self.clock()
        with self._lock:
            q = self._windows[resource]
            while q and q[0] <= now - window:
                q.popleft()
            if spend:
                if len(q) >= limit:
                    return None
                q.append(now)
            reset = (q[0] if q else now) + window
            return {
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": str(limit - len(q)),
                "x-ratelimit-used": str(len(q)),
                "x-ratelimit-reset": str(int(reset) + 1),
                "x-ratelimit-resource": resource,
            }

    def _primary(self, resource: str, route: str) -> Reply:
        limit, window = self._limit_of(resource)
        with self._lock:
            self.stats.limited += 1
            q = self._windows[resource]
            reset = (q[0] if q else self.clock()) + window
        msg = {
            "message": f"API rate limit exceeded for {resource}.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits",
        }
        return json_reply(
            403,
            msg,
            route,
            **{
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(reset) + 1),
                "x-ratelimit-resource": resource,
            },
        )

    def _secondary(self) -> Reply:
        lim = self.world.limits
        with self._lock:
            self.stats.limited += 1
            self.stats.secondary += 1
        msg = {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
            "before you try again.",
            "documentation_url": "https://docs.github.com/rest",
        }
        wait = lim.secondary_retry_after
        headers = {} if wait is None else {"retry-after": str(wait)}
        return json_reply(lim.secondary_status, msg, "github.secondary", **headers)

    def _github_route(self, path: str, query: dict[str, str], base: str) -> tuple[str, Reply]:
        if path == "/search/code":
            return "code_search", self._search_code(query, base)
        if path == "/search/repositories":
            return "search", self._search_repos(query, base)
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if m is None:
            return "core", json_reply(404, {"message": "Not Found"}, "github.other")
        repo = self.world.repo(f"{m[1]}/{m[2]}")
        sub = m[3] or ""
        route = "github." + (sub.split("/")[1] if sub else "repo")
        if route == "github.git":
            route = "github." + sub.split("/")[2]
        if repo is None or repo.deleted:
            return "core", json_reply(404, {"message": "Not Found"}, route)
        if repo.disabled:
            return "core", json_reply(
                451,
                {
                    "message": "Repository access blocked",
                    "block": {
                        "reason": "dmca",
                        "created_at": "2026-04-01T00:00:00Z",
                        "html_url": "https://github.com/github/dmca/blob/master/notice.md",
                    },
                },
                route,
            )
        return "core", self._repo_route(repo, sub, query, base, route)

    def _repo_route(
        self, repo: FakeRepo, sub: str, query: dict[str, str], base: str, route: str
    ) -> Reply:
        if sub == "":
            return json_reply(200, self._repojson_reply(repo, full=True), route)
        if sub == "/forks":
            forks = sorted(self.world.forks_of(repo.full_name), key=lambda r: -r.id)
            link = f"{base}/repos/{repo.full_name}/forks"
            return self._page([self._repojson_reply(r) for r in forks], query, link, route)
        m = re.fullmatch(r"/git/trees/([^/]+)", sub)
        if m:
            return self._tree(repo, base, unquote(m[1]), query, route)
        m = re.fullmatch(r"/commits/([^/]+)", sub)
        if m:
            if unquote(m[1]) not in (repo.default_branch, "HEAD"):
                return json_reply(404, {"message": "Not Found"}, route)
            tree_sha = git_tree(repo, base)["sha"]
            commit = {"tree": {"sha": tree_sha}, "message": "import"}
            return json_reply(200, {"sha": commit_sha(tree_sha), "commit": commit}, route)
        m = re.fullmatch(r"/git/blobs/([0-9a-f]{40})", sub)
        if m:
            for data in repo.files.values():
                if blob_sha1(data) == m[1]:
                    content = base64.encodebytes(data).decode()
                    return json_reply(
                        200,
                        {"sha": m[1], "size": len(data), "encoding": "base64", "content": content},
                        route,
                    )
        return json_reply(404, {"message": "Not Found"}, route)

    def _tree(
        self, repo: FakeRepo, base: str, ref: str, query: dict[str, str], route: str
    ) -> Reply:
        """A tree by branch, commit or tree SHA (the root's or any folder's), as GitHub lists
        it: one level, or every level with `recursive`, cut at the entry limit (`truncated`)."""
        recursive = query.get("recursive", "") not in ("", "0", "false")
        shas = folder_shas(repo)
        root_sha = shas[""]
        folder: str | None = ""
        if ref not in (repo.default_branch, "HEAD", commit_sha(root_sha), root_sha):
            folder = next((d for d, sha in shas.items() if sha == ref), None)
        if folder is None:
            return json_reply(404, {"message": "Not Found"}, route)
        limit = self.world.limits.tree_entries
        return json_reply(200, git_tree(repo, base, folder, recursive, limit), route)

    def _repojson_reply(self, repo: FakeRepo, full: bool = False) -> dict[str, Any]:
        owner = repo.full_name.split("/")[0]
        data: dict[str, Any] = {
            "id": repo.id,
            "name": repo.full_name.split("/")[1],
            "full_name": repo.full_name,
            "owner": {"login": owner, "type": "User"},
            "html_url": repo.url,
            "description": repo.description or None,
            "fork": repo.parent is not None,
            "created_at": repo.created_at,
            "pushed_at": repo.pushed_at or repo.created_at,
            "default_branch": repo.default_branch,
            "forks_count": len(self.world.forks_of(repo.full_name)),
            "stargazers_count": repo.stars,
            "visibility": "public",
        }
        if full and repo.parent:
            parent = self.world.repo(repo.parent)
            source = parent
            while source is not None and source.parent:
                source = self.world.repo(source.parent)
            if parent is not None and source is not None:
                data["parent"] = self._repojson_reply(parent)
                data["source"] = self._repojson_reply(source)
        return data

    def _indexed(self) -> list[tuple[FakeRepo, str, bytes, frozenset[bytes]]]:
        """Code search's index: default branches, files under 384 KB, forks only if starrier."""
        if self._code_index is None:
            index = []
            for repo in self.world.repos.values():
                parent = self.world.repo(repo.parent) if repo.parent else None
                if repo.host != "github" or (parent is not None and repo.stars <= parent.stars):
                    continue
                for path, data in repo.files.items():
                    if len(data) < CODE_SEARCH_MAX_BYTES:
                        tokens = frozenset(t.lower() for t in _TOKEN.findall(data))
                        index.append((repo, path, data, tokens))
            self._code_index = index
        return self._code_index

    def _search_code(self, query: dict[str, str], base: str) -> Reply:
        terms, quals = _parse_q(query.get("q", ""))
        if not terms and not quals:
            return json_reply(422, {"message": "Validation Failed"}, "github.search_code")
        hits = []
        forks = quals.get("fork")
        for repo, path, data, tokens in self._indexed():
            if repo.disabled or repo.deleted or not all(t in tokens for t in terms):
                continue
            # An indexed fork is returned only with fork:true (or fork:only), as on GitHub.
            if (repo.parent and forks not in ("true", "only")) or (
                forks == "only" and not repo.parent
            ):
                continue
            if "path" in quals and quals["path"].lower() not in path.lower():
                continue
            if "filename" in quals and path.rsplit("/", 1)[-1] != quals["filename"]:
                continue
            hits.append(
                {
                    "name": path.rsplit("/", 1)[-1],
                    "path": path,
                    "sha": blob_sha1(data),
                    "html_url": f"{repo.url}/blob/{repo.default_branch}/{path}",
                    "repository": {
                        k: v
                        for k, v in self._repojson_reply(repo).items()
                        if k not in ("default_branch", "forks_count", "created_at")
                    },
                    "score": 1.0,
                }
            )
        total, incomplete = len(hits), self._times_out(terms)
        return self._page(
            hits,
            query,
            f"{base}/search/code",
            "github.search_code",
            wrap=lambda c: {"total_count": total, "incomplete_results": incomplete, "items": c},
            cap=1000,
        )

    def _times_out(self, terms: list[bytes]) -> bool:
        """A search GitHub could not finish in time (`incomplete_results: true`)."""
        slow = self.world.limits.incomplete_terms
        return any(t.decode() in slow for t in terms)

    def _search_repos(self, query: dict[str, str], base: str) -> Reply:
        terms, quals = _parse_q(query.get("q", ""))
        after = quals.get("created", "").lstrip(">=")
        hits = []
        for repo in self.world.repos.values():
            if repo.host != "github" or repo.disabled or repo.deleted:
                continue
            if repo.parent and quals.get("fork") not in ("true", "only"):
                continue
            if after and repo.created_at[:10] < after[:10]:
                continue
            text = " ".join(
                [
                    repo.full_name,
                    repo.description,
                    repo.files.get("README.md", b"").decode(errors="replace"),
                ]
            ).lower()
            words = set(re.findall(r"[a-z0-9_]+", text))
            if all(t.decode() in words for t in terms):
                hits.append(self._repojson_reply(repo))
        total, incomplete = len(hits), self._times_out(terms)
        return self._page(
            hits,
            query,
            f"{base}/search/repositories",
            "github.search_repos",
            wrap=lambda c: {"total_count": total, "incomplete_results": incomplete, "items": c},
            cap=1000,
        )


def git_tree(
    repo: FakeRepo,
    base: str,
    folder: str = "",
    recursive: bool = True,
    limit: int | None = None,
) -> dict[str, Any]:
    """The tree of `folder` ("" for the root) as GitHub's git/trees answers it."""
    api = f"{base}/repos/{repo.full_name}/git"
    prefix = f"{folder}/" if folder else ""
    below = {p[len(prefix) :]: d for p, d in repo.files.items() if p.startswith(prefix)}
    dirs = sorted({"/".join(p.split("/")[: i + 1]) for p in below for i in range(p.count("/"))})
    if not recursive:
        dirs = [d for d in dirs if "/" not in d]
        below = {p: d for p, d in below.items() if "/" not in p}
    entries: list[dict[str, Any]] = []
    shas = folder_shas(repo)
    for d in dirs:
        sha = shas[prefix + d]
        entries.append(
            {"path": d, "mode": "040000", "type": "tree", "sha": sha, "url": f"{api}/trees/{sha}"}
        )
    for path, data in sorted(below.items()):
        sha = _blob_sha(data)
        entries.append(
            {
                "path": path,
                "mode": "100644",
                "type": "blob",
                "sha": sha,
                "size": len(data),
                "url": f"{api}/blobs/{sha}",
            }
        )
    entries.sort(key=lambda e: str(e["path"]))
    digest = shas[folder]
    truncated = limit is not None and len(entries) > limit
    if truncated:
        entries = entries[:limit]
    return {"sha": digest, "url": f"{api}/trees/{digest}", "tree": entries, "truncated": truncated}


@functools.lru_cache(maxsize=1 << 16)
def _blob_sha(data: bytes) -> str:
    return blob_sha1(data)


def folder_shas(repo: FakeRepo) -> dict[str, str]:
    """Every folder's tree SHA ("" for the root). Git addresses content: the same files give
    the same tree SHA in every repository."""
    content: dict[str, list[tuple[str, str]]] = {"": []}
    for path, data in repo.files.items():
        sha = _blob_sha(data)
        parts = path.split("/")
        for i in range(len(parts)):
            folder = "/".join(parts[:i])
            content.setdefault(folder, []).append(("/".join(parts[i:]), sha))
    return {
        folder: hashlib.sha1(json.dumps(sorted(items)).encode(), usedforsecurity=False).hexdigest()
        for folder, items in content.items()
    }


def commit_sha(tree_sha: str) -> str:
    """One commit per tree: an unmodified fork shares its parent's commit, as on GitHub."""
    return hashlib.sha1(f"commit {tree_sha}".encode(), usedforsecurity=False).hexdigest()


def _parse_q(q: str) -> tuple[list[bytes], dict[str, str]]:
    """Search terms (punctuation ignored, lowercased) and `key:value` qualifiers."""
    terms: list[bytes] = []
    quals: dict[str, str] = {}
    for word in q.split():
        key, sep, value = word.partition(":")
        if sep and key in ("path", "filename", "in", "created", "fork", "language", "repo"):
            quals[key] = value.strip('"')
        else:
            terms += [t.lower() for t in _TOKEN.findall(word.encode())]
    return terms, quals
