"""A fork network at the real incident's scale, planted under one copy with ground truth.

In the real incident GitHub disabled a network of about 8,100 forks. `plant_network` adds `forks`
forks under `root` (a planted copy): most are unmodified (the root's tree exactly), 1% removed the
leak and kept their own files (`cleaned`: never a copy), 1% kept the leak and added changes
(`changed`: a copy with its own tree); about 10% are forks of forks, down to a third level, and a
fork of a cleaned or changed fork carries its parent's tree. Every fork is labelled with the
verdict the hunt must reach, and copies go into `world.planted`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from playbook.rehearsal.world.model import FakeRepo, World

CLEANED_SHARE = 0.01
CHANGED_SHARE = 0.01
SECOND_LEVEL_SHARE = 0.09
THIRD_LEVEL_SHARE = 0.01


@dataclass(frozen=True)
class Network:
    root: str
    forks: tuple[str, ...]  # full names, in the order planted
    cleaned: frozenset[str]
    changed: frozenset[str]

    @property
    def copies(self) -> frozenset[str]:
        return frozenset(self.forks) - self.cleaned


def plant_network(
    world: World, root: str, forks: int, *, seed: int = 0, pushed_at: str | None = None
) -> Network:
    """Add `forks` forks under `root` (see the module docstring); returns who is what."""
    parent_repo = world.repo(root)
    if parent_repo is None:
        raise KeyError(root)
    rng = random.Random(seed)
    when = pushed_at or parent_repo.created_at
    third = max(1, int(forks * THIRD_LEVEL_SHARE))
    second = max(1, int(forks * SECOND_LEVEL_SHARE))
    first = forks - second - third
    n_cleaned = max(1, round(forks * CLEANED_SHARE))
    n_changed = max(1, round(forks * CHANGED_SHARE))
    kinds = ["cleaned"] * n_cleaned + ["changed"] * n_changed
    kinds += ["same"] * (forks - len(kinds))
    rng.shuffle(kinds)
    leak = {p: d for p, d in parent_repo.files.items() if p.startswith("src/")}
    planted: list[str] = []
    cleaned: set[str] = set()
    changed: set[str] = set()
    levels: list[list[FakeRepo]] = [[parent_repo]]
    for level, count in enumerate((first, second, third), start=1):
        parents = levels[0]
        if level > 1:  # forks of a few cleaned, a few changed and many unmodified forks
            above = levels[-1]
            odd = [r for r in above if r.full_name in cleaned][:1]
            odd += [r for r in above if r.full_name in changed][:1]
            parents = (odd + [r for r in above if r not in odd])[: max(4, count // 10)]
        made: list[FakeRepo] = []
        for i in range(count):
            parent = parents[i % len(parents)]
            kind = kinds[len(planted)]
            owner = f"fork{len(planted)}l{level}"
            name = f"{owner}/{root.split('/', 1)[1]}"
            files = dict(parent.files)
            if kind == "cleaned":
                files = {p: d for p, d in files.items() if not p.startswith("src/")}
                files[f"src/{owner}.ts"] = f"export const own = '{name}';\n".encode()
                files["README.md"] = b"# rewritten without the leaked sources\n"
            elif kind == "changed":
                files[f"notes/{owner}.md"] = f"my notes ({name})\n".encode()
            repo = world.add(
                FakeRepo(name, files, parent=parent.full_name, created_at=when, pushed_at=when)
            )
            if all(files.get(p) == d for p, d in leak.items()):
                repo.label = "copy"
                world.planted[repo.url] = "copy"
                if files != parent_repo.files:
                    changed.add(name)
            else:
                repo.label = "fork-not-copy"
                cleaned.add(name)
            planted.append(name)
            made.append(repo)
        levels.append(made)
    return Network(root, tuple(planted), frozenset(cleaned), frozenset(changed))
