"""The scanner finds what is planted in generated packages, and misses nothing."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from playbook.rehearsal.synth import (
    ENV_HOST,
    SECRET_LINE,
    SECRET_PATH,
    make_package,
    reconstructed_files,
)
from playbook.scan import (
    FINDINGS_FILE,
    MANIFEST_FILE,
    Limits,
    ScanResult,
    findings_doc,
    manifest_doc,
    scan_chunks,
    scan_stream,
    scan_tarball,
    summary_lines,
    write_outputs,
)
from tests.support.keys import PLACEHOLDERS, fake_pem, github_token, real_format_secrets

TOKEN = github_token()  # a canary in the real format, not a real token


def tgz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("package/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def pkg(**kw: object) -> bytes:
    args: dict[str, object] = {"sources": 30, "first_party": 12, "with_map": True}
    args.update(kw)
    return make_package("@acme/cli", "1.0.0", **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("inline", [False, True], ids=["map-file", "inline-map"])
def test_planted_map_secret_and_env_are_found(inline: bool) -> None:
    data = pkg(with_map=not inline, inline_map=inline, secret=TOKEN, env_file=True)
    result = scan_tarball(data, package="@acme/cli", version="1.0.0")
    s = result.summary()
    assert (s["sourcemaps"], s["sources"], s["sources_with_content"]) == (1, 30, 30)
    assert (s["first_party"], s["node_modules"]) == (12, 18)
    assert result.sourcemaps[0].inline is inline
    assert [(x["kind"], x["file"], x["line"]) for x in s["secrets"]] == [
        ("github-token", SECRET_PATH, SECRET_LINE)
    ]
    assert s["secrets"][0]["redacted"] == "ghp_…[40]"
    assert s["sensitive_files"] == [".env"]
    assert ENV_HOST in s["internal_hosts"]
    assert result.leaky and len(result.reasons) == 3


def test_manifest_hashes_match_the_original_files() -> None:
    data = pkg(secret=TOKEN)
    originals = reconstructed_files("@acme/cli", "1.0.0", sources=30, first_party=12, secret=TOKEN)
    result = scan_tarball(data)
    first = {f.path: f for f in result.manifest if f.first_party}
    assert set(first) == set(originals)
    for path, content in originals.items():
        entry = first[path]
        assert entry.blob_sha1 == blob_sha1(content)
        assert entry.sha256 == hashlib.sha256(content).hexdigest()
        squeezed = b"".join(content.split())
        assert entry.norm_sha256 == hashlib.sha256(squeezed).hexdigest()
        assert (entry.size, entry.lines) == (len(content), content.count(b"\n"))
        assert entry.source == "../" + path and entry.map == "dist/index.js.map"
    nested = [f for f in result.manifest if f.path.count("node_modules") == 2]
    assert nested and not any(f.first_party for f in nested)
    # Library sources are never evidence: no whitespace-free hash is spent on them.
    assert {f.norm_sha256 for f in result.manifest if not f.first_party} == {""}


def test_secret_in_bundle_without_map_has_file_and_line() -> None:
    result = scan_tarball(pkg(with_map=False, secret=TOKEN))
    assert [(s.kind, s.file, s.line) for s in result.secrets] == [
        ("github-token", "dist/index.js", SECRET_LINE)
    ]
    assert not result.sourcemaps


def test_clean_package_is_not_leaky() -> None:
    result = scan_tarball(pkg(with_map=False))
    assert not result.leaky and result.reasons == [] and not result.partial
    assert result.files == 3 and result.summary()["sourcemaps"] == 0


SECRETS = {**real_format_secrets(), "private-key": fake_pem()}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_secret_kind_is_found_in_text_and_in_map_sources(kind: str) -> None:
    value = SECRETS[kind]
    line = f'const apiKey = "{value}";\n'
    text = f"// a\n// b\n{line}".encode()
    doc = {"version": 3, "sources": ["../src/deep/keys.ts"], "sourcesContent": [text.decode()]}
    files = {"lib/conf.js": text, "dist/a.js.map": json.dumps(doc).encode()}
    result = scan_tarball(tgz(files))
    found = {(s.kind, s.file, s.line) for s in result.secrets}
    assert found == {(kind, "lib/conf.js", 3), (kind, "src/deep/keys.ts", 3)}
    shown = value.split("\n")[0] if kind == "private-key" else value  # a key's header is its name
    assert all(s.redacted == f"{shown[:4]}…[{len(shown)}]" for s in result.secrets)


@pytest.mark.parametrize(
    "text",
    [
        "const token = 'ghp_tooShort';",
        "xghp_" + "a" * 36,  # the middle of a longer word
        'password = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"',  # no entropy
        'name = "Zx9Qm2Lp8Rt5Wv3Yb7Nc4Hd6Jf1Kg0sA"',  # not a secret-sounding name
        "AKIA" + "qx7rt2lm9pz4kd3w",  # lowercase is not an AWS key id
    ],
)
def test_near_misses_are_not_secrets(text: str) -> None:
    assert scan_tarball(tgz({"a.js": text.encode()})).secrets == ()


@pytest.mark.parametrize("name", sorted(PLACEHOLDERS))
def test_documentation_placeholders_and_bare_markers_are_not_secrets(name: str) -> None:
    text = f"// {name}\nconst value = {json.dumps(PLACEHOLDERS[name])};\n{PLACEHOLDERS[name]}\n"
    doc = {"version": 3, "sources": ["../src/docs.ts"], "sourcesContent": [text]}
    files = {"README.md": text.encode(), "lib/a.js": text.encode(), "a.js.map": json.dumps(doc)}
    result = scan_tarball(
        tgz({k: v if isinstance(v, bytes) else v.encode() for k, v in files.items()})
    )
    assert result.secrets == (), [s.kind for s in result.secrets]


def test_one_wrong_checksum_character_makes_a_token_a_non_token() -> None:
    good = github_token(seed=11)
    last = "A" if good[-1] != "A" else "B"
    found = scan_tarball(tgz({"a.js": f'x = "{good}";\ny = "{good[:-1] + last}";\n'.encode()}))
    assert [(s.kind, s.line) for s in found.secrets] == [("github-token", 1)]


@pytest.mark.parametrize("wrap", ["plain", "js-string", "json-in-json", "concatenated"])
def test_a_private_key_is_found_however_its_body_is_quoted(wrap: str) -> None:
    pem = fake_pem(seed=12)
    if wrap == "plain":
        text = pem
    elif wrap == "js-string":
        text = "const key = " + json.dumps(pem) + ";\n"
    elif wrap == "json-in-json":
        text = json.dumps({"inner": json.dumps({"key": pem})})
    else:
        text = "const key =\n" + " +\n".join(json.dumps(line + "\n") for line in pem.split("\n"))
    result = scan_tarball(tgz({"a.js": text.encode()}))
    assert [s.kind for s in result.secrets] == ["private-key"]


def test_a_private_key_across_a_read_window_is_found_once() -> None:
    pem = fake_pem(seed=13)
    for pad in (0, (1 << 22) - 600, (1 << 22) - 40, (1 << 22) - 10, (1 << 22) + 200):
        result = scan_tarball(tgz({"big.txt": b"\n" * pad + pem.encode()}))
        assert [s.kind for s in result.secrets] == ["private-key"], pad


@pytest.mark.parametrize(
    ("path", "sensitive"),
    [
        (".env", True),
        ("config/.env.production", True),
        (".env.example", False),
        (".npmrc", True),
        ("keys/id_rsa", True),
        ("keys/id_rsa.pub", False),
        ("certs/server.pem", True),
        ("certs/server.key", True),
        ("store.p12", True),
        (".git/config", True),
        ("sub/.git/objects/ab/cdef", True),
        (".aws/credentials", True),
        ("credentials.json", True),
        ("src/keyboard.ts", False),
        ("README.md", False),
    ],
)
def test_sensitive_files_by_name(path: str, sensitive: bool) -> None:
    result = scan_tarball(tgz({path: b"x\n", "package.json": b"{}"}))
    assert (path in result.sensitive_files) is sensitive


def test_internal_hosts_need_a_string_context() -> None:
    text = b'fetch("https://api.build.corp.internal/v1"); x = opts.local; y = "ldap.acme.lan"\n'
    result = scan_tarball(tgz({"a.js": text}))
    assert result.internal_hosts == ("api.build.corp.internal", "ldap.acme.lan")


def test_identifiers_are_rare_first_party_tokens_covering_files() -> None:
    data = pkg(sources=60, first_party=24, secret=TOKEN)
    result = scan_tarball(data)
    originals = reconstructed_files("@acme/cli", "1.0.0", sources=60, first_party=24, secret=TOKEN)
    library = b"".join(f.path.encode() for f in result.manifest if not f.first_party)
    assert 1 <= len(result.identifiers) <= 10
    covered: set[str] = set()
    for ident in result.identifiers:
        assert len(ident.token) >= 12 and ident.token.isalnum()
        holders = {p for p, c in originals.items() if ident.token.encode() in c}
        assert set(ident.files) == holders and len(holders) <= Limits().identifier_max_files
        assert ident.token.encode() not in library
        covered |= holders
    # Greedy cover: each query reaches new files, so ten queries reach more than ten files.
    assert len(covered) > len(result.identifiers)
    assert not any(part in TOKEN for part in (i.token for i in result.identifiers))
    assert result.paths and all(not p.startswith("node_modules") for p in result.paths)


def test_outputs_follow_the_contract(tmp_path: Path) -> None:
    result = scan_tarball(pkg(secret=TOKEN, env_file=True), package="@acme/cli", version="1.0.0")
    written: dict[str, bytes] = {}

    def write(name: str, data: bytes) -> Path:
        written[name] = data
        return tmp_path / name

    assert write_outputs(result, write) == (FINDINGS_FILE, MANIFEST_FILE)
    manifest = json.loads(written[MANIFEST_FILE])
    assert set(manifest) == {"package", "version", "files", "identifiers", "paths"}
    assert set(manifest["files"][0]) == {
        "path", "source", "map", "size", "lines", "blob_sha1", "sha256", "norm_sha256",
        "first_party", "winnow",
    }  # fmt: skip
    # Token fingerprints for first-party files only (the hunt proves reformatted copies by them).
    printed = [f for f in manifest["files"] if f["winnow"]]
    assert printed and all(f["first_party"] for f in printed)
    summary = json.loads(written[FINDINGS_FILE])["summary"]
    assert set(summary) == {
        "files", "bytes", "sourcemaps", "sources", "sources_with_content", "first_party",
        "node_modules", "original_bytes", "original_lines", "top_dirs", "sensitive_files",
        "secrets", "internal_hosts", "partial", "notes",
    }  # fmt: skip
    assert summary == result.summary()
    lines = summary_lines(result)
    assert any("LEAKY" in line for line in lines) and len(lines) < 40


def test_streamed_scans_equal_the_file_scan() -> None:
    data = pkg(secret=TOKEN, env_file=True)

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 1000):
            await asyncio.sleep(0)
            yield data[i : i + 1000]

    streamed = asyncio.run(scan_stream(body()))
    chunked = scan_chunks(data[i : i + 7] for i in range(0, len(data), 7))
    direct = scan_tarball(data)
    assert isinstance(streamed, ScanResult)
    assert streamed == direct == chunked


def test_a_failed_download_ends_the_stream_scan_with_its_error() -> None:
    data = pkg()

    async def body() -> AsyncIterator[bytes]:
        yield data[:100]
        raise ConnectionError("reset by peer")

    with pytest.raises(ConnectionError):
        asyncio.run(scan_stream(body()))


def test_raw_secrets_never_reach_outputs_or_reprs(tmp_path: Path) -> None:
    body = "".join(f'const secret = "{v}";\n' for v in SECRETS.values())
    doc = {"sources": ["../src/keys.ts"], "sourcesContent": [body]}
    files = {
        "lib/keys.js": body.encode(),
        ".env": f"NPM_TOKEN={SECRETS['npm-token']}\n".encode(),
        "dist/a.js.map": json.dumps(doc).encode(),
    }
    result = scan_tarball(tgz(files))
    assert len(result.secrets) == 2 * len(SECRETS) + 1
    written: list[bytes] = []
    write_outputs(result, lambda name, data: written.append(data) or tmp_path / name)
    shown = [
        *written,
        repr(result).encode(),
        str(result.summary()).encode(),
        "\n".join(summary_lines(result)).encode(),
    ]
    for value in SECRETS.values():
        secret = value.split("\n")[1] if value.startswith("-----BEGIN") else value[4:]
        for blob in shown:
            assert secret.encode() not in blob


def _shared_cases() -> list[bytes]:
    broken = tgz({"a.js.map": b"{oops " + TOKEN.encode(), "package.json": b"{}"})
    no_map = pkg(with_map=False, secret=TOKEN)  # the helper starts on the bundle, then is unused
    return [pkg(sources=40, first_party=16, secret=TOKEN, env_file=True), broken, no_map]


@pytest.mark.parametrize("case", [0, 1, 2], ids=["map", "broken-map", "bundle-only"])
def test_helper_process_gives_the_same_result_as_one_process(case: int) -> None:
    data = _shared_cases()[case]
    alone = scan_tarball(data, limits=Limits(parallel_map_bytes=0))
    shared = scan_tarball(data, limits=Limits(parallel_map_bytes=1))
    assert shared == alone and alone.secrets


_GARBAGE_HELPER = "#!/bin/sh\ncat > /dev/null\necho garbage\n"  # reads it all, answers nonsense
_HALF_HELPER = "#!/bin/sh\nhead -c 100 > /dev/null\n"  # stops reading mid-map, exits 0


@pytest.mark.parametrize(
    "executable", ["/bin/false", "/nonexistent/python", _GARBAGE_HELPER, _HALF_HELPER]
)
def test_a_failed_helper_is_replaced_by_in_process_work(
    executable: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = _shared_cases()[0]
    alone = scan_tarball(data, limits=Limits(parallel_map_bytes=0))
    if executable.startswith("#!"):
        script = tmp_path / "helper"
        script.write_text(executable)
        script.chmod(0o755)
        executable = str(script)
    monkeypatch.setattr("sys.executable", executable)
    shared = scan_tarball(data, limits=Limits(parallel_map_bytes=1))
    assert any("helper process failed" in n for n in shared.notes)
    assert shared.secrets == alone.secrets and shared.manifest == alone.manifest


def test_generic_secret_after_a_long_first_line_is_found() -> None:
    text = "A" * 40 + '\nconst clientSecret = "' + SECRETS["generic-secret"] + '";\n'
    result = scan_tarball(tgz({"conf.js": text.encode()}))
    assert [(s.kind, s.line) for s in result.secrets] == [("generic-secret", 2)]


def test_docs_are_plain_json_and_match_the_written_files(tmp_path: Path) -> None:
    result = scan_tarball(pkg(secret=TOKEN, env_file=True), package="@acme/cli", version="1.0.0")
    written: dict[str, bytes] = {}
    write_outputs(result, lambda name, data: written.setdefault(name, data) and tmp_path / name)
    assert json.loads(json.dumps(findings_doc(result))) == json.loads(written[FINDINGS_FILE])
    assert json.loads(json.dumps(manifest_doc(result))) == json.loads(written[MANIFEST_FILE])


def test_key_shaped_examples_in_documentation_are_not_secrets_but_proven_material_is() -> None:
    real = real_format_secrets()
    examples = "\n".join(f'"{k}": "{v}"' for k, v in real.items() if k != "npm-token")
    proven = f"token = {github_token(seed=31)}\n{fake_pem(seed=32)}"
    files = {
        "README.md": f"{examples}\n{proven}\n".encode(),
        "docs/setup/keys.js": f'const apiKey = "{real["google-api-key"]}";\n'.encode(),
        "apis/kms.examples.json": f'{{"clientSecret": "{real["generic-secret"]}"}}\n'.encode(),
        "lib/conf.js": f'const apiKey = "{real["google-api-key"]}";\n'.encode(),
    }
    result = scan_tarball(tgz(files))
    assert sorted((s.kind, s.file) for s in result.secrets) == [
        ("github-token", "README.md"),
        ("google-api-key", "lib/conf.js"),
        ("private-key", "README.md"),
    ]
    assert any("in documentation or examples, taken for examples" in n for n in result.notes)
