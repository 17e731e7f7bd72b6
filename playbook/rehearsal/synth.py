"""Deterministic synthetic npm packages for tests, benchmarks and rehearsals (never committed).

`make_package` builds a `.tgz` laid out like `npm pack` output (entries under `package/`): a bundle
`dist/index.js`, optionally a source map next to it (`with_map`) and/or inline in the bundle
(`inline_map`), whose `sourcesContent` carries `sources` original files of which `first_party` are
the package's own (`src/...`) and the rest `node_modules` (every fifth one nested). The same
arguments given to `reconstructed_files` return the first-party files exactly as a scanner
reconstructs them, so a fake code host can seed byte-identical copies.

A planted `secret` sits in the first-party file `SECRET_PATH` at line `SECRET_LINE` when the package
has a map, else in `dist/index.js` at line `SECRET_LINE`. `env_file` adds a `.env` that also names
the internal host `ENV_HOST`. Same arguments, same bytes: gzip and tar headers carry fixed times.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

SECRET_PATH = "src/config/credentials.ts"
SECRET_LINE = 3
ENV_HOST = "db.build.corp.internal"
# npm writes this mtime into every tarball entry (1985-10-26T08:15:00Z); so do we, for determinism.
NPM_MTIME = 499162500

_SYLLABLES = [
    "get",
    "set",
    "render",
    "permission",
    "dialog",
    "tool",
    "bash",
    "handle",
    "state",
    "value",
    "item",
    "count",
    "config",
    "stream",
    "parse",
    "token",
    "user",
    "message",
    "update",
    "create",
    "file",
    "path",
    "node",
    "list",
    "map",
    "index",
    "result",
    "error",
    "options",
    "props",
    "session",
    "prompt",
    "model",
    "context",
    "memory",
    "cache",
    "queue",
    "worker",
    "task",
    "agent",
    "shell",
    "command",
    "output",
    "input",
    "buffer",
    "render",
    "view",
    "panel",
    "layout",
    "theme",
    "color",
    "style",
    "format",
    "print",
    "logger",
    "event",
    "hook",
    "effect",
]
_TEMPLATES = (
    "  const {0} = {1}({2}, {3});",
    "  if ({0}.{1} === {2}) return {3};",
    "  // {0} keeps {1} in sync with {2} and {3}",
    "  return {0}.{1}({2}).then(({3}) => {3}.{0});",
    "  for (const {0} of {1}) {{ {2}.push({3}); }}",
    "  }}",
    "",
)


@dataclass(frozen=True)
class RealCase:
    """A package shaped like the real leak, written to disk for the benchmark."""

    tarball: Path
    map_name: str
    sources: int
    first_party: int
    tarball_bytes: int
    map_bytes: int
    bundle_bytes: int


def _vocab(rng: random.Random, n: int) -> list[str]:
    words = []
    for _ in range(n):
        parts = rng.choices(_SYLLABLES, k=rng.randint(1, 3))
        words.append(parts[0] + "".join(p.capitalize() for p in parts[1:]))
    return words


def _source_path(i: int, first_party: int, rng: random.Random) -> str:
    """The path as a bundler writes it in `sources` (webpack-style `../` prefix)."""
    if i == 0:
        return "../" + SECRET_PATH
    if i < first_party:
        top = ("tools", "components", "services", "commands", "utils", "hooks")[i % 6]
        stem = "".join(p.capitalize() for p in rng.choices(_SYLLABLES, k=2))
        return f"../src/{top}/{stem}{i}/{stem}{i}.ts"
    pkg = f"lib-{i % 97}"
    if i % 5 == 0:
        return f"../node_modules/{pkg}/node_modules/dep-{i % 13}/index{i}.js"
    return f"../node_modules/{pkg}/lib/mod{i}.js"


def _export_name(path: str, i: int) -> str:
    """A distinctive per-file identifier (>= 12 chars), as real code has."""
    stem = path.rsplit("/", 1)[-1].split(".")[0].rstrip("0123456789")
    return f"create{stem}Handler{i}"


def _body(rng: random.Random, vocab: list[str], n_bytes: int) -> list[str]:
    lines: list[str] = []
    size = 0
    while size < n_bytes:
        words = rng.choices(vocab, k=4)
        line = rng.choice(_TEMPLATES).format(*words)
        lines.append(line)
        size += len(line) + 1
    return lines


def _sources(
    sources: int, first_party: int, secret: str | None, seed: int, source_bytes: int
) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    vocab = _vocab(rng, 5000)
    paths = [_source_path(i, first_party, rng) for i in range(sources)]
    exports = [_export_name(p, i) for i, p in enumerate(paths)]
    out = []
    for i, path in enumerate(paths):
        lines = [f"// {path.lstrip('./')}", "'use strict';"]
        if i == 0 and secret is not None:
            lines.append(f'export const DEPLOY_TOKEN = "{secret}";')
        group = [j for j in range(i - i % 4, min(i - i % 4 + 4, sources)) if j != i]
        same_side = [j for j in group if (j < first_party) == (i < first_party)]
        lines += [f"import {{ {exports[j]} }} from './{exports[j]}';" for j in same_side]
        lines.append(f"export function {exports[i]}(options) {{")
        lines += _body(rng, vocab, max(0, source_bytes - 200))
        lines.append("}")
        out.append((path, "\n".join(lines) + "\n"))
    return out


def _reconstructed(path: str) -> str:
    while path.startswith("../"):
        path = path[3:]
    return path


def reconstructed_files(
    name: str,
    version: str,
    *,
    sources: int,
    first_party: int,
    secret: str | None = None,
    seed: int = 0,
    source_bytes: int = 600,
) -> dict[str, bytes]:
    """The first-party files of the map `make_package` builds with the same arguments."""
    del name, version  # the content depends on the seed only; kept for a symmetric call
    return {
        _reconstructed(p): c.encode()
        for p, c in _sources(sources, first_party, secret, seed, source_bytes)[:first_party]
    }


def _source_map(files: list[tuple[str, str]], bundle_name: str) -> bytes:
    doc = {
        "version": 3,
        "file": bundle_name,
        "sources": [p for p, _ in files],
        "sourcesContent": [c for _, c in files],
        "names": [],
        "mappings": "AAAA;" * 64,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _bundle(rng: random.Random, n_bytes: int, secret_line: str | None) -> str:
    lines = ["(function(){'use strict';", "var e=void 0;"]
    if secret_line is not None:
        lines.insert(SECRET_LINE - 1, secret_line)
    lines += _body(rng, _vocab(rng, 2000), n_bytes)
    lines.append("})();")
    return "\n".join(lines) + "\n"


def _tar(entries: list[tuple[str, bytes]], compresslevel: int) -> bytes:
    raw = io.BytesIO()
    gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0)
    with gz, tarfile.open(fileobj=gz, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        for path, data in entries:
            info = tarfile.TarInfo("package/" + path)
            info.size, info.mtime, info.mode = len(data), NPM_MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _entries(
    name: str,
    version: str,
    *,
    sources: int,
    first_party: int,
    with_map: bool,
    inline_map: bool,
    secret: str | None,
    env_file: bool,
    bundle_bytes: int,
    seed: int,
    source_bytes: int,
) -> list[tuple[str, bytes]]:
    has_map = with_map or inline_map
    files = _sources(sources, first_party, secret if has_map else None, seed, source_bytes)
    secret_line = None if has_map or secret is None else f'var t="{secret}";'
    bundle = _bundle(random.Random(seed + 1), bundle_bytes, secret_line)
    map_bytes = _source_map(files, "index.js")
    if inline_map:
        bundle += "//# sourceMappingURL=data:application/json;charset=utf-8;base64,"
        bundle += base64.b64encode(map_bytes).decode() + "\n"
    elif with_map:
        bundle += "//# sourceMappingURL=index.js.map\n"
    manifest = {"name": name, "version": version, "main": "dist/index.js", "license": "MIT"}
    entries = [("package.json", json.dumps(manifest, indent=2).encode() + b"\n")]
    if env_file:
        entries.append((".env", f"DATABASE_HOST={ENV_HOST}\nLOG_LEVEL=debug\n".encode()))
    entries.append(("README.md", f"# {name}\n\nSynthetic package for tests.\n".encode()))
    entries.append(("dist/index.js", bundle.encode()))
    if with_map:
        entries.append(("dist/index.js.map", map_bytes))
    return entries


def make_package(
    name: str,
    version: str,
    *,
    sources: int,
    first_party: int,
    with_map: bool,
    inline_map: bool = False,
    secret: str | None = None,
    env_file: bool = False,
    bundle_bytes: int = 2048,
    seed: int = 0,
    source_bytes: int = 600,
    compresslevel: int = 6,
) -> bytes:
    """A deterministic `.tgz` (entries under `package/`) carrying what the arguments ask for."""
    entries = _entries(
        name,
        version,
        sources=sources,
        first_party=min(first_party, sources),
        with_map=with_map,
        inline_map=inline_map,
        secret=secret,
        env_file=env_file,
        bundle_bytes=bundle_bytes,
        seed=seed,
        source_bytes=source_bytes,
    )
    return _tar(entries, compresslevel)


def make_real_case(tmpdir: Path, *, seed: int = 0, secret: str | None = None) -> RealCase:
    """The real leak's shape: ~60 MB map, ~4,700 sources (~1,900 first-party), ~13 MB bundle."""
    sources, first_party = 4700, 1900
    data = make_package(
        "@acme/cli",
        "2.1.88",
        sources=sources,
        first_party=first_party,
        with_map=True,
        bundle_bytes=13_000_000,
        secret=secret,
        seed=seed,
        source_bytes=12_600,
        # Level 1 keeps generation to seconds; the real tarball compressed about as poorly.
        compresslevel=1,
    )
    path = tmpdir / "acme-cli-2.1.88.tgz"
    path.write_bytes(data)
    with tarfile.open(path, "r:gz") as tar:
        sizes = {m.name: m.size for m in tar.getmembers()}
    return RealCase(
        tarball=path,
        map_name="dist/index.js.map",
        sources=sources,
        first_party=first_party,
        tarball_bytes=len(data),
        map_bytes=sizes["package/dist/index.js.map"],
        bundle_bytes=sizes["package/dist/index.js"],
    )
