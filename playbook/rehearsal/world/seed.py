"""The standard seeded world: copies, forks, variants and innocents planted with ground truth."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from playbook.rehearsal.world.model import REFERENCE_TIME, FakePackage, FakeRepo, World
from playbook.scan.fingerprint import is_first_party
from playbook.spec import bare_name


def plant(
    world: World,
    files: Mapping[str, bytes],
    seed: int,
    official_forks: int,
    published_at: str | None,
) -> None:
    """Plant the standard world into `world`; its clock is anchored at `published_at` or now."""
    _Seeder(world, dict(files), random.Random(seed), official_forks).plant()
    anchor = _parse_time(published_at) if published_at else datetime.now(UTC)
    _shift(world, anchor.replace(microsecond=0) - _parse_time(REFERENCE_TIME))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _shift(world: World, delta: timedelta) -> None:
    def moved(text: str) -> str:
        return (_parse_time(text) + delta).isoformat().replace("+00:00", "Z")

    world.published_at = moved(world.published_at)
    for repo in world.repos.values():
        repo.created_at = moved(repo.created_at)
        repo.pushed_at = moved(repo.pushed_at) if repo.pushed_at else None


def _vendor(package: str) -> str:
    return package[1:].split("/", 1)[0] if package.startswith("@") else f"{package}-dev"


class _Seeder:
    """Plants the standard world. Every planted copy gets `planted[url] = expected verdict`."""

    def __init__(
        self, world: World, files: dict[str, bytes], rng: random.Random, official_forks: int
    ) -> None:
        self.official_forks = official_forks
        self.w = world
        self.rng = rng
        self.first = {p: d for p, d in sorted(files.items()) if is_first_party(p)}
        self.all = dict(sorted(files.items()))
        self.bare = bare_name(world.package)
        self.vendor = _vendor(world.package)

    def plant(self) -> None:
        self._official()
        self._copies()
        self._deep_forks()
        self._variants()
        self._innocents()
        self._elsewhere()

    def _noise_files(self, n: int, tag: str) -> dict[str, bytes]:
        return {
            f"src/{tag}{i}.ts": (
                f"// {tag} module {i}\nexport function {tag}Helper{i}(x: number) {{\n"
                f"  return x * {self.rng.randint(2, 999)} + {i};\n}}\n"
            ).encode()
            for i in range(n)
        }

    def _copy(self, name: str, label: str, files: Mapping[str, bytes], **kw: Any) -> FakeRepo:
        repo = self.w.add(FakeRepo(name, dict(files), label=label, **kw))
        if label in ("copy", "partial", "disabled"):
            self.w.planted[repo.url] = label
        return repo

    def _official(self) -> None:
        """The vendor's public repository: its own code plus two files the leak also holds."""
        shared = dict(list(self.first.items())[:2])
        own = {**self._noise_files(8, "official"), **shared, "README.md": b"# official\n"}
        name = f"{self.vendor}/{self.bare}"
        self.w.official_orgs = (self.vendor,)
        self.w.official_repositories = (name,)
        readme = f"# {self.bare}\nThe public home of {self.w.package}.\n".encode()
        self.w.add(
            FakeRepo(
                name,
                {**own, "README.md": readme},
                description=f"{self.w.package}",
                stars=900,
                label="official",
                created_at="2024-01-01T00:00:00Z",
            )
        )
        for i in range(self.official_forks):
            fork = self.w.add(
                FakeRepo(
                    f"dev{i}/{self.bare}",
                    dict(own),
                    parent=name,
                    label="legit-fork",
                    created_at=f"2025-{1 + i % 12:02d}-01T00:00:00Z",
                    # Half were pushed to after the leak: their content must be compared.
                    pushed_at="2026-04-02T00:00:00Z" if i % 2 else None,
                )
            )
            if i % 50 == 0:  # legitimate forks of legitimate forks
                self.w.add(
                    FakeRepo(
                        f"sub{i}/{self.bare}", dict(own), parent=fork.full_name, label="legit-fork"
                    )
                )
        # The 2.1.88 case: someone pushed the leak into a fork of the vendor's public repo.
        self._copy(f"dev999/{self.bare}", "copy", {**own, **self.all}, parent=name)

    def _copies(self) -> None:
        desc = f"{self.w.package} {self.w.version} leaked source"
        self._copy(f"leaker0/{self.bare}-source", "copy", self.all, description=desc, stars=300)
        self._copy(
            f"leaker1/{self.bare}-leak", "copy", self.first, description="source leak", stars=40
        )
        readme = f"{self.bare} source code {self.w.version}".encode()
        self._copy("leaker2/mirror", "copy", {**self.first, "README.md": readme}, stars=5)

    def _deep_forks(self) -> None:
        """Forks of copies four levels deep; one fork removed the leak; one was taken down."""
        parent = f"leaker0/{self.bare}-source"
        for depth in range(1, 5):
            kids = [
                self._copy(f"f{depth}x{i}/{self.bare}-source", "copy", self.all, parent=parent)
                for i in range(3 if depth < 4 else 2)
            ]
            parent = kids[0].full_name
        cleaned = {**self._noise_files(5, "cleaned"), "README.md": b"# my own rewrite\n"}
        self.w.add(
            FakeRepo(
                f"cleaner/{self.bare}-source",
                cleaned,
                parent=f"leaker0/{self.bare}-source",
                label="fork-not-copy",
            )
        )
        self._copy(
            f"takendown/{self.bare}-source",
            "disabled",
            self.all,
            parent=f"leaker1/{self.bare}-leak",
            disabled=True,
        )

    def _variants(self) -> None:
        """Renamed, reformatted and partial copies: the hard cases for blob matching."""
        renamed = {f"leak/{p.replace('/', '_')}": d for p, d in self.first.items()}
        self._copy(
            f"renamer/{self.bare}-src",
            "copy",
            renamed,
            description=f"{self.bare} source leak, flattened",
        )
        keys = list(self.first)
        cut = max(1, int(len(keys) * 0.45))
        reformatted = {
            p: (d.replace(b"\n", b"\r\n  ") if i >= cut else d)
            for i, (p, d) in enumerate(self.first.items())
        }
        self._copy(
            f"crlf/{self.bare}-leak",
            "copy",
            reformatted,
            description=f"{self.bare} leak, line endings changed",
        )
        # Every file through a prettier-like formatter, or only re-indented: no blob matches.
        self._copy(
            f"prettier/{self.bare}-leak",
            "copy",
            {p: prettier_style(d) for p, d in self.first.items()},
            description=f"{self.bare} leak reformatted",
        )
        self._copy(
            f"reindent/{self.bare}-leak",
            "copy",
            {p: d.replace(b"  ", b"\t") for p, d in self.first.items()},
        )
        # The same paths and names with the owner's own code: a rewrite, not a copy.
        self.w.add(
            FakeRepo(
                f"rewrite/{self.bare}-clone",
                {p: _rewritten(p, i) for i, p in enumerate(self.first)},
                description=f"a clean-room {self.bare} clone",
                label="unrelated",
            )
        )
        part = dict(list(self.first.items())[: max(2, len(keys) // 6)])
        self._copy(
            f"snippets/{self.bare}-bits",
            "partial",
            {**part, **self._noise_files(20, "own")},
            description=f"bits of the {self.bare} leak",
        )

    def _innocents(self) -> None:
        """Repositories that mention the package but hold none of its files, and noise."""
        own = self._noise_files(12, "plugin")
        self.w.add(
            FakeRepo(
                f"fan/{self.bare}-plugin",
                own,
                description=f"A plugin for {self.w.package} {self.w.version} source "
                "leak discussion",
                label="unrelated",
            )
        )
        for i in range(15):
            self.w.add(
                FakeRepo(
                    f"noise{i}/project{i}",
                    self._noise_files(6, f"n{i}x"),
                    description="a leak detector" if i % 3 == 0 else "tools",
                    created_at="2025-06-01T00:00:00Z",
                    label="noise",
                )
            )
        # A copy nobody can find: a fork, with fewer stars, of a repository that is no candidate.
        self.w.add(FakeRepo("quiet/base", self._noise_files(3, "quiet"), label="noise"))
        self._copy("quiet2/base", "copy", self.first, parent="quiet/base")

    def _elsewhere(self) -> None:
        """GitLab, Codeberg, npm republished copies, the CDNs and Software Heritage."""
        self._copy(
            f"glcopy/{self.bare}-leak",
            "copy",
            self.first,
            host="gitlab",
            description=f"{self.bare} leak",
        )
        self.w.add(
            FakeRepo(
                f"glfan/{self.bare}-notes",
                self._noise_files(3, "gl"),
                host="gitlab",
                description=f"notes on {self.bare}",
                label="unrelated",
            )
        )
        self._copy(
            f"cbcopy/{self.bare}",
            "copy",
            self.first,
            host="codeberg",
            description=f"{self.bare} source leak",
        )
        self.w.add(
            FakeRepo(
                f"cbfan/{self.bare}-fan",
                self._noise_files(3, "cb"),
                host="codeberg",
                description=f"{self.bare} fan page",
                label="unrelated",
            )
        )
        leaked = {f"src/{p}" if not p.startswith("src/") else p: d for p, d in self.first.items()}
        self.w.packages.append(
            FakePackage(f"{self.bare}-leaked", "1.0.0", leaked, f"{self.bare} source", "copy")
        )
        self.w.planted[f"npm:{self.bare}-leaked@1.0.0"] = "copy"
        self.w.packages.append(
            FakePackage(
                f"{self.bare}-helper",
                "3.0.0",
                self._noise_files(3, "helper"),
                f"helpers for {self.bare}",
                "unrelated",
            )
        )
        self.w.cdn_files = {"cli.js.map": b'{"version":3,"sources":[]}', "cli.js": b"// cli\n"}
        self.w.swh_origins = [
            f"https://github.com/leaker0/{self.bare}-source",
            f"https://github.com/fan/{self.bare}-plugin",
        ]


def prettier_style(data: bytes) -> bytes:
    """What prettier does to a file (double quotes, no semicolons, 4-space indent, wrapped
    calls with trailing commas): every byte moves, the tokens stay."""
    text = data.decode().replace("'", '"').replace(";\n", "\n").replace("\n  ", "\n    ")
    text = re.sub(r"\((input), (\d+)\)", r"(\n        \1,\n        \2,\n    )", text)
    return text.encode()


def _rewritten(path: str, i: int) -> bytes:
    """Another implementation at a leaked path: same imports and shape, other code."""
    return (
        f"// {path}: my own take\nimport {{ runTool }} from '../core';\n\n"
        f"export function ownHandler{i}(input: string) {{\n"
        + "".join(f"  const part{j} = input.slice({j}, {j + i + 2});\n" for j in range(8))
        + "  return runTool(part0 + part7);\n}\n"
    ).encode()


def sample_files(first_party: int = 60, node_modules: int = 10, seed: int = 0) -> dict[str, bytes]:
    """Reconstructed files of a small leak: each first-party file carries a rare identifier
    (`sample_identifiers` lists them), so code search can find every one."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    areas = ("tools", "permissions", "ui/dialogs", "services/api", "state")
    for i in range(first_party):
        area = areas[i % len(areas)]
        ident = f"{_camel(area)}Handler{i}V{seed}"
        body = "\n".join(
            f"  const step{j} = await runStep{rng.randint(1000, 9999)}(input, {j});"
            for j in range(rng.randint(6, 24))
        )
        text = (
            f"// {area} module {i}\nimport {{ runTool }} from '../core';\n\n"
            f"export async function {ident}(input: string) {{\n{body}\n"
            "  return runTool(input);\n}\n"
        )
        files[f"src/{area}/Module{i}.ts"] = text.encode()
    for i in range(node_modules):
        files[f"node_modules/lib{i}/index.js"] = f"module.exports = {i} * {seed};\n".encode() * 4
    return files


def sample_identifiers(files: Mapping[str, bytes]) -> list[str]:
    """The rare identifiers `sample_files` planted, one per first-party file."""
    found = (re.search(rb"export async function (\w+)", data) for data in files.values())
    return [m[1].decode() for m in found if m]


def _camel(area: str) -> str:
    words = re.split(r"[/_]", area)
    return words[0] + "".join(w.title() for w in words[1:])
