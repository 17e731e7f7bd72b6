"""The npm registry: reads, and writes exactly as the npm CLI 11 sends them, two-factor included."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import nodesemver

from playbook.errors import (
    IntegrityError,
    OtpRequired,
    PolicyRefused,
    RemoteError,
    UsageError,
)
from playbook.net.http import parse_retry_after
from playbook.secret import Secret, scrub
from playbook.spec import default_tarball_url, escape_name
from playbook.spec import tarball_filename as tarball_filename  # callers import it from here

if TYPE_CHECKING:
    from playbook.config.npmrc import Credential
    from playbook.services.hub import Services

Progress = Callable[[str], None]
AskOtp = Callable[[str], "str | None"]
Doc = dict[str, Any]
T = TypeVar("T")

WEB_AUTH_TIMEOUT = 300.0
MAX_TARBALL_BYTES = 1 << 30
TAMPER_HINT = "Stop and find out why before acting on this artifact (a proxy, a cache, tampering)."
# npm's own words (lib/commands/unpublish.js), with respond's flag in place of --force.
LAST_VERSION_MESSAGE = (
    "Refusing to delete the last version of the package. It will block from republishing a new "
    "version for 24 hours."
)
LAST_VERSION_HINT = (
    "Run with --unpublish-all (or `with: {whole_package: true}` in the runbook) to do this; "
    "meanwhile the version stays deprecated and off its tags."
)
# The public registry's unpublish refusals: 405/422, and 400/403 whose body names the policy.
POLICY_STATUSES = frozenset({400, 403, 405, 422})
_POLICY_WORDS = re.compile(r"unpublish|criteria|policy", re.IGNORECASE)
# The npm command a request belongs to, sent as `npm-command` as the npm CLI does.
_COMMAND: contextvars.ContextVar[str | None] = contextvars.ContextVar("npm_command", default=None)
OTP_HINT = (
    "Resume the incident with `--otp CODE` (or set NPM_OTP=CODE) using a fresh code from your "
    "authenticator; on a terminal respond asks for it."
)


# -- what the client returns ----------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    tarball: str | None
    integrity: str | None
    shasum: str | None


@dataclass(frozen=True)
class VersionInfo:
    version: str
    deprecated: str | None
    dist: Dist
    maintainers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Packument:
    name: str
    rev: str | None
    dist_tags: Mapping[str, str]
    versions: Mapping[str, VersionInfo]
    time: Mapping[str, str]
    maintainers: tuple[str, ...]
    unpublished_versions: tuple[str, ...] = ()

    def tags_on(self, version: str) -> list[str]:
        return sorted(tag for tag, v in self.dist_tags.items() if v == version)


@dataclass(frozen=True)
class SearchHit:
    name: str
    version: str
    description: str
    date: str | None
    publisher: str | None


@dataclass(frozen=True)
class Download:
    path: Path
    size: int
    integrity: str
    shasum: str


class LastVersion(UsageError):
    """npm refuses to unpublish a package's only version without the whole-package flag."""


@dataclass(frozen=True)
class UnpublishResult:
    """What an unpublish call did: `sequence` lists the requests it sent, in order."""

    changed: bool
    sequence: tuple[str, ...] = ()
    whole_package: bool = False
    note: str = ""


class NpmRegistry(Protocol):
    url: str
    source: str

    async def packument(self, name: str, *, write: bool = False) -> Packument | None: ...

    async def dist_tags(self, name: str) -> dict[str, str]: ...

    async def set_dist_tag(
        self, name: str, tag: str, version: str, *, progress: Progress | None = None
    ) -> None: ...

    async def delete_dist_tag(
        self, name: str, tag: str, *, progress: Progress | None = None
    ) -> None: ...

    async def deprecate(
        self, name: str, version: str, message: str, *, progress: Progress | None = None
    ) -> bool: ...

    async def unpublish_version(
        self,
        name: str,
        version: str,
        *,
        tarball: str | None = None,
        latest: str | None = None,
        progress: Progress | None = None,
    ) -> UnpublishResult: ...

    async def unpublish_package(
        self, name: str, *, confirmed: bool, progress: Progress | None = None
    ) -> UnpublishResult: ...

    async def download(
        self, url: str, dest: Path, *, integrity: str | None, shasum: str | None
    ) -> Download: ...

    async def tarball_reachable(self, url: str) -> bool: ...

    async def search(self, text: str, *, size: int = 20) -> list[SearchHit]: ...


