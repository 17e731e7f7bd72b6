"""The only typer module: parse arguments, build Settings, call the core, print. Lazy imports."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from playbook.config.settings import Settings
    from playbook.core import Session
    from playbook.engine.runbook import StepSpec
    from playbook.engine.runner import ApprovalRequest, RunResult
    from playbook.steps.base import StepType

app = typer.Typer(
    name="respond",
    help="Incident response for a package release that leaked what it should not.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runbook_app = typer.Typer(help="Check and inspect runbooks.", no_args_is_help=True)
app.add_typer(runbook_app, name="runbook")
notice_app = typer.Typer(help="Track a drafted notice: sent, then resolved.", no_args_is_help=True)
app.add_typer(notice_app, name="notice")

# -- shared options (fastapi-cloud-cli style aliases) ------------------------------------------

JsonOut = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]
Verbose = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Show tracebacks for errors.", envvar="RESPOND_VERBOSE"),
]
Registry = Annotated[
    str | None,
    typer.Option(help="Registry URL (else npm's configuration: env, .npmrc, npm config)."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Approve every step that needs approval.")]
ApproveOpt = Annotated[
    list[str] | None, typer.Option("--approve", help="Approve this step id (repeatable).")
]
NonInteractive = Annotated[
    bool,
    typer.Option(
        "--non-interactive",
        help="Never prompt: stop at approvals (exit 3) and fail where a prompt was needed.",
        envvar="RESPOND_NON_INTERACTIVE",
    ),
]
Otp = Annotated[
    str | None,
    typer.Option(
        help="npm one-time password for two-factor writes.", envvar="NPM_OTP", show_envvar=True
    ),
]
IncidentArg = Annotated[str, typer.Argument(help="Incident id (see `respond list`).")]


def _fail(exc: BaseException, verbose: bool) -> NoReturn:
    from playbook.display import inert
    from playbook.errors import RespondError, UsageError

    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, UsageError):  # bad input: one line that says what is accepted
        hint = f" ({exc.hint})" if exc.hint else ""
        typer.echo(f"error: {inert(exc.message + hint, 2000)}", err=True)
        raise typer.Exit(int(exc.exit_code))
    if isinstance(exc, RespondError):
        typer.echo(f"error: {inert(exc.message, 2000)}", err=True)
        if exc.hint:
            typer.echo(f"hint: {inert(exc.hint, 2000)}", err=True)
        raise typer.Exit(int(exc.exit_code))
    typer.echo(f"error: unexpected {type(exc).__name__}: {inert(str(exc), 2000)}", err=True)
    typer.echo(
        "hint: rerun with --verbose for the traceback; the incident can be resumed.", err=True
    )
    raise typer.Exit(1)


def _settings(**flags: Any) -> Settings:
    from playbook.config.settings import Settings
    from playbook.secret import Secret

    otp = flags.pop("otp", None)
    approve = flags.pop("approve", None)
    non_interactive = flags.pop("non_interactive", False)
    return Settings.resolve(
        otp=Secret(otp) if otp else None,
        approve=frozenset(approve or ()),
        interactive=sys.stdin.isatty() and sys.stderr.isatty() and not non_interactive,
        **flags,
    )


def _session(settings: Settings, *, json_out: bool) -> Session:
    from playbook.core import Session, open_store
    from playbook.display import LiveReporter, PlainReporter

    reporter: Any = LiveReporter() if sys.stderr.isatty() and not json_out else PlainReporter()
    session = Session(settings, open_store(settings), reporter=reporter)
    session.on_wait = lambda why, wait: reporter.progress("wait", f"{why}: {wait:.1f}s")
    if settings.interactive:
        session.approver = _prompt_approver(reporter)
        session.otp_prompt = _otp_prompt(reporter)
    return session


def _otp_prompt(reporter: Any) -> Any:
    def ask(message: str) -> str | None:
        if hasattr(reporter, "pause"):
            reporter.pause()
        try:
            # Shown as typed, as npm's own prompt does: a one-time code is dead in seconds, and
            # getpass's terminal flush can swallow a code typed as the prompt appears.
            code: str = typer.prompt(message, default="", show_default=False, err=True)
            return code.strip() or None
        finally:
            if hasattr(reporter, "resume"):
                reporter.resume()

    return ask


def _prompt_approver(reporter: Any) -> Any:
    import asyncio

    from playbook.display import inert

    async def ask(request: ApprovalRequest) -> tuple[bool, str]:
        if hasattr(reporter, "pause"):
            reporter.pause()
        try:
            typer.echo(f"\nStep {request.key} ({request.spec.uses}) needs approval:", err=True)
            for action in request.plan.actions:
                typer.echo(
                    f"  {action.method} {inert(action.url)}  {inert(action.summary)}", err=True
                )
            granted = await asyncio.to_thread(typer.confirm, "Approve?", default=False, err=True)
            note = (
                await asyncio.to_thread(typer.prompt, "Note", default="", err=True)
                if granted
                else ""
            )
            return granted, note
        finally:
            if hasattr(reporter, "resume"):
                reporter.resume()

    return ask


def _drive(
    settings: Settings, json_out: bool, verbose: bool, work: Callable[[Session], RunResult]
) -> NoReturn:
    """Run `work` in a session with the live display, then print and exit with the run's code."""
    try:
        session = _session(settings, json_out=json_out)
        try:
            result = work(session)
        finally:
            stop = getattr(session.reporter, "stop", None)
            if stop is not None:  # leave the live table's last frame on screen
                stop()
    except Exception as exc:
        _fail(exc, verbose)
    _finish_run(session, result, json_out)


