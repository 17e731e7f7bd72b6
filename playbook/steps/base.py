"""The step contract: what a step type declares, what it is given, and what it returns."""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from playbook.clock import SYSTEM_CLOCK, Clock
from playbook.errors import UsageError
from playbook.fileio import write_atomic

# Records tracked with the incident: typed, each kind parsed by its type's one parser.
from playbook.store.records import MemoryRecords as MemoryRecords
from playbook.store.records import Records as Records

if TYPE_CHECKING:
    from playbook.config.org import OrgConfig
    from playbook.config.settings import Settings
    from playbook.services.hub import Services
    from playbook.spec import PackageSpec
    from playbook.store.history import IncidentHistory


class StepOutputs:
    """Base of every step type's outputs: a frozen dataclass, stored once as JSON (codec.py).

    Runbook expressions (`steps.<id>.outputs.x`) see the JSON form; steps, notices and
    templates see the typed object.
    """


Out = TypeVar("Out", bound=StepOutputs)


@dataclass(frozen=True)
class Action:
    """One outside write a step would make: shown in plans, dry runs and approval prompts."""

    method: str
    url: str
    summary: str


@dataclass(frozen=True)
class Plan:
    """What `plan` found and would do. `outputs` has the shape of the real outputs."""

    actions: tuple[Action, ...] = ()
    outputs: StepOutputs | None = None
    summary: str = ""

    def outputs_as(self, kind: type[Out]) -> Out:
        """The outputs as the step's own type (`apply` gets the plan its own `plan` made)."""
        if not isinstance(self.outputs, kind):
            raise TypeError(f"plan outputs are {type(self.outputs).__name__}, not {kind.__name__}")
        return self.outputs


@dataclass(frozen=True)
class Outcome:
    """What `apply` did. `skipped` ends the step skipped with `summary` as the reason."""

    outputs: StepOutputs | None = None
    changed: bool = False
    summary: str = ""
    skipped: bool = False


ProgressHook = Callable[[str], None]
EventHook = Callable[[str, Mapping[str, Any]], None]


@dataclass
class StepContext:
    """Everything a step may use. Steps never print: they call `progress` and `event`."""

    incident_id: str
    step_id: str
    target: PackageSpec
    params: Mapping[str, Any]
    inputs: Mapping[str, Any]
    needs: Mapping[str, StepOutputs]
    settings: Settings
    services: Services
    workdir: Path
    records: Records = field(default_factory=MemoryRecords)
    file_prefix: str = ""  # "<package slug>/" when an incident has several packages
    attempt: int = 1
    resumed: bool = False
    progress: ProgressHook = field(default=lambda _m: None)
    event: EventHook = field(default=lambda _k, _d: None)
    # The whole incident record (times, events, approvals), when a store holds it: the engine
    # gives its store; a step run on its own has only its needs and records.
    history: IncidentHistory | None = None
    clock: Clock = SYSTEM_CLOCK  # what waits and paces run on (the run's Services.clock)

    @property
    def dry_run(self) -> bool:
        return self.settings.dry_run

    @property
    def org(self) -> OrgConfig:
        """The organization's details and options (respond.toml, read once by Settings)."""
        return self.settings.org

    def output_of(self, step_id: str, kind: type[Out]) -> Out | None:
        """Outputs of step `step_id` this one needs (same package); None when it has none."""
        found = self.needs.get(step_id)
        if found is None:
            return None
        if not isinstance(found, kind):
            raise UsageError(
                f"Step {self.step_id} reads step {step_id!r} as {kind.__name__}, but that step "
                f"gives {type(found).__name__}; point `with:` at a step of the right type."
            )
        return found

    def output(self, kind: type[Out], param: str) -> Out | None:
        """Outputs of the step named by `with: {param: id}` (default: a step with id `param`)."""
        return self.output_of(str(self.params.get(param, param)), kind)

    def temp_dir(self) -> tempfile.TemporaryDirectory[str]:
        """A private scratch folder inside the incident folder (removed when the step is done)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".tmp-", dir=self.workdir)

    def write_file(self, name: str, data: bytes) -> Path:
        """Write a file under the incident folder atomically (temp file, then rename)."""
        path = (self.workdir / name).resolve()
        if not path.is_relative_to(self.workdir.resolve()):
            raise ValueError(f"refusing to write outside the incident folder: {name}")
        return write_atomic(path, data)


class StepType(ABC):
    """A kind of step a runbook can `uses:`.

    `mutates`: it writes to an outside system (then only `plan` runs in a dry run).
    `destructive`: the write cannot be undone (the engine then requires approval).
    Every step is idempotent: it reads before it writes and succeeds with `changed=False`
    when its goal already holds, which is what makes resume after a crash safe.
    """

    uses: ClassVar[str]
    outputs: ClassVar[type[StepOutputs]]  # the frozen dataclass `plan` and `apply` return
    mutates: ClassVar[bool] = False
    destructive: ClassVar[bool] = False
    description: ClassVar[str] = ""
    params: ClassVar[frozenset[str]] = frozenset()
    # Runs once for an incident of several packages, after every package's needs (the report).
    once_per_incident: ClassVar[bool] = False

    async def plan(self, ctx: StepContext) -> Plan:
        """Read the current remote state and say what `apply` would do."""
        return Plan()

    @abstractmethod
    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        """Do it. Called with the plan `plan` just returned."""
