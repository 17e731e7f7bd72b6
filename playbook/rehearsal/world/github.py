"""GitHub's REST API as the world plays it: repositories, forks, trees, blobs, search, limits.

A repository's files are its default branch's commit (one commit per tree). A commit once
answered (by GET /commits/{ref} or by GraphQL's `defaultBranchRef`) stays listable by its commit
id and its tree oid after the branch moves (git keeps it, as GitHub does): a push replaces a
repository's `files` with a new dict, and the old one is what such a tree request lists.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import functools
import hashlib
import json
import re
import threading
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from playbook.rehearsal.world.model import Clock, FakeRepo, World
from playbook.rehearsal.world.wire import Reply, Service, Stats, json_reply
from playbook.scan.fingerprint import blob_sha1

CODE_SEARCH_MAX_BYTES = 384 * 1024
DOCS = "https://docs.github.com/rest"
_TOKEN = re.compile(rb"[A-Za-z0-9_]+")


class GitHub(Service):
    """GitHub's REST API with its sliding-window rate limits and secondary limits."""

    def __init__(self, world: World, clock: Clock, stats: Stats, lock: threading.Lock) -> None:
        super().__init__(world, clock, stats, lock)
        self._windows: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._code_index: list[tuple[FakeRepo, str, bytes, frozenset[bytes]]] | None = None
        # (full_name, commit id or tree oid) -> the files of a commit once answered
        self.kept: dict[tuple[str, str], dict[str, bytes]] = {}

    def keep(self, repo: FakeRepo, tree_sha: str) -> None:
        """The default branch's commit was answered: its tree stays listable by either id."""
        if (repo.full_name, tree_sha) not in self.kept:
            self.kept[(repo.full_name, tree_sha)] = repo.files
            self.kept[(repo.full_name, commit_sha(tree_sha))] = repo.files

    def __call__(
        self, path: str, query: dict[str, str], base: str, headers: Mapping[str, str]
    ) -> Reply:
        limited = self.count_request()
        if limited is not None:
            return limited
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

    def count_request(self) -> Reply | None:
        """Count one GitHub request, REST or GraphQL (they share the secondary limits); the
        secondary limit's answer when this request's number is one of `secondary_at`."""
        with self._lock:
            self.stats.github += 1
            number = self.stats.github
        return self._secondary() if number in self.world.limits.secondary_at else None

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
            return json_reply(200, self._repojson_reply(repo, full=True, base=base), route)
        if not repo.files and sub.startswith(("/git/", "/commits/")):
            msg = {"message": "Git Repository is empty.", "documentation_url": DOCS}
            return json_reply(409, msg, route)
        if sub == "/forks":
            forks = sorted(self.world.forks_of(repo.full_name), key=lambda r: -r.id)
            link = f"{base}/repos/{repo.full_name}/forks"
            items = [self._repojson_reply(r, base=base) for r in forks]
            return self._page(items, query, link, route)
        m = re.fullmatch(r"/git/trees/([^/]+)", sub)
        if m:
            return self._tree(repo, base, unquote(m[1]), query, route)
        m = re.fullmatch(r"/commits/([^/]+)", sub)
        if m:
            if unquote(m[1]) not in (repo.default_branch, "HEAD"):
                return json_reply(404, {"message": "Not Found"}, route)
            answer = _commit_json(repo, base)
            self.keep(repo, answer["commit"]["tree"]["sha"])
            return json_reply(200, answer, route)
        m = re.fullmatch(r"/git/blobs/([0-9a-f]{40})", sub)
        if m:
            for data in repo.files.values():
                if _blob_sha(data) == m[1]:
                    content = base64.encodebytes(data).decode()
                    blob = {
                        "sha": m[1],
                        "node_id": f"B_{m[1][:16]}",
                        "url": f"{base}/repos/{repo.full_name}/git/blobs/{m[1]}",
                        "size": len(data),
                        "encoding": "base64",
                        "content": content,
                    }
                    return json_reply(200, blob, route)
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
        if folder is None and (repo.full_name, ref) in self.kept:  # a commit the branch left
            repo = dataclasses.replace(repo, files=self.kept[(repo.full_name, ref)])
            shas = folder_shas(repo)
            folder = "" if ref in (shas[""], commit_sha(shas[""])) else None
        if folder is None:
            return json_reply(404, {"message": "Not Found"}, route)
        limit = self.world.limits.tree_entries
        return json_reply(200, git_tree(repo, base, folder, recursive, limit, shas), route)

    def _repojson_reply(self, repo: FakeRepo, full: bool = False, base: str = "") -> dict[str, Any]:
        """A repository as GitHub's listings give it (`minimal-repository` and the fields the
        listings add); `full` as GET /repos/{owner}/{repo} gives it (`full-repository`)."""
        pushed = repo.pushed_at or repo.created_at
        stars = repo.stars
        forks = len(self.world.forks_of(repo.full_name))
        data: dict[str, Any] = {
            **_minimal_repo(repo, base),
            "created_at": repo.created_at,
            "updated_at": pushed,
            "pushed_at": pushed,
            "clone_url": f"{repo.url}.git",
            "git_url": f"git://{repo.url.split('://', 1)[1]}.git",
            "ssh_url": f"git@github.com:{repo.full_name}.git",
            "svn_url": repo.url,
            "homepage": None,
            "size": sum(len(d) for d in repo.files.values()) // 1024,
            "stargazers_count": stars,
            "watchers_count": stars,
            "watchers": stars,
            "language": "TypeScript",
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": forks,
            "forks": forks,
            "mirror_url": None,
            "archived": False,
            "disabled": repo.disabled,
            "open_issues_count": 0,
            "open_issues": 0,
            "license": None,
            "visibility": "public",
            "default_branch": repo.default_branch,
        }
        if full:
            data["network_count"] = forks
            data["subscribers_count"] = 0
        if full and repo.parent:
            parent = self.world.repo(repo.parent)
            source = parent
            while source is not None and source.parent:
                source = self.world.repo(source.parent)
            if parent is not None and source is not None:
                data["parent"] = self._repojson_reply(parent, base=base)
                data["source"] = self._repojson_reply(source, base=base)
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
            sha = _blob_sha(data)
            api = f"{base}/repos/{repo.full_name}"
            hits.append(
                {
                    "name": path.rsplit("/", 1)[-1],
                    "path": path,
                    "sha": sha,
                    "url": f"{api}/contents/{path}?ref={sha}",
                    "git_url": f"{api}/git/blobs/{sha}",
                    "html_url": f"{repo.url}/blob/{repo.default_branch}/{path}",
                    # Code search gives the short form of each repository.
                    "repository": _minimal_repo(repo, base),
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
                hits.append({**self._repojson_reply(repo, base=base), "score": 1.0})
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
    shas: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The tree of `folder` ("" for the root) as GitHub's git/trees answers it; `shas` is
    folder_shas(repo) when the caller has it already."""
    api = f"{base}/repos/{repo.full_name}/git"
    prefix = f"{folder}/" if folder else ""
    below = {p[len(prefix) :]: d for p, d in repo.files.items() if p.startswith(prefix)}
    dirs = sorted({"/".join(p.split("/")[: i + 1]) for p in below for i in range(p.count("/"))})
    if not recursive:
        dirs = [d for d in dirs if "/" not in d]
        below = {p: d for p, d in below.items() if "/" not in p}
    entries: list[dict[str, Any]] = []
    shas = shas if shas is not None else folder_shas(repo)
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


URL_TEMPLATES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
    "url": "",
}


def _minimal_repo(repo: FakeRepo, base: str) -> dict[str, Any]:
    """A repository as GitHub's `minimal-repository` gives it (what code search items carry;
    the listings add to it)."""
    owner, name = repo.full_name.split("/")
    return {
        "id": repo.id,
        "node_id": f"R_{repo.id}",
        "name": name,
        "full_name": repo.full_name,
        "owner": user_json(owner, base),
        "private": False,
        "html_url": repo.url,
        "description": repo.description or None,
        "fork": repo.parent is not None,
        **repo_urls(repo.full_name, base),
    }


def repo_urls(full_name: str, base: str) -> dict[str, str]:
    api = f"{base}/repos/{full_name}"
    return {key: api + tail for key, tail in URL_TEMPLATES.items()}


def user_json(login: str, base: str) -> dict[str, Any]:
    """An account as GitHub's `simple-user` gives it."""
    api = f"{base}/users/{login}"
    uid = zlib.crc32(login.encode())
    return {
        "login": login,
        "id": uid,
        "node_id": f"U_{uid}",
        "avatar_url": f"{base}/avatars/u/{uid}",
        "gravatar_id": "",
        "url": api,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "User",
        "site_admin": False,
    }


def _commit_json(repo: FakeRepo, base: str) -> dict[str, Any]:
    """The commit the default branch points at, as GET /repos/{o}/{r}/commits/{ref} gives it."""
    api = f"{base}/repos/{repo.full_name}"
    tree_sha = folder_shas(repo)[""]
    sha = commit_sha(tree_sha)
    when = repo.pushed_at or repo.created_at
    person = {"name": "importer", "email": "importer@example.invalid", "date": when}
    return {
        "sha": sha,
        "node_id": f"C_{sha[:16]}",
        "url": f"{api}/commits/{sha}",
        "html_url": f"{repo.url}/commit/{sha}",
        "comments_url": f"{api}/commits/{sha}/comments",
        "commit": {
            "url": f"{api}/git/commits/{sha}",
            "author": person,
            "committer": person,
            "message": "import",
            "comment_count": 0,
            "tree": {"sha": tree_sha, "url": f"{api}/git/trees/{tree_sha}"},
        },
        "author": None,
        "committer": None,
        "parents": [],
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
