"""Proof: each candidate's file tree against the leaked files' hashes, and the verdict it earns.

One request per GitHub candidate, two when anything matches (see "Evidence, kept for the
notices" below), none for a fork proven by identity (below):
`git/trees/<default branch or HEAD>?recursive=1` lists every file with its git
blob SHA-1, intersected with the manifest's first-party blob SHA-1s. A blob SHA
matches by content wherever the file sits, so renamed and moved files match as they are.
A repository whose last push (`pushed_at`, carried by every listing) is older than the publish
time cannot hold the leak and is `unrelated` at no cost: the vendor's thousands of legitimate
forks mostly end there.

Forks proven by identity: a fork from a GraphQL listing comes with its default branch's commit
and that commit's tree oid. When that tree SHA is a tree verified earlier in the pass (forks sort
after the repositories they were found from), the fork gets that tree's verdict and matched
files with its own commit and tree SHA as the evidence: git addresses content, so equal tree
SHAs mean identical files. Only distinct trees are fetched; one whose SHA is the listed tree oid
is pinned to the listed commit (no commit request either). A fork that removed the leak has
another tree, is fetched, and is judged for what it holds.

Reformatted files: only when blob matching is partial (some files match, not enough for `copy`),
tree entries whose path or file name matches a leaked file that did not match are downloaded
(`git/blobs/<sha>`) and compared by `norm_sha256` (whitespace removed), stopping as soon as the
`copy` threshold is reached; only when that many downloads could reach it (a candidate that
would need more than the limits allow is left `partial` without a download); at most
DOWNLOADS_PER_CANDIDATE per candidate and at most
max(DOWNLOAD_FLOOR, DOWNLOAD_SHARE x candidates) in a whole pass, so verifying N candidates costs
at most N + max(24, N / 10) GitHub requests.

Verdicts:
- `official`: on respond.toml's [official] allowlist, whatever it holds.
- `copy`: at least COPY_RATIO (half) of the distinctive first-party files are present, byte-
  identical or identical but for whitespace. Why half: a notice that calls a repository a copy
  says the repository as a whole reproduces the work; half of the original files, each proven by
  its hash, is a substantial part of it by any reading, and no legitimate repository carries half
  of an unreleased code base. Below that, the notice must name files, which `partial` does.
- `partial`: at least one distinctive file matches (the notice lists the matched files).
- `unrelated`: none does. Files under MIN_EVIDENCE_BYTES and files that also sit in an official
  repository are never evidence, so legitimate forks of the vendor's public repository, which
  carry the files the vendor itself published, come out `unrelated`, never `copy`.
- `disabled`: GitHub answers "Repository access blocked"; `unreachable`: deleted, private or
  failing (a failure sets `error`, and a recheck then keeps the old verdict); an empty
  repository is `unrelated`.

Evidence, kept for the notices: every matched path (as the candidate's tree names it, beside the
leaked file it matches), the tree's SHA, the count of files outside vendored folders, and for a
GitHub repository that matched anything, the commit its branch pointed at (one more request,
only for those), so every file a notice names is a permalink at the commit that was checked.
Should the branch have moved between the two requests, the tree at that commit is checked again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from playbook.clock import utcnow
from playbook.config.org import Official
from playbook.errors import RespondError
from playbook.mirrors.fingerprints import Fingerprints, Manifest
from playbook.mirrors.model import Candidate, Mirror, Verdict, is_vendored
from playbook.mirrors.network import annotate
from playbook.mirrors.official import is_official
from playbook.net.governor import BudgetSpent
from playbook.scan.fingerprint import norm_sha256
from playbook.services.archive import SWH
from playbook.services.forge import ForgeRepo, codeberg, gitlab
from playbook.services.github import GITHUB, Commit, Tree, TreeState, github_api
from playbook.services.hub import Services

COPY_RATIO = 0.5
DOWNLOADS_PER_CANDIDATE = 24
DOWNLOAD_SHARE = 0.1
DOWNLOAD_FLOOR = 24
SAMPLE_PATHS = 10
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Match:
    blob: frozenset[str]  # manifest paths present by git blob SHA-1
    content: frozenset[str]  # further manifest paths identical after whitespace removal
    sample: tuple[str, ...]  # matched paths as the candidate's tree names them
    tree_files: int
    pairs: tuple[tuple[str, str], ...] = ()  # (path in the tree, leaked path), every match
    unvendored: int = 0  # files in the tree outside VENDORED folders
    tree_sha: str = ""
    commit: Commit | None = None

    @property
    def matched(self) -> int:
        return len(self.blob | self.content)


def match_tree(entries: Iterable[tuple[str, str]], fp: Fingerprints, tree_sha: str = "") -> Match:
    files = list(entries)
    matched: set[str] = set()
    sample: list[str] = []
    pairs: list[tuple[str, str]] = []
    for path, sha in files:
        paths = fp.by_sha.get(sha)
        if paths:
            matched |= paths
            pairs += [(path, leaked) for leaked in sorted(paths)]
            if len(sample) < SAMPLE_PATHS:
                sample.append(path)
    unvendored = sum(1 for path, _ in files if not is_vendored(path))
    return Match(
        frozenset(matched), frozenset(), tuple(sample), len(files), tuple(pairs), unvendored,
        tree_sha,
    )  # fmt: skip


def copy_threshold(total: int) -> int:
    return max(1, math.ceil(COPY_RATIO * total))


def decide(matched: int, total: int) -> Verdict:
    if total > 0 and matched >= copy_threshold(total):
        return Verdict.COPY
    return Verdict.PARTIAL if matched > 0 else Verdict.UNRELATED


def evidence_line(match: Match, fp: Fingerprints) -> str:
    pct = 100.0 * match.matched / fp.total if fp.total else 0.0
    text = (
        f"{match.matched:,} of {fp.total:,} first-party files match "
        f"({len(match.blob):,} by git blob SHA-1"
    )
    if match.content:
        text += f", {len(match.content):,} identical but for whitespace"
    text += f"; {pct:.1f}%) in a tree of {match.tree_files:,} files"
    if fp.not_counted:
        text += f"; {fp.not_counted:,} tiny or officially published files not counted"
    return text


class Verifier:
    """Verifies candidates; GitHub requests go one at a time through the host's governor."""

    def __init__(
        self,
        manifest: Manifest,
        services: Services,
        official: Official,
        *,
        progress: Progress = lambda _m: None,
        target: str = "",
        manifest_file: str = "",
        published_at: str | None = None,
    ) -> None:
        self.manifest = manifest
        self.services = services
        self.official = official
        self.progress = progress
        self.target = target
        self.manifest_file = manifest_file
        self.published = _when(published_at)
        self.fp = Fingerprints.build(manifest)
        self.downloads_left = DOWNLOAD_FLOOR
        self.budget_note = ""
        self._public_shas: set[str] = set()
        # Trees verified in this pass, by tree SHA: a fork listed with the same tree oid holds
        # the same files (git addresses content) and is judged from it without a request.
        self._trees: dict[str, tuple[Candidate, Tree, Match]] = {}
        self.by_identity = 0

    async def run(self, candidates: Iterable[Candidate]) -> list[Mirror]:
        cands = sorted(candidates, key=_order)
        self.downloads_left = max(DOWNLOAD_FLOOR, int(DOWNLOAD_SHARE * len(cands)))
        official = [c for c in cands if c.kind == "repo" and is_official(c, self.official)]
        mirrors = {m.url: m for m in await self._run_group(official)}
        public = set(self._public_shas)
        self.fp = Fingerprints.build(self.manifest, public)
        rest = [c for c in cands if c.url not in mirrors]
        groups = [[c for c in rest if _group(c) == g] for g in ("github", "forge", "other")]
        for done in await asyncio.gather(*(self._run_group(g) for g in groups)):
            mirrors.update((m.url, m) for m in done)
        return _archives_of_copies(annotate([mirrors[c.url] for c in cands if c.url in mirrors]))

    async def _run_group(self, cands: list[Candidate]) -> list[Mirror]:
        out: list[Mirror] = []
        for n, cand in enumerate(cands):
            try:
                out.append(await self.verify_one(cand))
            except BudgetSpent as exc:
                self.budget_note = exc.message
                out += [self._mirror(c, Verdict.UNVERIFIED, exc.message) for c in cands[n:]]
                break
            except RespondError as exc:
                failed = self._mirror(cand, Verdict.UNREACHABLE, exc.message)
                out.append(replace(failed, error=exc.message))
        return out

    async def verify_one(self, cand: Candidate) -> Mirror:
        self.progress(f"verifying {cand.name}")
        if cand.kind == "archive" or cand.host == SWH:
            return self._mirror(
                cand,
                Verdict.UNVERIFIED,
                "archived origin: the archive's copy "
                "is not verified here; a takedown request names the origin",
            )
        if cand.host == "npm" and is_official(cand, self.official):
            return self._mirror(cand, Verdict.OFFICIAL, "an npm scope on the official allowlist")
        if cand.host == "npm":
            from playbook.mirrors.npmcopies import package_files

            entries = await package_files(self.services, self.manifest.package, cand.name)
            return self._judge(cand, match_tree(entries, self.fp))
        if self._untouched(cand):
            return self._mirror(
                cand,
                Verdict.UNRELATED,
                f"last push {cand.pushed_at} is before "
                "the version was published: it cannot hold the leak",
            )
        proven = self._same_tree(cand)
        if proven is not None:
            return proven
        tree = await self._tree(cand)
        if tree.state is not TreeState.OK:
            return self._gone(cand, tree)
        match = match_tree(tree.entries, self.fp, tree.sha)
        if is_official(cand, self.official):
            self._public_shas |= {sha for _, sha in tree.entries}
        elif cand.host == GITHUB:
            match = await self._reformatted(cand, tree, match)
            if match.matched:
                tree, match = await self._pinned(cand, tree, match)
            if tree.sha and not tree.truncated:
                self._trees.setdefault(tree.sha, (cand, tree, match))
        mirror = self._judge(cand, match)
        if tree.truncated:
            mirror = replace(mirror, evidence=mirror.evidence + "; the tree listing was truncated")
        return mirror

    def _untouched(self, cand: Candidate) -> bool:
        """Not pushed to since before the publish time (free to tell: listings carry pushed_at)."""
        pushed = _when(cand.pushed_at)
        return (
            self.published is not None
            and pushed is not None
            and pushed < self.published
            and not is_official(cand, self.official)
        )

    def _same_tree(self, cand: Candidate) -> Mirror | None:
        """A GitHub fork whose listed tree oid is a tree verified in this pass: judged from that
        tree, its own commit and tree oid the evidence (git addresses content: same oid, same
        files). None when no verified tree matches."""
        known = self._trees.get(cand.tree_sha or "")
        if cand.host != GITHUB or not cand.commit_sha or known is None:
            return None
        if is_official(cand, self.official):
            return None
        first, _tree, match = known
        match = replace(
            match, tree_sha=str(cand.tree_sha), commit=Commit(cand.commit_sha, str(cand.tree_sha))
        )
        mirror = self._judge(cand, match)
        self.by_identity += 1
        proof = (
            f"; its default branch ({cand.default_branch or 'HEAD'}) at commit "
            f"{cand.commit_sha} has tree {cand.tree_sha}, the tree verified in {first.name}: "
            "the same tree SHA, so the same files"
        )
        return replace(mirror, evidence=mirror.evidence + proof)

    async def _tree(self, cand: Candidate) -> Tree:
        if cand.host == GITHUB:
            # By branch, not by the listed commit: a recheck asks the same URL (an ETag 304),
            # and a tree SHA equal to the listed one pins it to the listed commit (_pinned).
            ref = cand.default_branch or "HEAD"
            return await github_api(self.services).tree(cand.name, ref)
        forge = gitlab(self.services) if cand.host == "gitlab.com" else codeberg(self.services)
        repo = ForgeRepo(
            cand.host, cand.name, cand.url, cand.api_id or cand.name, cand.default_branch
        )
        return await forge.tree(repo)

    async def _pinned(self, cand: Candidate, tree: Tree, match: Match) -> tuple[Tree, Match]:
        """The commit the branch points at; the tree at that commit if the branch moved."""
        if cand.commit_sha and cand.tree_sha and tree.sha == cand.tree_sha:
            return tree, replace(match, commit=Commit(cand.commit_sha, cand.tree_sha))
        gh = github_api(self.services)
        commit = await gh.commit(cand.name, cand.default_branch or "HEAD")
        if commit is None:
            return tree, match
        if commit.tree_sha and tree.sha and commit.tree_sha != tree.sha:
            moved = await gh.tree(cand.name, commit.sha)
            if moved.state is not TreeState.OK:
                return tree, match  # no permalink: the notice shows the blank
            tree = moved
            match = await self._reformatted(cand, tree, match_tree(tree.entries, self.fp, tree.sha))
        return tree, replace(match, commit=commit)

    async def _reformatted(self, cand: Candidate, tree: Tree, match: Match) -> Match:
        """Bounded downloads compared by norm_sha256; only when blob matching is partial."""
        needed = copy_threshold(self.fp.total) - match.matched
        limit = min(DOWNLOADS_PER_CANDIDATE, self.downloads_left)
        if not match.blob or needed <= 0 or needed > limit:
            return match  # a copy already, or downloads this few cannot make it one
        pending = [
            (path, sha)
            for path, sha in tree.entries
            if sha not in self.fp.by_sha
            and any(p not in match.blob for p in self.fp.paths_for_tree_path(path))
        ]
        if len(pending) < needed:
            return match
        found: set[str] = set()
        pairs: list[tuple[str, str]] = []
        gh = github_api(self.services)
        for path, sha in pending[:limit]:
            self.downloads_left -= 1
            data = await gh.blob(cand.name, sha)
            if data is not None:
                new = self.fp.by_norm.get(norm_sha256(data), frozenset()) - match.blob
                found |= new
                pairs += [(path, leaked) for leaked in sorted(new)]
            if len(found) >= needed:
                break
        return replace(match, content=frozenset(found), pairs=match.pairs + tuple(pairs))

    def _judge(self, cand: Candidate, match: Match) -> Mirror:
        verdict = (
            Verdict.OFFICIAL
            if is_official(cand, self.official)
            else decide(match.matched, self.fp.total)
        )
        return self._mirror(cand, verdict, evidence_line(match, self.fp), match)

    def _gone(self, cand: Candidate, tree: Tree) -> Mirror:
        if tree.state is TreeState.BLOCKED:
            why = f'the host answers "{tree.reason or "Repository access blocked"}" (a takedown)'
            return self._mirror(cand, Verdict.DISABLED, why)
        if tree.state is TreeState.EMPTY:
            return self._mirror(cand, Verdict.UNRELATED, "an empty repository (no commits)")
        return self._mirror(cand, Verdict.GONE, "HTTP 404: deleted, renamed or private")

    def _mirror(
        self, cand: Candidate, verdict: Verdict, evidence: str, match: Match | None = None
    ) -> Mirror:
        return Mirror(
            url=cand.url,
            host=cand.host,
            kind=cand.kind,
            name=cand.name,
            verdict=verdict,
            description=cand.description,
            matched=match.matched if match else 0,
            total=self.fp.total,
            tree_files=match.tree_files if match else 0,
            sample_paths=match.sample if match else (),
            parent=cand.parent,
            network_root=cand.source,
            found_by=cand.found_by,
            checked_at=utcnow(),
            evidence=evidence,
            matched_by_blob=len(match.blob) if match else 0,
            matched_by_content=len(match.content) if match else 0,
            default_branch=cand.default_branch,
            forks_count=cand.forks_count,
            forks_listed=cand.forks_listed,
            api_id=cand.api_id,
            target=self.target,
            manifest_file=self.manifest_file,
            pushed_at=cand.pushed_at,
            commit_sha=match.commit.sha if match and match.commit else None,
            tree_sha=(match.tree_sha or None) if match else None,
            matched_paths=match.pairs if match else (),
            unvendored_files=match.unvendored if match else 0,
        )


def _archives_of_copies(mirrors: list[Mirror]) -> list[Mirror]:
    """Say so when an archived origin is a repository verified as a copy (the archive keeps it)."""
    copies = {m.url for m in mirrors if m.verdict is Verdict.COPY}
    return [
        replace(
            m,
            evidence=f"archives {m.name}, verified a copy; the archived snapshot itself "
            "is not verified here",
        )
        if m.kind == "archive" and m.name in copies
        else m
        for m in mirrors
    ]


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _group(cand: Candidate) -> str:
    if cand.host == GITHUB:
        return "github"
    return "forge" if cand.host in ("gitlab.com", "codeberg.org") else "other"


def _order(cand: Candidate) -> tuple[int, str]:
    """Searched roots before forks: a budget running out leaves the deepest forks unverified."""
    return (1 if cand.fork else 0, cand.url)
