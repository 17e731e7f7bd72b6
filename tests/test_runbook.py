"""Loading runbooks: every flaw is an error naming the file, the line and the step."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.support.steptypes  # noqa: F401 - registers the test step types
from playbook.engine import runbook as runbooks
from playbook.errors import RunbookError

GOOD = """\
name: good
description: a test
inputs:
  reason: {description: why, default: leak}
steps:
  - id: a
    uses: test.sleep
  - id: b
    uses: test.sleep
    needs: a
    with: {value: "{{ steps.a.outputs.value }}"}
  - id: c
    uses: test.destroy
    needs: [a]
    retry: {count: 2, backoff: 0.5}
    timeout: 5m
    on_failure: continue
"""


def test_a_good_runbook_loads_with_waves_and_approval() -> None:
    book = runbooks.parse(GOOD, "good.yaml")
    assert [s.id for s in book.steps] == ["a", "b", "c"]
    assert book.levels() == [["a"], ["b", "c"]]
    c = book.step("c")
    assert c.approval, "a destructive step type must require approval"
    assert (c.retry.count, c.retry.backoff, c.timeout, c.on_failure) == (2, 0.5, 300.0, "continue")
    assert book.inputs["reason"].default == "leak"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "name: x\nsteps:\n  - id: a\n    uses: test.sleep\n    colour: red\n",
            5,
            "unknown key 'colour'",
        ),
        ("name: x\nsteps:\n  - id: a\n    uses: nope.nope\n", 4, "unknown step type 'nope.nope'"),
        (
            "name: x\nsteps:\n  - {id: a, uses: test.sleep}\n  - {id: a, uses: test.sleep}\n",
            4,
            "duplicate step id",
        ),
        (
            "name: x\nsteps:\n  - {id: a, uses: test.sleep, needs: b}\n  - {id: b, uses: test.sleep, needs: a}\n",
            3,
            "cycle: a -> b -> a",
        ),
        ("name: x\nsteps:\n  - {id: a, uses: test.sleep, needs: ghost}\n", 3, "needs 'ghost'"),
        (
            "name: x\nsteps:\n  - {id: a, uses: test.sleep, with: {value: '{{ steps.z.outputs }}'}}\n",
            3,
            "steps.z (no such step)",
        ),
        (
            "name: x\nsteps:\n  - {id: a, uses: test.sleep}\n  - {id: b, uses: test.sleep, if: steps.a.outputs.x}\n",
            4,
            "add it to `needs`",
        ),
        (
            "name: x\nsteps:\n  - {id: a, uses: test.sleep, with: {seconds: 1, bogus: 2}}\n",
            3,
            "unknown key 'bogus' in `with` of test.sleep",
        ),
        ("name: x\nsteps:\n  - {id: a, uses: test.sleep, timeout: soon}\n", 3, "`timeout`"),
        ("name: x\nsteps:\n  - {id: a, uses: test.sleep, retry: 99}\n", 3, "`retry`"),
        ("name: x\nsteps:\n  - {id: a, uses: test.sleep, approval: maybe}\n", 3, "`approval`"),
        (
            "name: x\nsteps:\n  - {id: a, uses: test.sleep, on_failure: explode}\n",
            3,
            "`on_failure`",
        ),
        ("name: x\nname: y\nsteps: []\n", 2, "duplicate key 'name'"),
        ("name: x\nsteps: []\n", 2, "non-empty list"),
        (
            "name: x\nsurprise: 1\nsteps:\n  - {id: a, uses: test.sleep}\n",
            2,
            "unknown key 'surprise' in runbook",
        ),
        ("name: x\nsteps:\n  - {id: a, uses: test.sleep, if: 'steps.a ++'}\n", 3, "bad expression"),
        ("- just\n- a list\n", 1, "a runbook is a mapping"),
        ("name: [unclosed\n", 2, "invalid YAML"),
    ],
)
def test_flaws_name_file_line_and_step(text: str, line: int, needle: str) -> None:
    with pytest.raises(RunbookError) as caught:
        runbooks.parse(text, "rb.yaml")
    message = caught.value.message
    assert message.startswith(f"rb.yaml:{line}"), message
    assert needle in message
    if "step" in needle or "(step" in message:
        assert "(step '" in message or "runbook" in message or "YAML" in message


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunbookError, match="Cannot read runbook"):
        runbooks.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RunbookError, match="Cannot read runbook"):
        runbooks.load(bad)


def test_shipped_runbooks_load() -> None:
    from playbook.resources import runbooks_dir

    shipped = sorted(runbooks_dir().glob("*.yaml"))
    assert shipped, "no runbooks are shipped"
    for path in shipped:
        assert runbooks.load(path).steps


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_random_text_never_raises_anything_but_a_located_runbook_error(text: str) -> None:
    try:
        runbooks.parse(text, "fuzz.yaml")
    except RunbookError as exc:
        assert exc.message.startswith("fuzz.yaml:")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "id": st.sampled_from(["a", "b", "c", "d"]),
                "uses": st.sampled_from(["test.sleep", "test.write", "x.y"]),
                "needs": st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=3),
            }
        ),
        max_size=5,
    )
)
def test_random_graphs_load_or_fail_with_a_location(steps: list[dict[str, object]]) -> None:
    import yaml

    text = yaml.safe_dump({"name": "fuzz", "steps": steps})
    try:
        book = runbooks.parse(text, "g.yaml")
    except RunbookError as exc:
        assert exc.message.startswith("g.yaml:")
        return
    order = [s for wave in book.levels() for s in wave]
    for spec in book.steps:
        assert all(order.index(n) < order.index(spec.id) for n in spec.needs)
