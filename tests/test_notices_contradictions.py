"""No draft contradicts itself: every notice type over every rehearsal scenario and the fixture.

A sworn notice that says two incompatible things is worse than one that says too little. The
pairs below are the ones found in earlier drafts (issue 12) and their near relatives; a draft
fails when it holds both halves of a pair, or any phrase that is false whatever else it says.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playbook.notices import dmca
from playbook.rehearsal import run as rehearsal
from playbook.resources import templates_dir
from playbook.store.sqlite import Store
from tests.test_notices_fixture import build_incident, full_org, mirror, store_drafts

# (one phrase, another phrase, why they cannot stand together); matched case-insensitively.
CONTRADICTIONS = [
    ("never published", "by mistake", "a work exposed by mistake was published, if wrongly"),
    ("never published", "source maps", "the source maps published it"),
    ("every fork found is listed", "judged not to infringe", "some forks found are not listed"),
    ("every fork found is listed", "could not be checked", "some forks found are not listed"),
    (
        "disable the repositories listed above",
        "Specific files within the repository are infringing",
        "a files claim asks for files to be removed, not for the repository to be disabled",
    ),
    ("the entire repository infringes", "for example", "an entire claim names no examples"),
    ("entire repository", "for example", "a files claim names every file, not examples"),
    (
        dmca.NETWORK_STATEMENT,
        "does not ask GitHub to process any whole fork network",
        "the network-wide statement and its refusal",
    ),
]
# False whatever the rest says: links that move after sending, sample lists, Python leaking out.
FALSE_ALONE = [
    ("/blob/HEAD/", "a link at HEAD changes after the notice is sent"),
    ("/tree/HEAD/", "a link at HEAD changes after the notice is sent"),
    ("None", "a Python None where a value belongs"),
]


def contradictions(text: str) -> list[str]:
    """Every contradiction in one draft, as a sentence; an empty list for a sound draft."""
    low = " ".join(text.split()).lower()  # a phrase wrapped across lines is still said
    found = [
        f"{a!r} beside {b!r}: {why}"
        for a, b, why in CONTRADICTIONS
        if a.lower() in low and b.lower() in low
    ]
    found += [f"{phrase!r}: {why}" for phrase, why in FALSE_ALONE if phrase in text]
    return found + _claimed_twice(text)


ANSWER = re.compile(r"Based on the above, I confirm that: (.+?)\.")


def _claimed_twice(text: str) -> list[str]:
    """Both answers to the form's one question in one notice (GitHub's form takes one)."""
    answers = sorted(set(ANSWER.findall(" ".join(text.split()))))
    return [f"one notice answers both {answers}"] if len(answers) > 1 else []


def claimed_both_ways(drafts: dict[str, str]) -> list[str]:
    """A repository named in an entire-repository notice and in a specific-files notice."""
    named: dict[str, set[str]] = {}
    for text in drafts.values():
        for answer in set(ANSWER.findall(" ".join(text.split()))):
            body = text.split("\n## Infringing material")[-1].split("\n## ")[0]
            named.setdefault(answer, set()).update(
                re.findall(r"^- (https://\S+?)(?::| |$)", body, re.M)
            )
    sets = list(named.values())
    both = set.intersection(*sets) if len(sets) > 1 else set()
    return [f"{url} is claimed both entire and by files" for url in sorted(both)]


def test_the_checker_finds_each_contradiction_it_knows() -> None:
    for a, b, _ in CONTRADICTIONS:
        assert contradictions(f"x {a} y\n{b}\n"), (a, b)
        wrapped = a.replace(" ", "\n  ", 1)  # as a template wraps it
        assert contradictions(f"x {wrapped} y\n{b}\n"), (a, b)
    for phrase, _ in FALSE_ALONE:
        assert contradictions(f"see {phrase} here")
    entire = "Based on the above, I confirm that: The entire repository is infringing.\n"
    files = "Based on the above, I confirm that: Specific files within the repository are\n  infringing.\n"
    assert contradictions(entire + files) == [
        "one notice answers both ['Specific files within the repository are infringing', "
        "'The entire repository is infringing']"
    ]
    listed = "\n## Infringing material\n\n- https://github.com/a/b: 3 files\n\n## Next\n"
    assert claimed_both_ways({"a": entire + listed, "b": files + listed}) == [
        "https://github.com/a/b is claimed both entire and by files"
    ]
    assert claimed_both_ways({"a": entire + listed, "b": entire + listed}) == []


def drafts_of(store: Store, incident: str) -> dict[str, str]:
    folder = store.incident_dir(incident)
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("notices/*.md")}


@pytest.fixture(scope="module", params=sorted(rehearsal.SCENARIOS))
def scenario_drafts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:  # fmt: skip
    home = tmp_path_factory.mktemp(f"rehearse-{request.param}")
    card = rehearsal.rehearse(home, request.param)
    store = Store(home)
    try:
        return drafts_of(store, card.incident)
    finally:
        store.close()


def test_no_draft_of_any_rehearsal_scenario_contradicts_itself(
    scenario_drafts: dict[str, str],
) -> None:
    assert scenario_drafts, "the rehearsal drafted nothing: this test would prove nothing"
    found = {name: contradictions(text) for name, text in scenario_drafts.items()}
    assert {n: c for n, c in found.items() if c} == {}
    assert claimed_both_ways(scenario_drafts) == []


FIXTURE_VARIANTS = {
    "default": {},
    "network statement asked": {"network_statement": True},
    "one notice per network": {"per_network": True},
}


@pytest.mark.parametrize("variant", sorted(FIXTURE_VARIANTS))
def test_no_draft_of_the_fixture_incident_contradicts_itself(tmp_path: Path, variant: str) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    drafts = store_drafts(store, full_org(tmp_path), **FIXTURE_VARIANTS[variant])
    kinds = {d.record["kind"] for d in drafts}
    shipped = {p.name.split(".")[0] for p in (templates_dir() / "notices").glob("[!_]*.md.j2")}
    assert {k for k in shipped if not any(k == kind for kind in kinds)} == set()
    for draft in drafts:
        assert contradictions(draft.text) == [], draft.record["id"]
    assert claimed_both_ways({d.record["id"]: d.text for d in drafts}) == []


def test_an_all_copies_network_with_the_statement_does_not_also_refuse_it(tmp_path: Path) -> None:
    clean = [mirror("leaker/acme-cli-src", "copy"), mirror("f/acme-cli-src", "copy", parent="x")]
    store = build_incident(tmp_path / "home", with_notices=False, mirror_list=clean)
    drafts = store_drafts(store, full_org(tmp_path), network_statement=True)
    (notice,) = [d for d in drafts if d.record["kind"] == "dmca-github"]  # no files claims
    assert dmca.NETWORK_STATEMENT in notice.text and contradictions(notice.text) == []
