"""The layer order, read from the imports themselves: no module imports a layer above its own.

Layers, lowest first. A module belongs to the layer of the longest prefix that names it. Every
import counts, those under `if TYPE_CHECKING:` and inside functions too: a dependency deferred
is still a dependency. The step types whose outputs the documents read (npm.*, mirrors.*) sit
below `notices`; the step types that write the documents sit above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "playbook"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "playbook",
            "playbook.errors",
            "playbook.clock",
            "playbook.codec",
            "playbook.secret",
            "playbook.fileio",
            "playbook.resources",
            "playbook.spec",
            "playbook.failpoints",
        ),
    ),
    ("config", ("playbook.config",)),
    ("store", ("playbook.store",)),
    ("net", ("playbook.net",)),
    ("services", ("playbook.services",)),
    ("scan", ("playbook.scan",)),
    ("mirrors", ("playbook.mirrors",)),
    ("steps", ("playbook.steps",)),
    ("notices", ("playbook.notices",)),
    ("document steps", ("playbook.steps.notices", "playbook.steps.report")),
    ("engine", ("playbook.engine",)),
    ("commands", ("playbook.core",)),
    ("rehearsal", ("playbook.rehearsal",)),
    ("interface", ("playbook.display", "playbook.cli")),
)
RANK = {prefix: rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}
NAME = {rank: name for rank, (name, _) in enumerate(LAYERS)}
# The engine runs steps by their contract alone: it reads no domain.
ENGINE_MAY_NOT = ("playbook.scan", "playbook.mirrors", "playbook.notices", "playbook.rehearsal")
STEP_CONTRACT = ("playbook.steps", "playbook.steps.base")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> set[str]:
    """Every playbook module `path` imports (`from playbook import core` names playbook.core)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if is_module(f"{node.module}.{a.name}")
            )
    return {name for name in found if name == "playbook" or name.startswith("playbook.")}


def layer(module: str) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in RANK:
            return RANK[prefix]
    raise AssertionError(f"{module} is in no layer; add it to LAYERS in {__file__}")


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{mod} ({NAME[layer(mod)]}) imports {dep} ({NAME[layer(dep)]})"
        for mod, deps in graph().items()
        for dep in sorted(deps)
        if layer(dep) > layer(mod)
    ]
    assert upward == []


def test_the_engine_knows_steps_by_their_contract_only() -> None:
    wrong = [
        f"{mod} imports {dep}"
        for mod, deps in graph().items()
        if mod.startswith("playbook.engine")
        for dep in sorted(deps)
        if dep.startswith(ENGINE_MAY_NOT)
        or (dep.startswith("playbook.steps") and dep not in STEP_CONTRACT)
    ]
    assert wrong == []


def test_commands_call_no_helper_inside_a_step_type() -> None:
    """core, the CLI and the rehearsal run steps through the engine, never a step's helpers."""
    wrong = [
        f"{mod} imports {dep}"
        for mod, deps in graph().items()
        if layer(mod) >= RANK["playbook.core"]
        for dep in sorted(deps)
        if dep.startswith("playbook.steps.") and dep not in STEP_CONTRACT
    ]
    assert wrong == []


def test_the_checks_see_real_imports() -> None:
    """The graph is not empty and catches a known edge, so a broken parser cannot pass."""
    edges = graph()
    assert "playbook.steps.base" in edges["playbook.engine.runner"]
    assert "playbook.steps" in edges["playbook.engine.runner"]  # `from playbook import steps`
    assert (
        layer("playbook.steps.report")
        > layer("playbook.notices.view")
        > layer("playbook.steps.npm")
    )
