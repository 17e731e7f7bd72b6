"""Software Heritage's origin search as the world plays it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote

from playbook.rehearsal.world.wire import Reply, Service, json_reply


class SoftwareHeritage(Service):
    """`/origin/search/<pattern>/` over the world's archived origins."""

    def __call__(self, path: str, q: dict[str, str], base: str, h: Mapping[str, str]) -> Reply:
        m = re.fullmatch(r"/origin/search/([^/]+)/?", path)
        if m is None:
            return json_reply(404, {"exception": "NotFoundExc", "reason": "not found"}, "swh")
        pattern = unquote(m[1]).lower()
        hits = [
            {"url": u, "origin_visits_url": f"{base}/origin/{quote(u, safe='')}/visits/"}
            for u in self.world.swh_origins
            if pattern in u.lower()
        ]
        return json_reply(
            200,
            hits[: int(q.get("limit", "50"))],
            "swh",
            **{"x-ratelimit-remaining": "119", "x-ratelimit-limit": "120"},
        )

    # GitLab and Forgejo --------------------------------------------------------------------------
