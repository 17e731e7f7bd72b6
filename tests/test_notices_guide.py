"""Every element GitHub's guide asks of a DMCA notice, in the form's current order, one test each.

Sources, re-checked on 2026-12-01:
- GUIDE: GitHub's "Guide to Submitting a DMCA Takedown Notice", section "Your Complaint Must ..."
  (docs.github.com/en/site-policy/content-removal-policies/guide-to-submitting-a-dmca-takedown-notice;
  github/docs content/site-policy/content-removal-policies/guide-to-submitting-a-dmca-takedown-notice.md).
- POLICY: GitHub's "DMCA Takedown Policy", A.3 (entire repository disabled at once, otherwise about
  one business day to remove the named files; a package is disabled whole) and B (forks).
- FORM: the copyright claims form's questions as GitHub publishes them with each notice, e.g.
  github/dmca 2026/10/2026-10-02-jetbrains.md (order of questions; "Does your claim involve
  content on GitHub or npm.js?"; "Based on the above, I confirm that: The entire repository is
  infringing | Specific files within the repository are infringing"; "please provide either
  your telephone number or physical address").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from playbook.notices import dmca
from tests.test_notices_fixture import ROOT, build_incident, full_org, store_drafts

FORK2 = "https://github.com/fork2/acme-cli-src"
# The fixture's claims: three repositories that are the leak, one with 420 leaked files beside
# 1,500 of its own. GitHub's form takes one answer to "Based on the above, I confirm that", so
# each kind of claim is a notice of its own and every element is checked in both.
ENTIRE = ("leaker/acme-cli-src", "fork1/acme-cli-src", "someone/cli")
FILES = ("fork2/acme-cli-src",)
KINDS = {"dmca-github": ENTIRE, "dmca-github-files": FILES}


@pytest.fixture(scope="module")
def drafts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("guide")
    store = build_incident(tmp / "home", with_notices=False)
    return {d.record["id"]: d.text for d in store_drafts(store, full_org(tmp))}


@pytest.fixture(params=sorted(KINDS))
def notice(request: pytest.FixtureRequest, drafts: dict[str, str]) -> str:
    return drafts[request.param]


def kind_of(text: str) -> str:
    return "dmca-github-files" if "Notice id: dmca-github-files." in text else "dmca-github"


def section(text: str, title: str) -> str:
    """One `## title` section of the draft, or nothing when it is missing."""
    start = text.find(f"\n## {title}\n")
    if start == -1:
        return ""
    end = text.find("\n## ", start + 4)
    return text[start : end if end != -1 else None]


def has_read_guide(text: str) -> bool:
    return dmca.READ_GUIDE in section(text, "Confirmation")


def has_authority(text: str) -> bool:
    body = section(text, "Authority") + section(text, "Copyright ownership")
    return "authorized to act on the copyright owner's behalf" in body and "Jane Doe" in body


def has_github_or_npm(text: str) -> bool:
    return "Does your claim involve content on GitHub or npm.js? GitHub." in text


def identifies_work(text: str) -> bool:
    body = section(text, "Original copyrighted work") + section(text, "URL of the original work")
    return "@acme/cli@2.1.88" in body and "proprietary" in body and "not available online" in body


def lists_every_url(text: str) -> bool:
    body = section(text, "Infringing material: entire repository or specific files")
    listed = set(re.findall(r"^- https://github.com/(\S+?)(?::| |$)", body, re.M))
    return listed == set(KINDS[kind_of(text)])


def entire_or_files(text: str) -> bool:
    body = section(text, "Infringing material: entire repository or specific files")
    answers = re.findall(r"Based on the above, I confirm that: (.+)\.", body)
    named = re.findall(rf"{FORK2}/blob/([0-9a-f]{{40}})/\S+", body)
    if kind_of(text) == "dmca-github":
        return answers == ["The entire repository is infringing"] and "/blob/" not in body
    return (
        answers == ["Specific files within the repository are infringing"]
        and len(named) == 420  # every matched file of the partial copy, not a sample
        and len(set(named)) == 1  # all at the one commit that was checked
    )


def each_fork_individually(text: str) -> bool:
    body = section(text, "Infringing material: entire repository or specific files")
    forks = 2 if kind_of(text) == "dmca-github" else 1  # fork1 and someone/cli; fork2
    return body.count(f"(fork of {ROOT})") == 1 and body.count("(fork of ") == forks


def forks_confirmation(text: str) -> bool:
    body = section(text, "Forks")
    said = {
        # acme/cli, the owner's own, sits in someone/cli's network and is not part of it.
        "dmca-github": "judged not to infringe",
        "dmca-github-files": "claimed\nas entire repositories in notice dmca-github",
    }
    return dmca.FORKS_CONFIRMATION in body and said[kind_of(text)] in body


def remedy(text: str) -> bool:
    body = section(text, "Requested remedy")
    if kind_of(text) == "dmca-github":
        return "Disable each repository listed above" in body and "removes" not in body
    return "removes every file listed for it" in body and "isable" not in body


def infringer_contact(text: str) -> bool:
    body = section(text, "Alleged infringer")
    owners = {n.split("/")[0] for n in KINDS[kind_of(text)]}
    return set(re.findall(r"GitHub account (\S+) ", body)) == owners


def good_faith(text: str) -> bool:
    return dmca.GOOD_FAITH in section(text, "Statements")


def perjury(text: str) -> bool:
    return dmca.PERJURY in section(text, "Statements")


def contact(text: str) -> bool:
    body = section(text, "Contact")
    needed = ("Jane Doe", "legal@acme.example", "Telephone: +1 555 0100", "1 Example Road")
    return all(n in body for n in needed)


def signature(text: str) -> bool:
    return section(text, "Signature").strip().endswith("Jane Doe")


@dataclass(frozen=True)
class Element:
    what: str
    source: str  # where GitHub asks for it
    section: str  # the draft's section that answers it
    check: Callable[[str], bool]


# In the form's current order (FORM); the guide's numbering in `source`.
ELEMENTS = [
    Element("authority to act", "FORM q1; GUIDE item 8", "Authority", has_authority),
    Element("GitHub or npm.js", "FORM q3", "GitHub or npm.js", has_github_or_npm),
    Element("the work", "GUIDE item 2; FORM q5-q6", "Original copyrighted work", identifies_work),
    Element(
        "entire or files",
        "GUIDE item 3; POLICY A.3; FORM 'Based on the above, I confirm that'",
        "Infringing material: entire repository or specific files",
        entire_or_files,
    ),
    Element(
        "every URL",
        "GUIDE item 3; FORM 'Identify the full repository URL'",
        "Infringing material: entire repository or specific files",
        lists_every_url,
    ),
    Element(
        "each fork identified",
        "GUIDE item 3 (forks); POLICY B",
        "Infringing material: entire repository or specific files",
        each_fork_individually,
    ),
    Element(
        "per-fork confirmation", "GUIDE item 3 (forks); FORM forks", "Forks", forks_confirmation
    ),
    Element("the remedy", "GUIDE item 4; FORM 'best solution'", "Requested remedy", remedy),
    Element("infringer's contact", "GUIDE item 6; FORM", "Alleged infringer", infringer_contact),
    Element("good faith statement", "GUIDE item 7; FORM", "Statements", good_faith),
    Element("perjury statement", "GUIDE item 8; FORM", "Statements", perjury),
    Element("read-the-guide", "GUIDE item 1; FORM checkbox", "Confirmation", has_read_guide),
    Element("contact", "GUIDE item 5; FORM 'telephone ... or address'", "Contact", contact),
    Element("signature", "GUIDE item 9; FORM 'full name'", "Signature", signature),
]


@pytest.mark.parametrize("element", ELEMENTS, ids=lambda e: e.what)
def test_every_element_of_the_guide_is_in_the_notice(notice: str, element: Element) -> None:
    assert element.check(notice), f"{element.what} ({element.source}) missing or wrong"


@pytest.mark.parametrize("element", ELEMENTS, ids=lambda e: e.what)
def test_each_check_fails_on_a_notice_without_its_section(notice: str, element: Element) -> None:
    body = section(notice, element.section)
    assert not element.check(notice.replace(body, "\n## Removed\n")), element.what


def test_sections_follow_the_forms_current_order(notice: str) -> None:
    titles = list(dict.fromkeys(e.section for e in ELEMENTS))
    positions = [notice.index(f"\n## {title}\n") for title in titles]
    assert positions == sorted(positions)


def test_the_two_statements_are_githubs_words_exactly() -> None:
    # Typed out from GUIDE items 7 and 8, not copied from the code under test.
    assert dmca.GOOD_FAITH == (
        "I have a good faith belief that use of the copyrighted materials described above on "
        "the infringing web pages is not authorized by the copyright owner, or its agent, or "
        "the law. I have taken fair use into consideration."
    )
    assert dmca.PERJURY == (
        "I swear, under penalty of perjury, that the information in this notification is "
        "accurate and that I am the copyright owner, or am authorized to act on behalf of the "
        "owner, of an exclusive right that is allegedly infringed."
    )
    assert dmca.READ_GUIDE == "I have read and understand GitHub's Guide to Filing a DMCA Notice."


def test_a_missing_telephone_is_a_visible_blank(tmp_path: Path) -> None:
    toml = tmp_path / "respond.toml"
    full_org(tmp_path)
    toml.write_text(toml.read_text().replace('telephone = "+1 555 0100"\n', ""))
    from playbook.config.org import load_org

    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = {d.record["id"]: d for d in store_drafts(store, load_org(tmp_path, tmp_path))}
    for notice_id in KINDS:
        dmca_draft = drafts[notice_id]
        assert "Telephone: [MISSING: telephone]" in section(dmca_draft.text, "Contact")
        assert dmca_draft.record["missing"] == ["telephone"]
        assert dmca_draft.record["status"] == "needs_details"
