"""A string that never shows itself, and the process-wide list of values that must be scrubbed.

Every value wrapped in a Secret is remembered, so the store, logs and documents can scrub it from
anything they write even where a step forgot: defence in depth against a leaking tool.
"""

from __future__ import annotations

from typing import Any

_KNOWN: set[str] = set()
MIN_SCRUB_LENGTH = 6


def known_values() -> frozenset[str]:
    return frozenset(_KNOWN)


def scrub(text: str) -> str:
    """Replace every known secret value in `text` with `<hidden>`."""
    for value in sorted(_KNOWN, key=len, reverse=True):
        if value in text:
            text = text.replace(value, "<hidden>")
    return text


def scrub_data(value: Any) -> Any:
    """`scrub` applied to every string (keys too) inside JSON-like data, leaving its shape intact.

    Scrubbing serialized JSON instead could cut into numbers or quotes (a six-digit OTP inside a
    timestamp) and corrupt the document.
    """
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub_data(k): scrub_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_data(v) for v in value]
    return value


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= MIN_SCRUB_LENGTH:
            _KNOWN.add(value)

    def reveal(self) -> str:
        """The value, for the one place that must send it (an HTTP header)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    def __str__(self) -> str:
        return "<hidden>"

    def __format__(self, spec: str) -> str:
        return "<hidden>"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))
