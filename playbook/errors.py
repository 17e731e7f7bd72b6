"""The one error root the CLI catches, its subclasses and the exit codes they map to."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    AWAITING_APPROVAL = 3
    LOCKED = 4
    POLICY = 5
    STORE_TOO_NEW = 6
    TOOL_MISSING = 7
    NOT_CONTAINED = 8  # a live run ended, and npm.verify found the leaked version still served
    DONE_WITH_GAPS = 9  # finished, but an outside service could not be checked (see the report)


class RespondError(Exception):
    """An expected failure: a sentence saying what went wrong, and a hint saying what to do."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RespondError):
    """Bad input from the person at the keyboard: a spec, a flag, a file."""

    exit_code = ExitCode.USAGE


class RunbookError(UsageError):
    """A runbook that cannot be loaded; the message names the file, line and step."""


class UnknownIncident(UsageError):
    """An incident id the store does not hold."""


class IncidentLocked(RespondError):
    """Another live process drives this incident."""

    exit_code = ExitCode.LOCKED


class StoreTooNew(RespondError):
    """The incident store was written by a newer respond; opening it would risk corrupting it."""

    exit_code = ExitCode.STORE_TOO_NEW


class ToolMissing(RespondError):
    """A program respond needs on PATH (node, npm) is not installed."""

    exit_code = ExitCode.TOOL_MISSING


class DryRunViolation(RespondError):
    """A write was attempted through a client built for a dry run; the transport refused it."""


class LoopbackViolation(RespondError):
    """A request to a non-loopback host while RESPOND_LOOPBACK_ONLY is set (tests, rehearsals)."""


class RemoteError(RespondError):
    """An outside service answered in a way the step cannot go on from."""

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class NetworkFatal(RemoteError):
    """A failure no retry can heal (DNS name not found, TLS verification failed): not retried."""


class PolicyRefused(RemoteError):
    """The registry refused an action by policy (npm's unpublish rules): not a tool failure."""

    exit_code = ExitCode.POLICY


class OtpRequired(RemoteError):
    """The registry wants a one-time password and none can be asked for here."""


class IntegrityError(RespondError):
    """Downloaded bytes do not match what the registry says they are."""


class UnsafeArchive(RespondError):
    """A package archive breaks a safety cap or holds an entry that must not be trusted."""
