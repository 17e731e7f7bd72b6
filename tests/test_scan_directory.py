"""`respond scan DIR` reads what `npm pack` would ship, compared against npm itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from playbook.errors import UsageError
from playbook.scan import scan_directory, scan_path
from playbook.scan.detect import checksummed_token
from playbook.scan.packlist import pack_list

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
    result = scan_directory(root)
    assert (result.package, result.version) == ("@acme/tool", "1.2.3")
    assert [(s.kind, s.file, s.line) for s in result.secrets] == [("npm-token", "src/a.ts", 1)]
    assert result.sensitive_files == (".env",)  # .npmrc and .git are never packed
    assert result.internal_hosts == ("db.acme.internal",)
    assert result.leaky


def test_directory_scan_of_a_clean_package(tmp_path: Path) -> None:
    files = {"package.json": manifest(files=["dist/index.js"]), "dist/index.js": "x\n"}
    root = tree(tmp_path / "pkg", {**BASE, **files})
    result = scan_path(root)
    assert not result.leaky and result.files == 4


def test_symlinks_in_a_directory_are_not_followed(tmp_path: Path) -> None:
    root = tree(tmp_path / "pkg", {"package.json": manifest()})
    secret = tree(tmp_path / "outside", {"key.pem": "-----BEGIN PRIVATE KEY-----\n"})
    (root / "linked.pem").symlink_to(secret / "key.pem")
    result = scan_directory(root)
    assert result.secrets == () and result.sensitive_files == ()
    assert any("symbolic link" in n for n in result.notes)


def test_not_a_package_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"package\.json"):
        scan_directory(tmp_path)
    with pytest.raises(UsageError, match="neither"):
        scan_path(tmp_path / "missing.tgz")
