"""Fork networks: each mirror's network root, and whether a copy's network holds non-copies.

The notices step uses `network_has_non_copies` to refuse the network-wide statement ("all or
most forks infringe to the same extent as the parent") whenever the network holds a repository
not proven a copy: the 2.1.88 takedown disabled legitimate forks of the vendor's own repository
through exactly that sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from playbook.mirrors.model import Mirror, Verdict


def network_root(mirror: Mirror, by_url: dict[str, Mirror]) -> str:
    """The topmost known ancestor (the host's own `source` wins when it named one)."""
    if mirror.network_root:
        return mirror.network_root
    seen = {mirror.url}
    current = mirror
    while current.parent and current.parent not in seen:
        seen.add(current.parent)
        parent = by_url.get(current.parent)
        if parent is None:
            return current.parent
        if parent.network_root:
            return parent.network_root
        current = parent
    return current.url


def annotate(mirrors: Iterable[Mirror]) -> list[Mirror]:
    """Set network_root on every repository, and network_has_non_copies on every copy.

    True: some repository of the network is not a verified copy (official, unrelated, partial,
    disabled, unreachable or unverified). False: every repository of the network is a copy and
    every fork listing in it was read to the end. None: the network was not fully listed.
    """
    items = list(mirrors)
    by_url = {m.url: m for m in items}
    roots = {m.url: network_root(m, by_url) for m in items if m.kind == "repo"}
    members: dict[str, list[Mirror]] = {}
    for m in items:
        if m.url in roots:
            members.setdefault(roots[m.url], []).append(m)
    out = []
    for m in items:
        if m.url not in roots:
            out.append(m)
            continue
        root = roots[m.url]
        flag = _warning(members[root], root, by_url) if m.verdict is Verdict.COPY else None
        out.append(replace(m, network_root=root, network_has_non_copies=flag))
    return out


def _warning(group: list[Mirror], root: str, by_url: dict[str, Mirror]) -> bool | None:
    if root not in by_url or any(m.verdict is not Verdict.COPY for m in group):
        return True
    complete = all(m.forks_listed or m.forks_count == 0 for m in group)
    return False if complete else None
