"""Units of the mirror hunt: query planning, evidence, thresholds, allowlist, networks, tarballs."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from playbook.config.org import Official
from playbook.config.settings import Settings
from playbook.mirrors.fingerprints import (
    MIN_EVIDENCE_BYTES,
    Fingerprints,
    manifest_dict,
    manifest_from_json,
)
from playbook.mirrors.model import Candidate, Mirror, Verdict
from playbook.mirrors.network import annotate
from playbook.mirrors.npmcopies import hash_tarball
from playbook.mirrors.official import is_official, read_official
from playbook.mirrors.queries import looks_like_identifier, pick_identifiers, plan_queries
from playbook.mirrors.verify import copy_threshold, decide, match_tree
from playbook.scan.fingerprint import blob_sha1, norm_sha256

PKG, VER = "@acme/widget-cli", "2.1.88"


def body(n: int) -> bytes:
    return f"export function distinctHelper{n}() {{ return {n} * 7919; }}\n".encode() * 3


def test_git_blob_sha1_matches_git() -> None:
    # `printf 'hello\n' | git hash-object --stdin`
    assert blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert norm_sha256(b"a b\n\tc") == norm_sha256(b"abc")


def test_greedy_pick_covers_the_most_distinct_files() -> None:
    files = {f"src/f{i}.ts": body(i) for i in range(1, 6)} | {"node_modules/x/i.js": body(9)}
    data = manifest_dict(files, PKG, VER)
    data["identifiers"] = [
        {"token": "alphaToken1", "files": ["src/f1.ts", "src/f2.ts", "src/f3.ts"]},
        {"token": "betaToken22", "files": ["src/f3.ts", "src/f4.ts"]},
        {"token": "gammaToken3", "files": ["src/f4.ts", "src/f5.ts"]},
        {"token": "function", "files": ["src/f1.ts", "src/f2.ts", "src/f3.ts", "src/f4.ts"]},
        {"token": "vendoredThing1", "files": ["node_modules/x/i.js"]},
    ]
    manifest = manifest_from_json(data)
    picked = pick_identifiers(manifest, 2)
    # Forks are asked for: without fork:true GitHub leaves every fork out of code search.
    assert [q.query for q in picked] == ["alphaToken1 fork:true", "gammaToken3 fork:true"]
    assert [q.covers for q in picked] == [3, 2]
    assert len(pick_identifiers(manifest, 9)) == 2  # betaToken22 adds no new file


def test_identifier_filter_keeps_code_tokens_only() -> None:
    assert looks_like_identifier("renderPermissionDialogV2")
    assert looks_like_identifier("MAX_RETRY_COUNT")
    assert not looks_like_identifier("permission")  # an English word
    assert not looks_like_identifier("short1")  # too short to be rare
    assert not looks_like_identifier("has-dash-inside")  # punctuation is ignored by search


def test_repo_queries_use_leak_words_and_the_publish_date() -> None:
    manifest = manifest_from_json(manifest_dict({"src/a.ts": body(1)}, PKG, VER))
    plan = plan_queries(manifest, "2026-03-31T04:00:00Z")
    assert plan.words == "widget cli"
    assert all("created:>=2026-03-31" in q for q in plan.repos)
    assert any(" leak " in q for q in plan.repos) and any(" source " in q for q in plan.repos)
    assert any(VER in q for q in plan.repos)
    assert not any("created" in q for q in plan_queries(manifest, None).repos)


def test_evidence_excludes_tiny_public_and_vendored_files() -> None:
    files = {
        "src/big.ts": body(1),
        "src/public.ts": body(2),
        "src/tiny.ts": b"export {};\n",
        "node_modules/lib/index.js": body(3),
    }
    manifest = manifest_from_json(manifest_dict(files, PKG, VER))
    fp = Fingerprints.build(manifest, public_shas={blob_sha1(body(2))})
    assert len(b"export {};\n") < MIN_EVIDENCE_BYTES
    assert fp.total == 1 and fp.not_counted == 2
    assert set(fp.by_path) == {"src/big.ts"}
    tree = [("x/big.ts", blob_sha1(body(1))), ("public.ts", blob_sha1(body(2)))]
    match = match_tree(tree, fp)
    assert match.matched == 1 and match.sample == ("x/big.ts",)


def test_copy_threshold_is_half_of_the_distinctive_files() -> None:
    assert copy_threshold(58) == 29
    assert decide(29, 58) is Verdict.COPY
    assert decide(28, 58) is Verdict.PARTIAL
    assert decide(0, 58) is Verdict.UNRELATED
    assert decide(1, 1) is Verdict.COPY
    assert decide(0, 0) is Verdict.UNRELATED


def test_allowlist_covers_listed_names_never_their_forks() -> None:
    official = Official(
        github_orgs=("acme",), repositories=("partner/shared",), npm_scopes=("@acme",)
    )

    def gh(name: str) -> Candidate:
        return Candidate(f"https://github.com/{name}", "github.com", "repo", name)

    assert is_official(gh("acme/widget-cli"), official)
    assert is_official(gh("ACME/other"), official)
    assert is_official(gh("partner/shared"), official)
    assert not is_official(gh("dev1/widget-cli"), official)
    assert not is_official(gh("partner/other"), official)
    npm = Candidate("npm:@acme/x@1.0.0", "npm", "package", "@acme/x@1.0.0")
    assert is_official(npm, official)
    assert not is_official(Candidate("npm:x@1", "npm", "package", "x@1"), official)


def test_read_official_prefers_the_working_directory(tmp_path: Path) -> None:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    (home / "respond.toml").write_text('[official]\ngithub_orgs = ["home-org"]\n')
    assert read_official(Settings(home=home, cwd=cwd)).github_orgs == ("home-org",)
    (cwd / "respond.toml").write_text('[official]\nrepositories = ["acme/cli"]\n')
    settings = Settings(home=home, cwd=cwd)  # respond.toml is read once per Settings
    assert read_official(settings).repositories == ("acme/cli",)
    assert read_official(settings).github_orgs == ()


def mirror(name: str, verdict: Verdict, parent: str | None = None, **kw: object) -> Mirror:
    url = f"https://github.com/{name}"
    return Mirror(url, "github.com", "repo", name, verdict, parent=parent, **kw)  # type: ignore[arg-type]


def test_network_warning_is_true_false_or_unknown() -> None:
    root = "https://github.com/a/root"
    mirrors = annotate(
        [
            mirror("a/root", Verdict.COPY, forks_listed=True),
            mirror("b/fork", Verdict.COPY, parent=root, forks_count=0),
            mirror("c/alone", Verdict.COPY, forks_count=3),
            mirror("d/one", Verdict.COPY, forks_listed=True),
            mirror("e/fork", Verdict.UNRELATED, parent="https://github.com/d/one", forks_count=0),
        ]
    )
    by = {m.name: m for m in mirrors}
    assert by["b/fork"].network_root == root
    assert by["a/root"].network_has_non_copies is False
    assert by["c/alone"].network_has_non_copies is None  # its forks were never listed
    assert by["d/one"].network_has_non_copies is True
    assert by["e/fork"].network_has_non_copies is None  # only copies carry the warning


def test_tarball_hashing_includes_map_sources(tmp_path: Path) -> None:
    source = body(4).decode()
    smap = json.dumps({"version": 3, "sources": ["../src/a.ts"], "sourcesContent": [source]})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("package/cli.js.map", smap.encode()), ("package/b.js", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("package/evil")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    path = tmp_path / "p.tgz"
    path.write_bytes(buf.getvalue())
    entries = dict(hash_tarball(path))
    assert entries["cli.js.map:../src/a.ts"] == blob_sha1(body(4))
    assert entries["b.js"] == blob_sha1(b"x")
    assert "evil" not in entries


def test_token_fingerprints_ignore_formatting_but_not_code() -> None:
    from playbook.rehearsal.world.seed import prettier_style, sample_files
    from playbook.scan.winnow import SIMILAR, similarity, tokens, winnow

    files = sample_files(seed=3)
    leaked = files["src/tools/Module0.ts"]
    prints = winnow(leaked)
    assert len(prints) >= 8
    assert similarity(prints, prettier_style(leaked)) == 1.0
    assert similarity(prints, leaked.replace(b"  ", b"\t").replace(b"\n", b"\r\n")) == 1.0
    # Comments dropped, quotes and escapes made equal: 'it\'s' and "it's" are one token.
    assert tokens(b"x = 'it\\'s'; // note\n") == tokens(b'x = "it\'s"\n/* other */')
    # A file that shares the imports and the shape, not the code, is far below the bar.
    assert similarity(prints, files["src/tools/Module5.ts"]) < SIMILAR / 2
    assert similarity((), leaked) == 0.0  # no fingerprints: nothing proven
