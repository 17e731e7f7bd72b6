"""The npm step types against a real Verdaccio behind the recording proxy, driven step by step."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from playbook.codec import from_json, to_json
from playbook.config.npmrc import nerf_dart
from playbook.config.settings import Mode, Settings
from playbook.errors import IntegrityError, OtpRequired, RemoteError
from playbook.net.http import ClientOptions, RetryPolicy
from playbook.rehearsal.proxy import POLICY_MESSAGE, RegistryProxy
from playbook.rehearsal.sandbox import LocalRegistry
from playbook.services.hub import MemoryCache, Services
from playbook.spec import PackageSpec
from playbook.steps import get
from playbook.steps.base import MemoryRecords, Outcome, Plan, StepContext, StepOutputs
from playbook.steps.npm import Intent

pytestmark = pytest.mark.registry
FAST = RetryPolicy(attempts=3, backoff=0.01, max_wait=0.05)
CHAIN = (
    ("lookup", "npm.lookup"),
    ("retag", "npm.retag"),
    ("deprecate", "npm.deprecate"),
    ("unpublish", "npm.unpublish"),
    ("verify", "npm.verify"),
)


@dataclass
class Harness:
    """Runs steps as the engine would: plan, then apply unless a mutating step in a dry run."""

    tmp_path: Path
    url: str
    token: str | None
    cache: MemoryCache = field(default_factory=MemoryCache)
    events: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    def settings(self, **kw: Any) -> Settings:
        env = {"HOME": str(self.tmp_path), "PATH": ""}
        if self.token:
            env["NPM_TOKEN"] = self.token
            npmrc = f"{nerf_dart(self.url)}:_authToken=${{NPM_TOKEN}}\n"
            (self.tmp_path / ".npmrc").write_text(npmrc)
        base: dict[str, Any] = {"home": self.tmp_path / "respond", "npm_env": env,
                                "cwd": self.tmp_path, "registry": self.url}  # fmt: skip
        return Settings(**{**base, **kw})

    def run(
        self,
        spec: PackageSpec,
        steps: tuple[tuple[str, str], ...] = CHAIN,
        *,
        needs: Mapping[str, Mapping[str, Any]] | None = None,
        resumed: bool = False,
        params: Mapping[str, Mapping[str, Any]] | None = None,
        records: MemoryRecords | None = None,
        **settings_kw: Any,
    ) -> dict[str, tuple[Plan, Outcome | None]]:
        """`records`: the incident's records, kept across runs (default: new ones per step)."""
        settings = self.settings(**settings_kw)
        options = ClientOptions(dry_run=settings.dry_run, retry=FAST, timeout=10.0)
        typed = {k: _typed(k, v) for k, v in (needs or {}).items()}
        return asyncio.run(
            self._run(spec, steps, settings, options, typed, resumed, dict(params or {}), records)
        )

    async def _run(
        self,
        spec: PackageSpec,
        steps: tuple[tuple[str, str], ...],
        settings: Settings,
        options: ClientOptions,
        outputs: dict[str, StepOutputs],
        resumed: bool,
        params: dict[str, Mapping[str, Any]],
        records: MemoryRecords | None,
    ) -> dict[str, tuple[Plan, Outcome | None]]:
        services = Services(settings, options, cache=self.cache)
        results: dict[str, tuple[Plan, Outcome | None]] = {}
        try:
            for step_id, uses in steps:
                step_type = get(uses)
                assert step_type is not None, uses
                ctx = StepContext(
                    incident_id="inc-1", step_id=step_id, target=spec, params=dict(params.get(step_id, {})), inputs={},
                    needs=dict(outputs), settings=settings, services=services,
                    workdir=self.tmp_path / "incident", resumed=resumed,
                    event=lambda kind, data: self.events.append((kind, data)),
                    records=records if records is not None else MemoryRecords(),
                )  # fmt: skip
                step = step_type()
                plan = await step.plan(ctx)
                outcome = None
                if not (step.mutates and settings.dry_run):
                    outcome = await step.apply(ctx, plan)
                results[step_id] = (plan, outcome)
                found = outcome.outputs if outcome else plan.outputs
                if found is not None:
                    outputs[step_id] = found
        finally:
            await services.aclose()
        return results


