"""The registry URL and token come from npm's configuration chain, as the npm CLI resolves them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook.config import npmrc
from playbook.config.npmrc import NpmrcError, expand_env, nerf_dart, parse_npmrc, resolve
from playbook.config.settings import Settings
from playbook.errors import RespondError

REG_A = "http://127.0.0.1:4873/"
REG_B = "http://127.0.0.2:4873/npm/"


def make_settings(tmp_path: Path, env: dict[str, str] | None = None, **kw: object) -> Settings:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    full_env = {"HOME": str(home), "PATH": "", **(env or {})}
    return Settings(home=tmp_path / "respond", npm_env=full_env, cwd=project, **kw)  # type: ignore[arg-type]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_flag_wins_over_env_and_files(tmp_path: Path) -> None:
    write(tmp_path / "home/.npmrc", f"registry={REG_B}\n")
    s = make_settings(tmp_path, {"NPM_CONFIG_REGISTRY": REG_B}, registry=REG_A)
    config = resolve(s, "pkg")
    assert (config.url, config.source) == (REG_A, "--registry")


def test_env_key_is_case_insensitive_and_beats_files(tmp_path: Path) -> None:
    write(tmp_path / "project/.npmrc", f"registry={REG_B}\n")
    for name in ("NPM_CONFIG_REGISTRY", "npm_config_registry", "Npm_Config_Registry"):
        config = resolve(make_settings(tmp_path, {name: REG_A}), "pkg")
        assert config.url == REG_A
        assert config.source == f"environment variable {name}"


def test_project_npmrc_is_found_from_a_subfolder_and_beats_user(tmp_path: Path) -> None:
    write(tmp_path / "home/.npmrc", f"registry={REG_B}\n")
    project = write(tmp_path / "project/.npmrc", f"registry = {REG_A} ; comment\n")
    write(tmp_path / "project/package.json", "{}")
    deep = tmp_path / "project/src/lib"
    deep.mkdir(parents=True)
    s = make_settings(tmp_path)
    config = resolve(Settings(home=s.home, npm_env=s.npm_env, cwd=deep), "pkg")
    assert config.url == REG_A
    assert config.source == f"{project}:1"


def test_userconfig_variable_names_the_user_npmrc(tmp_path: Path) -> None:
    write(tmp_path / "home/.npmrc", f"registry={REG_B}\n")
    other = write(tmp_path / "elsewhere/npmrc", f"registry={REG_A}\n")
    config = resolve(make_settings(tmp_path, {"NPM_CONFIG_USERCONFIG": str(other)}), "pkg")
    assert config.url == REG_A


def test_scoped_registry_applies_to_its_scope_only(tmp_path: Path) -> None:
    write(tmp_path / "home/.npmrc", f"registry={REG_A}\n@acme:registry={REG_B}\n")
    s = make_settings(tmp_path)
    assert resolve(s, "@acme/cli").url == REG_B
    assert resolve(s, "@other/cli").url == REG_A
    assert resolve(s, "plain").url == REG_A


def test_flag_beats_a_scoped_registry(tmp_path: Path) -> None:
    write(tmp_path / "home/.npmrc", f"@acme:registry={REG_B}\n")
    assert resolve(make_settings(tmp_path, registry=REG_A), "@acme/cli").url == REG_A


def test_token_from_longest_nerf_dart_with_env_expansion(tmp_path: Path) -> None:
    write(
        tmp_path / "home/.npmrc",
        f"registry={REG_B}\n"
        "//127.0.0.2:4873/:_authToken=host-wide-token\n"
        "//127.0.0.2:4873/npm/:_authToken=${MY_TOKEN}\n"
        "//127.0.0.9:4873/:_authToken=other-host-token\n",
    )
    config = resolve(make_settings(tmp_path, {"MY_TOKEN": "path-token-123"}), "pkg")
    assert config.token is not None
    assert config.token.reveal() == "path-token-123"
    assert config.token_source == f"{tmp_path / 'home/.npmrc'}:3"
    assert "path-token-123" not in repr(config)


def test_token_falls_back_to_shorter_prefix_never_to_npm_token(tmp_path: Path) -> None:
    rc = write(tmp_path / "home/.npmrc", f"registry={REG_B}\n//127.0.0.2:4873/:_authToken=wide\n")
    config = resolve(make_settings(tmp_path), "pkg")
    assert config.token is not None and config.token.reveal() == "wide"
    rc.write_text(f"registry={REG_B}\n")
    # npm never reads NPM_TOKEN by itself: neither does respond (it would reach any registry).
    config = resolve(make_settings(tmp_path, {"NPM_TOKEN": "from-env-token"}), "pkg")
    assert config.token is None and config.token_source is None
    assert config.credential_for(REG_B + "pkg") is None


def test_unset_token_variable_is_a_clear_error_without_the_value(tmp_path: Path) -> None:
    write(tmp_path / "home/.npmrc", f"registry={REG_A}\n//127.0.0.1:4873/:_authToken=${{NOPE}}\n")
    with pytest.raises(NpmrcError, match=r"\.npmrc:2 names an environment variable"):
        resolve(make_settings(tmp_path), "pkg")


def test_optional_expansion_and_escapes() -> None:
    env = {"A": "x"}
    assert expand_env("${A}-${B?}-${B}", env) == "x--${B}"
    assert expand_env(r"\${A}", env) == "${A}"
    assert expand_env(r"\\${A}", env) == "\\x"


def test_quoted_values_and_inline_comments() -> None:
    entries = parse_npmrc(
        'a = "quoted ; not a comment"\nb = plain # comment\nc=esc\\;aped\n[section]\nd=1\n',
        "rc",
        {},
    )
    assert entries["a"].value == "quoted ; not a comment"
    assert entries["b"].value == "plain"
    assert entries["c"].value == "esc;aped"
    assert "d" not in entries  # npm ignores keys under an ini section


@pytest.mark.parametrize("line", ["=orphan-value", "not a key value line"])
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str) -> None:
    rc = write(tmp_path / "home/.npmrc", f"# ok\n{line}\n")
    with pytest.raises(NpmrcError, match=rf"{rc}:2 is not a `key = value` line"):
        resolve(make_settings(tmp_path, registry=REG_A), "pkg")


def test_bad_registry_url_names_where_it_was_set(tmp_path: Path) -> None:
    rc = write(tmp_path / "project/.npmrc", "registry=ftp://example.invalid/\n")
    with pytest.raises(NpmrcError, match=rf"{rc}:1 is not an http\(s\) URL"):
        resolve(make_settings(tmp_path), "pkg")


def test_nerf_dart() -> None:
    assert nerf_dart("https://127.0.0.1:8080/a/b/") == "//127.0.0.1:8080/a/b/"
    assert nerf_dart("http://127.0.0.1/a/pkg.tgz?x=1") == "//127.0.0.1/a/"


def fake_npm(tmp_path: Path, script: str) -> str:
    bin_dir = tmp_path / "bin"
    npm = write(bin_dir / "npm", f"#!/bin/sh\n{script}\n")
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


def test_without_configuration_npm_is_asked(tmp_path: Path) -> None:
    path = fake_npm(tmp_path, f'[ "$1 $2 $3" = "config get registry" ] && echo {REG_A}')
    config = resolve(make_settings(tmp_path, {"PATH": path}), "pkg")
    assert (config.url, config.source) == (REG_A, "npm config get registry")


def test_missing_npm_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RespondError, match="npm is not installed") as info:
        resolve(make_settings(tmp_path), "pkg")
    assert info.value.hint is not None and "--registry" in info.value.hint


def test_failing_npm_is_a_clear_error(tmp_path: Path) -> None:
    path = fake_npm(tmp_path, "exit 3")
    with pytest.raises(RespondError, match="failed with status 3"):
        resolve(make_settings(tmp_path, {"PATH": path}), "pkg")


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_random_npmrc_text_never_raises_anything_but_respond_error(text: str) -> None:
    try:
        entries = parse_npmrc(text, "rc", {"X": "y"})
        if "registry" in entries:
            npmrc.normalize_registry(entries["registry"].value, "rc")
        npmrc.find_token(REG_A, entries, {})
    except RespondError as exc:
        assert "rc" in exc.message or "registry" in exc.message


NPMRC_LINE = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(["registry", "@acme:registry", "//127.0.0.1:4873/:_authToken", " k ", ""]),
        st.text(alphabet="${}?\\;#\"' abcXY:/.0123456789", max_size=30),
    ),
    st.sampled_from(["[section]", "; c", "# c", "=x", "a b", "\x00", "registry=http://[::1"]),
)


@settings(max_examples=300)
@given(lines=st.lists(NPMRC_LINE, max_size=8), package=st.sampled_from(["pkg", "@acme/cli"]))
def test_npmrc_shaped_text_resolves_or_fails_with_file_and_line(
    lines: list[str], package: str
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root / "home/.npmrc", "\n".join(lines))
        env = {"HOME": str(root / "home"), "PATH": "", "X": "y"}
        s = Settings(home=root / "r", npm_env=env, cwd=root, registry=None)
        try:
            config = resolve(s, package)
        except RespondError as exc:
            assert ".npmrc" in exc.message or "npm" in exc.message
        else:
            assert config.url.startswith("http") and config.url.endswith("/")


def test_client_certificate_is_refused_naming_the_line(tmp_path: Path) -> None:
    write(tmp_path / "home/.npmrc", f"registry={REG_A}\n//127.0.0.1:4873/:certfile=/c.pem\n"
          "//127.0.0.1:4873/:keyfile=/k.pem\n//127.0.0.1:4873/:_authToken=tok\n")  # fmt: skip
    with pytest.raises(NpmrcError, match=r"\.npmrc:2 sets a client certificate.*Supported: "):
        resolve(make_settings(tmp_path), "pkg")


def test_unset_variable_in_a_credential_key_is_an_error_not_a_silent_miss(tmp_path: Path) -> None:
    write(tmp_path / "home/.npmrc", f"registry={REG_A}\n//${{REG_HOST}}/:_authToken=tok\n")
    with pytest.raises(NpmrcError, match=r"credential key at .*\.npmrc:2 names an environment"):
        npmrc.check(make_settings(tmp_path))
    config = resolve(make_settings(tmp_path, {"REG_HOST": "127.0.0.1:4873"}), "pkg")
    assert config.token is not None and config.token.reveal() == "tok"


def test_basic_forms_and_host_normalisation(tmp_path: Path) -> None:
    write(tmp_path / "home/.npmrc", "registry=HTTP://LOCALHOST:80/\n//localhost/:username=u\n"
          "//localhost/:_password=cGFzcw==\n")  # fmt: skip
    config = resolve(make_settings(tmp_path), "pkg")
    found = config.credential_for("http://localhost/pkg")
    assert found is not None and found.kind == "basic"
    assert found.authorization.reveal() == "Basic dTpwYXNz"  # base64("u:pass")
    assert config.credential_for("http://localhost:8080/pkg") is None  # another host, nothing