def _finish_run(session: Session, result: RunResult, json_out: bool) -> NoReturn:
    from playbook.core import result_json
    from playbook.errors import ExitCode

    if json_out:
        typer.echo(json.dumps(result_json(result), indent=2, sort_keys=True))
    else:
        _print_summary(result)
    if result.status == "awaiting_approval":
        waiting = [s.step_id for s in result.steps if s.status.value == "awaiting_approval"]
        typer.echo(
            f"next: respond approve {result.incident_id} {waiting[0]} --note '...'; "
            f"then respond resume {result.incident_id}",
            err=True,
        )
    code = {
        "done": ExitCode.OK,
        "planned": ExitCode.OK,
        "done_with_gaps": ExitCode.DONE_WITH_GAPS,
        "planned_with_gaps": ExitCode.DONE_WITH_GAPS,
        "awaiting_approval": ExitCode.AWAITING_APPROVAL,
    }.get(result.status, ExitCode.FAILED)
    if code == ExitCode.OK and not session.settings.dry_run:
        from playbook.core import not_contained

        for words in not_contained(result):  # a live run that ends uncontained says so
            typer.echo(f"error: {words}", err=True)
            code = ExitCode.NOT_CONTAINED
    raise typer.Exit(int(code))


def _print_summary(result: RunResult) -> None:
    from playbook.display import inert

    typer.echo(f"incident {result.incident_id}: {result.status}", err=True)
    for step in result.steps:
        detail = step.error or step.summary
        typer.echo(f"  {step.key:<28} {step.status.value:<18} {inert(detail, 160)}", err=True)


# -- commands -------------------------------------------------------------------------------------


