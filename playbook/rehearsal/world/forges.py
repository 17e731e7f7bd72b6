"""GitLab's and Forgejo's (Codeberg's) project search, branches and trees as the world plays them.

A repository's files are its default branch's commit (one commit per tree, as on the world's
GitHub). A commit once answered by a branch endpoint stays listable by its id after the branch
moves (git keeps it), so a tree asked for at that commit lists the files it held then.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from playbook.rehearsal.world.github import commit_sha, folder_shas, git_tree
from playbook.rehearsal.world.model import Clock, FakeRepo, World
from playbook.rehearsal.world.wire import Reply, Service, Stats, json_reply
from playbook.scan.fingerprint import blob_sha1


def head(repo: FakeRepo) -> str:
    """The commit id the default branch points at."""
    return commit_sha(folder_shas(repo)[""])


class Forges(Service):
    """GitLab (`/api/v4`) and Forgejo (`/api/v1`) search, branches and repository trees."""

    def __init__(self, world: World, clock: Clock, stats: Stats, lock: threading.Lock) -> None:
        super().__init__(world, clock, stats, lock)
        # (host, full_name, commit id) -> the files of a commit a branch endpoint answered with
        self._commits: dict[tuple[str, str, str], dict[str, bytes]] = {}

    def _branch(self, repo: FakeRepo, name: str) -> str | None:
        """The commit `name` points at (kept for later tree requests), None for no such branch."""
        if not repo.files or name != repo.default_branch:
            return None
        sha = head(repo)
        self._commits[(repo.host, repo.full_name, sha)] = dict(repo.files)
        return sha

    def _at(self, repo: FakeRepo, ref: str) -> FakeRepo | None:
        """The repository as of `ref` (its default branch, HEAD, or a commit id), or None."""
        if ref in (repo.default_branch, "HEAD", head(repo)):
            return repo
        files = self._commits.get((repo.host, repo.full_name, ref))
        return None if files is None else dataclasses.replace(repo, files=files)

    def _codeberg_repo(self, owner: str, name: str) -> FakeRepo | None:
        repo = self.world.repo(f"{owner}/{name}", "codeberg")
        return None if repo is None or repo.deleted else repo

    def _forge_repos(self, host: str, text: str) -> list[FakeRepo]:
        words = re.findall(r"[a-z0-9_]+", text.lower())
        out = []
        for repo in self.world.repos.values():
            hay = f"{repo.full_name} {repo.description}".lower()
            if repo.host == host and not repo.deleted and all(w in hay for w in words):
                out.append(repo)
        return out

    def gitlab(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        path = path.removeprefix("/api/v4")
        if path == "/projects":
            items = [
                {
                    "id": r.id,
                    "path_with_namespace": r.full_name,
                    "web_url": r.url,
                    "default_branch": r.default_branch if r.files else None,  # none when empty
                    "description": r.description,
                    "created_at": r.created_at,
                    "forked_from_project": None,
                }
                for r in self._forge_repos("gitlab", q.get("search", ""))
            ]
            return self._page(items, q, f"{base}/api/v4/projects", "gitlab.search")
        m = re.fullmatch(r"/projects/(\d+)/repository/(tree|branches/[^/]+)", path)
        repo = next(
            (
                r
                for r in self.world.repos.values()
                if m and r.host == "gitlab" and r.id == int(m[1]) and not r.deleted
            ),
            None,
        )
        if repo is None or m is None:
            return json_reply(404, {"message": "404 Project Not Found"}, "gitlab.tree")
        if m[2].startswith("branches/"):
            name = unquote(m[2].removeprefix("branches/"))
            sha = self._branch(repo, name)
            if sha is None:
                return json_reply(404, {"message": "404 Branch Not Found"}, "gitlab.branch")
            return json_reply(200, _gitlab_branch(repo, name, sha), "gitlab.branch")
        at = self._at(repo, q.get("ref") or repo.default_branch)
        if at is None:
            return json_reply(404, {"message": "404 Tree Not Found"}, "gitlab.tree")
        entries = [
            {
                "id": blob_sha1(d),
                "name": p.rsplit("/", 1)[-1],
                "type": "blob",
                "path": p,
                "mode": "100644",
            }
            for p, d in sorted(at.files.items())
        ]
        return self._page(
            entries, q, f"{base}/api/v4/projects/{repo.id}/repository/tree", "gitlab.tree"
        )

    def codeberg(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        path = path.removeprefix("/api/v1")
        if path == "/repos/search":
            items = [
                {
                    "id": r.id,
                    "full_name": r.full_name,
                    "html_url": r.url,
                    "default_branch": r.default_branch,
                    "description": r.description,
                    "fork": r.parent is not None,
                    "created_at": r.created_at,
                }
                for r in self._forge_repos("codeberg", q.get("q", ""))
            ]
            limit = int(q.get("limit", "10"))
            return json_reply(
                200,
                {"ok": True, "data": items[:limit]},
                "codeberg.search",
                **{"x-total-count": str(len(items))},
            )
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/branches/([^/]+)", path)
        if m:
            repo = self._codeberg_repo(m[1], m[2])
            name = unquote(m[3])
            sha = self._branch(repo, name) if repo is not None else None
            if repo is None or sha is None:
                msg = {"message": "The target couldn't be found.", "url": DOCS_FORGEJO}
                return json_reply(404, msg, "codeberg.branch")
            return json_reply(200, _forgejo_branch(repo, name, sha), "codeberg.branch")
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/git/trees/([^/]+)", path)
        repo = self._codeberg_repo(m[1], m[2]) if m else None
        at = self._at(repo, unquote(m[3])) if repo is not None and m is not None else None
        if at is None:
            return json_reply(404, {"message": "The target couldn't be found."}, "codeberg.tree")
        listed = git_tree(at, base)
        tree = listed["tree"]
        per_page = int(q.get("per_page", "1000"))
        page = int(q.get("page", "1"))
        chunk = tree[(page - 1) * per_page : page * per_page]
        return json_reply(
            200,
            {
                "sha": listed["sha"],
                "url": listed["url"],
                "tree": chunk,
                "page": page,
                "truncated": page * per_page < len(tree),
                "total_count": len(tree),
            },
            "codeberg.tree",
        )

    # npm (search, packuments, tarballs) ----------------------------------------------------------


DOCS_FORGEJO = "https://codeberg.org/api/swagger"


def _gitlab_branch(repo: FakeRepo, name: str, sha: str) -> dict[str, Any]:
    """GET /projects/:id/repository/branches/:branch as GitLab answers it."""
    when = repo.pushed_at or repo.created_at
    return {
        "name": name,
        "merged": False,
        "protected": True,
        "default": name == repo.default_branch,
        "developers_can_push": False,
        "developers_can_merge": False,
        "can_push": False,
        "web_url": f"{repo.url}/-/tree/{name}",
        "commit": {
            "id": sha,
            "short_id": sha[:8],
            "created_at": when,
            "parent_ids": [],
            "title": "import",
            "message": "import",
            "author_name": "importer",
            "author_email": "importer@example.invalid",
            "authored_date": when,
            "committer_name": "importer",
            "committer_email": "importer@example.invalid",
            "committed_date": when,
            "trailers": {},
            "web_url": f"{repo.url}/-/commit/{sha}",
        },
    }


def _forgejo_branch(repo: FakeRepo, name: str, sha: str) -> dict[str, Any]:
    """GET /repos/{owner}/{repo}/branches/{branch} as Forgejo answers it."""
    person = {"name": "importer", "email": "importer@example.invalid", "username": ""}
    return {
        "name": name,
        "commit": {
            "id": sha,
            "message": "import\n",
            "url": f"{repo.url}/commit/{sha}",
            "author": person,
            "committer": person,
            "verification": None,
            "timestamp": repo.pushed_at or repo.created_at,
            "added": None,
            "removed": None,
            "modified": None,
        },
        "protected": False,
        "required_approvals": 0,
        "enable_status_check": False,
        "status_check_contexts": [],
        "user_can_push": False,
        "user_can_merge": False,
        "effective_branch_protection_name": "",
    }
