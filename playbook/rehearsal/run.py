"""Game days: a sandbox registry, a fake outside world, a synthetic leak, the real playbook.

A rehearsal publishes a leaky release into a throwaway local registry, seeds a local server that
plays GitHub, the CDNs and Software Heritage with copies, legitimate forks and noise, then runs
the real runbook live against them: real writes, to the sandbox only. Every URL the run may
reach is checked to be on loopback before the first request. Everything started is stopped by
PID on the way out, on failure and on Ctrl-C too; only the incident folder stays.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playbook.config.settings import Mode, Settings
from playbook.errors import UsageError
from playbook.mirrors.model import Mirror, Verdict
from playbook.net.http import is_loopback
from playbook.notices.model import Notice
from playbook.rehearsal.sandbox import write_npmrc
from playbook.secret import Secret
from playbook.store.records import Records
from playbook.store.sqlite import Store

REHEARSAL_SCOPE = "@rehearsal"
ORG_DETAILS = """\
[organization]
name = "Rehearsal Corp"
copyright_owner = "Rehearsal Corp"
signer = "Riley Rehearsal"
legal_email = "legal@rehearsal.invalid"
telephone = "+1 555 0199"
legal_address = "1 Practice Way, Drill City"
advisory_contact = "security@rehearsal.invalid"
security_url = "https://rehearsal.invalid/security"

"""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    packages: tuple[str, ...]
    clean_versions: tuple[str, ...]
    leaked_version: str
    secret: bool = False
    past_policy: bool = False
    sources: int = 240
    first_party: int = 120
    source_bytes: int = 600
    bundle_bytes: int = 2048


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "sourcemap-leak",
            "2.1.88 ships a source map carrying the original source; copies appear on GitHub.",
            (f"{REHEARSAL_SCOPE}/cli",),
            ("2.1.86", "2.1.87"),
            "2.1.88",
        ),
        Scenario(
            "secret-in-release",
            "The leaky release also ships an .env with a live-looking token.",
            (f"{REHEARSAL_SCOPE}/cli",),
            ("2.1.86", "2.1.87"),
            "2.1.88",
            secret=True,
        ),
        Scenario(
            "compromised-maintainer",
            "25 packages of one scope each get a bad version at once.",
            tuple(f"{REHEARSAL_SCOPE}/pkg-{i:02d}" for i in range(1, 26)),
            ("1.0.0",),
            "1.0.1",
            secret=True,
            sources=40,
            first_party=20,
        ),
        Scenario(
            "past-policy",
            "The release is older than 72 hours: the registry refuses the unpublish.",
            (f"{REHEARSAL_SCOPE}/cli",),
            ("2.1.86", "2.1.87"),
            "2.1.88",
            past_policy=True,
        ),
    )
}
DEFAULT_SCENARIO = "sourcemap-leak"
MILESTONES = {
    "latest moved": "retag",
    "deprecated": "deprecate",
    "unpublished": "unpublish",
    "verified": "verify",
}


@dataclass(frozen=True)
class Scorecard:
    scenario: str
    incident: str
    status: str
    packages: int
    milestones: dict[str, float | None]
    planted: int
    found: int
    true_copies: int
    precision: float | None
    recall: float | None
    notices: dict[str, int]
    report: str | None
    seconds: float
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def scenario(name: str | Scenario | None) -> Scenario:
    if isinstance(name, Scenario):
        return name
    chosen = SCENARIOS.get(name or DEFAULT_SCENARIO)
    if chosen is None:
        raise UsageError(f"Unknown scenario {name!r}; accepted: {', '.join(SCENARIOS)}.")
    return chosen


def assert_loopback(settings: Settings, registry: str) -> None:
    """Refuse to start unless every URL the run may reach is on this machine's loopback."""
    urls = {"registry": registry, **dict(settings.endpoints)}
    for name, url in urls.items():
        if not is_loopback(urlsplit(url).hostname or ""):
            raise UsageError(
                f"Rehearsal refused: {name} would reach {url}, which is not loopback; "
                "a rehearsal only talks to its own sandbox."
            )


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the sandbox's processes are stopped by the same path."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def rehearse(
    home: Path,
    name: str | Scenario | None = None,
    *,
    reporter: Any = None,
    pids: list[int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Scorecard:
    """Run one scenario end to end; `pids` receives every process started (for tests);
    `progress` the lines of a first-use install of the local registry."""
    chosen = scenario(name)
    from playbook.rehearsal.install import installed_registry
    from playbook.rehearsal.sandbox import LocalRegistry

    root = installed_registry(home, progress)
    started = time.monotonic()
    with _sigterm_as_interrupt(), contextlib.ExitStack() as stack:
        registry = stack.enter_context(LocalRegistry(root))
        if pids is not None and registry.pid is not None:
            pids.append(registry.pid)
        token = Secret(registry.add_user("rehearsal", secrets.token_hex(12)))
        files = _publish(registry, chosen, token)
        world = _world(chosen, files)
        _republish(registry, world, token)
        fake = stack.enter_context(_fake_world(world))
        registry_url = registry.url
        if chosen.past_policy:
            registry_url = stack.enter_context(_policy_proxy(registry.url)).url
        project = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="respond-rehearsal-"))
        )
        settings = _settings(home, project, registry_url, token, fake, world)
        assert_loopback(settings, registry_url)
        incident_id, status = _run(settings, chosen, reporter)
    store = Store(home)
    try:
        return _score(store, incident_id, status, chosen, world, time.monotonic() - started)
    finally:
        store.close()


