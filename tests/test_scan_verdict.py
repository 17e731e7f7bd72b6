"""The guard's verdict against a release's own history: what is new and dangerous fails, and why."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from playbook.config.org import load_org
from playbook.errors import UsageError
from playbook.scan import scan_tarball
from playbook.scan.allowlist import load_allowlist
from playbook.scan.baseline import previous_version
from playbook.scan.license import is_open_source
from playbook.scan.verdict import AllowRule, Verdict, exposure, judge
from tests.support.keys import fake_pem, github_token


def release(
    version: str,
    *,
    license: str | None = "MIT",
    sources: int = 0,
    source_bytes: int = 300,
    files: dict[str, str] | None = None,
    name: str = "@acme/cli",
) -> bytes:
    """A package tarball: a bundle, and a map carrying `sources` original files when asked."""
    manifest: dict[str, str] = {"name": name, "version": version}
    if license is not None:
        manifest["license"] = license
    entries = {"package.json": json.dumps(manifest), "dist/index.js": "run();\n", **(files or {})}
    if sources:
        paths = [f"../src/mod{i}.ts" for i in range(sources)]
        body = [f"export const m{i} = {i};\n" + "x" * source_bytes for i in range(sources)]
        entries["dist/index.js.map"] = json.dumps(
            {"version": 3, "sources": paths, "sourcesContent": body, "mappings": ""}
        )
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo("package/" + path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def verdict_of(cur: bytes, base: bytes | None, allow: tuple[AllowRule, ...] = ()) -> Verdict:
    before = exposure(scan_tarball(base)) if base is not None else None
    return judge(scan_tarball(cur), before, allow=allow)


def test_a_map_that_newly_carries_sources_fails_with_the_comparison() -> None:
    v = verdict_of(release("2.1.88", sources=3), release("2.1.87"))
    assert v.failed and v.exit_code == 1
    assert v.comparison == "2.1.87 shipped no map; 2.1.88 added one carrying 3 sources"
    assert v.headline.startswith("FAIL @acme/cli@2.1.88: 2.1.87 shipped no map")
    assert v.baseline == "@acme/cli@2.1.87"


def test_an_open_source_package_shipping_its_sources_as_before_passes_with_the_exposure() -> None:
    v = verdict_of(release("1.1.0", sources=4), release("1.0.0", sources=3))
    assert not v.failed
    assert [(f.rule, f.fails) for f in v.findings] == [("source-map", False)]
    assert "open-source (MIT) package ships its own sources, as @acme/cli@1.0.0 did" in v.headline
    assert v.comparison.startswith("1.0.0's maps carried 3 sources")


@pytest.mark.parametrize("license", ["UNLICENSED", "SEE LICENSE IN LICENSE.md", None, "Commercial"])
def test_original_source_under_no_open_source_licence_fails_even_unchanged(
    license: str | None,
) -> None:
    v = verdict_of(
        release("1.1.0", sources=2, license=license), release("1.0.0", sources=2, license=license)
    )
    assert v.failed
    assert "under no open-source licence" in v.headline
    assert f"(license: {license or 'none declared'})" in v.headline


def test_a_jump_in_original_source_bytes_fails() -> None:
    small, big = release("1.0.0", sources=5), release("1.1.0", sources=5, source_bytes=60_000)
    v = verdict_of(big, small)
    assert v.failed and [f.rule for f in v.findings if f.fails] == ["source-growth"]
    assert "original source grew from" in v.headline
    assert not verdict_of(release("1.1.0", sources=6), small).failed  # ordinary growth


def test_new_secrets_and_files_fail_and_carried_ones_are_information() -> None:
    token, pem = github_token(seed=21), fake_pem(seed=22)
    old = {"lib/conf.js": f'const t = "{token}";\n', ".env": "A=1\n"}
    new = {**old, "lib/key.js": f"module.exports = {json.dumps(pem)};\n", ".npmrc": "x\n"}
    v = verdict_of(release("1.1.0", files=new), release("1.0.0", files=old))
    failing = sorted(f.line for f in v.findings if f.fails)
    assert failing == [
        "new private-key at lib/key.js:1 (----…[27])",
        "new sensitive file .npmrc",
    ]
    info = sorted(f.line for f in v.findings if not f.fails)
    assert info == [
        ".env was already in @acme/cli@1.0.0",
        "github-token at lib/conf.js:1 (ghp_…[40]) was already in @acme/cli@1.0.0",
    ]
    absolute = verdict_of(release("1.1.0", files=new), None)
    assert len([f for f in absolute.findings if f.fails]) == 4
    assert absolute.baseline is None and absolute.baseline_note == "no baseline: absolute view"


def test_a_clean_release_passes_and_says_why() -> None:
    v = verdict_of(release("1.0.1"), release("1.0.0"))
    assert not v.failed and v.findings == ()
    assert v.headline == (
        "pass @acme/cli@1.0.1: no source exposure, secret or sensitive file new since "
        "@acme/cli@1.0.0"
    )
    assert v.comparison == "neither 1.0.0 nor 1.0.1 ships a source map"


def test_the_allowlist_turns_a_failure_into_information_with_its_reason() -> None:
    rule = AllowRule(reason="we publish maps with sources (MIT)", rule="source-map")
    v = verdict_of(release("1.0.1", sources=2), release("1.0.0"), allow=(rule,))
    assert not v.failed
    assert v.findings[0].allowed_by == "we publish maps with sources (MIT)"
    assert "1 finding allowed by respond.toml" in v.headline
    other = AllowRule(reason="not this one", rule="source-map", package="@other/*")
    assert verdict_of(release("1.0.1", sources=2), release("1.0.0"), allow=(other,)).failed
    by_path = AllowRule(reason="a fixture key", rule="secret", path="test/fixtures/*")
    fixture = {"test/fixtures/k.js": f'k = "{github_token(seed=5)}";\n'}
    assert not verdict_of(release("1.0.1", files=fixture), None, allow=(by_path,)).failed


def test_the_allowlist_is_read_from_respond_toml_and_every_entry_needs_a_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "respond.toml").write_text(
        '[[scan.allow]]\nrule = "secret"\npath = "test/*"\nreason = "test keys"\n'
    )
    assert load_allowlist(load_org(tmp_path, tmp_path / "home")) == (
        AllowRule(reason="test keys", rule="secret", path="test/*"),
    )
    for bad, says in [
        ('[[scan.allow]]\nrule = "secret"\n', "has no reason"),
        ('[[scan.allow]]\nreason = " "\n', "has no reason"),
        ('[[scan.allow]]\nrule = "maps"\nreason = "r"\n', "is not one of"),
        ('[[scan.allow]]\nfile = "x"\nreason = "r"\n', "unknown key(s) file"),
        ('[scan]\nallow = "x"\n', "must be [[scan.allow]]"),
    ]:
        (tmp_path / "respond.toml").write_text(bad)
        with pytest.raises(UsageError, match=r"respond\.toml") as err:
            load_allowlist(load_org(tmp_path, tmp_path / "home"))
        assert says in str(err.value)


@pytest.mark.parametrize(
    ("expression", "open_source"),
    [
        ("MIT", True),
        ("(MIT OR Apache-2.0)", True),
        ("Apache-2.0 WITH LLVM-exception", True),
        ("GPL-2.0-or-later", True),
        ("mit", True),
        ("MIT AND Commercial", False),
        ("Commercial OR MIT", True),
        ("UNLICENSED", False),
        ("SEE LICENSE IN README.md", False),
        ("https://www.highcharts.com/license", False),
        ("(MIT", False),
        ("", False),
        (None, False),
    ],
)
def test_spdx_expressions(expression: str | None, open_source: bool) -> None:
    assert is_open_source(expression) is open_source


def test_legacy_license_fields_are_read_from_package_json() -> None:
    raw = io.BytesIO()
    doc = {"name": "old", "version": "1.0.0", "licenses": [{"type": "MIT"}, {"type": "GPL-2.0"}]}
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = json.dumps(doc).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert scan_tarball(raw.getvalue()).meta.license == "MIT OR GPL-2.0"


@pytest.mark.parametrize(
    ("version", "previous"),
    [("2.1.88", "2.1.87"), ("2.0.0", "1.10.0"), ("1.0.0", None), ("3.0.0-rc.2", "3.0.0-rc.1")],
)
def test_the_version_before(version: str, previous: str | None) -> None:
    versions = ["1.2.0", "1.10.0", "2.1.87", "2.1.88", "2.2.0-beta.1", "3.0.0-rc.1", "1.0.0"]
    assert previous_version(versions, version) == previous


def test_the_init_templates_commented_allowlist_entry_is_valid_once_uncommented() -> None:
    import tomllib

    from playbook.config.org import init_text
    from playbook.scan.allowlist import parse_allowlist

    block = init_text().split("[[scan.allow]]", 1)[1]
    lines = [line[2:] for line in block.splitlines() if line.startswith("# ") and "=" in line]
    data = tomllib.loads("[[scan.allow]]\n" + "\n".join(lines))
    (rule,) = parse_allowlist(Path("respond.toml"), data)
    assert rule.rule == "secret" and rule.reason.startswith("keys generated")
