"""The registry of step types, keyed by the name a runbook `uses:`."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TypeVar

from playbook.steps.base import StepOutputs, StepType

_TYPES: dict[str, type[StepType]] = {}
_BUILTIN_MODULES = (
    "playbook.steps.npm",
    "playbook.steps.mirrors",
    "playbook.steps.notices",
    "playbook.steps.report",
)
_loaded = False
T = TypeVar("T", bound=type[StepType])


def register(cls: T) -> T:
    """Class decorator: make a step type available to runbooks under `cls.uses`."""
    outputs = getattr(cls, "outputs", None)
    if not (isinstance(outputs, type) and issubclass(outputs, StepOutputs)):
        raise TypeError(f"step type {cls.uses!r} must declare `outputs`, a StepOutputs dataclass")
    existing = _TYPES.get(cls.uses)
    if existing is not None and existing is not cls:
        raise ValueError(f"step type {cls.uses!r} is registered twice")
    _TYPES[cls.uses] = cls
    return cls


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def use_modules(modules: Iterable[str]) -> None:
    """Register a team's own step types by importing their modules (Settings.step_modules,
    from RESPOND_STEP_MODULES=mycompany.steps,other.module)."""
    for module in modules:
        importlib.import_module(module)


def get(uses: str) -> type[StepType] | None:
    _load_builtins()
    return _TYPES.get(uses)


def known() -> list[str]:
    _load_builtins()
    return sorted(_TYPES)
