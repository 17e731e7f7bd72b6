"""The one path between typed records (frozen dataclasses) and their JSON form, via msgspec."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class DecodeError(ValueError):
    """A stored JSON value does not have the shape of the type it is read as."""


def to_json(value: object) -> Any:
    """The JSON form of a typed value: dicts, lists, str, int, float, bool and None only."""
    return msgspec.json.decode(msgspec.json.encode(value))


def from_json(kind: type[T], data: object) -> T:
    """`data` (a JSON form) as a `kind`; unknown keys are ignored, missing ones take defaults."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"not a valid {kind.__name__}: {exc}") from None
