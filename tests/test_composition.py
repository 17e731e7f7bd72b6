"""One composition root: Settings alone reads the environment and respond.toml; Services builds
each client once, from what its constructor was given."""

from __future__ import annotations

import ast
import asyncio
import functools
from pathlib import Path

import pytest

from playbook.clock import Clock
from playbook.config.settings import RateLimits, Settings
from playbook.errors import UsageError
from playbook.net.http import ClientOptions
from playbook.services.hub import Services

ROOT = Path(__file__).resolve().parents[1]
# Environment reads outside Settings, each with its reason (also said in a comment beside it).
ENV_READERS = {
    "playbook/config/settings.py": "the reader",
    "playbook/failpoints.py": "a crash-test hook inside the store and transport",
    "playbook/scan/worker.py": "the helper process's own environment",
    "playbook/rehearsal/sandbox.py": "Verdaccio's own environment",
    "playbook/rehearsal/run.py": "PATH for the rehearsal's Settings, nothing else of ours",
}


def reads_environment(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv", "environb")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in ("environ", "getenv") for a in node.names)
        ):
            return True
    return False


def calls(tree: ast.AST, name: str) -> bool:
    return any(
        isinstance(n, ast.Call)
        and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)
        for n in ast.walk(tree)
    )


@functools.cache
def sources() -> dict[str, ast.AST]:
    return {
        str(p.relative_to(ROOT)): ast.parse(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "playbook").rglob("*.py"))
    }


def test_only_settings_reads_the_environment() -> None:
    readers = {path for path, tree in sources().items() if reads_environment(tree)}
    assert "playbook/config/settings.py" in readers  # the check sees a real read
    assert readers <= set(ENV_READERS), sorted(readers - set(ENV_READERS))


def test_only_settings_reads_respond_toml() -> None:
    loaders = {path for path, tree in sources().items() if calls(tree, "load_org")}
    assert loaders == {"playbook/config/settings.py"}


def test_settings_turns_the_environment_into_typed_fields(tmp_path: Path) -> None:
    env = {
        "RESPOND_HOME": str(tmp_path),
        "RESPOND_LOOPBACK_ONLY": "1",
        "RESPOND_STEP_MODULES": "a.steps, b.steps,",
        "RESPOND_TEMPLATES": str(tmp_path / "tpl"),
        "RESPOND_GITHUB_BUDGET": "3",
        "RESPOND_SWH_SEARCH_PER_MINUTE": "600",
    }
    settings = Settings.resolve(env=env, cwd=tmp_path)
    assert settings.loopback_only is True
    assert settings.step_modules == ("a.steps", "b.steps")
    assert settings.templates == tmp_path / "tpl"
    assert settings.limits == RateLimits(github_budget=3, swh_search_per_minute=600)
    assert Settings.resolve(env={"RESPOND_HOME": str(tmp_path)}).loopback_only is False


def test_a_bad_limit_names_the_variable_and_what_is_accepted(tmp_path: Path) -> None:
    env = {"RESPOND_HOME": str(tmp_path), "RESPOND_GITHUB_CODE_SEARCH_PER_MINUTE": "fast"}
    with pytest.raises(UsageError, match=r"RESPOND_GITHUB_CODE_SEARCH_PER_MINUTE='fast'.*>= 1"):
        Settings.resolve(env=env)


def test_respond_toml_is_read_once_per_settings(tmp_path: Path) -> None:
    (tmp_path / "respond.toml").write_text('[organization]\nname = "Acme"\n')
    settings = Settings(home=tmp_path / "home", cwd=tmp_path)
    assert settings.org.detail("name") == "Acme"
    (tmp_path / "respond.toml").write_text('[organization]\nname = "Changed"\n')
    assert settings.org is settings.org and settings.org.detail("name") == "Acme"
    assert Settings(home=tmp_path / "home", cwd=tmp_path).org.detail("name") == "Changed"


def test_services_builds_each_client_once_on_the_clock_it_was_given(tmp_path: Path) -> None:
    now = [100.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    clock = Clock(lambda: now[0], sleep)
    settings = Settings(home=tmp_path, cwd=tmp_path, limits=RateLimits(github_budget=7))

    async def build() -> None:
        services = Services(settings, ClientOptions(dry_run=True), clock=clock)
        try:
            github = services.github()
            assert services.github() is github
            assert github.governor.clock() == 100.0 and github.governor.sleep is sleep
            assert github.governor.config.budget == 7
            assert services.cdns() is services.cdns()
            assert services.github_graphql().governor is github.governor  # one pace per host
            assert services.gitlab().governor is not github.governor
        finally:
            await services.aclose()

    asyncio.run(build())
