"""Notices drafted from a fixed incident: GitHub's DMCA elements, blanks, lifecycle, hostile data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from playbook.config.org import OrgConfig, load_org
from playbook.errors import UsageError
from playbook.notices import dmca
from playbook.notices.drafts import Draft, draft_notices
from playbook.notices.lifecycle import auto_resolve, list_notices, mark_resolved, mark_sent
from playbook.notices.report import render_documents
from playbook.notices.view import load_view
from playbook.store.sqlite import Store
from tests.test_notices_fixture import (
    FULL_TOML,
    HOSTILE_NAME,
    HOSTILE_PATH,
    INCIDENT,
    RAW_SECRET,
    ROOT,
    build_incident,
    fixed_clock,
    full_org,
    mirror,
    store_drafts,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, Draft]]:
    tmp = tmp_path_factory.mktemp("notices")
    store = build_incident(tmp / "home", with_notices=False)
    drafts = store_drafts(store, full_org(tmp))
    return store, {d.record["id"]: d for d in drafts}


def section(text: str, title: str) -> str:
    """The body of one `## title` section of a notice."""
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 3)
    return text[start : end if end != -1 else None]


# Which notices the incident calls for -------------------------------------------------------------


def test_the_fixture_incident_gets_every_kind_of_notice(world: Any) -> None:
    kinds = sorted({d.record["kind"] for d in world[1].values()})
    assert kinds == [
        "advisory",
        "customer",
        "dmca-github",
        "dmca-npm",
        "forge-copyright",
        "jsdelivr",
        "npm-support",
        "private-info-github",
        "unpkg",
    ]


def answer(text: str) -> list[str]:
    """Every answer a draft gives to the form's "Based on the above, I confirm that"."""
    return re.findall(r"Based on the above, I confirm that: (.+)\.", text)


def test_one_github_dmca_notice_per_incident_and_claim_kind(world: Any) -> None:
    dmcas = sorted(i for i in world[1] if i.startswith("dmca-github"))
    assert dmcas == ["dmca-github", "dmca-github-files"]  # the form takes one answer each
    entire, files = world[1]["dmca-github"].text, world[1]["dmca-github-files"].text
    assert answer(entire) == ["The entire repository is infringing"]
    assert answer(files) == ["Specific files within the repository are infringing"]
    # A section per network, in one notice per kind rather than one notice per network.
    assert entire.count("\n### Fork network of ") == 2
    assert "### Fork network of https://github.com/leaker/acme-cli-src" in entire
    assert "### Fork network of https://github.com/acme/cli" in entire
    assert files.count("\n### Fork network of ") == 1
    listed = {d: sorted(world[1][d].record["mirrors"]) for d in dmcas}
    assert listed == {
        "dmca-github": [
            "https://github.com/fork1/acme-cli-src",
            ROOT,
            "https://github.com/someone/cli",
        ],
        "dmca-github-files": ["https://github.com/fork2/acme-cli-src"],
    }
    # Each says where the other kind is, in its body and its checklist.
    assert "separate notice (dmca-github-files)" in entire
    assert "separate notice (dmca-github)" in files
    assert (
        "2 further repositories are claimed\nas entire repositories in notice dmca-github" in files
    )


