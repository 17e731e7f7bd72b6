"""Where CI users expect the guard: SARIF 2.1.0 (validated against the schema), the GitHub Action's
steps run locally, and the pre-commit hook's entry run as pre-commit runs it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from playbook.scan.detect import checksummed_token
from tests.support.cli import ROOT, cli_env, respond

TOKEN = checksummed_token("npm_", "Rk4Tq8Xw2Lm6Zp1Vb9Nc3Hd7Jf5Gs0")  # real format, not real
# Pinned by tests/sarif/package-lock.json, installed by `make setup`.
SCHEMA = ROOT / "tests/sarif/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json"
VENV_BIN = Path(sys.executable).parent
# The baseline lookup goes to npm's registry: here a loopback port where nothing listens, so the
# guard says it has no baseline and judges the release on its own.
NO_REGISTRY = {"NPM_CONFIG_REGISTRY": "http://127.0.0.1:9/"}


def env_for(cwd: Path) -> dict[str, str]:
    return cli_env(cwd, cwd.parent / "respond-home", **NO_REGISTRY)


def leaky_package(root: Path) -> Path:
    files = {
        "package.json": json.dumps(
            {"name": "@acme/tool", "version": "1.2.3", "license": "UNLICENSED"}
        ),
        "dist/index.js": "//# sourceMappingURL=index.js.map\n",
        "dist/index.js.map": json.dumps(
            {"sources": ["../src/a.ts"], "sourcesContent": [f'export const t = "{TOKEN}";\n']}
        ),
        ".env": "HOST=db.acme.internal\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def clean_package(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps({"name": "tidy", "version": "1.0.0"}))
    (root / "index.js").write_text("module.exports = 1;\n")
    return root


def validate(doc: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    jsonschema.Draft4Validator(schema).validate(doc)


def test_sarif_is_valid_and_points_into_the_checkout(tmp_path: Path) -> None:
    leaky_package(tmp_path / "packages" / "tool")
    env = env_for(tmp_path)
    out = respond(env, "scan", "packages/tool", "--format", "sarif", cwd=tmp_path, check=1)
    doc = json.loads(out.stdout)
    validate(doc)
    assert TOKEN not in out.stdout  # only the redacted form
    run = doc["runs"][0]
    assert run["properties"]["leaky"] is True
    got = {
        (r["ruleId"], r["level"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        for r in run["results"]
    }
    assert got == {
        ("original-source", "error", "packages/tool/dist/index.js.map"),
        ("secret", "error", "packages/tool/dist/index.js.map"),
        ("sensitive-file", "error", "packages/tool/.env"),
        ("internal-host", "note", "packages/tool/package.json"),
    }
    secret = next(r for r in run["results"] if r["ruleId"] == "secret")
    assert secret["message"]["text"] == "new npm-token at src/a.ts:1 (npm_…[40])"
    assert run["properties"]["verdict"]["baseline"] is None  # no registry: the absolute view
    rules = run["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"])


def test_sarif_of_a_tarball_and_of_a_clean_package(tmp_path: Path) -> None:
    pkg = leaky_package(tmp_path / "pkg")
    allow = '[[scan.allow]]\nrule = "sensitive-file"\npath = ".env"\nreason = "a fixture"\n'
    (tmp_path / "respond.toml").write_text(allow)
    subprocess.run(
        ["tar", "-czf", str(tmp_path / "pkg.tgz"), "-C", str(tmp_path), "pkg"], check=True
    )
    env = env_for(tmp_path)
    out = respond(env, "scan", "pkg.tgz", "--format", "sarif", cwd=tmp_path, check=1)
    doc = json.loads(out.stdout)
    validate(doc)
    (env_file,) = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "sensitive-file"]
    assert env_file["level"] == "note"  # allowed by respond.toml, and said so
    assert env_file["suppressions"] == [{"kind": "external", "justification": "a fixture"}]
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in doc["runs"][0]["results"]
    }
    assert uris == {"pkg.tgz"}
    assert any("(in .env)" in r["message"]["text"] for r in doc["runs"][0]["results"])
    shutil.rmtree(pkg)
    clean_package(tmp_path / "tidy")
    out = respond(env, "scan", "tidy", "--format", "sarif", cwd=tmp_path, check=0)
    doc = json.loads(out.stdout)
    validate(doc)
    assert doc["runs"][0]["results"] == [] and doc["runs"][0]["properties"]["leaky"] is False


def test_an_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    out = respond(env, "scan", ".", "--format", "xml", cwd=tmp_path, check=2)
    assert "accepted: text, json, sarif" in out.stderr


def test_an_invalid_document_fails_the_schema() -> None:
    """The validation can fail: a result without its message is not SARIF."""
    doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{}]}]}
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


# --- The GitHub Action, its run: steps executed here as the runner would -----------------------

_TOKEN = re.compile(r"\s*('[^']*'|&&|\|\||==|!=|\(|\)|[A-Za-z_][\w.-]*(?:\(\))?)")


def _lookup(name: str, ctx: dict[str, Any]) -> Any:
    if name == "always()":
        return True
    value: Any = ctx
    for part in name.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return value


def evaluate(expr: str, ctx: dict[str, Any]) -> Any:
    """The subset of GitHub's expression language action.yml uses, turned into Python."""
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        assert m, f"unsupported expression {expr!r} at {pos}"
        tok, pos = m.group(1), m.end()
        if tok.startswith("'"):
            out.append(repr(tok[1:-1]))
        elif tok in ("&&", "||"):
            out.append(" and " if tok == "&&" else " or ")
        elif tok in ("==", "!=", "(", ")"):
            out.append(tok)
        else:
            out.append(repr(_lookup(tok, ctx)))
    return eval("".join(out), {"__builtins__": {}})  # only literals and operators remain


