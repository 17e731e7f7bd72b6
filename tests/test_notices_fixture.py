"""A fixed incident in a real Store, shared by the notices and report tests (no tests here)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playbook import clock, steps
from playbook.codec import from_json
from playbook.config.org import OrgConfig, load_org
from playbook.notices.drafts import draft_notices
from playbook.notices.view import load_view
from playbook.store.sqlite import Incident, StepStatus, Store

INCIDENT = "acme-cli-2.1.88"
TARGET = "@acme/cli@2.1.88"
NOW = "2026-03-31T12:00:00.000Z"
ROOT = "https://github.com/leaker/acme-cli-src"
OFFICIAL_ROOT = "https://github.com/acme/cli"
HOSTILE = (
    "<script>alert(1)</script> **bold** [x](javascript:alert(1)) {{ 7*7 }} {% if 1 %}j{% endif %}"
    " \x1b[31mRED\x1b[0m\x1b]0;title\x07 | pipe | # head\n## second line"
)
RAW_SECRET = "AKIAIOSFODNN7EXAMPLEWXYZ"
HOSTILE_NAME = "evil/<img src=x onerror=alert(1)>{{7*7}}"
FULL_TOML = """\
[organization]
name = "Acme Corp"
copyright_owner = "Acme Corp"
signer = "Jane Doe"
legal_email = "legal@acme.example"
telephone = "+1 555 0100"
legal_address = "1 Example Road, Springfield"
advisory_contact = "security@acme.example"
security_url = "https://acme.example/security"