# -- pure helpers ---------------------------------------------------------------------------------


async def download_version(
    reg: NpmRegistry, name: str, version: str, folder: Path, doc: Packument | None = None
) -> Path | None:
    """The published version's tarball, downloaded into `folder` and checked against the
    packument's integrity and shasum (`doc`, when the caller read it already); None when the
    registry serves no such version."""
    if doc is None:
        doc = await reg.packument(name)
    info = doc.versions.get(version) if doc is not None else None
    if info is None or not info.dist.tarball:
        return None
    dest = folder / tarball_filename(name, version)
    await reg.download(
        info.dist.tarball, dest, integrity=info.dist.integrity, shasum=info.dist.shasum
    )
    return dest


def parse_packument(doc: Mapping[str, Any]) -> Packument:
    versions = {
        v: _version_info(v, data)
        for v, data in (doc.get("versions") or {}).items()
        if isinstance(data, Mapping)
    }
    times = {k: v for k, v in (doc.get("time") or {}).items() if isinstance(v, str)}
    unpublished = (doc.get("time") or {}).get("unpublished") or {}
    gone = unpublished.get("versions", []) if isinstance(unpublished, Mapping) else []
    return Packument(
        name=str(doc.get("name") or doc.get("_id") or ""),
        rev=doc.get("_rev"),
        dist_tags={k: str(v) for k, v in (doc.get("dist-tags") or {}).items()},
        versions=versions,
        time=times,
        maintainers=_people(doc.get("maintainers")),
        unpublished_versions=tuple(str(v) for v in gone),
    )


def _version_info(version: str, data: Mapping[str, Any]) -> VersionInfo:
    dist = data.get("dist") or {}
    deprecated = data.get("deprecated")
    return VersionInfo(
        version=version,
        deprecated=deprecated if isinstance(deprecated, str) and deprecated else None,
        dist=Dist(dist.get("tarball"), dist.get("integrity"), dist.get("shasum")),
        maintainers=_people(data.get("maintainers")),
    )


