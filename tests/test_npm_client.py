"""The registry client against a real Verdaccio, through the recording proxy that adds 2FA etc."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from playbook.config.npmrc import nerf_dart
from playbook.config.settings import Mode, Settings
from playbook.errors import IntegrityError, OtpRequired, PolicyRefused, RemoteError, UsageError
from playbook.net.http import ClientOptions, RetryPolicy
from playbook.rehearsal.proxy import POLICY_MESSAGE, RegistryProxy
from playbook.secret import Secret
from playbook.services.hub import Services
from playbook.services.npm import AskOtp, HttpNpmRegistry, registry_for

pytestmark = pytest.mark.registry
T = TypeVar("T")
FAST = RetryPolicy(attempts=3, backoff=0.01, max_wait=0.05)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def make_services(
    tmp_path: Path,
    url: str,
    token: str | None,
    *,
    dry_run: bool = False,
    otp: str | None = None,
    interactive: bool = False,
    otp_prompt: AskOtp | None = None,
) -> Services:
    env = {"HOME": str(tmp_path), "PATH": ""}
    if token:  # as a user writes it: npm never reads NPM_TOKEN unless an .npmrc line names it
        env["NPM_TOKEN"] = token
        (tmp_path / ".npmrc").write_text(f"{nerf_dart(url)}:_authToken=${{NPM_TOKEN}}\n")
    settings = Settings(
        home=tmp_path / "respond",
        mode=Mode.DRY_RUN if dry_run else Mode.LIVE,
        npm_env=env,
        cwd=tmp_path,
        registry=url,
        otp=Secret(otp) if otp else None,
        interactive=interactive,
    )
    options = ClientOptions(dry_run=dry_run, retry=FAST, timeout=10.0)
    return Services(settings, options, otp_prompt=otp_prompt)


async def with_registry(
    services: Services, name: str, body: Callable[[HttpNpmRegistry], Coroutine[Any, Any, T]]
) -> T:
    try:
        return await body(registry_for(services, name))
    finally:
        await services.aclose()


def call(
    tmp_path: Path,
    proxy: RegistryProxy,
    token: str | None,
    name: str,
    body: Callable[[HttpNpmRegistry], Coroutine[Any, Any, T]],
    **kw: Any,
) -> T:
    return run(with_registry(make_services(tmp_path, proxy.url, token, **kw), name, body))


@pytest.fixture
def two_versions(publish: Any, unique_name: Any) -> str:
    """A fresh package with 1.0.0 and 1.0.1 published, so one of them may be unpublished."""
    name = unique_name()
    publish(name, "1.0.0")
    publish(name, "1.0.1")
    return name


@pytest.mark.parametrize("scope", [None, "acme"])
def test_packument_tags_and_deprecate(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any,
    scope: str | None,
) -> None:  # fmt: skip
    name = unique_name(scope)
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        publish(name, version)

    async def body(reg: HttpNpmRegistry) -> tuple[Any, ...]:
        doc = await reg.packument(name)
        await reg.set_dist_tag(name, "latest", "1.1.0")
        await reg.set_dist_tag(name, "next", "2.0.0")
        await reg.delete_dist_tag(name, "next")
        first = await reg.deprecate(name, "2.0.0", "leaked; use 1.1.0")
        again = await reg.deprecate(name, "2.0.0", "leaked; use 1.1.0")
        return doc, await reg.packument(name), first, again

    before, after, first, again = call(tmp_path, proxy, registry_token, name, body)
    assert before is not None and before.dist_tags == {"latest": "2.0.0"}
    assert sorted(before.versions) == ["1.0.0", "1.1.0", "2.0.0"]
    assert before.time.get("2.0.0")
    assert after is not None and after.dist_tags == {"latest": "1.1.0"}
    assert after.versions["2.0.0"].deprecated == "leaked; use 1.1.0"
    assert after.versions["1.1.0"].deprecated is None
    assert (first, again) == (True, False)
    # The deprecation PUT carried the whole document: no version was lost.
    assert sorted(after.versions) == ["1.0.0", "1.1.0", "2.0.0"]


def test_latest_is_never_deleted(tmp_path: Path, proxy: RegistryProxy, registry_token: str) -> None:
    async def body(reg: HttpNpmRegistry) -> None:
        await reg.delete_dist_tag("anything", "latest")

    with pytest.raises(UsageError, match="latest"):
        call(tmp_path, proxy, registry_token, "anything", body)
    assert proxy.writes == []


@pytest.mark.parametrize("scope", [None, "acme"])
def test_unpublish_version_follows_npm_sequence(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any,
    scope: str | None,
) -> None:  # fmt: skip
    name = unique_name(scope)
    for version in ("1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0"):
        publish(name, version)

    async def body(reg: HttpNpmRegistry) -> tuple[Any, ...]:
        await reg.set_dist_tag(name, "next", "2.0.0")
        proxy.clear()
        result = await reg.unpublish_version(name, "2.0.0", latest="1.1.0")
        doc = await reg.packument(name)
        url = f"{reg.url}{name}/-/{name.rsplit('/', 1)[-1]}-2.0.0.tgz"
        return result, doc, await reg.tarball_reachable(url)

    result, doc, reachable = call(tmp_path, proxy, registry_token, name, body)
    writes = [(r.method, r.path.split("/-rev/")[0], r.status) for r in proxy.writes]
    escaped = name.replace("/", "%2f")
    short = name.rsplit("/", 1)[-1]
    assert writes == [
        ("PUT", f"/-/package/{escaped}/dist-tags/latest", 201),
        ("PUT", f"/{escaped}", 201),
        ("DELETE", f"/{name}/-/{short}-2.0.0.tgz", 201),
    ]
    # Each -rev write is preceded by a fresh GET ?write=true, as npm does.
    gets = [r for r in proxy.requests if r.method == "GET" and "write=true" in r.path]
    assert len(gets) >= 3
    assert result.changed and len(result.sequence) == 3
    assert doc is not None and "2.0.0" not in doc.versions
    assert doc.dist_tags == {"latest": "1.1.0"}  # `next` went with the version, latest moved first
    assert not reachable


def test_unpublish_resumes_between_put_and_delete(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    name = unique_name("acme")
    for version in ("1.0.0", "2.0.0"):
        publish(name, version)
    proxy.fail("DELETE", r"\.tgz/-rev/", status=503)  # the process "dies" before the DELETE lands
    lookup_tarball = f"{proxy.url}{name}/-/{name.rsplit('/', 1)[-1]}-2.0.0.tgz"

    async def first(reg: HttpNpmRegistry) -> Any:
        return await reg.unpublish_version(name, "2.0.0", tarball=lookup_tarball)

    with pytest.raises(RemoteError, match="HTTP 503"):
        call(tmp_path, proxy, registry_token, name, first)

    async def second(reg: HttpNpmRegistry) -> tuple[Any, ...]:
        gone_from_doc = "2.0.0" not in ((await reg.packument(name)).versions or {})  # type: ignore[union-attr]
        still_served = await reg.tarball_reachable(lookup_tarball)
        result = await reg.unpublish_version(name, "2.0.0", tarball=lookup_tarball)
        again = await reg.unpublish_version(name, "2.0.0", tarball=lookup_tarball)
        return (
            gone_from_doc,
            still_served,
            result,
            again,
            await reg.tarball_reachable(lookup_tarball),
        )

    proxy.clear()
    gone_from_doc, still_served, result, again, served_after = call(
        tmp_path, proxy, registry_token, name, second
    )
    assert gone_from_doc and still_served
    assert result.changed and result.sequence[0].startswith("DELETE ")
    assert "interrupted" in result.note
    assert not again.changed and not served_after
    assert [w.method for w in proxy.writes] == ["DELETE"]


def test_whole_package_unpublish_needs_the_flag(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, two_versions: str
) -> None:
    name = two_versions

    async def refused(reg: HttpNpmRegistry) -> Any:
        return await reg.unpublish_package(name, confirmed=False)

    with pytest.raises(UsageError, match="without an explicit flag") as info:
        call(tmp_path, proxy, registry_token, name, refused)
    assert info.value.hint is not None and "--unpublish-all" in info.value.hint
    assert proxy.writes == []

    async def body(reg: HttpNpmRegistry) -> tuple[Any, ...]:
        result = await reg.unpublish_package(name, confirmed=True)
        return result, await reg.packument(name), await reg.unpublish_package(name, confirmed=True)

    result, doc, again = call(tmp_path, proxy, registry_token, name, body)
    assert result.changed and result.whole_package and doc is None and not again.changed
    assert [(w.method, w.status) for w in proxy.writes] == [("DELETE", 201)]


def test_download_checks_integrity_and_shasum(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0")

    async def body(reg: HttpNpmRegistry) -> Any:
        info = (await reg.packument(name)).versions["1.0.0"].dist  # type: ignore[union-attr]
        good = await reg.download(
            str(info.tarball), tmp_path / "a.tgz", integrity=info.integrity, shasum=info.shasum
        )
        assert good.integrity == info.integrity and good.shasum == info.shasum
        for integrity, shasum in ((None, "0" * 40), ("sha512-" + "A" * 86 + "==", None)):
            with pytest.raises(IntegrityError, match="does not match"):
                await reg.download(
                    str(info.tarball), tmp_path / "b.tgz", integrity=integrity, shasum=shasum
                )
            assert not (tmp_path / "b.tgz").exists()
        with pytest.raises(IntegrityError, match="no integrity or shasum"):
            await reg.download(str(info.tarball), tmp_path / "c.tgz", integrity=None, shasum=None)
        return good

    good = call(tmp_path, proxy, registry_token, name, body)
    assert good.size > 0 and good.path.exists()


@pytest.mark.parametrize("form", ["header", "body"])
def test_otp_challenge_is_answered_with_the_given_code(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, two_versions: str,
    form: str,
) -> None:  # fmt: skip
    name = two_versions
    proxy.require_otp("123456", form=form)

    async def tag(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "latest", "1.0.0")
        await reg.set_dist_tag(name, "next", "1.0.1")  # the accepted code is reused
        return await reg.dist_tags(name)

    tags = call(tmp_path, proxy, registry_token, name, tag, otp="123456")
    assert tags == {"latest": "1.0.0", "next": "1.0.1"}
    assert [w.status for w in proxy.writes] == [201, 201]


@pytest.mark.parametrize("form", ["header", "body"])
def test_otp_without_terminal_or_code_says_how_to_resume(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any,
    form: str,
) -> None:  # fmt: skip
    name = unique_name()
    publish(name, "1.0.0")
    proxy.require_otp("123456", form=form)

    async def tag(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "next", "1.0.0")

    with pytest.raises(OtpRequired) as info:
        call(tmp_path, proxy, registry_token, name, tag)
    assert info.value.hint is not None and "--otp" in info.value.hint
    assert "NPM_OTP" in info.value.hint
    assert [w.status for w in proxy.writes] == [401]


def test_otp_prompt_on_a_terminal_and_rejected_code(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0")
    proxy.require_otp("654321")
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return "654321"

    async def tag(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "next", "1.0.0")
        return await reg.dist_tags(name)

    services = make_services(tmp_path, proxy.url, registry_token, interactive=True, otp_prompt=ask)
    assert run(with_registry(services, name, tag))["next"] == "1.0.0"
    assert len(asked) == 1 and "One-time password" in asked[0]

    async def wrong(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "other", "1.0.0")

    with pytest.raises(OtpRequired, match="rejected the one-time password"):
        call(tmp_path, proxy, registry_token, name, wrong, otp="000000")


def test_otp_web_flow_polls_until_approved(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0")
    proxy.require_web_otp("web-token-xyz", pending_polls=2)
    shown: list[str] = []

    async def tag(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "next", "1.0.0", progress=shown.append)
        return await reg.dist_tags(name)

    assert call(tmp_path, proxy, registry_token, name, tag)["next"] == "1.0.0"
    assert len(shown) == 1 and f"{proxy.url}-/v1/auth/" in shown[0]
    polls = [r.status for r in proxy.requests if r.path.startswith("/-/v1/done")]
    assert polls == [202, 202, 200]
    assert [w.status for w in proxy.writes] == [401, 201]


def test_policy_refusal_carries_the_registry_message(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, two_versions: str
) -> None:
    name = two_versions
    proxy.refuse_unpublish()

    async def body(reg: HttpNpmRegistry) -> Any:
        await reg.unpublish_version(name, "1.0.1")

    with pytest.raises(PolicyRefused) as info:
        call(tmp_path, proxy, registry_token, name, body)
    assert POLICY_MESSAGE in info.value.message and info.value.status == 405


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "You cannot unpublish this package. Failed criteria: has dependents"),
        (403, "Forbidden - unpublish policy. Failed criteria: more than 300 downloads last week"),
        (405, POLICY_MESSAGE),
        (422, "Unprocessable: cannot unpublish; criteria: published more than 72 hours ago"),
    ],
)
def test_each_policy_status_is_a_refusal_in_one_line(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, two_versions: str,
    status: int, message: str,
) -> None:  # fmt: skip
    name = two_versions
    proxy.refuse_unpublish(message + "\n(see the unpublish policy)", status=status)

    async def body(reg: HttpNpmRegistry) -> Any:
        await reg.unpublish_version(name, "1.0.1")

    with pytest.raises(PolicyRefused) as info:
        call(tmp_path, proxy, registry_token, name, body)
    assert message in info.value.message and info.value.status == status
    assert "\n" not in info.value.message and info.value.exit_code == 5


def test_a_403_without_policy_words_stays_a_permission_error(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, two_versions: str
) -> None:
    name = two_versions
    proxy.refuse_unpublish("You do not have permission to publish this package", status=403)

    async def body(reg: HttpNpmRegistry) -> Any:
        await reg.unpublish_version(name, "1.0.1")

    with pytest.raises(RemoteError) as info:
        call(tmp_path, proxy, registry_token, name, body)
    assert not isinstance(info.value, PolicyRefused) and info.value.status == 403


def test_a_404_on_the_tarball_delete_means_done(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0")
    publish(name, "1.0.1", tag="next")
    proxy.fail("DELETE", r"\.tgz/-rev/", status=404)

    async def body(reg: HttpNpmRegistry) -> Any:
        return await reg.unpublish_version(name, "1.0.1")

    result = call(tmp_path, proxy, registry_token, name, body)
    assert result.changed and "404" in result.note
    assert [(w.method, w.status) for w in proxy.writes] == [("PUT", 201), ("DELETE", 404)]


def test_web_flow_only_when_asked_for_else_a_code(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0")
    proxy.require_web_otp("web-token-abc", pending_polls=0)

    async def tag(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "next", "1.0.0")

    # With a code given up front respond sends npm-auth-type: legacy, as npm does with --otp:
    # the registry answers with the classic challenge and the (wrong) code is refused.
    with pytest.raises(OtpRequired, match="rejected the one-time password"):
        call(tmp_path, proxy, registry_token, name, tag, otp="111111")
    assert not [r for r in proxy.requests if r.path.startswith("/-/v1/done")]


def test_429_with_retry_after_is_waited_out(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0")
    proxy.fail("PUT", "dist-tags", status=429, times=2, retry_after="1")
    proxy.fail("GET", "dist-tags", status=429, times=1, retry_after="1")

    async def body(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "next", "1.0.0")
        return await reg.dist_tags(name)

    assert call(tmp_path, proxy, registry_token, name, body)["next"] == "1.0.0"
    assert [w.status for w in proxy.writes] == [429, 429, 201]


def test_5xx_is_retried_on_reads_and_reported_on_writes(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0")
    proxy.fail("GET", rf"^/{name}$", status=502, times=2)

    async def read(reg: HttpNpmRegistry) -> Any:
        return await reg.packument(name)

    assert call(tmp_path, proxy, registry_token, name, read) is not None
    proxy.fail("PUT", "dist-tags", status=500, times=1)

    async def write(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "next", "1.0.0")

    with pytest.raises(RemoteError, match="HTTP 500") as info:
        call(tmp_path, proxy, registry_token, name, write)
    assert info.value.hint is not None and "resume" in info.value.hint
    assert [w.status for w in proxy.writes] == [500]  # a write the server may have seen: once


def test_unauthorized_write_names_the_token_source(
    tmp_path: Path, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0")

    async def write(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "next", "1.0.0")

    with pytest.raises(RemoteError, match="HTTP 401") as info:
        call(tmp_path, proxy, None, name, write)
    assert info.value.hint is not None and "NPM_TOKEN" in info.value.hint


def test_search_finds_republished_copies(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    name = unique_name("copycat", stem="leaked-cli")
    publish(name, "2.1.88")

    async def body(reg: HttpNpmRegistry) -> Any:
        return await reg.search(name.split("/")[1], size=5)

    hits = call(tmp_path, proxy, registry_token, name, body)
    assert [h.name for h in hits] == [name]


def test_dry_run_client_cannot_write(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    from playbook.errors import DryRunViolation

    name = unique_name()
    publish(name, "1.0.0")

    async def write(reg: HttpNpmRegistry) -> Any:
        await reg.set_dist_tag(name, "next", "1.0.0")

    with pytest.raises(DryRunViolation):
        call(tmp_path, proxy, registry_token, name, write, dry_run=True)
    assert proxy.writes == []


def test_a_conflict_rereads_the_document_and_redoes_once(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, two_versions: str
) -> None:
    name = two_versions
    proxy.fail("PUT", rf"^/{name}$", status=409, times=1)
    proxy.fail("PUT", rf"^/{name}/-rev/", status=409, times=1)

    async def body(reg: HttpNpmRegistry) -> tuple[Any, ...]:
        deprecated = await reg.deprecate(name, "1.0.1", "stop")
        result = await reg.unpublish_version(name, "1.0.1")
        return deprecated, result, await reg.packument(name)

    deprecated, result, doc = call(tmp_path, proxy, registry_token, name, body)
    assert deprecated and result.changed and doc is not None
    assert list(doc.versions) == ["1.0.0"] and doc.dist_tags == {"latest": "1.0.0"}
    statuses = [(w.method, w.status) for w in proxy.writes]
    assert statuses == [
        ("PUT", 409), ("PUT", 201),  # deprecate
        ("PUT", 201),  # latest moved off 1.0.1
        ("PUT", 409), ("PUT", 201), ("DELETE", 201),  # the document PUT redone, then the tarball
    ]  # fmt: skip