def out(results: dict[str, tuple[Plan, Outcome | None]], step_id: str) -> dict[str, Any]:
    """A step's outputs in their JSON form (what the store records)."""
    outcome = results[step_id][1]
    assert outcome is not None
    return to_json(outcome.outputs)  # type: ignore[no-any-return]


def _typed(step_id: str, data: Mapping[str, Any]) -> StepOutputs:
    """Outputs given in their JSON form, as the step type's outputs (what the engine hands on)."""
    step_type = get({**dict(CHAIN), "scan": "npm.scan"}[step_id])
    assert step_type is not None
    return from_json(step_type.outputs, data)


@pytest.fixture
def harness(tmp_path: Path, proxy: RegistryProxy, registry_token: str) -> Harness:
    return Harness(tmp_path, proxy.url, registry_token)


def publish_history(publish: Any, name: str) -> PackageSpec:
    """1.0.0 clean, 1.0.1 leaky, 1.1.0 deprecated, 2.0.0-rc.1 clean, 2.0.0 leaked on latest+next."""
    publish(name, "1.0.0")
    publish(name, "1.0.1", leaky=True)
    publish(name, "1.1.0", deprecated="broken, use 1.0.0")
    publish(name, "2.0.0-rc.1", tag="next")
    publish(name, "2.0.0", leaky=True)
    return PackageSpec(name, "2.0.0")


@pytest.mark.parametrize("scope", [None, "acme"])
def test_contain_then_rerun_makes_no_second_write(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any, scope: str | None
) -> None:
    spec = publish_history(publish, unique_name(scope))
    first = harness.run(spec, CHAIN[:1])
    assert out(first, "lookup")["tags_on_version"] == ["latest"]
    assert out(first, "lookup")["exists"] and out(first, "lookup")["hours_since_publish"] < 1

    results = harness.run(spec, needs={"lookup": out(first, "lookup")}, steps=CHAIN[1:])
    retag = out(results, "retag")
    assert retag["safe_version"] == "1.0.0", retag["reason"]
    assert retag["moved"] == {"latest": {"from": "2.0.0", "to": "1.0.0"}}
    assert "1.0.1 leaky" in retag["reason"] and "1.1.0 deprecated" in retag["reason"]
    assert out(results, "deprecate") == {
        "deprecated": True,
        "message": f"{spec} shipped files that should not have been published; use 1.0.0 instead.",
        "gone": False,
    }
    unpublish = out(results, "unpublish")
    assert unpublish["unpublished"] and not unpublish["support_request_needed"]
    assert [s.split(" ")[0] for s in unpublish["sequence"]] == ["PUT", "DELETE"]
    assert unpublish["policy"]["within_72h"] is True
    verify = out(results, "verify")
    assert verify["contained"] and not verify["version_present"]
    assert not verify["tarball_reachable"] and verify["dist_tags"]["latest"] == "1.0.0"
    assert all(o is not None and o.changed for k, (_p, o) in results.items() if k != "verify")

    proxy.clear()
    again = harness.run(spec)
    assert proxy.writes == []
    assert out(again, "lookup")["unpublished"] is True
    assert all(o is not None and not o.changed for _p, o in again.values())
    assert out(again, "verify")["contained"]


