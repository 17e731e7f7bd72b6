"""Finds the shipped data folders (templates, runbooks, registry) in a checkout and in a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # The wheel force-includes them as playbook/_data/<name>; a checkout has them at the root.
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"The shipped {name}/ folder is missing from {_PACKAGE}; the installation is incomplete."
    )


def templates_dir() -> Path:
    """The shipped Jinja2 templates for notices and reports."""
    return _data_dir("templates")


def runbooks_dir() -> Path:
    """The shipped runbooks (the default playbook and examples)."""
    return _data_dir("runbooks")


def registry_dir() -> Path:
    """The pinned local registry's package.json, package-lock.json and .npmrc (no node_modules)."""
    return _data_dir("registry")
