"""Hostile text reaches the terminal inert: escapes shown, not obeyed; one line; bounded."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from playbook.display import PlainReporter, inert
from playbook.store.sqlite import StepStatus

HOSTILE = "evil\x1b]8;;http://x\x07link\x1b[2J\x1b[31mred\rover\nnext\x9bline\x00"


def test_escape_sequences_are_shown_not_sent() -> None:
    shown = inert(HOSTILE)
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
    assert "\r" not in shown and "\n" not in shown and "\x00" not in shown
    assert "\\x1b]8;;http://x\\x07link" in shown


def test_plain_reporter_prints_inert_lines() -> None:
    stream = io.StringIO()
    reporter = PlainReporter(stream)
    reporter.step(HOSTILE, StepStatus.FAILED, HOSTILE)
    reporter.progress("hunt", HOSTILE)
    text = stream.getvalue()
    assert "\x1b" not in text and text.count("\n") == 2


@given(st.text())
def test_inert_output_never_holds_control_characters(text: str) -> None:
    shown = inert(text, limit=10_000)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)


def test_bidi_overrides_are_shown() -> None:
    assert inert("admin\u202euser") == "admin\\u202euser"
