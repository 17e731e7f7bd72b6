"""The CDNs as the world plays them: jsDelivr and unpkg files, jsDelivr's purge API."""

from __future__ import annotations

from collections.abc import Mapping

from playbook.rehearsal.world.wire import Reply, Service, json_reply


class Cdn(Service):
    """jsDelivr and unpkg serving the leaked version's files, and jsDelivr's purge endpoint."""

    def _cdn_file(self, spec_path: str, route: str) -> Reply:
        name, version, file = _split_cdn(spec_path)
        if (
            name == self.world.package
            and version == self.world.version
            and file in (self.world.cdn_files)
        ):
            return Reply(
                200,
                self.world.cdn_files[file],
                {
                    "content-type": "application/octet-stream",
                    "cache-control": "public, max-age=31536000, immutable",
                },
                route,
            )
        return Reply(404, b"Not found", {"content-type": "text/plain"}, route)

    def jsdelivr(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        return self._cdn_file(path.removeprefix("/npm/"), "jsdelivr")

    def unpkg(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        return self._cdn_file(path.lstrip("/"), "unpkg")

    def purge(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        with self._lock:
            self.stats.purges.append(path)
        return json_reply(
            200,
            {"id": "purge-1", "status": "finished", "paths": {path: {"throttled": False}}},
            "jsdelivr_purge",
        )

    # Software Heritage ---------------------------------------------------------------------------


def _split_cdn(spec_path: str) -> tuple[str, str, str]:
    """`@scope/name@1.2.3/dir/file` -> (name, version, file)."""
    scoped = spec_path.startswith("@")
    head, _, rest = spec_path.partition("/")
    if scoped:
        second, _, rest = rest.partition("/")
        head = f"{head}/{second}"
    name, _, version = head.rpartition("@")
    return name, version, rest
