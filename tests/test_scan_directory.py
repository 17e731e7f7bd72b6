"""`respond scan DIR` reads what `npm pack` would ship, compared against npm itself."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from playbook import core
from playbook.config.settings import Settings
from playbook.errors import RespondError, UsageError
from playbook.scan import scan_directory, scan_path
from playbook.scan.detect import checksummed_token
from playbook.scan.npmpack import FALLBACK_NOTE
from playbook.scan.packlist import pack_list

NPM = shutil.which("npm")
needs_npm = pytest.mark.skipif(NPM is None, reason="npm is not installed")

TOKEN = checksummed_token("npm_", "Rk4Tq8Xw2Lm6Zp1Vb9Nc3Hd7Jf5Gs0")  # real format, not real


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BASE = {
    "README.md": "# x\n",
    "LICENSE": "MIT\n",
    "dist/index.js": "//# sourceMappingURL=index.js.map\n",
    "dist/index.js.map": json.dumps(
        {"sources": ["../src/a.ts"], "sourcesContent": [f'export const t = "{TOKEN}";\n']}
    ),
    "src/a.ts": "export const a = 1;\n",
    ".env": "HOST=db.acme.internal\n",
    ".npmrc": "//registry.example/:_authToken=x\n",
    "node_modules/dep/index.js": "x\n",
    ".git/config": "[core]\n",
    "package-lock.json": "{}\n",
    "notes.txt.orig": "x\n",
}


def manifest(**extra: object) -> str:
    return json.dumps({"name": "@acme/tool", "version": "1.2.3", "main": "dist/index.js", **extra})


CASES = {
    "no-rules": ({}, None),
    "files-field": ({"package.json": manifest(files=["dist"])}, None),
    "npmignore": ({".npmignore": "src/\n*.map\n.env\n"}, None),
    "gitignore": ({".gitignore": "dist/*.map\n"}, None),
    "npmignore-wins": ({".npmignore": "src\n", ".gitignore": "dist\n"}, None),
    "negation": ({".npmignore": "dist/*\n!dist/index.js\n"}, None),
    "nested-ignore": ({"dist/.npmignore": "*.map\n"}, None),
    "files-glob": ({"package.json": manifest(files=["dist/*.js", "src/**/*.ts"])}, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pack_list_matches_npm_pack(case: str, tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    files = {**BASE, "package.json": manifest(), **CASES[case][0]}
    root = tree(tmp_path / "pkg", files)
    out = subprocess.run(
        ["npm", "pack", "--dry-run", "--json", "--ignore-scripts", "--offline"],
        cwd=root, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    expected = sorted(f["path"] for f in json.loads(out.stdout)[0]["files"])
    assert pack_list(root)[0] == expected


def test_directory_scan_finds_the_map_secret_and_env(tmp_path: Path) -> None:
    root = tree(tmp_path / "pkg", {**BASE, "package.json": manifest()})
    result = scan_directory(root, npm=None)
    assert (result.package, result.version) == ("@acme/tool", "1.2.3")
    assert [(s.kind, s.file, s.line) for s in result.secrets] == [("npm-token", "src/a.ts", 1)]
    assert result.sensitive_files == (".env",)  # .npmrc and .git are never packed
    assert result.internal_hosts == ("db.acme.internal",)
    assert result.leaky


def test_directory_scan_of_a_clean_package(tmp_path: Path) -> None:
    files = {"package.json": manifest(files=["dist/index.js"]), "dist/index.js": "x\n"}
    root = tree(tmp_path / "pkg", {**BASE, **files})
    result = scan_path(root, npm=NPM)
    assert not result.leaky and result.files == 4


def test_symlinks_in_a_directory_are_not_followed(tmp_path: Path) -> None:
    root = tree(tmp_path / "pkg", {"package.json": manifest()})
    secret = tree(tmp_path / "outside", {"key.pem": "-----BEGIN PRIVATE KEY-----\n"})
    (root / "linked.pem").symlink_to(secret / "key.pem")
    result = scan_directory(root, npm=None)
    assert result.secrets == () and result.sensitive_files == ()
    assert any("symbolic link" in n for n in result.notes)


def test_not_a_package_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"package\.json"):
        scan_directory(tmp_path, npm=NPM)
    with pytest.raises(UsageError, match="neither"):
        scan_path(tmp_path / "missing.tgz")


@pytest.fixture
def recording_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[bytes]]:
    """npm's registry (and cache) pointed at a loopback socket that records every connection."""
    seen: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    seen.append(conn.recv(4096) or b"(connected)")
                    conn.sendall(b"HTTP/1.1 500 Nope\r\ncontent-length: 0\r\n\r\n")
                except OSError:
                    seen.append(b"(connected)")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("NPM_CONFIG_CACHE", str(tmp_path / "npm-cache"))  # no update-check stamp
    monkeypatch.setenv("NPM_CONFIG_UPDATE_NOTIFIER", "true")  # respond's flags must turn it off
    monkeypatch.setenv("NPM_CONFIG_USERCONFIG", str(tmp_path / "no-user-npmrc"))
    yield seen
    stop.set()
    thread.join(2)
    server.close()


