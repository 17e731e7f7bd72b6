"""The npm registry URL and credentials, resolved through npm's own configuration chain.

Layers, highest first, as the npm CLI reads them: the `--registry` flag, `npm_config_*` environment
variables (prefix case-insensitive), the project `.npmrc` (in the nearest folder from the working
directory that holds a package.json or node_modules), the user `.npmrc` (`NPM_CONFIG_USERCONFIG`
or ~/.npmrc). A package's `@scope:registry` wins over `registry`, as in npm, except over the
explicit `--registry` flag: an operator who names a registry (a rehearsal's loopback one) must never
have a write land on another. When nothing names a registry, npm itself
is asked (`npm config get registry`), so global config and npm's built-in default apply unchanged.

Credentials are chosen per request URL as npm-registry-fetch's `lib/auth.js` does: walk up
`//host[:port]/path` (host lower-cased, default port dropped, as WHATWG URL writes it) to the first
key holding `_authToken`, `_auth`, `username`+`_password` or `certfile`+`keyfile`; a URL with none
borrows the registry's credential only when it is on the registry's own host. `NPM_TOKEN` alone is
never read (npm does not read it either). Deliberate differences, each an error where npm would
go on silently: a credential whose `${VAR}` is unset, a top-level `_auth`/`_authToken`/`username`/
`_password` (npm refuses those too), and a client certificate (respond cannot present one).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playbook.config.settings import Settings
from playbook.errors import RespondError, UsageError
from playbook.secret import Secret

NPM_TIMEOUT = 15.0
# @npmcli/config's env-replace: `${NAME}` or `${NAME?}`, a backslash escapes the `$`.
_ENV_EXPR = re.compile(r"(?<!\\)(\\*)\$\{([^${}?]+)(\?)?\}")
_SECTION = re.compile(r"^\[([^\]]*)\]\s*$")


class NpmrcError(UsageError):
    """An .npmrc file or npm setting that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Entry:
    """One configuration value and where it was set (file:line, or the variable's name)."""

    value: str
    where: str


@dataclass(frozen=True)
class Credential:
    """What npm would send for one URL: the Authorization header, and which line set it."""

    authorization: Secret
    kind: str  # "token" (Bearer), "auth" (Basic from _auth), "basic" (username + _password)
    where: str

    def __repr__(self) -> str:
        return f"Credential(kind={self.kind!r}, where={self.where!r})"


AUTH_SUFFIXES = (":_authToken", ":_auth", ":username", ":_password", ":certfile", ":keyfile")
TOP_LEVEL_AUTH = ("_auth", "_authToken", "username", "_password")


@dataclass(frozen=True)
class Credentials:
    """npm-registry-fetch's getAuth: the credential for each request URL of one registry."""

    registry: str
    config: Mapping[str, Entry]

    def for_url(self, url: str) -> Credential | None:
        found = self._match(url)
        if found is None and url != self.registry and _host(url) == _host(self.registry):
            found = self._match(self.registry)
        return None if found is None else self._credential(found)

    def _match(self, url: str) -> str | None:
        key = reg_key(url)
        while len(key) > 2:
            if self._has_auth(key):
                return key
            key = re.sub(r"(?:[^/]+|/)$", "", key)
        return None

    def _get(self, key: str) -> Entry | None:
        entry = self.config.get(key)
        return entry if entry is not None and entry.value else None

    def _has_auth(self, key: str) -> bool:
        get = self._get
        return bool(
            get(f"{key}:_authToken")
            or get(f"{key}:_auth")
            or (get(f"{key}:username") and get(f"{key}:_password"))
            or (get(f"{key}:certfile") and get(f"{key}:keyfile"))
        )

    def _credential(self, key: str) -> Credential | None:
        cert = self._get(f"{key}:certfile")
        if cert is not None and self._get(f"{key}:keyfile") is not None:
            raise NpmrcError(
                f"{cert.where} sets a client certificate (certfile/keyfile) for {key}; respond "
                "cannot present one. Supported: _authToken, _auth, username + _password.",
                "Use a token for respond, or run the registry steps with the npm CLI.",
            )
        token, auth = self._get(f"{key}:_authToken"), self._get(f"{key}:_auth")
        user, password = self._get(f"{key}:username"), self._get(f"{key}:_password")
        if token is not None:
            return Credential(Secret(f"Bearer {_expanded(token)}"), "token", token.where)
        if auth is not None:
            return Credential(Secret(f"Basic {_expanded(auth)}"), "auth", auth.where)
        if user is not None and password is not None:
            try:
                plain = base64.b64decode(_expanded(password) + "==", validate=False).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise NpmrcError(
                    f"{password.where}: _password is not base64 (npm expects it encoded).",
                    "Write _password=<base64 of the password>.",
                ) from None
            pair = f"{_expanded(user)}:{plain}".encode()
            return Credential(
                Secret(f"Basic {base64.b64encode(pair).decode()}"), "basic", password.where
            )
        return None


def _expanded(entry: Entry) -> str:
    if _ENV_EXPR.search(entry.value):
        raise NpmrcError(
            f"The credential at {entry.where} names an environment variable that is not set.",
            "Export that variable, or put the value in the .npmrc line itself.",
        )
    return entry.value


