"""The npm registry's search, packuments and tarballs as the world plays them."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import re
import tarfile
from collections.abc import Mapping
from urllib.parse import unquote

from playbook.rehearsal.world.model import FakePackage
from playbook.rehearsal.world.wire import Reply, Service, json_reply
from playbook.spec import default_tarball_url, unescape_name


class Npm(Service):
    """The registry's search endpoint, packuments and tarballs of the world's packages."""

    def __call__(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        if path == "/-/v1/search":
            words = re.findall(r"[a-z0-9_]+", q.get("text", "").lower())
            objects = [
                {
                    "package": {
                        "name": p.name,
                        "version": p.version,
                        "description": p.description,
                        "links": {},
                    },
                    "score": {"final": 0.5},
                    "searchScore": 1.0,
                }
                for p in self.world.packages
                if all(w in f"{p.name} {p.description}".lower() for w in words)
            ]
            size = int(q.get("size", "20"))
            return json_reply(
                200,
                {"objects": objects[:size], "total": len(objects), "time": "2026-04-01T00:00:00Z"},
                "npm.search",
            )
        m = re.fullmatch(r"/(.+)/-/([^/]+)\.tgz", path)
        if m:
            pkg = self._npm_package(unquote(m[1]))
            return (
                Reply(
                    200,
                    package_tarball(pkg.files),
                    {"content-type": "application/octet-stream"},
                    "npm.tarball",
                )
                if pkg
                else json_reply(404, {"error": "not found"}, "npm")
            )
        pkg = self._npm_package(unquote(path.lstrip("/")))
        if pkg is None:
            return json_reply(404, {"error": "Not found"}, "npm.packument")
        tarball = default_tarball_url(base, pkg.name, pkg.version)
        return json_reply(
            200,
            {
                "name": pkg.name,
                "dist-tags": {"latest": pkg.version},
                "versions": {
                    pkg.version: {
                        "name": pkg.name,
                        "version": pkg.version,
                        "dist": _dist(tarball, pkg.files),
                    }
                },
            },
            "npm.packument",
        )

    def _npm_package(self, name: str) -> FakePackage | None:
        return next((p for p in self.world.packages if p.name == unescape_name(name)), None)


def _dist(tarball: str, files: Mapping[str, bytes]) -> dict[str, str]:
    data = package_tarball(files)
    sri = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    return {"tarball": tarball, "shasum": sha1, "integrity": sri}


def package_tarball(files: Mapping[str, bytes]) -> bytes:
    """A .tgz with `files` under `package/`, as npm packs it: the same bytes each time.

    Both mtimes are fixed, the tar entries' and the gzip header's: `tarfile`'s "w:gz" stamps the
    current second into the gzip header, so a packument's integrity and the tarball served a
    second later disagreed whenever the clock ticked between them.
    """
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(data)
            info.mtime = 499162500
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