def test_a_notice_never_mixes_entire_and_files_claims_in_any_variant(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    org = full_org(tmp_path)
    for split in (False, True):
        for draft in store_drafts(store, org, per_network=split):
            if draft.record["kind"] == "dmca-github":
                assert len(answer(draft.text)) == 1, (split, draft.record["id"])


@pytest.mark.parametrize("how", ["respond.toml", "runbook"])
def test_the_user_may_ask_for_one_dmca_notice_per_network(tmp_path: Path, how: str) -> None:
    (tmp_path / "respond.toml").write_text(
        FULL_TOML + ("\n[notices]\ndmca_per_network = true\n" if how == "respond.toml" else "")
    )
    org = load_org(tmp_path, tmp_path / "nohome")
    store = build_incident(tmp_path / "home", with_notices=False)
    split = {"per_network": True} if how == "runbook" else {}
    drafts = {d.record["id"]: d for d in store_drafts(store, org, **split)}
    dmcas = sorted(i for i in drafts if i.startswith("dmca-github"))
    assert dmcas == [
        "dmca-github-acme-cli",
        "dmca-github-files-leaker-acme-cli-src",
        "dmca-github-leaker-acme-cli-src",
    ]
    assert drafts["dmca-github-acme-cli"].record["mirrors"] == ["https://github.com/someone/cli"]


def test_networks_whose_names_slug_alike_get_notices_of_their_own(tmp_path: Path) -> None:
    alike = [
        mirror("a/b-c", "copy", root="https://github.com/a/b-c"),
        mirror("a-b/c", "copy", root="https://github.com/a-b/c"),
    ]
    store = build_incident(tmp_path / "home", with_notices=False, mirror_list=alike)
    drafts = store_drafts(store, full_org(tmp_path), per_network=True)
    files = sorted(d.file for d in drafts if d.record["kind"] == "dmca-github")
    assert files == ["notices/dmca-github-a-b-c-n2.md", "notices/dmca-github-a-b-c.md"]


def test_a_bad_split_setting_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "respond.toml").write_text(FULL_TOML + '\n[notices]\ndmca_per_network = "yes"\n')
    with pytest.raises(UsageError, match=r"\[notices\] dmca_per_network must be true or false"):
        load_org(tmp_path, tmp_path)


def test_official_and_unrelated_repositories_are_never_listed(world: Any) -> None:
    listed = {u for d in world[1].values() for u in d.record["mirrors"]}
    assert "https://github.com/acme/cli" not in listed
    assert "https://github.com/random/other" not in listed
    assert "https://github.com/someone/cli" in listed


# The network-wide statement -------------------------------------------------------------------


NOT_REQUESTED = {
    "requested": False,
    "included": False,
    "reason": "not requested; it is never made by default",
}


def test_network_statement_is_never_made_by_default(world: Any) -> None:
    for draft in world[1].values():
        assert dmca.NETWORK_STATEMENT not in draft.text
    record = world[1]["dmca-github"].record
    assert {"network": "leaker/acme-cli-src", **NOT_REQUESTED} in record["network_statements"]


