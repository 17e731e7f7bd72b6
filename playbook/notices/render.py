"""Jinja2 rendering of notices and reports: sandboxed, strict, and inert to hostile data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from playbook.errors import RespondError, UsageError
from playbook.resources import templates_dir
from playbook.secret import scrub

MISSING = re.compile(r"\[MISSING: ([a-z_]+)\]")
# Terminal control sequences (CSI, OSC) first, then every remaining control or bidi-override char.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")
# Characters that start Markdown or HTML syntax inline; escaped with a backslash.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|!~$])")
_URL_SAFE = "/:?#&=%+@,;.-_~!$'*"


def clean(text: str) -> str:
    """One inert line: terminal escapes and control characters gone, newlines folded."""
    text = _ANSI.sub("", text)
    text = _NEWLINES.sub(" ", text)
    return _CONTROL.sub("", text)


def md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", clean(text))


def missing(name: str) -> Markup:
    """The visible blank a notice shows for an organization detail not in respond.toml."""
    return Markup(f"[MISSING: {name}]")


def _md_finalize(value: Any) -> str:
    # The Markdown counterpart of HTML autoescape: every interpolated value is made inert,
    # unless a filter or the code already produced safe Markup (URLs, blanks).
    if isinstance(value, Markup):
        return str(value)
    return md_escape(str(value))


def _html_finalize(value: Any) -> Any:
    return value if isinstance(value, Markup) else clean(str(value))


def safe_url(value: object) -> Markup:
    """An http(s) URL with every character that could break out of Markdown or HTML encoded."""
    text = clean(str(value)).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return Markup("about:invalid")
    return Markup(quote(text, safe=_URL_SAFE.replace("'", "").replace("!", "")))


def fmt_num(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def fmt_bytes(value: object) -> str:
    if not isinstance(value, int | float):
        return str(value)
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    return str(value)


def fmt_dt(value: object) -> str:
    """An ISO timestamp as `2026-11-24 13:25:02 UTC`; anything else unchanged."""
    if not value:
        return "unknown"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_pct(part: object, whole: object) -> str:
    if not isinstance(part, int) or not isinstance(whole, int) or whole <= 0:
        return "n/a"
    return f"{100 * part / whole:.1f}%"


_CODE_SAFE = re.compile(r"[@A-Za-z0-9._~/+-]+")


def code_word(value: object) -> Markup | str:
    """A package name, version or tag for a shell command: verbatim when plainly safe."""
    text = clean(str(value))
    return Markup(text) if _CODE_SAFE.fullmatch(text) else md_escape(text)


FILTERS = {
    "url": safe_url,
    "code": code_word,
    "num": fmt_num,
    "size": fmt_bytes,
    "dt": fmt_dt,
}
# No link at a branch or HEAD: a notice links files at the commit checked (claims.py).
GLOBALS = {"pct": fmt_pct}


class Renderer:
    """Renders shipped templates, or a team's folder that overrides them file by file.

    Both run in an immutable sandbox: a user template is data, and must not reach Python.
    """

    def __init__(self, user_dir: Path | None = None) -> None:
        if user_dir is not None and not user_dir.is_dir():
            raise UsageError(
                f"The templates folder {user_dir} does not exist.",
                "Fix templates_dir in respond.toml or RESPOND_TEMPLATES.",
            )
        self.user_dir = user_dir
        folders = [str(p) for p in (user_dir, templates_dir()) if p is not None]
        loader = jinja2.FileSystemLoader(folders)
        self.md = self._env(loader, autoescape=False, finalize=_md_finalize)
        self.html = self._env(loader, autoescape=True, finalize=_html_finalize)

    @staticmethod
    def _env(loader: jinja2.BaseLoader, *, autoescape: bool, finalize: Any) -> jinja2.Environment:
        env = ImmutableSandboxedEnvironment(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=autoescape,
            finalize=finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters.update(FILTERS)
        env.globals.update(GLOBALS)
        return env

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render one template; any template fault becomes a RespondError naming it."""
        env = self.html if name.endswith(".html.j2") else self.md
        where = f"{name} (templates: {self.user_dir or templates_dir()})"
        try:
            text = env.get_template(name).render(**context)
        except SecurityError as exc:
            raise RespondError(
                f"Template {where} tried to reach Python internals and the sandbox refused: {exc}.",
                "Templates may use the data they are given, filters and loops; nothing else.",
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise RespondError(f"Template {exc.name} was not found for {where}.") from None
        except jinja2.TemplateSyntaxError as exc:
            raise RespondError(
                f"Template {exc.filename or name} has a syntax error on line {exc.lineno}: "
                f"{exc.message}.",
                "Fix the template, or delete it to fall back to the shipped one.",
            ) from None
        except jinja2.UndefinedError as exc:
            raise RespondError(
                f"Template {where} uses a value the incident does not provide: {exc.message}.",
                "Check the names against the shipped templates (templates/ in respond).",
            ) from None
        return scrub(text)


def blanks(text: str) -> list[str]:
    """Organization details a rendered document still shows as [MISSING: ...] blanks."""
    return sorted(set(MISSING.findall(text)))