def test_a_step_run_again_after_its_write_landed_tells_its_own_write_from_another_hands(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    """A crash after the registry accepted a write but before the step recorded it: the step
    runs again and finds the target state. Its write-ahead intent makes it this incident's."""
    spec = publish_history(publish, unique_name())
    needs = {"lookup": out(harness.run(spec, CHAIN[:1]), "lookup")}
    ours = MemoryRecords()
    said = {
        "retag": "no tag points at the leaked version (safe version 1.0.0)",
        "deprecate": f"{spec} was already deprecated",
        "unpublish": f"{spec} is already unpublished",
    }
    for step in CHAIN[1:4]:
        step_id = step[0]
        first = harness.run(spec, (step,), needs=needs, records=ours)
        assert proxy.writes, step_id
        proxy.clear()
        # The same registry state without this step's intent: another hand did it.
        other = harness.run(spec, (step,), needs=needs, records=MemoryRecords(), resumed=True)
        outcome = other[step_id][1]
        assert outcome is not None and not outcome.changed and outcome.summary == said[step_id]
        harness.events.clear()
        again = harness.run(spec, (step,), needs=needs, records=ours, resumed=True)
        assert proxy.writes == [], step_id
        outcome = again[step_id][1]
        assert outcome is not None and outcome.changed, step_id
        assert outcome.summary.endswith(" (confirmed after a restart)"), outcome.summary
        assert outcome.summary.replace(" (confirmed after a restart)", "") == (
            first[step_id][1].summary  # type: ignore[union-attr]
        )
        [(kind, data)] = harness.events
        assert kind == f"npm.{step_id.replace('retag', 'dist-tag')}", kind
        assert "confirmed after a restart" in (data.get("confirmed"), data.get("note"))
        same, was = out(again, step_id), out(first, step_id)
        if step_id == "unpublish":  # as recorded before sending: the DELETE's rev is the PUT's
            assert [r.split(" ")[0] for r in same.pop("sequence")] == ["PUT", "DELETE"]
            was.pop("sequence")
        assert same == was, step_id
        needs[step_id] = was
    intents = ours.all(Intent)
    assert [i.write for i in intents] == ["deprecate", "dist-tag:latest", "unpublish"]
    assert all(i.package == spec.name and i.version == spec.version and i.at for i in intents)
    assert intents[1].detail == {"tag": "latest", "from": "2.0.0", "to": "1.0.0"}


def test_dry_run_plans_everything_and_writes_nothing(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    spec = publish_history(publish, unique_name("acme"))
    proxy.clear()
    results = harness.run(spec, mode=Mode.DRY_RUN)
    assert proxy.writes == []
    assert len(proxy.requests) > 5
    plans = {k: p for k, (p, _o) in results.items()}
    assert [a.method for a in plans["retag"].actions] == ["PUT"]
    assert [a.method for a in plans["deprecate"].actions] == ["PUT"]
    assert [a.method for a in plans["unpublish"].actions] == ["PUT", "DELETE"]
    assert out(results, "verify")["contained"] is False  # nothing was done
    live = harness.run(spec, steps=CHAIN[:4])
    for step_id in ("retag", "deprecate", "unpublish"):
        assert set(to_json(plans[step_id].outputs)) == set(out(live, step_id)), step_id


def test_unknown_package_and_version_are_clear_errors(
    harness: Harness, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    with pytest.raises(RemoteError, match=f"has no package {name}"):
        harness.run(PackageSpec(name, "1.0.0"), CHAIN[:1])
    publish(name, "1.0.0")
    with pytest.raises(RemoteError, match=r"no version 9\.9\.9 .*latest versions: 1\.0\.0"):
        harness.run(PackageSpec(name, "9.9.9"), CHAIN[:1])


def test_no_safe_version_leaves_tags_and_never_deletes_latest(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0", leaky=True)
    publish(name, "2.0.0", leaky=True)
    spec = PackageSpec(name, "2.0.0")
    results = harness.run(spec, CHAIN[:3])
    retag = out(results, "retag")
    assert retag["safe_version"] is None and retag["left"] == ["latest"]
    assert "no safe earlier version" in retag["reason"]
    assert out(results, "deprecate")["message"].endswith("do not install it.")
    assert [w.path for w in proxy.writes if "dist-tags" in w.path] == []


def test_safe_version_flag_overrides_the_choice(
    harness: Harness, publish: Any, unique_name: Any
) -> None:
    spec = publish_history(publish, unique_name())
    results = harness.run(spec, CHAIN[:2], safe_version="1.1.0")
    assert out(results, "retag")["safe_version"] == "1.1.0"
    assert out(results, "retag")["moved"]["latest"]["to"] == "1.1.0"


@pytest.mark.parametrize("status", [405, 400, 403, 422])
def test_policy_refusal_skips_and_asks_for_a_support_request(
    harness: Harness,
    proxy: RegistryProxy,
    local_registry: LocalRegistry,
    publish: Any,
    unique_name: Any,
    status: int,
) -> None:
    spec = publish_history(publish, unique_name())
    local_registry.backdate(spec.name, spec.version, datetime.now(UTC) - timedelta(days=30))
    proxy.refuse_unpublish(status=status)
    results = harness.run(spec)
    _plan, unpublish = results["unpublish"]
    assert unpublish is not None and unpublish.skipped
    assert POLICY_MESSAGE in unpublish.summary and f"HTTP {status}" in unpublish.summary
    outputs = out(results, "unpublish")
    assert outputs["support_request_needed"] is True
    assert POLICY_MESSAGE in outputs["registry_reason"]
    assert outputs["policy"]["within_72h"] is False
    assert outputs["unpublished"] is False
    verify = out(results, "verify")
    assert verify["contained"] and verify["deprecated"] and verify["tarball_reachable"]


def test_past_policy_time_faked_by_the_proxy(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    spec = publish_history(publish, unique_name())
    proxy.set_time(spec.name, spec.version, "2020-01-01T00:00:00.000Z")
    look = out(harness.run(spec, CHAIN[:1]), "lookup")
    assert look["published_at"] == "2020-01-01T00:00:00.000Z"
    assert look["hours_since_publish"] > 24 * 365


def test_interrupted_unpublish_is_finished_on_resume(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    spec = publish_history(publish, unique_name("acme"))
    first = harness.run(spec, CHAIN[:3])
    needs = {k: out(first, k) for k in ("lookup", "retag", "deprecate")}
    proxy.fail("DELETE", r"\.tgz/-rev/", status=503)
    with pytest.raises(RemoteError, match="HTTP 503"):
        harness.run(spec, (CHAIN[3],), needs=needs)
    proxy.clear()
    resumed = harness.run(spec, CHAIN[3:], needs=needs, resumed=True)
    plan, outcome = resumed["unpublish"]
    assert [a.method for a in plan.actions] == ["DELETE"]
    assert outcome is not None and outcome.changed and out(resumed, "unpublish")["unpublished"]
    assert [w.method for w in proxy.writes] == ["DELETE"]
    assert out(resumed, "verify")["contained"] and not out(resumed, "verify")["tarball_reachable"]


def test_whole_package_unpublish_only_with_the_flag(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    spec = publish_history(publish, unique_name())
    results = harness.run(spec, unpublish_all=True)
    plan = results["unpublish"][0]
    assert [a.method for a in plan.actions] == ["DELETE"]
    assert "every version" in plan.actions[0].summary
    unpublish = out(results, "unpublish")
    assert unpublish["unpublished"] and unpublish["whole_package"]
    assert out(results, "verify")["contained"] and out(results, "verify")["dist_tags"] == {}
    proxy.clear()
    again = harness.run(spec, unpublish_all=True)
    assert proxy.writes == [] and out(again, "lookup")["unpublished"]


def test_only_version_is_withheld_without_the_whole_package_flag(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    name = unique_name()
    publish(name, "1.0.0", leaky=True)
    spec = PackageSpec(name, "1.0.0")
    results = harness.run(spec)
    plan, outcome = results["unpublish"]
    assert plan.actions == () and outcome is not None and outcome.skipped
    unpublish = out(results, "unpublish")
    assert unpublish["withheld"] and not unpublish["unpublished"]
    assert unpublish["support_request_needed"]
    assert "Refusing to delete the last version of the package" in unpublish["withheld_reason"]
    assert "--unpublish-all" in unpublish["withheld_reason"]
    assert out(results, "deprecate")["deprecated"]
    assert [w.method for w in proxy.writes] == ["PUT"]  # the deprecation; nothing deleted
    assert ("npm.unpublish.withheld", {"reason": unpublish["withheld_reason"]}) in harness.events
    proxy.clear()
    forced = harness.run(spec, params={"unpublish": {"whole_package": True}})
    assert out(forced, "unpublish")["unpublished"] and out(forced, "unpublish")["whole_package"]
    assert [(w.method, w.path.split("/-rev/")[0]) for w in proxy.writes] == [("DELETE", f"/{name}")]


def test_stale_cdn_reads_do_not_fool_the_verification(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    spec = publish_history(publish, unique_name())
    proxy.serve_stale(300)  # document reads without ?write=true come from a 5-minute-old copy
    results = harness.run(spec, CHAIN[:3] + CHAIN[4:])
    verify = out(results, "verify")
    assert verify["contained"] and verify["deprecated"], verify
    assert verify["tags_on_version"] == []
    stale = harness.run(spec, CHAIN[:1])  # the plain read still sees the old document
    assert out(stale, "lookup")["deprecated"] is None


def test_otp_challenge_without_terminal_stops_with_resume_hint(
    harness: Harness, proxy: RegistryProxy, publish: Any, unique_name: Any
) -> None:
    spec = publish_history(publish, unique_name())
    proxy.require_otp("246810")
    with pytest.raises(OtpRequired) as info:
        harness.run(spec, CHAIN[:2])
    assert info.value.hint is not None and "--otp" in info.value.hint
    results = harness.run(spec, CHAIN[:3], otp=_secret("246810"))
    assert out(results, "deprecate")["deprecated"]
    assert {w.status for w in proxy.writes} == {401, 201}


def test_scan_stops_on_integrity_mismatch(harness: Harness, publish: Any, unique_name: Any) -> None:
    spec = publish_history(publish, unique_name())
    look = dict(out(harness.run(spec, CHAIN[:1]), "lookup"))
    look["integrity"] = "sha512-" + "B" * 86 + "=="
    with pytest.raises(IntegrityError, match=r"does not match its dist\.integrity"):
        harness.run(spec, (("scan", "npm.scan"),), needs={"lookup": look})
    assert not (harness.tmp_path / "incident" / "scan" / "manifest.json").exists()


def _secret(value: str) -> Any:
    from playbook.secret import Secret

    return Secret(value)


def test_registry_and_token_only_from_npmrc_never_in_outputs(
    tmp_path: Path, proxy: RegistryProxy, registry_token: str, publish: Any, unique_name: Any
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    host = proxy.url.removeprefix("http:").rstrip("/")
    (home / ".npmrc").write_text(f"registry={proxy.url}\n{host}/:_authToken=${{TEST_TOKEN}}\n")
    env = {"HOME": str(home), "PATH": "", "TEST_TOKEN": registry_token}
    harness = Harness(tmp_path, "", None)
    spec = publish_history(publish, unique_name("acme"))
    results = harness.run(spec, CHAIN[:3], npm_env=env, registry=None)
    look = out(results, "lookup")
    assert look["registry"] == proxy.url
    assert look["registry_source"] == f"{home / '.npmrc'}:1"
    assert out(results, "retag")["moved"] and out(results, "deprecate")["deprecated"]
    everything = json.dumps(
        [to_json(o.outputs) for _p, o in results.values() if o]
        + [[k, dict(d)] for k, d in harness.events]
    )
    assert registry_token not in everything


def test_scan_downloads_checks_and_writes_findings(
    harness: Harness, publish: Any, unique_name: Any
) -> None:
    spec = publish_history(publish, unique_name("acme"))
    results = harness.run(spec, (CHAIN[0], ("scan", "npm.scan")))
    scan = out(results, "scan")
    assert scan["leaky"] is True and any("source map" in r for r in scan["reasons"])
    assert scan["summary"]["sources_with_content"] == 2
    assert scan["summary"]["first_party"] >= 1 and scan["summary"]["node_modules"] >= 1
    manifest = json.loads((harness.tmp_path / "incident" / scan["manifest_file"]).read_text())
    assert {f["path"] for f in manifest["files"]} >= {"src/main.ts"}
    assert (harness.tmp_path / "incident" / scan["findings_file"]).exists()
    # The same comparison the guard makes: against the version before (1.1.0, which had no map).
    assert scan["baseline"] == f"{spec.name}@1.1.0"
    assert scan["comparison"] == "1.1.0 shipped no map; 2.0.0 added one carrying 2 sources"
    assert "under no open-source licence" in scan["verdict"]  # the fixture declares no licence
    clean = harness.run(PackageSpec(spec.name, "1.0.0"), (CHAIN[0], ("scan", "npm.scan")))
    assert out(clean, "scan")["leaky"] is False
    assert "has no version before 1.0.0" in out(clean, "scan")["comparison"]