def substitute(text: str, ctx: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate(m.group(1), ctx)), text)


def run_action(workspace: Path, inputs: dict[str, str]) -> tuple[list[str], dict[str, Any]]:
    """Run action.yml's steps like the runner: inputs with defaults, env, `if:`, GITHUB_OUTPUT.
    `uses:` steps (setup-python, upload-sarif) are GitHub's own: recorded with their inputs."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    given = {k: inputs.get(k, str(v.get("default", ""))) for k, v in action["inputs"].items()}
    ctx: dict[str, Any] = {"inputs": given, "github": {"action_path": str(ROOT)}, "steps": {}}
    log: list[str] = []
    for step in action["runs"]["steps"]:
        if "if" in step and not evaluate(step["if"], ctx):
            log.append(f"skipped {step.get('name', step.get('uses'))}")
            continue
        if "uses" in step:
            with_ = {k: substitute(str(v), ctx) for k, v in step.get("with", {}).items()}
            log.append(f"uses {step['uses']} {json.dumps(with_, sort_keys=True)}")
            continue
        assert step["shell"] == "bash"
        output = workspace / f".output-{len(log)}"
        output.touch()
        env = {
            **env_for(workspace),
            # The local install: this checkout's venv (respond installed), no index reachable.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            "PIP_NO_INDEX": "1",
            "GITHUB_OUTPUT": str(output),
            **{k: substitute(str(v), ctx) for k, v in step.get("env", {}).items()},
        }
        script = workspace / ".step.sh"
        script.write_text(substitute(step["run"], ctx))
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        outputs = dict(ln.split("=", 1) for ln in output.read_text().splitlines() if "=" in ln)
        if "id" in step:
            ctx["steps"][step["id"]] = {"outputs": outputs}
        log.append(f"ran {step['name']}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            break  # the job fails here
    return log, ctx


def test_action_steps_fail_a_leaky_release_and_upload_its_sarif(tmp_path: Path) -> None:
    leaky_package(tmp_path / "pkg")
    log, ctx = run_action(tmp_path, {"install": "respond", "target": "pkg"})
    assert log[0].startswith('uses actions/setup-python@v5 {"python-version": "3.12"}')
    assert log[1].startswith("ran Install respond: exit 0"), log[1]
    assert log[2].startswith("ran Scan: exit 0"), log[2]
    assert "verdict: LEAKY @acme/tool@1.2.3" in log[2] and "error: secret: new npm-token" in log[2]
    assert ctx["steps"]["scan"]["outputs"]["exit-code"] == "1"
    assert log[3] == (
        "uses github/codeql-action/upload-sarif@v3 "
        '{"category": "respond-scan", "sarif_file": "respond-scan.sarif"}'
    )
    assert log[4].startswith("ran Verdict: exit 1")  # the job fails before npm publish
    validate(json.loads((tmp_path / "respond-scan.sarif").read_text()))


def test_action_steps_pass_a_clean_release(tmp_path: Path) -> None:
    work = clean_package(tmp_path / "ws")
    log, _ = run_action(work, {"install": "respond", "sarif-file": "out.sarif"})
    assert [line.split(":")[0] for line in log] == [
        'uses actions/setup-python@v5 {"python-version"',
        "ran Install respond",
        "ran Scan",
        'uses github/codeql-action/upload-sarif@v3 {"category"',
        "ran Verdict",
    ]
    assert log[-1].startswith("ran Verdict: exit 0")
    assert json.loads((work / "out.sarif").read_text())["runs"][0]["results"] == []


def test_action_with_bad_input_fails_at_the_scan_and_uploads_nothing(tmp_path: Path) -> None:
    log, ctx = run_action(tmp_path, {"install": "respond", "target": "no-such-thing"})
    assert log[2].startswith("ran Scan: exit 2"), log[2]
    assert ctx["steps"]["scan"]["outputs"]["exit-code"] == "2"
    assert len(log) == 3  # the job stopped there


# --- The pre-commit hook -----------------------------------------------------------------------


def run_hook(repo: Path) -> subprocess.CompletedProcess[str]:
    """What pre-commit runs for this hook: entry + args, no file names, in the repository root,
    with the hook's environment (where `language: python` installed respond) first on PATH."""
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "respond-scan" and hook["language"] == "python"
    assert hook["pass_filenames"] is False and hook["always_run"] is True
    argv = [*shlex.split(hook["entry"]), *hook["args"]]
    env = {
        **env_for(repo),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def test_pre_commit_hook_stops_a_leak_and_lets_a_clean_package_through(tmp_path: Path) -> None:
    leaky = leaky_package(tmp_path / "leaky")
    done = run_hook(leaky)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("FAIL @acme/tool@1.2.3: ") and TOKEN not in done.stdout
    done = run_hook(clean_package(tmp_path / "clean"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("pass "), done.stdout


def test_the_readme_ci_section_uses_the_action_and_the_hook_as_defined() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Before you publish: the guard", 1)[1].split("\n## ", 1)[0]
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    steps = blocks[0]["steps"]
    uses = next(s for s in steps if str(s.get("uses", "")).endswith("/respond@v1"))
    assert set(uses["with"]) <= set(action["inputs"])
    assert blocks[0]["permissions"]["security-events"] == "write"  # the SARIF upload needs it
    hook_ids = {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert {h["id"] for h in blocks[1]["repos"][0]["hooks"]} <= hook_ids


def test_sarif_without_a_verdict_follows_the_scan(tmp_path: Path) -> None:
    """The library call (no guard, no baseline): every finding an error when the scan is leaky."""
    from playbook.scan import scan_path
    from playbook.scan.output import sarif_doc

    result = scan_path(leaky_package(tmp_path / "pkg"), npm=None)
    doc = sarif_doc(result, base="pkg/")
    validate(doc)
    got = {(r["ruleId"], r["level"]) for r in doc["runs"][0]["results"]}
    assert got == {
        ("source-map", "error"),
        ("secret", "error"),
        ("sensitive-file", "error"),
        ("internal-host", "note"),
    }
