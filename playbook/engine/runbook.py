"""Runbooks: YAML in GitHub Actions' shape, loaded into validated frozen dataclasses."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from playbook import steps as step_types
from playbook.errors import RunbookError

TOP_KEYS = frozenset({"name", "description", "inputs", "steps"})
STEP_KEYS = frozenset(
    {"id", "name", "uses", "with", "needs", "if", "approval", "retry", "timeout", "on_failure"}
)
INPUT_KEYS = frozenset({"description", "default", "required"})
RETRY_KEYS = frozenset({"count", "backoff"})
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class Retry:
    count: int = 0
    backoff: float = 1.0


@dataclass(frozen=True)
class InputSpec:
    name: str
    description: str = ""
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class StepSpec:
    id: str
    uses: str
    line: int
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    condition: str | None = None
    approval: bool = False
    retry: Retry = Retry()
    timeout: float | None = None
    on_failure: str = "stop"


@dataclass(frozen=True)
class Runbook:
    name: str
    description: str
    inputs: Mapping[str, InputSpec]
    steps: tuple[StepSpec, ...]
    path: str
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def step(self, step_id: str) -> StepSpec:
        return next(s for s in self.steps if s.id == step_id)

    def levels(self) -> list[list[str]]:
        """Steps grouped in waves: every step of a wave can run once the earlier waves are done."""
        depth: dict[str, int] = {}
        for spec in self.steps:  # validated: needs only name earlier-resolvable, acyclic steps
            depth[spec.id] = _depth(spec.id, self, depth)
        waves: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for spec in self.steps:
            waves[depth[spec.id]].append(spec.id)
        return waves

    def ancestors(self, step_id: str) -> set[str]:
        """Every step `step_id` needs, directly or through others."""
        return _ancestors(step_id, {s.id: s for s in self.steps})


def _depth(step_id: str, runbook: Runbook, memo: dict[str, int]) -> int:
    if step_id not in memo:
        needs = runbook.step(step_id).needs
        memo[step_id] = 1 + max((_depth(n, runbook, memo) for n in needs), default=-1)
    return memo[step_id]


# -- YAML with line numbers ----------------------------------------------------------------


class _Map(dict[str, Any]):
    """A mapping that remembers the line it started on and the line of each key."""

    line: int = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.MarkedYAMLError(
                problem=f"keys must be strings, found {key!r}", problem_mark=key_node.start_mark
            )
        if key in result:
            raise yaml.MarkedYAMLError(
                problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# -- expressions -----------------------------------------------------------------------------

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_SINGLE_EXPR = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)


def expression_env() -> ImmutableSandboxedEnvironment:
    return _ENV


def _referenced_steps(source: str, *, is_expression: bool) -> set[str]:
    """Step ids an expression reads through `steps.<id>`."""
    tree = _ENV.parse(f"{{{{ {source} }}}}" if is_expression else source)
    found: set[str] = set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "steps":
            found.add(node.attr)
    for sub in tree.find_all(nodes.Getitem):
        if (
            isinstance(sub.node, nodes.Name)
            and sub.node.name == "steps"
            and isinstance(sub.arg, nodes.Const)
        ):
            found.add(str(sub.arg.value))
    return found


# -- loading ----------------------------------------------------------------------------------


class _Checker:
    """Collects the location for errors: file, line, step."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, line: int, message: str, step: str | None = None) -> RunbookError:
        where = f"{self.path}:{line}"
        if step:
            where += f" (step {step!r})"
        return RunbookError(f"{where}: {message}", "See runbooks/npm-leak.yaml for the shape.")


