"""Gaps: what a run could not check because an outside service failed, and why.

Containment talks to the registry and must succeed; the hunt, the proof and the CDN check talk to
GitHub, GitLab, Codeberg, Software Heritage, jsDelivr, unpkg and the registry's search, and a run
must not die because one of them is down, slow or answering garbage. Those steps catch such a
failure per service, carry on with the rest, and list it in their outputs' `gaps`; the run then
ends `done_with_gaps` (exit 9) and the report says what was not checked and why.

A guard that says "never" (the dry-run guard, the loopback guard) is never turned into a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from playbook.errors import DryRunViolation, LoopbackViolation, RespondError


@dataclass(frozen=True)
class Gap:
    service: str = ""  # github, gitlab, codeberg, swh, jsdelivr, unpkg, npm search, ...
    what: str = ""  # what could not be checked
    reason: str = ""  # why: the service's failure, in one line


# Failures of an outside service a degraded step survives: a RespondError the service caused,
# any transport error, and the decoding or shape errors its garbage answers raise.
OUTSIDE_FAILURES: tuple[type[BaseException], ...] = (
    RespondError,
    httpx.HTTPError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
)
NEVER_A_GAP: tuple[type[BaseException], ...] = (DryRunViolation, LoopbackViolation)


def is_outside_failure(exc: BaseException) -> bool:
    return isinstance(exc, OUTSIDE_FAILURES) and not isinstance(exc, NEVER_A_GAP)


def reason(exc: BaseException) -> str:
    """One line saying why: the error's own message, or what kind of garbage came back."""
    if isinstance(exc, RespondError):
        text = exc.message
    elif isinstance(exc, httpx.HTTPError):
        what = next((w for kind, w in TRANSPORT_WORDS if isinstance(exc, kind)), "it failed")
        text = f"{_where(exc)}: {what} ({type(exc).__name__}{f': {exc}' if str(exc) else ''})"
    else:
        text = f"an answer that is not the API's shape ({type(exc).__name__}: {exc})"
    return " ".join(text.split())[:300]


TRANSPORT_WORDS: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.TimeoutException, "no answer within the timeout, after retries"),
    (httpx.ConnectError, "could not connect, after retries"),
    (httpx.RemoteProtocolError, "the answer was not HTTP"),
    (httpx.ReadError, "the connection broke before an answer, after retries"),
)


def _where(exc: httpx.HTTPError) -> str:
    try:
        return f"{exc.request.method} {exc.request.url.copy_with(query=None)}"
    except RuntimeError:  # raised outside a request
        return "a request"


def gaps_of(outputs: object) -> tuple[Gap, ...]:
    """The gaps a step's outputs carry (none for a step type without the field)."""
    found = getattr(outputs, "gaps", ())
    return tuple(g for g in found if isinstance(g, Gap))