def _publish(registry: Any, chosen: Scenario, token: Secret) -> dict[str, bytes]:
    from playbook.rehearsal.synth import make_package, reconstructed_files

    leaked_files: dict[str, bytes] = {}
    for index, package in enumerate(chosen.packages):
        for version in chosen.clean_versions:
            clean = make_package(
                package, version, sources=0, first_party=0, with_map=False, seed=index
            )
            registry.publish(clean, package, version, token=token.reveal())
        secret = _fake_secret() if chosen.secret else None
        leaky = make_package(
            package,
            chosen.leaked_version,
            sources=chosen.sources,
            first_party=chosen.first_party,
            with_map=True,
            seed=index,
            source_bytes=chosen.source_bytes,
            bundle_bytes=chosen.bundle_bytes,
            secret=secret,
            env_file=secret is not None,
        )
        registry.publish(leaky, package, chosen.leaked_version, token=token.reveal())
        if chosen.past_policy:
            registry.backdate(package, chosen.leaked_version, datetime.now(UTC) - timedelta(days=5))
        if index == 0:
            leaked_files = reconstructed_files(  # the same arguments: the same files
                package,
                chosen.leaked_version,
                sources=chosen.sources,
                first_party=chosen.first_party,
                seed=index,
                source_bytes=chosen.source_bytes,
                secret=secret,
            )
    return leaked_files


def _republish(registry: Any, world: Any, token: Secret) -> None:
    """The world's npm packages (republished copies, innocent look-alikes) go in the sandbox
    registry: that is where the hunt's npm search looks in a rehearsal."""
    from playbook.rehearsal.world import package_tarball

    for package in world.packages:
        registry.publish(
            package_tarball(package.files), package.name, package.version, token=token.reveal()
        )


def _fake_secret() -> str:
    # A GitHub token's format, checksum included, so the scanner's rules fire; random, never a
    # real credential.
    from playbook.scan.detect import checksummed_token

    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return checksummed_token("ghp_", "".join(secrets.choice(alnum) for _ in range(30)))


# A game day compresses the search limits 60-fold: the fake world enforces them and the governor
# paces to 90% of them (as it does against GitHub's real 10 code searches a minute), so 25
# packages' hunts take seconds instead of a quarter of an hour while the discipline still holds.
REHEARSAL_SEARCH_PER_MINUTE = 600


def _world(chosen: Scenario, files: dict[str, bytes]) -> Any:
    from playbook.rehearsal.world import Limits, World

    limits = Limits(code_search=REHEARSAL_SEARCH_PER_MINUTE, search=REHEARSAL_SEARCH_PER_MINUTE)
    return World.seeded(
        files, chosen.packages[0], chosen.leaked_version, seed=7, official_forks=40, limits=limits
    )


def _fake_world(world: Any) -> Any:
    from playbook.rehearsal.world import FakeWorld

    return FakeWorld(world)


def _policy_proxy(upstream: str) -> Any:
    """The public registry's behaviour Verdaccio lacks: refusing an unpublish by policy."""
    from playbook.rehearsal.proxy import RegistryProxy

    proxy = RegistryProxy(upstream)
    proxy.refuse_unpublish()
    return proxy