# npm's rules the hand-written list once had to copy: `files` wins over the root .npmignore, a
# nested .npmignore still applies, and a .map under a listed folder ships.
NPM_CASE = {
    "package.json": manifest(
        files=["dist", "types/*.d.ts"], scripts={"prepack": "tsc"}, bin={"tool": "bin/cli.js"}
    ),
    ".npmignore": "dist/index.js.map\n",
    "dist/.npmignore": "*.test.js\n",
    "dist/index.test.js": "x\n",
    "types/index.d.ts": "export {};\n",
    "types/notes.md": "x\n",
    "bin/cli.js": "#!/usr/bin/env node\n",
}


@needs_npm
def test_directory_files_come_from_npm_pack_without_network(
    recording_registry: list[bytes], tmp_path: Path
) -> None:
    root = tree(tmp_path / "pkg", {**BASE, **NPM_CASE})
    out = subprocess.run(
        ["npm", "pack", "--dry-run", "--json", "--ignore-scripts", "--offline"],
        cwd=root, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    npm_says = sorted(f["path"] for f in json.loads(out.stdout)[0]["files"])
    assert "dist/index.js.map" in npm_says and "dist/index.test.js" not in npm_says
    recording_registry.clear()
    result = scan_directory(root, npm=NPM)
    assert result.files == len(npm_says)
    assert result.bytes == sum((root / p).stat().st_size for p in npm_says)
    assert [m.path for m in result.sourcemaps] == ["dist/index.js.map"]
    assert [(s.kind, s.file) for s in result.secrets] == [("npm-token", "src/a.ts")]
    assert FALLBACK_NOTE not in result.notes
    assert any("prepack" in n and "not run" in n for n in result.notes)
    assert recording_registry == []  # npm made no request at all
    # The recorder does see npm when it goes out: a ping reaches it.
    subprocess.run(["npm", "ping", "--fetch-retries=0"], capture_output=True, timeout=60)
    assert recording_registry and recording_registry[0].startswith(b"GET /-/ping")


def test_without_npm_the_fallback_list_says_it_is_one(tmp_path: Path) -> None:
    root = tree(tmp_path / "pkg", {**BASE, **NPM_CASE})
    empty = tmp_path / "bin-without-npm"
    empty.mkdir()
    settings = Settings.resolve(env={"PATH": str(empty), "RESPOND_HOME": str(tmp_path / "h")})
    assert settings.npm is None
    result = core.guard(settings, str(root), no_baseline=True).result
    assert result.notes[0] == FALLBACK_NOTE
    assert [m.path for m in result.sourcemaps] == ["dist/index.js.map"]


@needs_npm
def test_npm_failing_is_a_clear_error(tmp_path: Path, recording_registry: list[bytes]) -> None:
    root = tree(tmp_path / "pkg", {"package.json": "{not json"})
    with pytest.raises(RespondError, match=r"npm pack --dry-run. in .* failed with status"):
        scan_directory(root, npm=NPM)
    assert recording_registry == []