def _people(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names = (p.get("name") if isinstance(p, Mapping) else p for p in value)
    return tuple(str(n) for n in names if n)


def npm_latest_pick(versions: list[str]) -> str | None:
    """The highest remaining version, preferring releases over prereleases."""
    valid = [v for v in versions if nodesemver.valid(v, True)]
    releases = [v for v in valid if not nodesemver.parse(v, True).prerelease]
    pool = releases or valid
    return nodesemver.sort(pool, True)[-1] if pool else None


def check_integrity(
    data_sha512: bytes, data_sha1: str, integrity: str | None, shasum: str | None, where: str
) -> None:
    """Compare against the SRI string (any sha512 entry) and the hex shasum; either missing is
    skipped, both missing is refused: there is nothing to prove the bytes are the registry's."""
    if not integrity and not shasum:
        raise IntegrityError(
            f"The registry gives no integrity or shasum for {where}; the bytes cannot be checked.",
            "Download it by hand and compare with what was published before trusting it.",
        )
    if integrity:
        wanted = [e.split("-", 1)[1] for e in integrity.split() if e.startswith("sha512-")]
        actual = base64.b64encode(data_sha512).decode()
        if wanted and actual not in [w.split("?", 1)[0] for w in wanted]:
            raise IntegrityError(
                f"The tarball {where} does not match its dist.integrity: expected sha512-"
                f"{wanted[0][:16]}..., got sha512-{actual[:16]}...: the registry sent other bytes.",
                TAMPER_HINT,
            )
    if shasum and shasum.lower() != data_sha1:
        raise IntegrityError(
            f"The tarball {where} does not match its shasum: expected {shasum}, got {data_sha1}.",
            TAMPER_HINT,
        )


def registry_reason(response: httpx.Response) -> str:
    """The registry's own words for a refusal: its JSON `error`/`reason`/`message`, or the text."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        for key in ("error", "reason", "message", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                text = body[key]
                break
    if not text:
        text = response.text
    return scrub(" ".join(text.split())[:500]) or f"HTTP {response.status_code}"


def is_otp_challenge(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    if "otp" in response.headers.get("www-authenticate", "").lower():
        return True
    text = response.text.lower()
    return "one-time pass" in text or ("authurl" in text and "doneurl" in text)


def _web_flow(response: httpx.Response) -> tuple[str, str] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, Mapping) and body.get("authUrl") and body.get("doneUrl"):
        return str(body["authUrl"]), str(body["doneUrl"])
    return None


# -- the client -----------------------------------------------------------------------------------


@dataclass
class OtpSource:
    """Where one-time passwords come from: a code given up front, a prompt, the web flow."""

    given: Secret | None = None
    ask: AskOtp | None = None
    web_timeout: float = WEB_AUTH_TIMEOUT
    current: Secret | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.current = self.given


class NpmAuth(httpx.Auth):
    """npm-registry-fetch's getAuth per request: the credential npm would send to this URL, or
    none. `headers` are npm's `npm-auth-type` (and `npm-command` of the running operation)."""

    def __init__(self, choose: Callable[[str], Credential | None], auth_type: str = "web") -> None:
        self.choose = choose
        self.auth_type = auth_type

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        found = self.choose(str(request.url))
        if found is not None:
            request.headers["authorization"] = found.authorization.reveal()
        request.headers["npm-auth-type"] = self.auth_type
        command = _COMMAND.get()
        if command:
            request.headers["npm-command"] = command
        yield request


class HttpNpmRegistry:
    """NpmRegistry over an httpx client whose base URL is the registry. `credentials` chooses the
    Authorization of each request by its URL, as npm does; without it, `client`'s own headers go.
    `anon` fetches tarballs on another origin when no chooser is given."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        url: str,
        source: str = "",
        anon: httpx.AsyncClient | None = None,
        otp: OtpSource | None = None,
        token_source: str | None = None,
        search_timeout: float | None = None,
        credentials: Callable[[str], Credential | None] | None = None,
    ) -> None:
        self.client = client
        self.search_timeout = search_timeout  # the search is a hunt service: its own timeout
        self.url = url if url.endswith("/") else url + "/"
        self.source = source
        self.otp = otp or OtpSource()
        if credentials is not None:
            # npm's auth-type is `legacy` when an OTP is given up front, else `web`.
            auth_type = "legacy" if self.otp.given is not None else "web"
            client.auth = NpmAuth(credentials, auth_type)
            anon = client  # the chooser decides per URL, other origins included
        self.anon = anon or client
        self.token_source = token_source
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.url))

    # -- reads --

    async def packument(self, name: str, *, write: bool = False) -> Packument | None:
        doc = await self._doc(name, write=write)
        return None if doc is None else parse_packument(doc)

    async def _doc(self, name: str, *, write: bool = True) -> Doc | None:
        path = escape_name(name)
        params = {"write": "true"} if write else None
        response = await self.client.get(
            path, params=params, headers={"accept": "application/json"}
        )
        if response.status_code == 404:
            return None
        self._raise_for(response, "GET", self.url + path)
        doc: Doc = response.json()
        if not isinstance(doc, dict):
            raise RemoteError(f"The registry answered {self.url}{path} with a non-object document.")
        return doc

    async def dist_tags(self, name: str) -> dict[str, str]:
        path = f"-/package/{escape_name(name)}/dist-tags"
        with _command("dist-tag"):
            response = await self.client.get(path)
        if response.status_code == 404:
            raise RemoteError(f"The registry {self.url} has no package {name}.", status=404)
        self._raise_for(response, "GET", self.url + path)
        return {str(k): str(v) for k, v in response.json().items()}

    async def tarball_reachable(self, url: str) -> bool:
        client = self.client if self._same_origin(url) else self.anon
        async with client.stream("GET", url) as response:
            return response.status_code == 200

    async def search(self, text: str, *, size: int = 20) -> list[SearchHit]:
        timeout = (
            self.search_timeout if self.search_timeout is not None else httpx.USE_CLIENT_DEFAULT
        )
        response = await self.client.get(
            "-/v1/search", params={"text": text, "size": size}, timeout=timeout
        )
        self._raise_for(response, "GET", f"{self.url}-/v1/search")
        hits = []
        for obj in response.json().get("objects") or []:
            pkg = obj.get("package") or {}
            hits.append(
                SearchHit(
                    name=str(pkg.get("name", "")),
                    version=str(pkg.get("version") or (pkg.get("dist-tags") or {}).get("latest")),
                    description=str(pkg.get("description") or ""),
                    date=pkg.get("date"),
                    publisher=(pkg.get("publisher") or {}).get("username"),
                )
            )
        return hits

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        integrity: str | None,
        shasum: str | None,
        max_bytes: int = MAX_TARBALL_BYTES,
    ) -> Download:
        """Stream the tarball to `dest`, hashing as it comes; a mismatch deletes it and raises."""
        client = self.client if self._same_origin(url) else self.anon
        sha512, sha1, size = hashlib.sha512(), hashlib.sha1(), 0
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                self._raise_for(response, "GET", url)
            with dest.open("wb") as out:
                async for chunk in response.aiter_bytes(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise RemoteError(f"The tarball {url} is larger than {max_bytes} bytes.")
                    sha512.update(chunk)
                    sha1.update(chunk)
                    out.write(chunk)
        try:
            check_integrity(sha512.digest(), sha1.hexdigest(), integrity, shasum, url)
        except IntegrityError:
            dest.unlink(missing_ok=True)
            raise
        sri = "sha512-" + base64.b64encode(sha512.digest()).decode()
        return Download(dest, size, sri, sha1.hexdigest())

    # -- writes --

    async def set_dist_tag(
        self, name: str, tag: str, version: str, *, progress: Progress | None = None
    ) -> None:
        path = f"-/package/{escape_name(name)}/dist-tags/{quote(tag, safe='')}"
        with _command("dist-tag"):
            await self._write("PUT", path, json_body=version, progress=progress)

    async def delete_dist_tag(
        self, name: str, tag: str, *, progress: Progress | None = None
    ) -> None:
        if tag == "latest":
            raise UsageError(f"Refusing to delete the `latest` tag of {name}; move it instead.")
        path = f"-/package/{escape_name(name)}/dist-tags/{quote(tag, safe='')}"
        with _command("dist-tag"):
            await self._write("DELETE", path, progress=progress)

    async def deprecate(
        self, name: str, version: str, message: str, *, progress: Progress | None = None
    ) -> bool:
        """Set `versions[v].deprecated` and PUT the whole document back. False: already set."""
        with _command("deprecate"):
            return await _once_more_on_conflict(
                lambda: self._deprecate(name, version, message, progress)
            )

    async def _deprecate(
        self, name: str, version: str, message: str, progress: Progress | None
    ) -> bool:
        doc = await self._require_doc(name)
        versions = doc.get("versions") or {}
        if version not in versions:
            raise RemoteError(
                f"{name}@{version} is not on the registry {self.url}; cannot deprecate."
            )
        if (versions[version].get("deprecated") or "") == message:
            return False
        versions[version]["deprecated"] = message
        await self._write("PUT", escape_name(name), json_body=doc, progress=progress)
        return True

    async def unpublish_version(
        self,
        name: str,
        version: str,
        *,
        tarball: str | None = None,
        latest: str | None = None,
        progress: Progress | None = None,
    ) -> UnpublishResult:
        """npm's sequence; a call after an interruption finishes whatever is left of it. A 404
        on the way means another hand finished it: done, as libnpmpublish treats it."""
        done: list[str] = []
        with _command("unpublish"):
            try:
                return await _once_more_on_conflict(
                    lambda: self._unpublish_version(name, version, tarball, latest, progress, done)
                )
            except RemoteError as exc:
                if exc.status != 404:
                    raise
        note = "the registry answered 404 on the way: already unpublished, as npm treats it"
        return UnpublishResult(bool(done), tuple(done), note=note)

    async def _unpublish_version(
        self,
        name: str,
        version: str,
        tarball: str | None,
        latest: str | None,
        progress: Progress | None,
        done: list[str],
    ) -> UnpublishResult:
        doc = await self._doc(name)
        if doc is None:
            return UnpublishResult(False, note=f"{name} is no longer on the registry")
        versions: dict[str, Any] = doc.get("versions") or {}
        if version not in versions:
            return await self._finish_tarball_delete(name, version, doc, tarball, progress)
        if len(versions) == 1:
            # npm's rule: the only version goes only with the whole package, on its own flag.
            raise LastVersion(f"{name}@{version}: {LAST_VERSION_MESSAGE}", LAST_VERSION_HINT)
        sequence = done
        if (doc.get("dist-tags") or {}).get("latest") == version:
            remaining = [v for v in versions if v != version]
            new_latest = latest if latest in remaining else npm_latest_pick(remaining)
            if new_latest:
                await self.set_dist_tag(name, "latest", new_latest, progress=progress)
                sequence.append(f"PUT {self.url}-/package/{escape_name(name)}/dist-tags/latest")
                doc = await self._require_doc(name)
                versions = doc.get("versions") or {}
        dist_url = (versions[version].get("dist") or {}).get("tarball") or tarball
        sequence += await self._remove_version(name, version, doc, progress)
        fresh = await self._require_doc(name)
        sequence.append(await self._delete_tarball(name, version, dist_url, fresh, progress))
        return UnpublishResult(True, tuple(sequence))

    async def _remove_version(
        self, name: str, version: str, doc: Doc, progress: Progress | None
    ) -> list[str]:
        doc["versions"].pop(version)
        tags = doc.get("dist-tags") or {}
        for tag in [t for t, v in tags.items() if v == version]:
            del tags[tag]
        doc.pop("_attachments", None)
        doc.pop("_revisions", None)
        path = f"{escape_name(name)}/-rev/{doc['_rev']}"
        await self._write("PUT", path, json_body=doc, progress=progress)
        return [f"PUT {self.url}{path}"]

    async def _finish_tarball_delete(
        self, name: str, version: str, doc: Doc, tarball: str | None, progress: Progress | None
    ) -> UnpublishResult:
        url = tarball or default_tarball_url(self.url, name, version)
        if not await self.tarball_reachable(url):
            return UnpublishResult(False, note=f"{name}@{version} is already unpublished")
        step = await self._delete_tarball(name, version, url, doc, progress)
        return UnpublishResult(True, (step,), note="finished an interrupted unpublish")

    async def _delete_tarball(
        self, name: str, version: str, url: str | None, doc: Doc, progress: Progress | None
    ) -> str:
        path = urlsplit(url or default_tarball_url(self.url, name, version)).path
        target = f"{self._origin}{path}/-rev/{doc['_rev']}"
        await self._write("DELETE", target, progress=progress)
        return f"DELETE {target}"

    async def unpublish_package(
        self, name: str, *, confirmed: bool, progress: Progress | None = None
    ) -> UnpublishResult:
        if not confirmed:
            raise UsageError(
                f"Refusing to unpublish every version of {name} without an explicit flag.",
                "Pass --unpublish-all (and approve the step) if that is really meant.",
            )
        gone = UnpublishResult(False, whole_package=True, note=f"{name} is already gone")
        with _command("unpublish"):
            doc = await self._doc(name)
            if doc is None:
                return gone
            try:
                sequence = await self._delete_package(name, doc, progress)
            except RemoteError as exc:
                if exc.status != 404:
                    raise
                return gone
        return UnpublishResult(True, sequence, whole_package=True)

    async def _delete_package(
        self, name: str, doc: Doc, progress: Progress | None
    ) -> tuple[str, ...]:
        path = f"{escape_name(name)}/-rev/{doc['_rev']}"
        await self._write("DELETE", path, progress=progress)
        return (f"DELETE {self.url}{path}",)

    async def _require_doc(self, name: str) -> Doc:
        doc = await self._doc(name)
        if doc is None:
            raise RemoteError(f"The registry {self.url} has no package {name}.", status=404)
        return doc

    # -- the write path: two-factor and error mapping --

    async def _write(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        progress: Progress | None = None,
    ) -> httpx.Response:
        sent = self.otp.current
        response = await self._send(method, path, json_body, sent)
        if is_otp_challenge(response):
            self.otp.current = None
            code = await self._obtain_otp(
                response, method, path, progress, rejected=sent is not None
            )
            response = await self._send(method, path, json_body, code)
            if is_otp_challenge(response):
                self.otp.current = None
                raise OtpRequired(
                    f"The registry {self.url} rejected the one-time password for {method} {path}.",
                    OTP_HINT,
                    status=401,
                )
            self.otp.current = code
        self._raise_for(response, method, path if "://" in path else self.url + path)
        return response

    async def _send(
        self, method: str, path: str, json_body: Any, otp: Secret | None
    ) -> httpx.Response:
        headers = {"npm-otp": otp.reveal()} if otp else {}
        if json_body is not None:
            return await self.client.request(method, path, json=json_body, headers=headers)
        return await self.client.request(method, path, headers=headers)

    async def _obtain_otp(
        self,
        challenge: httpx.Response,
        method: str,
        path: str,
        progress: Progress | None,
        *,
        rejected: bool,
    ) -> Secret:
        source = self.otp
        web = _web_flow(challenge)
        if web is not None:
            return await self._web_auth(*web, progress)
        if source.ask is not None:
            prompt = f"One-time password for {method} {self.url} (from your authenticator): "
            answer = await asyncio.to_thread(source.ask, prompt)
            if answer and answer.strip():
                return Secret(answer.strip())
        if rejected:
            raise OtpRequired(
                f"The registry {self.url} rejected the one-time password for {method} {path} "
                "(wrong or expired).",
                OTP_HINT,
                status=401,
            )
        raise OtpRequired(
            f"The registry {self.url} asks for a one-time password for {method} {path}, "
            "and none was given.",
            OTP_HINT,
            status=401,
        )

    async def _web_auth(self, auth_url: str, done_url: str, progress: Progress | None) -> Secret:
        """npm's web flow: show authUrl, poll doneUrl (202 + Retry-After = wait, 200 = token)."""
        if progress is not None:
            progress(f"Two-factor: open {auth_url} in a browser to approve this change")
        client = self.client if self._same_origin(done_url) else self.anon
        deadline = time.monotonic() + self.otp.web_timeout
        while time.monotonic() < deadline:
            response = await client.get(done_url)
            if response.status_code == 200:
                token = (response.json() or {}).get("token")
                if token:
                    return Secret(str(token))
            elif response.status_code != 202:
                self._raise_for(response, "GET", done_url)
            wait = parse_retry_after(response.headers.get("retry-after"))
            await asyncio.sleep(min(wait if wait is not None else 1.0, 10.0))
        raise OtpRequired(
            f"Nobody approved the two-factor request at {auth_url} within "
            f"{self.otp.web_timeout:g}s.",
            OTP_HINT,
            status=401,
        )

    def _raise_for(self, response: httpx.Response, method: str, url: str) -> None:
        status = response.status_code
        if status < 400:
            return
        reason = registry_reason(response)
        where = f"{method} {url.split('?', 1)[0]}"
        if _is_policy_refusal(status, reason, method, url):
            raise PolicyRefused(
                f"The registry refused {where} by policy (HTTP {status}): {reason}",
                "Containment stands on the dist-tags and the deprecation; ask the registry's "
                "support to remove the version (respond drafts that request).",
                status=status,
            )
        raise RemoteError(
            f"The registry answered {where} with HTTP {status}: {reason}",
            _hint(status, self.token_source),
            status=status,
        )

    def _same_origin(self, url: str) -> bool:
        if "://" not in url:
            return True
        return "{0.scheme}://{0.netloc}".format(urlsplit(url)) == self._origin


def _is_policy_refusal(status: int, reason: str, method: str, url: str) -> bool:
    """The public registry refuses an unpublish with 405 or 422, or 400/403 naming its policy."""
    if status not in POLICY_STATUSES or method == "GET":
        return False
    if status in (405, 422):
        return True
    return "/-rev/" in url and bool(_POLICY_WORDS.search(reason))


@contextlib.contextmanager
def _command(name: str) -> Iterator[None]:
    """`with _command("dist-tag"):` marks the requests inside as that npm command's."""
    token = _COMMAND.set(name)
    try:
        yield
    finally:
        _COMMAND.reset(token)


async def _once_more_on_conflict(attempt: Callable[[], Awaitable[T]]) -> T:
    """A 409 means the document changed under us (another writer): re-read and redo once. Both
    callers read the current state first, so the redo does only what is still missing."""
    try:
        return await attempt()
    except RemoteError as exc:
        if exc.status != 409:
            raise
    return await attempt()


def _hint(status: int, token_source: str | None) -> str:
    if status == 401:
        if token_source is None:
            return (
                "No credential matches this registry: add //host/:_authToken=... to an .npmrc "
                "(npm does not read NPM_TOKEN by itself; write _authToken=${NPM_TOKEN})."
            )
        return f"Check the token set by {token_source}: it may be expired or read-only."
    if status == 403:
        return "The token's user may not be a maintainer of this package, or lacks write access."
    if status == 404:
        return "Check the package name and the registry URL (npm config get registry)."
    if status >= 500:
        return "The registry had an error; resume the incident to retry from where it stopped."
    return "See the registry's message above."


# -- wiring ---------------------------------------------------------------------------------------


def registry_for(services: Services, package: str) -> HttpNpmRegistry:
    """The run's client for `package`'s registry (a scope may use its own), built once per scope."""
    return services.npm_registry(package)