def _settings(
    home: Path, project: Path, registry: str, token: Secret, fake: Any, world: Any
) -> Settings:
    write_npmrc(project, registry, "RESPOND_REHEARSAL_TOKEN")
    (project / "package.json").write_text('{"name": "rehearsal-project", "private": true}\n')
    (project / "respond.toml").write_text(ORG_DETAILS + world.respond_toml)
    # The rehearsal's own environment, resolved into Settings like a command's: only PATH (to
    # find npm) comes from ours, so nothing of the operator's configuration leaks in.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(project),  # never the operator's own ~/.npmrc
        "RESPOND_HOME": str(home),
        "RESPOND_LOOPBACK_ONLY": "1",  # a second lock on the door: every client refuses the rest
        "RESPOND_REHEARSAL_TOKEN": token.reveal(),
        "GITHUB_TOKEN": "rehearsal-" + secrets.token_hex(8),
        **{
            f"RESPOND_{name}_PER_MINUTE": str(REHEARSAL_SEARCH_PER_MINUTE * 9 // 10)
            for name in ("GITHUB_CODE_SEARCH", "GITHUB_SEARCH", "SWH_SEARCH")
        },
        **fake.env(),
    }
    return Settings.resolve(
        env=env, mode=Mode.REHEARSAL, cwd=project, registry=registry, interactive=False
    )


def _run(settings: Settings, chosen: Scenario, reporter: Any) -> tuple[str, str]:
    """The scenario's incident, run as `respond leak` runs one (core.leak)."""
    from playbook.core import Session, leak, load_runbook
    from playbook.spec import PackageSpec

    store = Store(settings.home)
    try:
        book = load_runbook(None, settings)
        targets = [PackageSpec(p, chosen.leaked_version) for p in chosen.packages]
        session = Session(settings, store, reporter=reporter)
        note = ("rehearsal.scenario", {"scenario": chosen.name})
        result = leak(session, targets, book, first_events=[note])
        return result.incident_id, result.status
    finally:
        store.close()


def _score(
    store: Store, incident_id: str, status: str, chosen: Scenario, world: Any, seconds: float
) -> Scorecard:
    events = store.events(incident_id)
    start = next(_at(e.at) for e in events if e.kind == "run.started")
    milestones: dict[str, float | None] = {}
    for label, step_id in MILESTONES.items():
        ends = [
            _at(e.at)
            for e in events
            if e.kind in ("step.succeeded", "step.skipped")
            and e.step_key is not None
            and e.step_key.split("#")[-1] == step_id
        ]
        done = len(ends) == len(chosen.packages)
        milestones[label] = round(max(ends) - start, 3) if done else None
    records = Records(store, incident_id)
    copies = {m.url for m in records.all(Mirror) if m.verdict is Verdict.COPY}
    planted = set(world.expected_copies)
    true = copies & planted
    notices: dict[str, int] = {}
    for notice in records.all(Notice):
        notices[notice.status.value] = notices.get(notice.status.value, 0) + 1
    report = store.incident_dir(incident_id) / "report" / "report.html"
    return Scorecard(
        scenario=chosen.name,
        incident=incident_id,
        status=status,
        packages=len(chosen.packages),
        milestones=milestones,
        planted=len(planted),
        found=len(copies),
        true_copies=len(true),
        precision=round(len(true) / len(copies), 3) if copies else None,
        recall=round(len(true) / len(planted), 3) if planted else None,
        notices=notices,
        report=str(report) if report.exists() else None,
        seconds=round(seconds, 2),
    )


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def scorecard_lines(card: Scorecard) -> list[str]:
    lines = [
        f"rehearsal {card.scenario}: incident {card.incident} {card.status} in {card.seconds:.1f}s"
        f" ({card.packages} package{'s' if card.packages > 1 else ''})",
        "containment, seconds from the run's start:",
    ]
    for label, value in card.milestones.items():
        lines.append(f"  {label:<14} {'not reached' if value is None else f'{value:.3f}s'}")
    precision = "n/a" if card.precision is None else f"{card.precision:.2f}"
    recall = "n/a" if card.recall is None else f"{card.recall:.2f}"
    lines.append(
        f"copies: {card.found} found, {card.planted} planted, {card.true_copies} true"
        f" (precision {precision}, recall {recall})"
    )
    drafted = ", ".join(f"{n} {s}" for s, n in sorted(card.notices.items())) or "none"
    lines.append(f"notices: {drafted}")
    lines.append(f"report: {card.report or 'not written'}")
    lines.extend(card.notes)
    return lines