def load(path: Path | str) -> Runbook:
    """Read and validate a runbook file; any flaw is a RunbookError naming file, line and step."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(
            f"Cannot read runbook {path}: {getattr(exc, 'strerror', None) or exc}.",
            "Pass a readable YAML file with --runbook.",
        ) from None
    return parse(text, str(path))


def parse(text: str, path: str = "<runbook>") -> Runbook:
    check = _Checker(path)
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise check.fail(line, f"invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise check.fail(0, f"invalid YAML: {exc}") from None
    if not isinstance(doc, _Map):
        raise check.fail(1, "a runbook is a mapping with name, description, inputs and steps")
    _no_unknown(check, doc, TOP_KEYS, "runbook")
    name = _string(check, doc, "name", required=True) or ""
    inputs = _inputs(check, doc.get("inputs"), doc.key_lines.get("inputs", doc.line))
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise check.fail(doc.key_lines.get("steps", doc.line), "`steps` must be a non-empty list")
    specs = [_step(check, raw) for raw in raw_steps]
    _check_graph(check, specs)
    return Runbook(
        name=name,
        description=_string(check, doc, "description") or "",
        inputs=inputs,
        steps=tuple(specs),
        path=path,
        text=text,
    )


def _no_unknown(
    check: _Checker, doc: _Map, allowed: frozenset[str], what: str, step: str | None = None
) -> None:
    for key in doc:
        if key not in allowed:
            raise check.fail(
                doc.key_lines.get(key, doc.line),
                f"unknown key {key!r} in {what}; accepted: {', '.join(sorted(allowed))}",
                step,
            )


def _string(
    check: _Checker, doc: _Map, key: str, *, required: bool = False, step: str | None = None
) -> str | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise check.fail(doc.line, f"missing required key {key!r}", step)
        return None
    if not isinstance(value, str):
        raise check.fail(doc.key_lines.get(key, doc.line), f"{key!r} must be a string", step)
    return value


def _inputs(check: _Checker, raw: Any, line: int) -> dict[str, InputSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, _Map):
        raise check.fail(line, "`inputs` must be a mapping of input names")
    result: dict[str, InputSpec] = {}
    for name, spec in raw.items():
        spec = spec if spec is not None else _Map()
        if not isinstance(spec, _Map):
            raise check.fail(raw.key_lines[name], f"input {name!r} must be a mapping")
        _no_unknown(check, spec, INPUT_KEYS, f"input {name!r}")
        result[name] = InputSpec(
            name=name,
            description=str(spec.get("description", "")),
            default=spec.get("default"),
            required=bool(spec.get("required", False)),
        )
    return result


def _step(check: _Checker, raw: Any) -> StepSpec:
    if not isinstance(raw, _Map):
        raise check.fail(0, "each step must be a mapping with at least `id` and `uses`")
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not _ID.match(step_id):
        raise check.fail(raw.line, "every step needs an `id` of letters, digits, _ and -")
    _no_unknown(check, raw, STEP_KEYS, "a step", step_id)
    uses = _string(check, raw, "uses", required=True, step=step_id) or ""
    step_type = step_types.get(uses)
    if step_type is None:
        known = ", ".join(step_types.known()) or "none registered"
        raise check.fail(
            raw.key_lines["uses"], f"unknown step type {uses!r}; known: {known}", step_id
        )
    params = raw.get("with") or _Map()
    if not isinstance(params, _Map):
        raise check.fail(raw.key_lines.get("with", raw.line), "`with` must be a mapping", step_id)
    if step_type.params:
        _no_unknown(check, params, step_type.params, f"`with` of {uses}", step_id)
    approval = raw.get("approval")
    if approval not in (None, "required"):
        raise check.fail(raw.key_lines["approval"], "`approval` accepts only `required`", step_id)
    on_failure = raw.get("on_failure", "stop")
    if on_failure not in ("stop", "continue"):
        raise check.fail(
            raw.key_lines["on_failure"], "`on_failure` accepts stop or continue", step_id
        )
    condition = raw.get("if")
    if condition is not None and not isinstance(condition, (str, bool)):
        raise check.fail(raw.key_lines["if"], "`if` must be an expression string", step_id)
    return StepSpec(
        id=step_id,
        uses=uses,
        line=raw.line,
        name=_string(check, raw, "name", step=step_id) or "",
        params=dict(params),
        needs=_needs(check, raw, step_id),
        condition=None if condition is None else str(condition),
        approval=approval == "required" or step_type.destructive,
        retry=_retry(check, raw, step_id),
        timeout=_timeout(check, raw, step_id),
        on_failure=on_failure,
    )


def _needs(check: _Checker, raw: _Map, step_id: str) -> tuple[str, ...]:
    needs = raw.get("needs", [])
    if isinstance(needs, str):
        needs = [needs]
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise check.fail(
            raw.key_lines.get("needs", raw.line), "`needs` is a step id or a list of them", step_id
        )
    return tuple(needs)


def _retry(check: _Checker, raw: _Map, step_id: str) -> Retry:
    value = raw.get("retry")
    line = raw.key_lines.get("retry", raw.line)
    if value is None:
        return Retry()
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10:
        return Retry(count=value)
    if isinstance(value, _Map):
        _no_unknown(check, value, RETRY_KEYS, "`retry`", step_id)
        count, backoff = value.get("count", 0), value.get("backoff", 1.0)
        if (
            isinstance(count, int)
            and 0 <= count <= 10
            and isinstance(backoff, (int, float))
            and 0 <= backoff <= 600
        ):
            return Retry(count=count, backoff=float(backoff))
    raise check.fail(line, "`retry` is a count (0-10) or {count: 0-10, backoff: seconds}", step_id)


def parse_duration(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    if isinstance(value, str) and (m := _DURATION.match(value.strip())):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
        return seconds if seconds > 0 else None
    return None


def _timeout(check: _Checker, raw: _Map, step_id: str) -> float | None:
    if "timeout" not in raw:
        return None
    seconds = parse_duration(raw["timeout"])
    if seconds is None:
        raise check.fail(
            raw.key_lines["timeout"], "`timeout` is seconds or a duration like 30s, 5m", step_id
        )
    return seconds


def _check_graph(check: _Checker, specs: list[StepSpec]) -> None:
    by_id: dict[str, StepSpec] = {}
    for spec in specs:
        if spec.id in by_id:
            raise check.fail(spec.line, f"duplicate step id {spec.id!r}", spec.id)
        by_id[spec.id] = spec
    for spec in specs:
        for need in spec.needs:
            if need not in by_id:
                raise check.fail(spec.line, f"needs {need!r}, which is not a step here", spec.id)
    _check_cycles(check, by_id)
    for spec in specs:
        _check_expressions(check, spec, by_id)


def _check_cycles(check: _Checker, by_id: Mapping[str, StepSpec]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(step_id: str, path: list[str]) -> None:
        if state.get(step_id) == 2:
            return
        if state.get(step_id) == 1:
            cycle = " -> ".join([*path[path.index(step_id) :], step_id])
            raise check.fail(by_id[step_id].line, f"the needs form a cycle: {cycle}", step_id)
        state[step_id] = 1
        for need in by_id[step_id].needs:
            visit(need, [*path, step_id])
        state[step_id] = 2

    for step_id in by_id:
        visit(step_id, [])


def _ancestors(step_id: str, by_id: Mapping[str, StepSpec]) -> set[str]:
    seen: set[str] = set()
    stack = list(by_id[step_id].needs)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(by_id[current].needs)
    return seen


def _check_expressions(check: _Checker, spec: StepSpec, by_id: Mapping[str, StepSpec]) -> None:
    sources: list[tuple[str, bool]] = []
    if spec.condition is not None:
        sources.append((_condition_source(spec.condition), True))
    sources.extend((v, False) for v in _strings(spec.params))
    allowed = _ancestors(spec.id, by_id)
    for source, is_expression in sources:
        try:
            referenced = _referenced_steps(source, is_expression=is_expression)
        except TemplateSyntaxError as exc:
            raise check.fail(
                spec.line, f"bad expression {source!r}: {exc.message}", spec.id
            ) from None
        for ref in sorted(referenced - allowed):
            why = "no such step" if ref not in by_id else "add it to `needs`"
            raise check.fail(spec.line, f"expression reads steps.{ref} ({why})", spec.id)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# -- evaluation --------------------------------------------------------------------------------


def _condition_source(condition: str) -> str:
    """`if:` takes a bare expression or one wrapped in `{{ }}`, as GitHub Actions does."""
    match = _SINGLE_EXPR.match(condition)
    return match.group(1) if match else condition.strip()


def evaluate_condition(condition: str, scope: Mapping[str, Any]) -> bool:
    source = _condition_source(condition)
    return bool(_ENV.compile_expression(source, undefined_to_none=False)(**scope))


def render_params(value: Any, scope: Mapping[str, Any]) -> Any:
    """Render `with:` values; a string that is exactly one `{{ expr }}` keeps the value's type."""
    if isinstance(value, str):
        if match := _SINGLE_EXPR.match(value):
            return _ENV.compile_expression(match.group(1), undefined_to_none=False)(**scope)
        if "{{" in value or "{%" in value:
            return _ENV.from_string(value).render(**scope)
        return value
    if isinstance(value, Mapping):
        return {k: render_params(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render_params(v, scope) for v in value]
    return value