@app.command()
def leak(
    specs: Annotated[
        list[str],
        typer.Argument(
            help="name@version or @scope/name@version; several make one incident.",
            show_default=False,
        ),
    ],
    runbook: Annotated[
        Path | None, typer.Option(help="Runbook YAML (default: the shipped npm-leak).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read only: plan every write, make none.")
    ] = False,
    yes: Yes = False,
    approve: ApproveOpt = None,
    non_interactive: NonInteractive = False,
    json_out: JsonOut = False,
    registry: Registry = None,
    otp: Otp = None,
    safe_version: Annotated[
        str | None, typer.Option(help="Move dist-tags to this version.")
    ] = None,
    unpublish_all: Annotated[
        bool,
        typer.Option(
            "--unpublish-all", help="Unpublish the whole package, not one version (needs approval)."
        ),
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Respond to leaked releases: size, contain, hunt copies, draft notices, report."""
    try:
        from playbook import core
        from playbook.config import npmrc
        from playbook.config.settings import Mode

        targets = core.parse_specs(specs)
        settings = _settings(
            mode=Mode.DRY_RUN if dry_run else Mode.LIVE,
            registry=registry,
            yes=yes,
            approve=approve,
            non_interactive=non_interactive,
            otp=otp,
            safe_version=safe_version,
            unpublish_all=unpublish_all,
        )
        book = core.load_runbook(runbook, settings)
        npmrc.check(settings)  # a bad .npmrc is one line and exit 2, before anything runs
    except Exception as exc:
        _fail(exc, verbose)
    _drive(settings, json_out, verbose, lambda session: core.leak(session, targets, book))


@app.command()
def resume(
    incident: IncidentArg,
    force: Annotated[
        bool, typer.Option("--force", help="Accept a runbook changed since the start.")
    ] = False,
    yes: Yes = False,
    approve: ApproveOpt = None,
    non_interactive: NonInteractive = False,
    json_out: JsonOut = False,
    registry: Registry = None,
    otp: Otp = None,
    verbose: Verbose = False,
) -> None:
    """Continue an incident: after a crash, a failure, or an approval."""
    from playbook import core

    try:
        settings = _settings(
            registry=registry,
            yes=yes,
            approve=approve,
            non_interactive=non_interactive,
            otp=otp,
        )
        from playbook.config import npmrc

        npmrc.check(settings)
    except Exception as exc:
        _fail(exc, verbose)
    _drive(settings, json_out, verbose, lambda session: core.resume(session, incident, force=force))


@app.command()
def approve(
    incident: IncidentArg,
    step: Annotated[str, typer.Argument(help="Step id to approve.")],
    note: Annotated[str, typer.Option(help="Why it is approved (kept in the audit trail).")] = "",
    verbose: Verbose = False,
) -> None:
    """Approve a step that waits for approval; then `respond resume` the incident."""
    try:
        from playbook import core

        settings = _settings()
        keys = core.approve(core.open_store(settings), incident, step, settings.operator, note)
    except Exception as exc:
        _fail(exc, verbose)
    typer.echo(
        f"approved {', '.join(keys)} as {settings.operator}; now: respond resume {incident}",
        err=True,
    )


@app.command()
def status(
    incident: Annotated[
        str | None, typer.Argument(help="Incident id (default: the newest).")
    ] = None,
    json_out: JsonOut = False,
    verbose: Verbose = False,
) -> None:
    """Show an incident's steps and their status."""
    try:
        from playbook import core
        from playbook.engine.runner import RunResult
        from playbook.errors import UnknownIncident

        store = core.open_store(_settings())
        if incident is None:
            incidents = store.list_incidents()
            if not incidents:
                raise UnknownIncident(
                    "No incidents yet.", "Start one with `respond leak name@version`."
                )
            incident = incidents[-1].id
        record = store.get_incident(incident)
        result = RunResult(record.id, record.status, store.steps(record.id))
    except Exception as exc:
        _fail(exc, verbose)
    if json_out:
        typer.echo(json.dumps(core.result_json(result), indent=2, sort_keys=True))
    else:
        _print_summary(result)


@app.command("list")
def list_incidents(json_out: JsonOut = False, verbose: Verbose = False) -> None:
    """List the incidents in the store."""
    try:
        from playbook import core

        incidents = core.open_store(_settings()).list_incidents()
    except Exception as exc:
        _fail(exc, verbose)
    rows = [
        {
            "id": i.id,
            "created_at": i.created_at,
            "mode": i.mode,
            "status": i.status,
            "targets": list(i.targets),
        }
        for i in incidents
    ]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(
            f"{row['id']:<44} {row['mode']:<10} {row['status']:<18} {' '.join(row['targets'])}"
        )


@runbook_app.command("validate")
def runbook_validate(
    files: Annotated[list[Path], typer.Argument(help="Runbook files.")],
    verbose: Verbose = False,
) -> None:
    """Load each runbook; report the first flaw of each with file, line and step."""
    from playbook import core
    from playbook.errors import ExitCode, RespondError

    try:
        settings = _settings()
    except Exception as exc:
        _fail(exc, verbose)
    failed = False
    for path in files:
        try:
            book = core.load_runbook(path, settings)
            typer.echo(f"ok: {path} ({len(book.steps)} steps)")
        except RespondError as exc:
            failed = True
            typer.echo(f"error: {exc.message}", err=True)
    if failed:
        raise typer.Exit(int(ExitCode.USAGE))


@runbook_app.command("show")
def runbook_show(
    file: Annotated[
        Path | None, typer.Argument(help="Runbook file (default: the shipped one).")
    ] = None,
    json_out: JsonOut = False,
    verbose: Verbose = False,
) -> None:
    """Show the step graph: order, what runs in parallel, which steps write, which need approval."""
    try:
        from playbook import core
        from playbook import steps as step_types

        book = core.load_runbook(file, _settings())
    except Exception as exc:
        _fail(exc, verbose)
    waves = [
        [_graph_step(spec, step_types.get(spec.uses)) for spec in map(book.step, ids)]
        for ids in book.levels()
    ]
    if json_out:
        doc = {
            "name": book.name,
            "waves": [
                {"wave": n, "steps": [e.as_json() for e in wave]} for n, wave in enumerate(waves, 1)
            ],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(
        f"{book.name}: {len(book.steps)} steps in {len(waves)} waves (a wave runs in parallel)"
    )
    for n, wave in enumerate(waves, 1):
        for e in wave:
            flags = [
                f
                for f, on in (
                    ("writes", e.writes),
                    ("destructive", e.destructive),
                    ("approval", e.approval),
                )
                if on
            ]
            needs = f" needs {', '.join(e.needs)}" if e.needs else ""
            typer.echo(f"  {n:>2}  {e.id:<16} {e.uses:<16} {' '.join(flags):<28}{needs}")


@dataclass(frozen=True)
class GraphStep:
    """One step of `respond runbook show`: what it is, what it needs, whether it writes."""

    id: str
    uses: str
    needs: tuple[str, ...]
    writes: bool
    destructive: bool
    approval: bool
    condition: str | None

    def as_json(self) -> dict[str, object]:
        """Its --json form (the runbook's own key `if` for the condition)."""
        return {
            "id": self.id,
            "uses": self.uses,
            "needs": list(self.needs),
            "writes": self.writes,
            "destructive": self.destructive,
            "approval": self.approval,
            "if": self.condition,
        }


def _graph_step(spec: StepSpec, kind: type[StepType] | None) -> GraphStep:
    return GraphStep(
        id=spec.id,
        uses=spec.uses,
        needs=tuple(spec.needs),
        writes=bool(kind and kind.mutates),
        destructive=bool(kind and kind.destructive),
        approval=spec.approval,
        condition=spec.condition,
    )


@app.command()
def rehearse(
    scenario: Annotated[
        str | None,
        typer.Option(
            help="sourcemap-leak (default), secret-in-release, compromised-maintainer, past-policy."
        ),
    ] = None,
    json_out: JsonOut = False,
    verbose: Verbose = False,
) -> None:
    """A game day against a local registry and a fake GitHub: real writes, to the sandbox only."""
    try:
        from playbook.display import LiveReporter, PlainReporter
        from playbook.rehearsal import run as rehearsal

        rehearsal.scenario(scenario)  # bad names fail before anything starts
        settings = _settings()
        reporter: Any = LiveReporter() if sys.stderr.isatty() and not json_out else PlainReporter()
        try:
            card = rehearsal.rehearse(
                settings.home,
                scenario,
                reporter=reporter,
                progress=lambda line: typer.echo(line, err=True),
            )
        finally:
            if hasattr(reporter, "stop"):
                reporter.stop()
    except KeyboardInterrupt:
        typer.echo("error: rehearsal interrupted; every process it started was stopped.", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        _fail(exc, verbose)
    if json_out:
        typer.echo(json.dumps(card.as_json(), indent=2))
    else:
        for line in rehearsal.scorecard_lines(card):
            typer.echo(line)
    raise typer.Exit(0 if card.status == "done" else 1)


@app.command()
def report(
    incident: IncidentArg,
    format: Annotated[str, typer.Option("--format", help="md, html or json.")] = "md",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    verbose: Verbose = False,
) -> None:
    """Write the incident report (blameless postmortem shape) from the record."""
    try:
        from playbook import core
        from playbook.errors import UsageError
        from playbook.fileio import write_atomic
        from playbook.notices import render_report

        if format not in ("md", "html", "json"):
            raise UsageError(f"--format {format!r} is not known; accepted: md, html, json.")
        settings = _settings()
        text = render_report(core.open_store(settings), incident, format, settings=settings)  # type: ignore[arg-type]
        if output is not None:
            write_atomic(output, text)
    except Exception as exc:
        _fail(exc, verbose)
    if output is None:
        typer.echo(text)
    else:
        typer.echo(f"wrote {output}", err=True)


@app.command()
def notices(incident: IncidentArg, json_out: JsonOut = False, verbose: Verbose = False) -> None:
    """List an incident's notices and where each stands."""
    try:
        from dataclasses import asdict

        from playbook import core
        from playbook.display import inert
        from playbook.notices import list_notices

        store = core.open_store(_settings())
        store.get_incident(incident)
        found = list_notices(store, incident)
    except Exception as exc:
        _fail(exc, verbose)
    if json_out:
        typer.echo(json.dumps([asdict(n) for n in found], indent=2))
        return
    for n in found:
        missing = f" missing: {', '.join(n.missing)}" if n.missing else ""
        typer.echo(f"{n.id:<40} {n.kind:<20} {n.status:<14} {inert(n.file)}{missing}")


NoticeIncident = Annotated[
    str | None, typer.Option("--incident", help="The incident (default: the one holding ID).")
]


@notice_app.command("sent")
def notice_sent(
    notice_id: Annotated[str, typer.Argument(help="Notice id (see `respond notices`).")],
    ref: Annotated[str | None, typer.Option(help="The host's ticket or reference.")] = None,
    incident: NoticeIncident = None,
    verbose: Verbose = False,
) -> None:
    """Record that a person reviewed and sent a notice (respond never sends one itself)."""
    try:
        from playbook import core

        view = core.track_notice(_settings(), notice_id, incident, sent=True, ref=ref)
    except Exception as exc:
        _fail(exc, verbose)
    typer.echo(f"{view.id}: {view.status}" + (f" (ref {view.ref})" if view.ref else ""), err=True)


@notice_app.command("resolve")
def notice_resolve(
    notice_id: Annotated[str, typer.Argument(help="Notice id (see `respond notices`).")],
    incident: NoticeIncident = None,
    verbose: Verbose = False,
) -> None:
    """Record that a notice's targets are down (a mirror recheck does this by itself)."""
    try:
        from playbook import core

        view = core.track_notice(_settings(), notice_id, incident, sent=False)
    except Exception as exc:
        _fail(exc, verbose)
    typer.echo(f"{view.id}: {view.status}", err=True)


@app.command()
def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    verbose: Verbose = False,
) -> None:
    """Write a commented respond.toml (organization details for notices) in this folder."""
    try:
        from playbook.config.org import init_text
        from playbook.errors import UsageError
        from playbook.fileio import write_atomic

        path = Path.cwd() / "respond.toml"
        if path.exists() and not force:
            raise UsageError(f"{path} exists; pass --force to overwrite it.")
        write_atomic(path, init_text())
    except Exception as exc:
        _fail(exc, verbose)
    typer.echo(f"wrote {path}: fill in [organization] and [official]", err=True)


ScanFormat = Annotated[
    str,
    typer.Option(
        "--format",
        help="text (default), json, or sarif (SARIF 2.1.0 for GitHub code scanning) on stdout.",
    ),
]
_SCAN_FORMATS = ("text", "json", "sarif")


@app.command()
def scan(
    target: Annotated[str, typer.Argument(help="A package folder, a .tgz, or name@version.")],
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Compare with this release instead: a version, name@version, a folder or a .tgz.",
        ),
    ] = None,
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="Judge the release on its own (absolute view).")
    ] = False,
    json_out: JsonOut = False,
    output_format: ScanFormat = "text",
    registry: Registry = None,
    verbose: Verbose = False,
) -> None:
    """The pre-publish guard: exit 1 when a release adds a leak (compared with the one before)."""
    try:
        from playbook import __version__, core
        from playbook.display import inert
        from playbook.errors import UsageError
        from playbook.scan import findings_doc, summary_lines
        from playbook.scan.output import sarif_base, sarif_doc

        if output_format not in _SCAN_FORMATS:
            raise UsageError(
                f"--format {output_format!r} is not a format respond scan writes; "
                f"accepted: {', '.join(_SCAN_FORMATS)}"
            )
        guarded = core.guard(
            _settings(registry=registry), target, baseline=baseline, no_baseline=no_baseline
        )
    except Exception as exc:
        _fail(exc, verbose)
    result, verdict = guarded.result, guarded.verdict
    if output_format == "sarif":
        path = Path(target).expanduser()
        base, artifact = sarif_base(path, Path.cwd()) if path.exists() else ("", "package.json")
        doc = sarif_doc(result, verdict, base=base, artifact=artifact, version=__version__)
        typer.echo(json.dumps(doc, indent=2))
    elif json_out or output_format == "json":
        doc = {**findings_doc(result), "verdict": verdict.as_json()}
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        stats = summary_lines(result)  # its own absolute verdict lines give way to the verdict's
        stats = stats[:1] + [s for s in stats[2:] if not s.startswith("  - ")]
        for line in [*verdict.lines(), *stats]:
            typer.echo(inert(line, 400))
    raise typer.Exit(verdict.exit_code)