def _host(url: str) -> str:
    """WHATWG URL's `host`: lower-case, without the scheme's default port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != {"http": 80, "https": 443}.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host


def reg_key(url: str) -> str:
    """npm-registry-fetch's first key for a URL: `//host` + pathname (query dropped)."""
    return f"//{_host(url)}{urlsplit(url).path or '/'}"


@dataclass(frozen=True)
class RegistryConfig:
    """Where to send registry requests and with which credentials. `source` never mentions one."""

    url: str
    token: Secret | None
    source: str
    token_source: str | None = None
    credentials: Credentials | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"RegistryConfig(url={self.url!r}, token=<hidden>, source={self.source!r})"

    def credential_for(self, url: str) -> Credential | None:
        return None if self.credentials is None else self.credentials.for_url(url)


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """`${NAME}` → its value (left as written when unset, as npm does); `${NAME?}` → '' if unset."""

    def replace(match: re.Match[str]) -> str:
        escapes, name, optional = match.group(1), match.group(2), match.group(3)
        if len(escapes) % 2:
            return match.group(0)[(len(escapes) + 1) // 2 :]
        fallback = "" if optional else "${" + name + "}"
        return escapes[len(escapes) // 2 :] + env.get(name, fallback)

    return _ENV_EXPR.sub(replace, text)


def _unquote(raw: str) -> str:
    """The `ini` package's value rules: quoted → JSON string; else cut at an unescaped ; or #."""
    val = raw.strip()
    if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
        inner = val[1:-1] if val[0] == "'" else val
        try:
            decoded = json.loads(inner)
        except ValueError:
            return inner
        return decoded if isinstance(decoded, str) else inner
    out: list[str] = []
    escaped = False
    for char in val:
        if escaped:
            out.append(char if char in "\\;#" else "\\" + char)
            escaped = False
        elif char in ";#":
            break
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    if escaped:
        out.append("\\")
    return "".join(out).strip()


def parse_npmrc(text: str, path: str, env: Mapping[str, str]) -> dict[str, Entry]:
    """Top-level `key = value` entries of one .npmrc; lines npm would silently drop are errors."""
    entries: dict[str, Entry] = {}
    section: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            continue
        if "\x00" in line:
            raise NpmrcError(f"{where} holds a NUL byte; an .npmrc is a text file.")
        if _SECTION.match(stripped):
            section = stripped[1:-1]  # npm ignores keys under an ini [section]; so do we
            continue
        key_raw, has_value, value_raw = line.partition("=")
        key = expand_env(_unquote(key_raw), env)
        if not key:
            raise NpmrcError(
                f"{where} is not a `key = value` line: {_shown(stripped)}.",
                "Fix or delete that line in the .npmrc.",
            )
        if not has_value and re.search(r"\s", key):
            raise NpmrcError(
                f"{where} is not a `key = value` line: {_shown(stripped)}.",
                "Fix or delete that line in the .npmrc.",
            )
        if section is None and key != "__proto__":
            value = expand_env(_unquote(value_raw), env) if has_value else "true"
            entries[key] = Entry(value, where)
    return entries


def _shown(line: str) -> str:
    """A bad line, shown without any value that might be a token."""
    key = line.split("=", 1)[0].strip()
    return repr(key[:60] + ("=..." if "=" in line else ""))


def env_entries(env: Mapping[str, str]) -> dict[str, Entry]:
    """`npm_config_<key>` variables (prefix in any case), as @npmcli/config maps them to keys."""
    entries: dict[str, Entry] = {}
    for name, value in env.items():
        if not name.lower().startswith("npm_config_") or value == "":
            continue
        key = name[len("npm_config_") :]
        if not key.startswith("//"):
            key = key[:1] + key[1:].replace("_", "-")
            key = key.lower()
        entries[key] = Entry(value, f"environment variable {name}")
    return entries


def project_root(cwd: Path) -> Path:
    """npm's local prefix: the nearest folder up from cwd holding package.json or node_modules."""
    for folder in (cwd, *cwd.parents):
        if (folder / "package.json").exists() or (folder / "node_modules").exists():
            return folder
    return cwd


def user_npmrc(env: Mapping[str, str]) -> Path:
    for name, value in env.items():
        if name.lower() == "npm_config_userconfig" and value:
            return Path(value).expanduser()
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".npmrc"


def _read(path: Path, env: Mapping[str, str]) -> dict[str, Entry]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise NpmrcError(f"Cannot read {path}: {exc.strerror}.") from None
    return parse_npmrc(text, str(path), env)


def merged_config(settings: Settings) -> dict[str, Entry]:
    """Every layer npm reads, lowest first, so that higher layers overwrite lower ones."""
    env = settings.npm_env
    user = user_npmrc(env)
    project = project_root(settings.cwd) / ".npmrc"
    layers = [_read(user, env)]
    if project.resolve() != user.resolve():
        layers.append(_read(project, env))
    merged: dict[str, Entry] = {}
    for layer in layers:
        _refuse_top_level_auth(layer)
        merged.update(layer)
    merged.update(env_entries(env))
    return merged


def _refuse_top_level_auth(layer: Mapping[str, Entry]) -> None:
    """npm 9+ refuses to run with these (ERR_INVALID_AUTH); so does respond, naming the line."""
    for key in TOP_LEVEL_AUTH:
        entry = layer.get(key)
        if entry is not None and entry.value:
            raise NpmrcError(
                f"{entry.where}: a top-level `{key}` is not allowed (npm refuses it too: "
                f"Invalid auth configuration); supported: //host/path/:{key}=...",
                f"Rename it to //your-registry-host/:{key} (npm config fix does this).",
            )


def nerf_dart(url: str) -> str:
    """npm's key for credentials: `//host[:port]/path/` without scheme, query or file part."""
    parts = urlsplit(url)
    path = parts.path if parts.path.endswith("/") else parts.path.rsplit("/", 1)[0] + "/"
    return f"//{_host(url)}{path}"


def normalize_registry(url: str, where: str) -> str:
    try:
        parts = urlsplit(url.strip())
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a malformed IPv6 literal or port
        valid = False
    if not valid:
        raise NpmrcError(
            f"The registry set by {where} is not an http(s) URL: {url.strip()[:100]!r}.",
            "Set registry=https://your-registry/ (npm config set registry URL).",
        )
    if parts.username or parts.password:
        raise NpmrcError(
            f"The registry URL set by {where} carries credentials; respond sends tokens only "
            "in headers.",
            "Move the credentials to a //host/:_authToken line in .npmrc.",
        )
    return url.strip() if url.strip().endswith("/") else url.strip() + "/"


def find_token(
    url: str, config: Mapping[str, Entry], env: Mapping[str, str] | None = None
) -> tuple[Secret | None, str | None]:
    """The `_authToken` npm would send to `url` (None when it would send another kind, or none).
    `env` is unused: npm never falls back to NPM_TOKEN, and neither does respond any more."""
    found = Credentials(url, config).for_url(url)
    token = _token(found)
    return (None, None) if token is None else (token, found.where if found else None)


def _token(found: Credential | None) -> Secret | None:
    """The bare `_authToken` behind a Bearer credential; None for any other kind."""
    if found is None or found.kind != "token":
        return None
    return Secret(found.authorization.reveal().removeprefix("Bearer "))


def ask_npm(settings: Settings) -> str:
    """`npm config get registry`: npm's global config and built-in default, naming no host."""
    npm = settings.npm
    if npm is None:
        raise RespondError(
            "No registry is configured and npm is not installed to say which one it would use.",
            "Pass --registry URL, set NPM_CONFIG_REGISTRY, or add registry=URL to an .npmrc.",
        )
    try:
        done = subprocess.run(
            [npm, "config", "get", "registry"],
            cwd=settings.cwd,
            env=dict(settings.npm_env),
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RespondError(
            f"Asking npm for its registry (`npm config get registry`) failed: {exc}.",
            "Pass --registry URL or set NPM_CONFIG_REGISTRY.",
        ) from None
    lines = [ln.strip() for ln in done.stdout.splitlines() if ln.strip()]
    if done.returncode != 0 or not lines:
        raise RespondError(
            f"`npm config get registry` failed with status {done.returncode}.",
            "Pass --registry URL or set NPM_CONFIG_REGISTRY.",
        )
    return lines[-1]


def resolve(settings: Settings, package: str | None = None) -> RegistryConfig:
    """The registry and token npm would use for `package` (its scope may pick another registry)."""
    config = merged_config(settings)
    scope = package.split("/", 1)[0] if package and package.startswith("@") else None
    scoped = config.get(f"{scope}:registry") if scope else None
    if settings.registry:
        url, source = settings.registry, "--registry"
    elif scoped is not None:
        url, source = scoped.value, scoped.where
    elif "registry" in config:
        url, source = config["registry"].value, config["registry"].where
    else:
        url, source = ask_npm(settings), "npm config get registry"
    url = normalize_registry(url, source)
    _refuse_unset_keys(config)
    credentials = Credentials(url, config)
    found = credentials.for_url(url)
    return RegistryConfig(
        url=url,
        token=_token(found),
        source=source,
        token_source=found.where if found is not None else None,
        credentials=credentials,
    )


def check(settings: Settings) -> None:
    """Read every npm configuration layer and refuse what would break later (a malformed line, a
    top-level credential, an unset variable in a credential): before a run starts, not mid-run."""
    config = merged_config(settings)
    _refuse_unset_keys(config)
    for key, entry in config.items():
        if key.startswith("//") and key.endswith(AUTH_SUFFIXES):
            _expanded(entry)


def _refuse_unset_keys(config: Mapping[str, Entry]) -> None:
    """A credential key naming an unset variable would silently never match (npm skips it)."""
    for key, entry in config.items():
        if key.startswith("//") and key.endswith(AUTH_SUFFIXES) and _ENV_EXPR.search(key):
            raise NpmrcError(
                f"The credential key at {entry.where} names an environment variable that is "
                "not set.",
                "Export that variable, or write the registry host in the key itself.",
            )
