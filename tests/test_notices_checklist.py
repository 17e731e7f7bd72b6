"""The reviewer's checklist at the top of every draft says what the data says (issue 12, item 5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playbook.config.org import load_org
from tests.test_notices_fixture import (
    FULL_TOML,
    INCIDENT,
    build_incident,
    full_org,
    mirror,
    mirrors,
    store_drafts,
)


def checklist(text: str) -> list[str]:
    """The checklist's items, or [] when the draft has none."""
    if "\n## Reviewer's checklist" not in text:
        return []
    body = text.split("\n## Reviewer's checklist (delete this section before sending)\n")[1]
    return re.findall(r"^- \[ \] (.+)$", body.lstrip("\n").split("\n\n", 1)[0], re.M)


def test_every_draft_opens_with_its_checklist(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = store_drafts(store, full_org(tmp_path))
    assert len(drafts) == 10
    for draft in drafts:
        first = draft.text.index("\n## ")
        assert draft.text[first:].startswith("\n## Reviewer's checklist"), draft.record["id"]
        items = checklist(draft.text)
        assert items[-1].startswith("Before sending: "), draft.record["id"]
        assert any(i.startswith("Blanks left") for i in items), draft.record["id"]


def test_the_claims_line_counts_what_the_notice_claims(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = {d.record["id"]: d for d in store_drafts(store, full_org(tmp_path))}
    entire, files = (
        checklist(drafts["dmca-github"].text),
        checklist(drafts["dmca-github-files"].text),
    )
    assert entire[0] == "Claims: 3 copies in 2 fork networks: 3 entire (disable)."
    assert {i.split(":")[1].strip() for i in entire if i.startswith("Entire: ")} == {
        "leaker/acme-cli-src",
        "fork1/acme-cli-src",
        "someone/cli",
    }
    assert files[0] == "Claims: 1 copy in 1 fork network: 1 by files (420 files named: remove)."
    assert any("in notice dmca-github-files" in i for i in entire)
    assert any("in notice dmca-github:" in i for i in files)
    assert "Credentials: 4 file location(s) in 4 repositories" in " ".join(
        checklist(drafts["private-info-github-acme-cli-2.1.88"].text)
    )


def test_the_checklist_follows_the_data(tmp_path: Path) -> None:
    # A later check of one copy, one more files claim, a blank: each shows in the checklist.
    found = mirrors()
    found[1] = {**found[1], "checked_at": "2026-04-02T10:30:00.000Z"}
    found.append(mirror("late/acme-cli-src", "copy", parent=found[0]["url"], matched=7))
    (tmp_path / "respond.toml").write_text(FULL_TOML.replace('telephone = "+1 555 0100"\n', ""))
    org = load_org(tmp_path, tmp_path / "nohome")
    store = build_incident(tmp_path / "home", with_notices=False, mirror_list=found)
    drafts = {d.record["id"]: d for d in store_drafts(store, org)}
    files = checklist(drafts["dmca-github-files"].text)
    assert files[0] == "Claims: 2 copies in 1 fork network: 2 by files (427 files named: remove)."
    assert "Blanks left (\\[MISSING: ...\\] below): telephone." in files
    entire = checklist(drafts["dmca-github"].text)
    (dates,) = [i for i in entire if i.startswith("Last check of these copies")]
    assert dates.startswith(
        "Last check of these copies: 2026-04-02 10:30:00 UTC (oldest 2026-03-31"
    )
    assert any(
        i.startswith("Before sending: run respond mirrors recheck " + INCIDENT) for i in entire
    )


def test_a_copy_without_a_recorded_commit_is_named_in_the_checklist(tmp_path: Path) -> None:
    found = mirrors()
    found[2] = {**found[2], "commit_sha": None}  # fork2, the files claim
    store = build_incident(tmp_path / "home", with_notices=False, mirror_list=found)
    drafts = {d.record["id"]: d for d in store_drafts(store, full_org(tmp_path))}
    files = checklist(drafts["dmca-github-files"].text)
    assert any(i.startswith("No commit recorded") and "fork2/acme-cli-src" in i for i in files)
    assert drafts["dmca-github-files"].record["missing"] == ["commit_sha"]
    assert not any(
        i.startswith("No commit recorded") for i in checklist(drafts["dmca-github"].text)
    )


@pytest.mark.parametrize("asked", [False, True])
def test_the_network_statement_decision_is_in_the_checklist_only_when_asked(
    tmp_path: Path, asked: bool
) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = store_drafts(store, full_org(tmp_path), network_statement=asked)
    (entire,) = [checklist(d.text) for d in drafts if d.record["id"] == "dmca-github"]
    refused = [i for i in entire if i.startswith("Network-wide statement refused for")]
    assert len(refused) == (2 if asked else 0)


def test_naming_every_fork_of_a_network_is_flagged_as_a_whole_network_request(
    tmp_path: Path,
) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = {d.record["id"]: d for d in store_drafts(store, full_org(tmp_path))}
    whole = [i for i in checklist(drafts["dmca-github"].text) if i.startswith("Every repository")]
    # leaker's network holds only copies; someone/cli's holds acme/cli, the owner's own.
    assert [i.split(" is named")[0] for i in whole] == [
        "Every repository found in the fork network of leaker/acme-cli-src"
    ]
    found = mirrors()
    found.append(mirror("bystander/acme-cli-src", "unrelated", parent=found[0]["url"], matched=0))
    store = build_incident(tmp_path / "other", with_notices=False, mirror_list=found)
    drafts = {d.record["id"]: d for d in store_drafts(store, full_org(tmp_path))}
    assert not [
        i for i in checklist(drafts["dmca-github"].text) if i.startswith("Every repository")
    ]