@app.command()
def mirrors(
    args: Annotated[
        list[str], typer.Argument(help="INCIDENT to list its mirrors, or: recheck INCIDENT.")
    ],
    json_out: JsonOut = False,
    verbose: Verbose = False,
) -> None:
    """List an incident's mirrors with verdicts and evidence, or `recheck` them later."""
    try:
        from playbook import core
        from playbook.display import inert
        from playbook.errors import UsageError
        from playbook.mirrors.track import list_mirrors

        if len(args) == 2 and args[0] == "recheck":
            settings = _settings()
            session = _session(settings, json_out=True)
            changes = core.recheck_mirrors(session, args[1])
            incident = args[1]
        elif len(args) == 1:
            changes, incident = None, args[0]
            session = None
        else:
            raise UsageError("usage: respond mirrors INCIDENT, or respond mirrors recheck INCIDENT")
        store = session.store if session else core.open_store(_settings())
        found = list_mirrors(store, incident)
    except Exception as exc:
        _fail(exc, verbose)
    if json_out:
        payload: dict[str, Any] = {"mirrors": [m.to_record() for m in found]}
        if changes is not None:
            payload["changes"] = [vars(c) for c in changes]
        typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))
        return
    for c in changes or []:
        typer.echo(f"changed: {inert(c.url)} {c.field}: {c.old} -> {c.new}", err=True)
    for m in found:
        row = f"{m.verdict.value:<12} {m.matched:>5}/{m.total:<5} {m.status:<14} {m.url}"
        typer.echo(inert(row, 400))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