[official]
github_orgs = ["acme"]
repositories = ["acme/cli"]
npm_scopes = ["@acme"]
"""

STEPS = [
    ("lookup", "npm.lookup"),
    ("scan", "npm.scan"),
    ("retag", "npm.retag"),
    ("deprecate", "npm.deprecate"),
    ("unpublish", "npm.unpublish"),
    ("verify", "npm.verify"),
    ("cdn", "cdn.check"),
    ("hunt", "mirrors.hunt"),
    ("verify_mirrors", "mirrors.verify"),
    ("notices", "notices.draft"),
    ("report", "report.write"),
]


def typed_outputs(step_id: str) -> Any:
    """The fixture's recorded outputs of a step, as its step type's outputs."""
    step_type = steps.get(dict(STEPS)[step_id])
    assert step_type is not None
    return from_json(step_type.outputs, OUTPUTS[step_id])


OUTPUTS: dict[str, dict[str, Any]] = {
    "lookup": {
        "package": "@acme/cli",
        "version": "2.1.88",
        "exists": True,
        "unpublished": False,
        "published_at": "2026-03-31T06:12:00.000Z",
        "hours_since_publish": 1.8,
        "dist_tags": {"latest": "2.1.88"},
        "tags_on_version": ["latest"],
        "versions": ["2.1.87", "2.1.88"],
        "maintainers": ["acme-bot"],
        "deprecated": None,
    },
    "scan": {
        "leaky": True,
        "reasons": ["cli.js.map carries 1,906 first-party sources with content"],
        "findings_file": "scan/findings.json",
        "manifest_file": "scan/manifest.json",
        "summary": {
            "files": 14,
            "bytes": 31_000_000,
            "sourcemaps": 1,
            "sources": 4756,
            "sources_with_content": 4756,
            "first_party": 1906,
            "node_modules": 2850,
            "original_bytes": 30_100_000,
            "original_lines": 512_000,
            "top_dirs": [["src/tools", 412], ["src/components", 380]],
            "sensitive_files": ["cli.js.map"],
            "secrets": [
                {
                    "kind": "aws-access-key",
                    "file": "src/config/aws.ts",
                    "line": 12,
                    "redacted": "AKIA************WXYZ",
                    # A raw value a careless scanner might add: it must never be copied out.
                    "value": RAW_SECRET,
                }
            ],
            "internal_hosts": ["build.corp.acme.internal"],
            "partial": False,
            "notes": [],
        },
    },
    "retag": {
        "safe_version": "2.1.87",
        "moved": {"latest": {"from": "2.1.88", "to": "2.1.87"}},
        "left": [],
        "reason": "latest moved to the newest clean earlier version",
    },
    "deprecate": {"deprecated": True, "message": "2.1.88 was published by mistake; use 2.1.87"},
    "unpublish": {
        "unpublished": False,
        "policy": {"allowed": False, "within_72h": True, "reasons": ["has dependents"]},
        "support_request_needed": True,
        "registry_reason": "You can no longer unpublish this package. Failed criteria: dependents",
        "sequence": [],
    },
    "verify": {
        "contained": True,
        "dist_tags": {"latest": "2.1.87"},
        "deprecated": True,
        "version_present": True,
        "tarball_reachable": True,
        "checked_at": "2026-03-31T08:20:00.000Z",
    },
    "cdn": {
        "copies": [
            {
                "cdn": "jsdelivr",
                "url": "https://cdn.jsdelivr.net/npm/@acme/cli@2.1.88/cli.js.map",
                "status": 200,
            },
            {"cdn": "unpkg", "url": "https://unpkg.com/@acme/cli@2.1.88/cli.js.map", "status": 200},
        ],
        "purge_requested": [],
        "requests_needed": ["jsdelivr", "unpkg"],
    },
    "hunt": {"candidates": 7, "by_source": {"code_search": 3, "forks": 4}, "skipped_sources": []},
    "verify_mirrors": {
        "copies": 4,
        "partial": 1,
        "unrelated": 1,
        "official": 1,
        "disabled": 0,
        "unreachable": 0,
        "requests": 12,
    },
}


# The leaked first-party paths, as the copies' trees name them; the credential sits in the third.
LEAKED_PATHS = [
    "src/tools/BashTool/BashTool.tsx",
    "src/main.tsx",
    "src/config/aws.ts",
    *(f"src/area{i % 9}/Module{i}.ts" for i in range(3, 1906)),
]
HOSTILE_PATH = "src/<script>alert(1)</script>/**x**/[a](javascript:1).ts"


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def mirror(
    name: str,
    verdict: str,
    *,
    root: str = ROOT,
    parent: str | None = None,
    non_copies: bool | None = False,
    host: str = "github.com",
    kind: str = "repo",
    url: str | None = None,
    description: str = "",
    matched: int = 1906,
    own_files: int = 10,
    paths: list[str] | None = None,
) -> dict[str, Any]:
    """A mirror record as mirrors.verify stores it; `own_files` beside the matched files."""
    matched_paths = [[p, p] for p in (paths or LEAKED_PATHS)[:matched]]
    return {
        "commit_sha": _sha(f"commit {name}"),
        "tree_sha": _sha(f"tree {name} {matched}"),
        "matched_paths": matched_paths,
        "unvendored_files": len(matched_paths) + own_files,
        "url": url or f"https://github.com/{name}",
        "host": host,
        "kind": kind,
        "name": name,
        "description": description,
        "verdict": verdict,
        "matched": matched,
        "total": 1906,
        "tree_files": 1950,
        "sample_paths": ["src/tools/BashTool/BashTool.tsx", "src/main.tsx"],
        "parent": parent,
        "network_root": root,
        "network_has_non_copies": non_copies,
        "found_by": ["code_search"],
        "checked_at": "2026-03-31T09:00:00.000Z",
        "evidence": f"{matched:,} of 1,906 first-party files match by git blob SHA-1 "
        f"({100 * matched / 1906:.1f}%)",
        "status": "open",
    }


def mirrors(hostile: bool = False) -> list[dict[str, Any]]:
    found = [
        mirror("leaker/acme-cli-src", "copy", description="claude code source"),
        mirror("fork1/acme-cli-src", "copy", parent=ROOT),
        mirror("fork2/acme-cli-src", "partial", parent=ROOT, matched=420, own_files=1500),
        mirror("someone/cli", "copy", root=OFFICIAL_ROOT, parent=OFFICIAL_ROOT, non_copies=True),
        mirror("acme/cli", "official", root=OFFICIAL_ROOT, non_copies=True, matched=0),
        mirror("random/other", "unrelated", root="https://github.com/random/other", matched=2),
        mirror(
            "acme-cli-leaked",
            "copy",
            root="",
            host="npm",
            kind="package",
            url="https://npm.example.test/package/acme-cli-leaked",
        ),
        mirror(
            "mirrorer/acme-cli",
            "copy",
            root="",
            host="gitlab.com",
            url="https://gitlab.com/mirrorer/acme-cli",
        ),
    ]
    if hostile:
        found.append(
            mirror(
                HOSTILE_NAME,
                "copy",
                parent=ROOT,
                url='https://github.com/evil/x"><script>alert(1)</script>{{7*7}}',
                description=HOSTILE,
                matched=4,
                own_files=400,
                paths=[HOSTILE_PATH, *LEAKED_PATHS],
            )
        )
    return found


@contextmanager
def fixed_clock(start: str = "2026-03-31T08:00:00") -> Iterator[None]:
    """Every store timestamp from a counter, so documents come out byte for byte the same."""
    moment = datetime.fromisoformat(start).replace(tzinfo=UTC)
    ticks = iter(range(100_000))

    def now() -> datetime:
        return moment + timedelta(seconds=37 * next(ticks))

    with clock.using(now):
        yield


def build_incident(
    home: Path,
    *,
    mode: str = "live",
    hostile: bool = False,
    with_notices: bool = True,
    mirror_list: list[dict[str, Any]] | None = None,
    org: OrgConfig | None = None,
) -> Store:
    """The fixture incident: contained, one unpublish refused by policy, copies found."""
    store = Store(home=home)
    with fixed_clock():
        store.create_incident(
            Incident(
                INCIDENT,
                "2026-03-31T08:00:00.000Z",
                mode,
                (TARGET,),
                {"spec": TARGET},
                "runbooks/npm-leak.yaml",
                "sha256:0f1e",
                "",
                "running",
            ),
            [(sid, TARGET, sid, uses) for sid, uses in STEPS],
        )
        for sid, _ in STEPS[:9]:
            _run_step(store, sid, mode)
        for record in mirrors(hostile) if mirror_list is None else mirror_list:
            store.put_record(INCIDENT, "mirror", record["url"], record)
        if with_notices:
            store_drafts(store, org or OrgConfig())
    return store


def _run_step(store: Store, sid: str, mode: str) -> None:
    if sid == "unpublish":
        store.transition(INCIDENT, sid, StepStatus.AWAITING_APPROVAL, summary="needs approval")
        store.approve(INCIDENT, sid, "jane", "policy check reviewed")
    store.transition(INCIDENT, sid, StepStatus.RUNNING)
    final = (
        StepStatus.PLANNED
        if mode == "dry-run" and sid in ("retag", "deprecate")
        else (StepStatus.SUCCEEDED)
    )
    store.transition(
        INCIDENT, sid, final, outputs=OUTPUTS[sid], summary=f"{sid} done", changed=True
    )


def store_drafts(store: Store, org: OrgConfig, **kwargs: Any) -> list[Any]:
    """What the notices.draft step does, against the Store directly."""
    drafts = draft_notices(load_view(store, INCIDENT), org, now=NOW, **kwargs)
    folder = store.incident_dir(INCIDENT)
    for draft in drafts:
        path = folder / draft.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(draft.text, encoding="utf-8")
        store.put_record(INCIDENT, "notice", draft.record["id"], draft.record)
    return drafts


def full_org(tmp: Path) -> OrgConfig:
    (tmp / "respond.toml").write_text(FULL_TOML, encoding="utf-8")
    return load_org(tmp, tmp / "nohome")
