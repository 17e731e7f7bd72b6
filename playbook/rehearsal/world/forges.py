"""GitLab's and Forgejo's (Codeberg's) project search and trees as the world plays them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from playbook.rehearsal.world.github import git_tree
from playbook.rehearsal.world.model import FakeRepo
from playbook.rehearsal.world.wire import Reply, Service, json_reply
from playbook.scan.fingerprint import blob_sha1


class Forges(Service):
    """GitLab (`/api/v4`) and Forgejo (`/api/v1`) search and repository trees."""

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
                    "default_branch": r.default_branch,
                    "description": r.description,
                    "created_at": r.created_at,
                    "forked_from_project": None,
                }
                for r in self._forge_repos("gitlab", q.get("search", ""))
            ]
            return self._page(items, q, f"{base}/api/v4/projects", "gitlab.search")
        m = re.fullmatch(r"/projects/(\d+)/repository/tree", path)
        repo = next(
            (
                r
                for r in self.world.repos.values()
                if m and r.host == "gitlab" and r.id == int(m[1])
            ),
            None,
        )
        if repo is None:
            return json_reply(404, {"message": "404 Project Not Found"}, "gitlab.tree")
        entries = [
            {
                "id": blob_sha1(d),
                "name": p.rsplit("/", 1)[-1],
                "type": "blob",
                "path": p,
                "mode": "100644",
            }
            for p, d in sorted(repo.files.items())
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
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/git/trees/([^/]+)", path)
        repo = self.world.repo(f"{m[1]}/{m[2]}", "codeberg") if m else None
        if repo is None or m is None or m[3] not in (repo.default_branch, "HEAD"):
            return json_reply(404, {"message": "The target couldn't be found."}, "codeberg.tree")
        tree = git_tree(repo, base)["tree"]
        per_page = int(q.get("per_page", "1000"))
        page = int(q.get("page", "1"))
        chunk = tree[(page - 1) * per_page : page * per_page]
        return json_reply(
            200,
            {
                "sha": "0" * 40,
                "tree": chunk,
                "page": page,
                "truncated": page * per_page < len(tree),
                "total_count": len(tree),
            },
            "codeberg.tree",
        )

    # npm (search, packuments, tarballs) ----------------------------------------------------------
