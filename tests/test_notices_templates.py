"""Golden files of every template, the sandbox around user templates, respond.toml and the steps."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from playbook.codec import to_json
from playbook.config.org import ORG_FIELDS, init_text, load_org
from playbook.config.settings import Mode, Settings
from playbook.errors import RespondError, UsageError
from playbook.mirrors.model import Mirror
from playbook.net.http import ClientOptions
from playbook.notices.drafts import draft_notices
from playbook.notices.model import Notice
from playbook.notices.render import Renderer
from playbook.notices.report import render_documents
from playbook.notices.view import load_view
from playbook.resources import runbooks_dir, templates_dir
from playbook.services.hub import Services
from playbook.spec import parse_spec
from playbook.steps.base import MemoryRecords, Plan, StepContext, StepOutputs
from playbook.steps.notices import DraftNotices
from playbook.steps.npm import TagMove
from playbook.steps.report import WriteReport
from tests.test_notices_fixture import (
    FULL_TOML,
    INCIDENT,
    NOW,
    TARGET,
    build_incident,
    full_org,
    mirrors,
    store_drafts,
    typed_outputs,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RESPOND_UPDATE_GOLDEN") == "1"


def documents(tmp: Path) -> dict[str, str]:
    """Every document of the fixed incident, keyed by golden file name."""
    org = full_org(tmp)
    store = build_incident(tmp / "home", org=org)
    docs = {f"{d.record['id']}.md": d.text for d in store_drafts(store, org)}
    view = load_view(store, INCIDENT)
    for fmt in ("md", "html", "json"):
        docs[f"report.{fmt}"] = render_documents(view, org, fmt, now=NOW)
    rehearsal = build_incident(tmp / "rehearsal", mode="dry-run", org=org)
    for draft in store_drafts(rehearsal, org):
        if draft.record["kind"] in ("advisory", "dmca-github"):
            docs[f"dry-run-{draft.record['id']}.md"] = draft.text
    docs["dry-run-report.md"] = render_documents(load_view(rehearsal, INCIDENT), org, "md", now=NOW)
    return docs


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    docs = documents(tmp_path_factory.mktemp("golden"))
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        for name, text in docs.items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
    return docs


EXPECTED = sorted(p.name for p in GOLDEN.glob("*") if p.is_file())


def test_every_golden_file_is_rendered_and_every_document_has_one(
    rendered: dict[str, str],
) -> None:
    on_disk = sorted(p.name for p in GOLDEN.glob("*") if p.is_file())
    assert sorted(rendered) == on_disk, "regenerate with RESPOND_UPDATE_GOLDEN=1"
    templates = {p.name.removesuffix(".j2") for p in (templates_dir() / "notices").glob("[!_]*")}
    covered = {n.removeprefix("dry-run-") for n in rendered}
    for template in templates:
        stem = template.removesuffix(".md")
        assert any(c.startswith(stem) for c in covered), f"{template} has no golden file"


@pytest.mark.parametrize("name", EXPECTED)
def test_document_matches_its_golden_file(rendered: dict[str, str], name: str) -> None:
    expected = (GOLDEN / name).read_text(encoding="utf-8")
    assert rendered[name] == expected, f"{name} changed; RESPOND_UPDATE_GOLDEN=1 regenerates it"


# The sandbox around a team's own templates ------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ incident.__class__.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ targets.__len__() }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_a_user_template_cannot_reach_python_internals(tmp_path: Path, source: str) -> None:
    folder = tmp_path / "mine" / "notices"
    folder.mkdir(parents=True)
    (folder / "customer.md.j2").write_text(f"hello {source}\n")
    store = build_incident(tmp_path / "home", with_notices=False)
    org = full_org(tmp_path)
    with pytest.raises(RespondError, match="sandbox refused") as caught:
        store_drafts(store, org, renderer=Renderer(tmp_path / "mine"))
    assert "customer.md.j2" in caught.value.message and caught.value.hint


def test_a_user_template_overrides_the_shipped_one_file_by_file(tmp_path: Path) -> None:
    folder = tmp_path / "mine" / "notices"
    folder.mkdir(parents=True)
    (folder / "customer.md.j2").write_text("OURS {{ target.spec }} {{ org.signer }}\n")
    (tmp_path / "respond.toml").write_text('templates_dir = "mine"\n' + FULL_TOML)
    org = load_org(tmp_path, tmp_path / "home")
    assert org.templates_dir == tmp_path / "mine"
    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = {d.record["id"]: d.text for d in store_drafts(store, org)}
    assert drafts["customer-acme-cli-2.1.88"] == "OURS @acme/cli@2.1.88 Jane Doe\n"
    assert drafts["advisory-acme-cli-2.1.88"].startswith("# Security advisory")


def test_respond_templates_env_wins_and_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    org = load_org(tmp_path, tmp_path, templates=tmp_path / "absent")
    with pytest.raises(UsageError, match=r"templates folder .*absent does not exist"):
        Renderer(org.templates_dir)


def test_a_template_error_names_the_template(tmp_path: Path) -> None:
    folder = tmp_path / "mine" / "notices"
    folder.mkdir(parents=True)
    (folder / "advisory.md.j2").write_text("{{ no_such_thing }}\n")
    store = build_incident(tmp_path / "home", with_notices=False)
    with pytest.raises(RespondError, match=r"advisory\.md\.j2 .*no_such_thing"):
        store_drafts(store, full_org(tmp_path), renderer=Renderer(tmp_path / "mine"))


# respond.toml ------------------------------------------------------------------------------------


def test_init_text_is_valid_toml_with_every_documented_key() -> None:
    data = tomllib.loads(init_text())
    assert sorted(data["organization"]) == sorted(ORG_FIELDS)
    assert sorted(data["official"]) == ["github_orgs", "npm_scopes", "repositories"]


def test_respond_toml_in_the_working_directory_wins_over_home(tmp_path: Path) -> None:
    (tmp_path / "cwd").mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "cwd" / "respond.toml").write_text('[organization]\nname = "Here"\n')
    (tmp_path / "home" / "respond.toml").write_text('[organization]\nname = "Home"\n')
    assert load_org(tmp_path / "cwd", tmp_path / "home").detail("name") == "Here"
    assert load_org(tmp_path / "elsewhere", tmp_path / "home").detail("name") == "Home"


def test_a_misspelt_key_in_respond_toml_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "respond.toml").write_text('[organization]\nsignor = "Jane"\n')
    with pytest.raises(UsageError, match=r"unknown key\(s\) signor"):
        load_org(tmp_path, tmp_path)


def test_the_shipped_folders_are_found() -> None:
    assert (templates_dir() / "notices" / "dmca-github.md.j2").is_file()
    assert (templates_dir() / "report" / "report.html.j2").is_file()
    assert runbooks_dir().is_dir()


# The steps ---------------------------------------------------------------------------------------


def context(tmp: Path, step_id: str, services: Services, records: MemoryRecords) -> StepContext:
    settings = Settings(home=tmp / "home", cwd=tmp, npm_env={}, mode=Mode.LIVE)
    return StepContext(
        incident_id=INCIDENT,
        step_id=step_id,
        target=parse_spec(TARGET),
        params={"network_statement": True},
        inputs={},
        needs={k: typed_outputs(k) for k in ("scan", "verify", "cdn", "verify_mirrors")},
        settings=settings,
        services=services,
        workdir=tmp / "incident",
        records=records,
    )


def test_the_notices_step_drafts_files_and_records_from_its_context(tmp_path: Path) -> None:
    full_org(tmp_path)
    records = MemoryRecords()
    for record in mirrors():
        records.put(Mirror.from_record(record))
    events: list[tuple[str, object]] = []
    services = Services(Settings(home=tmp_path), ClientOptions(dry_run=False))
    ctx = context(tmp_path, "notices", services, records)
    ctx.event = lambda kind, data: events.append((kind, data))
    outcome = asyncio.run(DraftNotices().apply(ctx, Plan()))
    notices = to_json(outcome.outputs)["notices"]
    assert {n["kind"] for n in notices} >= {"dmca-github", "advisory", "private-info-github"}
    for notice in notices:
        assert (tmp_path / "incident" / notice["file"]).is_file()
        assert records.get(Notice, notice["id"]) is not None
    assert ("notice.network_statement_refused") in [k for k, _ in events]
    root = records.get(Mirror, "https://github.com/leaker/acme-cli-src")
    assert root is not None and root.status == "notice_drafted"


def test_the_notices_step_splits_the_dmca_notice_when_the_runbook_asks(tmp_path: Path) -> None:
    full_org(tmp_path)
    records = MemoryRecords()
    for record in mirrors():
        records.put(Mirror.from_record(record))
    services = Services(Settings(home=tmp_path), ClientOptions(dry_run=False))
    ctx = dataclasses.replace(
        context(tmp_path, "notices", services, records), params={"dmca_per_network": True}
    )
    outcome = asyncio.run(DraftNotices().apply(ctx, Plan()))
    ids = sorted(n["id"] for n in to_json(outcome.outputs)["notices"] if n["kind"] == "dmca-github")
    assert ids == [
        "dmca-github-acme-cli",
        "dmca-github-files-leaker-acme-cli-src",
        "dmca-github-leaker-acme-cli-src",
    ]


def test_the_report_step_reads_the_incident_history_the_engine_gives(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", org=full_org(tmp_path))
    services = Services(Settings(home=tmp_path), ClientOptions(dry_run=False))
    ctx = dataclasses.replace(context(tmp_path, "report", services, MemoryRecords()), history=store)
    outcome = asyncio.run(WriteReport().apply(ctx, Plan()))
    assert to_json(outcome.outputs) == {
        "markdown": "report/report.md",
        "html": "report/report.html",
        "json": "report/report.json",
    }
    html = (tmp_path / "incident" / "report" / "report.html").read_text()
    assert "<svg" in html and "step.succeeded" in html  # the event log came from the store


@dataclass(frozen=True)
class RenamedRetag(StepOutputs):
    """RetagOutput with `safe_version` renamed, as a careless refactor would leave it."""

    safe: str | None = "2.1.87"
    moved: dict[str, TagMove] = dataclasses.field(default_factory=dict)
    left: tuple[str, ...] = ()
    reason: str = ""


def test_a_renamed_output_field_fails_rendering_instead_of_leaving_a_blank(tmp_path: Path) -> None:
    org = full_org(tmp_path)
    view = load_view(build_incident(tmp_path / "home", org=org), INCIDENT)
    target = view.targets[0]
    assert target.retag is not None and target.retag.safe_version == "2.1.87"
    drafted = {d.record["kind"]: d.text for d in draft_notices(view, org, now=NOW)}
    assert "@2.1.87" in drafted["advisory"]  # the real field is rendered...
    broken = dataclasses.replace(
        view,
        targets=(dataclasses.replace(target, retag=RenamedRetag()),),  # type: ignore[arg-type]
    )
    with pytest.raises(RespondError, match="safe_version"):  # ...a renamed one stops the draft
        draft_notices(broken, org, now=NOW)