def test_network_statement_refused_when_the_network_holds_non_copies(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = {
        d.record["id"]: d for d in store_drafts(store, full_org(tmp_path), network_statement=True)
    }
    notice = drafts["dmca-github"]
    assert dmca.NETWORK_STATEMENT not in notice.text
    official = notice.statements["acme/cli"]
    assert not official.included and "acme/cli (official)" in official.reason
    assert "requested for acme/cli and refused" in notice.text and official.reason in notice.text
    # The leaker's network holds a files claim (the partial fork): refused there too.
    assert not notice.statements["leaker/acme-cli-src"].included
    stored = store.record(INCIDENT, "notice", "dmca-github")
    assert stored is not None
    decided = {d["network"]: d for d in stored["network_statements"]}
    assert decided["acme/cli"]["included"] is False


def test_network_statement_refused_when_the_hunt_could_not_tell(tmp_path: Path) -> None:
    unknown = [mirror("leaker/acme-cli-src", "copy", non_copies=None)]
    store = build_incident(tmp_path / "home", with_notices=False, mirror_list=unknown)
    (draft,) = [
        d
        for d in store_drafts(store, full_org(tmp_path), network_statement=True)
        if d.record["kind"] == "dmca-github"
    ]
    assert not draft.statements["leaker/acme-cli-src"].included
    assert dmca.NETWORK_STATEMENT not in draft.text


def test_network_statement_included_only_when_asked_and_every_repo_is_a_copy(
    tmp_path: Path,
) -> None:
    clean = [
        mirror("leaker/acme-cli-src", "copy"),
        mirror("fork1/acme-cli-src", "copy", parent=ROOT),
    ]
    store = build_incident(tmp_path / "home", with_notices=False, mirror_list=clean)
    org = full_org(tmp_path)
    (asked,) = [
        d
        for d in store_drafts(store, org, network_statement=True)
        if d.record["kind"] == "dmca-github"
    ]
    assert dmca.NETWORK_STATEMENT in asked.text
    assert asked.record["network_statements"][0]["included"] is True
    assert "does not ask GitHub to process any whole fork network" not in asked.text


def test_network_statement_refused_when_a_copy_is_claimed_by_files(tmp_path: Path) -> None:
    mixed = [
        mirror("leaker/acme-cli-src", "copy"),
        mirror("fork1/acme-cli-src", "copy", parent=ROOT, matched=1000, own_files=900),
    ]
    store = build_incident(tmp_path / "home", with_notices=False, mirror_list=mixed)
    asked = [
        d
        for d in store_drafts(store, full_org(tmp_path), network_statement=True)
        if d.record["kind"] == "dmca-github"
    ]
    assert [d.record["id"] for d in asked] == ["dmca-github", "dmca-github-files"]
    for draft in asked:
        assert dmca.NETWORK_STATEMENT not in draft.text
        assert "claimed by their files" in draft.statements["leaker/acme-cli-src"].reason


# Credentials: a separate private-information request ------------------------------------------


def test_credentials_never_appear_in_a_dmca_notice(world: Any) -> None:
    for notice_id, draft in world[1].items():
        if notice_id.startswith("dmca-"):
            assert "aws-access-key" not in draft.text
            assert "AKIA" not in draft.text


def test_private_information_request_links_lines_and_redacts(world: Any) -> None:
    text = world[1]["private-info-github-acme-cli-2.1.88"].text
    for name in ("leaker/acme-cli-src", "fork1/acme-cli-src", "fork2/acme-cli-src", "someone/cli"):
        commit = mirror(name, "copy")["commit_sha"]
        assert f"https://github.com/{name}/blob/{commit}/src/config/aws.ts#L12" in text
    assert "/blob/HEAD/" not in text
    assert "AKIA\\*\\*\\*\\*" in text  # the redacted form, Markdown-escaped
    assert "Risk:" in text and "## Rotation checklist" in text
    assert "- [ ] Revoke and replace the aws-access-key" in text


def test_a_raw_secret_reaches_no_document(world: Any) -> None:
    for draft in world[1].values():
        assert RAW_SECRET not in draft.text


# Organization details and blanks ----------------------------------------------------------------


def test_a_missing_signer_gives_needs_details_and_a_visible_blank(tmp_path: Path) -> None:
    (tmp_path / "respond.toml").write_text(FULL_TOML.replace('signer = "Jane Doe"\n', ""))
    org = load_org(tmp_path, tmp_path / "home")
    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = {d.record["id"]: d for d in store_drafts(store, org)}
    dmca_draft = drafts["dmca-github"]
    assert dmca_draft.record["status"] == "needs_details"
    assert dmca_draft.record["missing"] == ["signer"]
    assert "[MISSING: signer]" in section(dmca_draft.text, "Signature")
    advisory = drafts["advisory-acme-cli-2.1.88"]  # the advisory does not need a signer
    assert advisory.record["status"] == "drafted" and advisory.record["missing"] == []


def test_without_respond_toml_every_notice_shows_its_blanks(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    for draft in store_drafts(store, OrgConfig()):
        assert draft.record["status"] == "needs_details", draft.record["id"]
        for name in draft.record["missing"]:
            assert f"[MISSING: {name}]" in draft.text
        assert "None" not in draft.text


def test_an_optional_detail_left_out_is_not_a_blank(tmp_path: Path) -> None:
    toml = FULL_TOML.replace('security_url = "https://acme.example/security"\n', "")
    (tmp_path / "respond.toml").write_text(toml)
    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = store_drafts(store, load_org(tmp_path, tmp_path))
    assert {d.record["status"] for d in drafts} == {"drafted"}


# Lifecycle ---------------------------------------------------------------------------------------


def test_sent_then_resolved_is_recorded_with_who_and_ref(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    store_drafts(store, full_org(tmp_path))
    notice_id = "dmca-github"
    with fixed_clock("2026-04-01T10:00:00"):
        sent = mark_sent(store, INCIDENT, notice_id, "GH-TICKET-42", who="jane")
        assert (sent.status, sent.ref, sent.sent_at) == ("sent", "GH-TICKET-42", sent.sent_at)
        assert sent.sent_at is not None and sent.sent_at.startswith("2026-04-01")
        mirror_record = store.record(INCIDENT, "mirror", ROOT)
        assert mirror_record is not None and mirror_record["status"] == "notice_sent"
        done = mark_resolved(store, INCIDENT, notice_id, who="jane")
    assert done.status == "resolved" and done.resolved_at is not None
    sent_events = [e for e in store.events(INCIDENT) if e.kind == "notice.updated"]
    assert [e.actor for e in sent_events][-2:] == ["jane", "jane"]
    listed = {n.id: n.status for n in list_notices(store, INCIDENT)}
    assert listed[notice_id] == "resolved"


def test_a_notice_with_blanks_cannot_be_marked_sent_until_filled(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    store_drafts(store, OrgConfig())
    notice_id = "advisory-acme-cli-2.1.88"
    with pytest.raises(UsageError, match="still has blanks: advisory_contact, name"):
        mark_sent(store, INCIDENT, notice_id, None, who="jane")
    path = store.incident_dir(INCIDENT) / "notices" / f"{notice_id}.md"
    filled = (
        path.read_text()
        .replace("[MISSING: name]", "Acme")
        .replace("[MISSING: advisory_contact]", "sec@acme.example")
    )
    path.write_text(filled)
    assert mark_sent(store, INCIDENT, notice_id, None, who="jane").status == "sent"


def test_an_unknown_notice_is_a_usage_error_naming_the_known_ones(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home")
    with pytest.raises(UsageError, match=r"has no notice 'nope'.*advisory-acme-cli-2\.1\.88"):
        mark_resolved(store, INCIDENT, "nope", who="jane")


def test_auto_resolve_closes_a_notice_only_when_all_its_copies_are_down(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    store_drafts(store, full_org(tmp_path))
    mark_sent(store, INCIDENT, "dmca-github", "T-1", who="jane")
    mark_sent(store, INCIDENT, "dmca-github-files", "T-2", who="jane")
    urls = [
        ROOT,
        "https://github.com/fork1/acme-cli-src",
        "https://github.com/someone/cli",
        "https://github.com/fork2/acme-cli-src",
    ]

    def down(url: str) -> None:
        record = store.record(INCIDENT, "mirror", url)
        assert record is not None
        store.put_record(INCIDENT, "mirror", url, {**record, "verdict": "disabled"})

    for url in urls[:2]:
        down(url)
    assert auto_resolve(store, INCIDENT) == []
    down(urls[2])  # the last repository the entire-repository notice names
    assert [n.id for n in auto_resolve(store, INCIDENT)] == ["dmca-github"]
    last = store.record(INCIDENT, "mirror", urls[3])
    assert last is not None
    store.put_record(INCIDENT, "mirror", urls[3], {**last, "verdict": "gone"})
    resolved = auto_resolve(store, INCIDENT)
    # The private-information request names the same four repositories: resolved with them.
    assert sorted(n.id for n in resolved) == [
        "dmca-github-files",
        "private-info-github-acme-cli-2.1.88",
    ]
    assert resolved[0].resolved_at is not None
    assert auto_resolve(store, INCIDENT) == []  # idempotent


def test_redrafting_leaves_sent_notices_alone(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    org = full_org(tmp_path)
    store_drafts(store, org)
    mark_sent(store, INCIDENT, "dmca-npm", "NPM-7", who="jane")
    again = {d.record["id"] for d in store_drafts(store, org)}
    assert "dmca-npm" not in again and "advisory-acme-cli-2.1.88" in again
    record = store.record(INCIDENT, "notice", "dmca-npm")
    assert record is not None and (record["status"], record["ref"]) == ("sent", "NPM-7")


def test_copies_found_after_a_notice_was_sent_get_a_follow_up_notice(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    org = full_org(tmp_path)
    store_drafts(store, org)
    mark_sent(store, INCIDENT, "dmca-github", "T-1", who="jane")
    late = mirror("late/acme-cli-src", "copy", parent=ROOT)
    store.put_record(INCIDENT, "mirror", late["url"], late)
    drafts = {d.record["id"]: d for d in store_drafts(store, org)}
    follow_up = drafts["dmca-github-2"]
    assert follow_up.record["mirrors"] == ["https://github.com/late/acme-cli-src"]
    assert "https://github.com/fork1/acme-cli-src" not in follow_up.text
    assert follow_up.text.count("\n### Fork network of ") == 1  # only the network with news
    assert "dmca-github" not in drafts  # the sent one is left alone
    again = {d.record["id"] for d in store_drafts(store, org)}
    assert "dmca-github-2" in again  # redrafted in place, not a third one
    assert "dmca-github-3" not in again


# Dry runs and rehearsals ------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "label"), [("dry-run", "DRY RUN"), ("rehearsal", "REHEARSAL")])
def test_a_dry_run_or_rehearsal_marks_every_notice_as_its_draft(
    tmp_path: Path, mode: str, label: str
) -> None:
    store = build_incident(tmp_path / "home", mode=mode, with_notices=False)
    drafts = store_drafts(store, full_org(tmp_path))
    assert drafts
    for draft in drafts:
        assert f"**DRAFT OF A {label}: NOT FOR SENDING.**" in draft.text.splitlines()[2]
        assert draft.record["rehearsal"] is True


def test_a_live_incident_carries_no_rehearsal_banner(world: Any) -> None:
    for draft in world[1].values():
        assert "DRAFT OF A" not in draft.text and draft.record["rehearsal"] is False


# Hostile strings from mirrors -------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Draft]:
    tmp = tmp_path_factory.mktemp("hostile")
    store = build_incident(tmp / "home", hostile=True, with_notices=False)
    return {d.record["id"]: d for d in store_drafts(store, full_org(tmp))}


def test_hostile_repository_names_are_listed_but_inert_in_markdown(
    hostile: dict[str, Draft],
) -> None:
    text = hostile["dmca-github-files"].text  # 4 files beside 400 of its own: a files claim
    assert "GitHub account evil " in text  # still listed: a person decides
    assert "<img" not in text and "<script" not in text
    assert "%3Cscript%3E" in text  # the URL is percent-encoded, not dropped
    assert "{{7*7}}" not in text and "%7B%7B7*7%7D%7D" in text
    named = hostile["private-info-github-acme-cli-2.1.88"].text  # prints the full name
    assert "### evil/\\<img src=x onerror=alert(1)\\>\\{\\{7\\*7\\}\\}" in named
    assert HOSTILE_NAME not in named
    assert not re.search(r"(?<!\\)[<>{}*\[\]]", named.split("### evil/", 1)[1].split("(", 1)[0])


def test_hostile_paths_are_named_but_inert_in_every_draft_and_the_report(
    hostile: dict[str, Draft], tmp_path: Path
) -> None:
    text = hostile["dmca-github-files"].text
    # A path from the copy's tree is claimed like any other: percent-encoded in its permalink.
    assert "/src/%3Cscript%3Ealert%281%29%3C/script%3E/%2A%2Ax%2A%2A/%5Ba%5D" in text
    for draft in hostile.values():
        assert HOSTILE_PATH not in draft.text and "<script" not in draft.text, draft.record["id"]
    store = build_incident(tmp_path / "home", hostile=True)
    view = load_view(store, INCIDENT)
    for fmt in ("md", "html"):
        report = render_documents(view, OrgConfig(), fmt, now="2026-03-31T12:00:00Z")
        assert HOSTILE_PATH not in report and "<script>alert" not in report, fmt
    # JSON is data, not markup: the report counts matched paths, so none is copied into it.
    assert HOSTILE_PATH not in render_documents(view, OrgConfig(), "json", now="2026-03-31")


def test_hostile_strings_carry_no_terminal_escapes_or_control_bytes(
    hostile: dict[str, Draft],
) -> None:
    for draft in hostile.values():
        assert not any(ord(c) < 32 and c not in "\n" for c in draft.text), draft.record["id"]
        assert "\x9b" not in draft.text


# The organization's own copies ------------------------------------------------------------------


def test_the_owners_own_fork_is_never_claimed_however_much_it_overlaps(tmp_path: Path) -> None:
    # acme-bot's fork is verdict `copy` at 100% (a verifier without the allowlist would say so):
    # the [official] organizations, repositories and scopes keep every such copy out.
    own = [
        mirror("leaker/acme-cli-src", "copy"),
        mirror("acme/acme-cli-src", "copy", parent=ROOT),  # the vendor's own fork of the leak
        mirror("acme-bot/cli-mirror", "copy", root="https://github.com/acme-bot/cli-mirror"),
        mirror(
            "@acme/cli-src",
            "copy",
            root="",
            host="npm",
            kind="package",
            url="https://npm.example.test/package/@acme/cli-src",
        ),
        mirror("acme/cli", "copy", root="", host="gitlab.com", url="https://gitlab.com/acme/cli"),
    ]
    (tmp_path / "respond.toml").write_text(
        FULL_TOML.replace('npm_scopes = ["@acme"]', 'npm_scopes = ["acme"]').replace(
            'repositories = ["acme/cli"]',
            'repositories = ["acme/cli", "acme-bot/cli-mirror", "gitlab.com/acme/cli"]',
        )
    )
    org = load_org(tmp_path, tmp_path / "nohome")
    store = build_incident(tmp_path / "home", with_notices=False, mirror_list=own)
    drafts = {d.record["id"]: d for d in store_drafts(store, org, network_statement=True)}
    named = {u for d in drafts.values() for u in d.record["mirrors"]}
    assert named == {ROOT}
    for draft in drafts.values():
        claimed = draft.text.split("\n## URL of the original work")[-1].split("\n## Tech")[0]
        claimed = claimed.split("\n## Infringing")[-1]  # past the list of our own repositories
        for url in [m["url"] for m in own[1:]]:
            assert f"- {url}" not in claimed, (draft.record["id"], url)
    ours = drafts["dmca-github"].text.split("\n## URL of the original work")[1].split("\n## ")[0]
    assert "- https://gitlab.com/acme/cli\n" in ours and "github.com/gitlab.com" not in ours
    # Its presence in the network is what refuses the network-wide statement, and the forks
    # answer counts it among the repositories judged not to infringe.
    entire = drafts["dmca-github"]
    assert dmca.NETWORK_STATEMENT not in entire.text
    assert "acme/acme-cli-src (copy)" in entire.statements["leaker/acme-cli-src"].reason
    assert "1 other repository was\nexamined and judged not to infringe" in entire.text
    assert not {"dmca-npm", "forge-copyright-gitlab"} & set(drafts)


# Other forges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "link"),
    [
        ("gitlab.com", "https://gitlab.com/o/leak/-/blob/{commit}/src/main.tsx"),
        ("codeberg.org", "https://codeberg.org/o/leak/src/commit/{commit}/src/main.tsx"),
    ],
)
def test_a_forge_notice_names_each_file_at_the_commit_checked(
    tmp_path: Path, host: str, link: str
) -> None:
    url = f"https://{host}/o/leak"
    copy = mirror("o/leak", "copy", root="", host=host, url=url, matched=30, own_files=300)
    unpinned = {**mirror("p/leak", "copy", root="", host=host, url=f"https://{host}/p/leak",
                         matched=30, own_files=300), "commit_sha": None}  # fmt: skip
    store = build_incident(tmp_path / "home", with_notices=False, mirror_list=[copy, unpinned])
    (draft,) = [
        d for d in store_drafts(store, full_org(tmp_path)) if d.record["kind"] == "forge-copyright"
    ]
    text = draft.text
    assert link.format(commit=copy["commit_sha"]) in text
    assert len(re.findall(rf"^  - {re.escape(url)}/\S+/{copy['commit_sha']}/", text, re.M)) == 30
    # Without a recorded commit: one visible blank for the repository, its files by path.
    block = text.split(f"- https://{host}/p/leak")[1].split("\n- https://")[0]
    assert block.count("[MISSING: commit_sha]") == 1 and "  - src/main.tsx" in block
    assert draft.record["missing"] == ["commit_sha"]
    assert "No commit recorded" in text.split("## Reviewer's checklist")[1].split("\n\n")[1]


def test_a_copy_a_sent_notice_named_is_never_claimed_again_by_another_kind(tmp_path: Path) -> None:
    # A notice drafted before the split named all four repositories, entire and by files alike.
    store = build_incident(tmp_path / "home", with_notices=False)
    org = full_org(tmp_path)
    drafts = {d.record["id"]: d.record for d in draft_notices(load_view(store, INCIDENT), org)}
    both = drafts["dmca-github"]["mirrors"] + drafts["dmca-github-files"]["mirrors"]
    store.put_record(INCIDENT, "notice", "dmca-github", {**drafts["dmca-github"], "mirrors": both})
    mark_sent(store, INCIDENT, "dmca-github", "T-1", who="jane")
    again = {d.record["id"] for d in store_drafts(store, org)}
    assert not {i for i in again if i.startswith("dmca-github")}
    assert "dmca-npm" in again
