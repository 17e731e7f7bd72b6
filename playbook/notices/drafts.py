"""Which notices an incident needs, and drafting each one from its template."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from playbook.clock import utcnow
from playbook.config.org import ORG_FIELDS, OrgConfig
from playbook.mirrors.model import Mirror
from playbook.notices import dmca
from playbook.notices.checklist import (
    CdnExtra,
    DmcaExtra,
    Extra,
    ForgeCopiesExtra,
    NpmCopiesExtra,
    SecretsExtra,
    checklist,
    secret_places,
    template_vars,
)
from playbook.notices.claims import ClaimKind, claims
from playbook.notices.model import Notice, NoticeStatus, StatementRecord
from playbook.notices.render import Renderer, blanks, missing
from playbook.notices.view import IncidentView, TargetView

STATEMENTS = {
    "read_guide": Markup(dmca.READ_GUIDE),
    "forks": Markup(dmca.FORKS_CONFIRMATION),
    "good_faith": Markup(dmca.GOOD_FAITH),
    "perjury": Markup(dmca.PERJURY),
    "network": Markup(dmca.NETWORK_STATEMENT),
}
# The steps a public timeline shows, by what they did rather than by their runbook ids.
CONTAINMENT_STEPS = {
    "npm.retag": "dist-tags moved off the version",
    "npm.deprecate": "version deprecated",
    "npm.unpublish": "unpublish attempted",
    "npm.verify": "containment verified on the registry",
    "cdn.check": "CDN copies checked",
}
CDN_BASES = {"jsdelivr": "https://cdn.jsdelivr.net/npm", "unpkg": "https://unpkg.com"}


@dataclass(frozen=True)
class Spec:
    """One notice to draft: its identity, template and the data only it needs."""

    id: str
    kind: str
    title: str
    template: str
    target: TargetView | None
    mirrors: tuple[Mirror, ...] = ()
    extra: Extra = None


@dataclass(frozen=True)
class Draft:
    """A rendered notice: the notice to store, where its file goes, and its text."""

    notice: Notice
    file: str
    text: str
    statements: Mapping[str, dmca.StatementDecision] = field(default_factory=dict)  # by network

    @property
    def record(self) -> dict[str, Any]:
        """The notice as it is stored (its JSON form)."""
        return self.notice.to_record()


def org_context(org: OrgConfig) -> dict[str, Any]:
    """Every organization detail, or its visible [MISSING: ...] blank."""
    return {name: org.detail(name) or missing(name) for name in ORG_FIELDS}


def draft_notices(
    view: IncidentView,
    org: OrgConfig,
    *,
    target: str | None = None,
    network_statement: bool = False,
    per_network: bool | None = None,
    renderer: Renderer | None = None,
    now: str | None = None,
) -> list[Draft]:
    """Render every notice the incident calls for; sent and resolved ones are left alone.

    One GitHub DMCA notice covers every fork network of the incident, a section each, unless
    `per_network` (or respond.toml's [notices] dmca_per_network) asks for one per network. GitHub's
    form takes one answer to "the entire repository or specific files", so entire-repository
    claims (`dmca-github`) and specific-file claims (`dmca-github-files`) are two notices.
    """
    renderer = renderer or Renderer(org.templates_dir)
    existing = {n.id: n for n in view.notices}
    split = org.notices.dmca_per_network if per_network is None else per_network
    drafts = []
    specs = notice_specs(
        view, org, target=target, network_statement=network_statement, per_network=split
    )
    for spec in specs:
        if spec.kind == "dmca-github":
            fresh = _not_yet_sent(spec, view.notices)
            if fresh is None:
                continue
            spec = fresh
        elif (old := existing.get(spec.id)) is not None and old.status.final:
            continue
        drafts.append(_draft(view, org, spec, renderer, now or utcnow()))
    return drafts


def _not_yet_sent(spec: Spec, notices: tuple[Notice, ...]) -> Spec | None:
    """The DMCA notice cut down to copies no sent DMCA notice names, or None if none is left.

    When a notice of the same id was sent already, the copies found since get a further notice
    (`<id>-2`, redrafted in place until it is sent in turn).
    """
    if not isinstance(spec.extra, DmcaExtra):
        raise TypeError(f"notice {spec.id} is a DMCA notice without its networks")
    networks = spec.extra.networks
    covered = {u for n in notices if n.kind == spec.kind and n.status.final for u in n.mirrors}
    later = tuple(n for n in (_uncovered(n, covered) for n in networks) if n is not None)
    if not later:
        return None
    numbered = re.compile(rf"{re.escape(spec.id)}(-\d+)?")
    family = [n for n in notices if numbered.fullmatch(n.id)]
    sent = [n for n in family if n.status.final]
    open_ids = [n.id for n in family if not n.status.final]
    notice_id = spec.id if not sent else open_ids[0] if open_ids else f"{spec.id}-{len(family) + 1}"
    cut = any(u in covered for n in networks for u in (m.url for m in n.listed))
    return dataclasses.replace(
        spec,
        id=notice_id,
        title=f"{spec.title} (copies found later)" if cut else spec.title,
        mirrors=tuple(m for n in later for m in n.listed),
        extra=dataclasses.replace(spec.extra, networks=later),
    )


def _uncovered(network: dmca.Network, covered: set[str]) -> dmca.Network | None:
    """The network cut down to repositories no sent notice names, or None if none is left."""
    copies = tuple(m for m in network.copies if m.url not in covered)
    partials = tuple(m for m in network.partials if m.url not in covered)
    if not copies and not partials:
        return None
    claims = tuple(c for c in network.claims if c.mirror.url not in covered)
    return dataclasses.replace(network, copies=copies, partials=partials, claims=claims)


def notice_specs(
    view: IncidentView,
    org: OrgConfig,
    *,
    target: str | None,
    network_statement: bool,
    per_network: bool = False,
) -> list[Spec]:
    targets = [t for t in view.targets if target is None or t.spec == target]
    networks = dmca.networks(view.mirrors, org.official)
    if per_network:
        specs = [
            s
            for n, slug in zip(networks, _slugs(networks), strict=True)
            for s in _dmca_specs([n], network_statement, slug)
        ]
    else:
        specs = _dmca_specs(networks, network_statement, "") if networks else []
    specs += _npm_copyright(view, org)
    specs += _forge_copyright(view, org)
    for t in targets:
        specs += _target_specs(view, org, t)
    return specs


# GitHub's form takes one answer to "Based on the above, I confirm that": a notice per answer.
CLAIM_TITLES = {
    ClaimKind.ENTIRE: "entire repositories",
    ClaimKind.FILES: "specific files",
}


def _dmca_specs(group: list[dmca.Network], requested: bool, base: str) -> list[Spec]:
    """The notices for one group of networks (`base`: the slug of a network notice on its own):
    entire-repository claims, then specific files."""
    decisions = {n.root: dmca.decide_statement(n, requested) for n in group}
    if base:
        where = f"{group[0].name} fork network"
    else:
        count = len(group)
        where = f"{count} fork network{'s' if count > 1 else ''}"
    ids = {
        ClaimKind.ENTIRE: "-".join(filter(None, ("dmca-github", base))),
        ClaimKind.FILES: "-".join(filter(None, ("dmca-github-files", base))),
    }
    cut = {k: [n for n in (dmca.by_kind(net, k) for net in group) if n is not None] for k in ids}
    specs = []
    for kind, networks in cut.items():
        if not networks:
            continue
        other = ClaimKind.FILES if kind is ClaimKind.ENTIRE else ClaimKind.ENTIRE
        specs.append(
            Spec(
                id=ids[kind],
                kind="dmca-github",
                title=f"GitHub DMCA takedown notice: {CLAIM_TITLES[kind]}, {where}",
                template="notices/dmca-github.md.j2",
                target=None,
                mirrors=tuple(m for n in networks for m in n.listed),
                extra=DmcaExtra(
                    networks=tuple(networks),
                    claim_kind=str(kind),
                    sibling=ids[other] if cut[other] else None,
                    decisions={n.root: decisions[n.root] for n in networks},
                ),
            )
        )
    return specs


def _slugs(networks: list[dmca.Network]) -> list[str]:
    """Each network's slug, made unique: a/b-c and a-b/c must not share a notice file."""
    seen: dict[str, int] = {}
    slugs = []
    for network in networks:
        n = seen[network.slug] = seen.get(network.slug, 0) + 1
        slugs.append(network.slug if n == 1 else f"{network.slug}-n{n}")
    return slugs


def _npm_copyright(view: IncidentView, org: OrgConfig) -> list[Spec]:
    copies = _listed(view, org, "npm")
    if not copies:
        return []
    found = claims(copies)
    return [
        Spec(
            "dmca-npm",
            "dmca-npm",
            "GitHub DMCA takedown notice (npm.js content): republished copies",
            "notices/dmca-npm.md.j2",
            None,
            copies,
            NpmCopiesExtra(tuple(found[m.url] for m in copies)),
        )
    ]


# Hosts other than GitHub whose copies get a DMCA-shaped notice of their own (GitHub's form and
# its fork-network rules are GitHub's alone).
FORGES = {"gitlab.com": "GitLab", "codeberg.org": "Codeberg"}


def _listed(view: IncidentView, org: OrgConfig, host: str) -> tuple[Mirror, ...]:
    """Copies on one host a notice names: never the organization's own, whatever the overlap."""
    return tuple(
        m
        for m in view.mirrors
        if m.host == host
        and m.verdict in dmca.LISTED_VERDICTS
        and m.status != "resolved"
        and not dmca.is_official(m, org.official)
    )


def _forge_copyright(view: IncidentView, org: OrgConfig) -> list[Spec]:
    specs = []
    for host, label in FORGES.items():
        copies = _listed(view, org, host)
        if copies:
            specs.append(
                Spec(
                    f"forge-copyright-{label.lower()}",
                    "forge-copyright",
                    f"{label} copyright (DMCA) notice: copies of the leaked source",
                    "notices/forge-copyright.md.j2",
                    None,
                    copies,
                    ForgeCopiesExtra(label, tuple(claims(copies).values())),
                )
            )
    return specs


def _target_specs(view: IncidentView, org: OrgConfig, t: TargetView) -> list[Spec]:
    specs = []
    secrets = t.scan.secrets if t.scan else ()
    github_claims = [c for n in dmca.networks(view.mirrors, org.official) for c in n.claims]
    places = secret_places(secrets, github_claims)
    if places:
        specs.append(
            Spec(
                f"private-info-github-{t.slug}",
                "private-info-github",
                f"GitHub private-information removal request: credentials from {t.spec}",
                "notices/private-info-github.md.j2",
                t,
                tuple(dict.fromkeys(p.claim.mirror for p in places)),
                SecretsExtra(secrets, tuple(places)),
            )
        )
    if t.unpublish and t.unpublish.support_request_needed:
        specs.append(
            Spec(
                f"npm-support-{t.slug}",
                "npm-support",
                f"npm support request: unpublish {t.spec}",
                "notices/npm-support.md.j2",
                t,
            )
        )
    specs += _cdn_specs(t)
    specs.append(
        Spec(
            f"advisory-{t.slug}",
            "advisory",
            f"Security advisory: {t.spec}",
            "notices/advisory.md.j2",
            t,
        )
    )
    specs.append(
        Spec(
            f"customer-{t.slug}",
            "customer",
            f"Customer notice: {t.spec}",
            "notices/customer.md.j2",
            t,
        )
    )
    return specs


def _cdn_specs(t: TargetView) -> list[Spec]:
    copies = t.cdn.copies if t.cdn else ()
    needed = set(t.cdn.requests_needed if t.cdn else ())
    specs = []
    for cdn, base in CDN_BASES.items():
        urls = tuple(c.url for c in copies if c.cdn == cdn and c.url)
        if cdn not in needed and not urls:
            continue
        specs.append(
            Spec(
                f"{cdn}-{t.slug}",
                cdn,
                f"Removal request to {'jsDelivr' if cdn == 'jsdelivr' else 'unpkg'}: {t.spec}",
                f"notices/{cdn}.md.j2",
                t,
                extra=CdnExtra(f"{base}/{t.name}@{t.version}/", urls),
            )
        )
    return specs


def _draft(view: IncidentView, org: OrgConfig, spec: Spec, renderer: Renderer, now: str) -> Draft:
    context: dict[str, Any] = {
        "incident": view.incident,
        "targets": view.targets,
        "target": spec.target,
        "org": org_context(org),
        "given": [name for name in ORG_FIELDS if org.detail(name)],
        "statements": STATEMENTS,
        "containment": CONTAINMENT_STEPS,
        "official": org.official,
        "notice": {"id": spec.id, "kind": spec.kind, "title": spec.title},
        "mirrors": spec.mirrors,
        "generated_at": now,
        "checklist": (),
        **template_vars(spec.extra),
    }
    # Twice: the checklist names the blanks the text is left with (it adds none of its own).
    gaps = blanks(renderer.render(spec.template, context))
    context["checklist"] = checklist(view, spec.kind, spec.extra, spec.mirrors, gaps, now)
    text = renderer.render(spec.template, context)
    gaps = blanks(text)
    prefix = f"{spec.target.slug}/" if spec.target and len(view.targets) > 1 else ""
    file = f"{prefix}notices/{spec.id}.md"
    dmca_extra = spec.extra if isinstance(spec.extra, DmcaExtra) else None
    decisions = dmca_extra.decisions if dmca_extra else {}
    networks = {n.root: n.name for n in dmca_extra.networks} if dmca_extra else {}
    statements = {networks[root]: d for root, d in decisions.items() if root in networks}
    notice = Notice(
        id=spec.id,
        kind=spec.kind,
        title=spec.title,
        status=NoticeStatus.NEEDS_DETAILS if gaps else NoticeStatus.DRAFTED,
        file=file,
        mirrors=tuple(m.url for m in spec.mirrors),
        missing=tuple(gaps),
        rehearsal=view.incident.is_draft,
        target=spec.target.spec if spec.target else None,
        drafted_at=now,
        network_statements=tuple(
            StatementRecord(d.requested, d.included, d.reason, name)
            for name, d in statements.items()
        ),
    )
    return Draft(notice, file, text, statements)
