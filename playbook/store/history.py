"""The read side of an incident's record, as steps and documents may see it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from playbook.store.sqlite import Approval, Event, Incident, StepRecord


class IncidentHistory(Protocol):
    """What the incident view is built from (the Store has it; a step is given it read-only)."""

    def get_incident(self, incident_id: str) -> Incident: ...

    def steps(self, incident_id: str) -> list[StepRecord]: ...

    def events(self, incident_id: str) -> list[Event]: ...

    def approvals(self, incident_id: str) -> list[Approval]: ...

    def records(self, incident_id: str, kind: str) -> list[dict[str, Any]]: ...
