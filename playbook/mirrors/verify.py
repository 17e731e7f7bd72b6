"""Proof: each candidate's file tree against the leaked files' hashes, and the verdict it earns.

One request per distinct GitHub tree, and a GraphQL query per HEADS_PER_QUERY (100) GitHub
candidates found by search (below); none for a repository proven by identity:
`git/trees/<tree oid>?recursive=1` lists every file with its git blob SHA-1, intersected with the
manifest's first-party blob SHA-1s. A blob SHA matches by content wherever the file sits, so
renamed and moved files match as they are.
A repository whose last push (`pushed_at`, carried by every listing) is older than the publish
time cannot hold the leak and is `unrelated` at no cost: the vendor's thousands of legitimate
forks mostly end there.

Heads first: a fork from a GraphQL listing comes with its default branch's commit and that
commit's tree oid; the repositories found by search (and stored mirrors being rechecked) get
theirs before verification starts, HEADS_PER_QUERY a GraphQL query (one point each: no
connection), with their last push (code search's listing does not carry it). The tree is then
listed by that tree oid, so the files checked are exactly those of the commit a notice cites
(a branch moving between the query and the tree request changes nothing), and no commit request
is needed. Without a token, when GraphQL fails or its points run out, or for a repository it
did not resolve, the REST path stands: the tree by branch, then (for a tree that matched
anything) the commit the branch points at, the tree at that commit again should the branch have
moved in between; the coverage says which path each part of the pass took.

Proven by identity: when a candidate's tree oid is a tree verified earlier in the pass (roots
sort before forks), it gets that tree's verdict and matched files with its own commit and tree
SHA as the evidence: git addresses content, so equal tree SHAs mean identical files. Only
distinct trees are fetched. A fork that removed the leak has another tree, is fetched, and is
judged for what it holds.

Reformatted files (prettier, a re-indent: other blobs at the same paths): when blob matches
alone do not make a copy but enough tree entries sit at leaked paths (or carry a leaked file's
name) with other content to reach the `copy` threshold, an evenly spread sample of them is
downloaded (`git/blobs/<sha>`): SAMPLE_BLOBS files, half that when some files already match by
blob. Each is compared with its leaked file: identical but for whitespace (`norm_sha256`), else by
token fingerprints (playbook.scan.winnow: winnowing over identifier and literal tokens, so
quotes, semicolons, trailing commas and line wrapping do not count), similar at SIMILAR (0.8) or
more. Each proven file is evidence with its similarity. When every sampled file proves to be its
leaked file reformatted, the other entries at leaked paths are counted as reformatted too; the
first sampled file that is not ends the sample and keeps them out. Takedown claims name the
proven files only. At most max(DOWNLOAD_FLOOR, DOWNLOAD_SHARE x candidates) downloads in a whole
pass (a candidate the allowance cannot sample whole is named in the coverage), so verifying N
candidates costs at most N / 100 + N + max(24, N / 10) GitHub requests with a token (distinct
trees only), and N more commit requests at most on the REST path.

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
leaked file it matches), the tree's SHA, the count of files outside vendored folders, and the
commit whose tree was checked (its head, above), so every file a notice names is a permalink at
the commit that was checked. A GitLab or Codeberg candidate costs two requests, matched or not:
its branch's commit, then the tree at that commit (playbook.services.forge), so its evidence and
its permalinks agree.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from playbook.clock import utcnow
from playbook.config.org import Official
from playbook.gaps import is_outside_failure, reason
from playbook.mirrors.coverage import Coverage, Gap, GapKind, Searched
from playbook.mirrors.fingerprints import Fingerprints, Manifest
from playbook.mirrors.model import Candidate, Mirror, Verdict, is_vendored
from playbook.mirrors.network import annotate
from playbook.mirrors.official import is_official
from playbook.net.governor import BudgetSpent
from playbook.scan.fingerprint import norm_sha256
from playbook.scan.winnow import SIMILAR, similarity
from playbook.services.archive import SWH
from playbook.services.forge import ForgeRepo, codeberg, gitlab
from playbook.services.github import GITHUB, Commit, Tree, TreeState, github_api
from playbook.services.github_graphql import HEADS_PER_QUERY, Head, github_graphql
from playbook.services.hub import Services

COPY_RATIO = 0.5
SAMPLE_BLOBS = 6
DOWNLOAD_SHARE = 0.1
DOWNLOAD_FLOOR = 24
SAMPLE_PATHS = 10
Progress = Callable[[str], None]
HEADS = "verify-commits"  # the coverage's name for how the heads were learned


@dataclass
class HeadsPass:
    """How the GitHub candidates' default-branch commits were learned (the coverage says it)."""

    wanted: int = 0  # GitHub candidates without a listed commit
    pinned: int = 0  # answered through GraphQL with a commit and tree oid
    queries: int = 0
    unresolved: int = 0  # GraphQL answered no commit (missing, blocked, empty): REST decided
    stopped: str = ""  # why GraphQL stopped (or never started): REST for the rest
    unserved: int = 0  # a tree oid the host would not list: listed by branch instead

    def describe(self) -> str:
        parts: list[str] = []
        if self.pinned:
            parts.append(
                f"{self.pinned:,} of {self.wanted:,} GitHub repositories without a listed commit "
                f"had their default branch's commit and tree oid through GraphQL "
                f"({self.queries:,} queries), each tree listed at that commit"
            )
        if self.stopped:
            parts.append(f"GraphQL {'stopped' if self.queries else 'not used'}: {self.stopped}")
        rest = self.wanted - self.pinned
        if rest:
            parts.append(
                f"{rest:,} of {self.wanted:,} checked through REST (the tree by branch, then the "
                "commit of any that matched)"
                + (
                    f", {self.unresolved:,} of them not resolved by GraphQL"
                    if self.unresolved
                    else ""
                )
            )
        if self.unserved:
            parts.append(
                f"{self.unserved:,} trees not served at their listed oid were listed by branch"
            )
        return "; ".join(parts)


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
    similar: frozenset[str] = frozenset()  # proven by token fingerprints (sampled)
    by_path: frozenset[str] = frozenset()  # at leaked paths, counted by the proven sample
    sampled: int = 0  # files downloaded and compared
    least: float = 1.0  # the lowest similarity among the files proven by fingerprints

    @property
    def matched(self) -> int:
        return len(self.blob | self.content | self.similar | self.by_path)


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
    if match.similar:
        text += (
            f", {len(match.similar):,} reformatted (token fingerprint similarity "
            f"{match.least:.2f} or more)"
        )
    if match.by_path:
        text += (
            f", {len(match.by_path):,} at leaked paths with other content, counted as "
            f"reformatted because all {match.sampled:,} files sampled from them are"
        )
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
        self.truncated: list[str] = []  # trees that could not be listed whole
        self.unsampled: set[str] = set()  # could be reformatted copies; the allowance was spent
        self._public_shas: set[str] = set()
        # Trees verified in this pass, by tree SHA: a fork listed with the same tree oid holds
        # the same files (git addresses content) and is judged from it without a request.
        self._trees: dict[str, tuple[Candidate, Match]] = {}
        self.by_identity = 0
        self.heads = HeadsPass()

    async def run(self, candidates: Iterable[Candidate]) -> list[Mirror]:
        cands = sorted(await self._heads(list(candidates)), key=_order)
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

    async def _heads(self, cands: list[Candidate]) -> list[Candidate]:
        """Each GitHub candidate without a listed commit, with its default branch's commit and
        tree oid through GraphQL (HEADS_PER_QUERY a query); REST stays the path for the rest."""
        wanted = [
            c
            for c in cands
            if c.host == GITHUB
            and c.kind == "repo"
            and not (c.commit_sha and c.tree_sha)
            and not self._untouched(c)
        ]
        self.heads = HeadsPass(wanted=len(wanted))
        if not wanted:
            return cands
        if not self.services.settings.github_token:
            self.heads.stopped = "no GitHub token: GitHub's GraphQL API needs one"
            return cands
        gql = github_graphql(self.services)
        found: dict[str, Head] = {}
        for start in range(0, len(wanted), HEADS_PER_QUERY):
            batch = wanted[start : start + HEADS_PER_QUERY]
            try:
                heads = await gql.heads([c.name for c in batch])
            except Exception as exc:
                if not is_outside_failure(exc):
                    raise
                self.heads.stopped = reason(exc)
                self.progress(f"GitHub GraphQL stopped: {self.heads.stopped}; REST goes on")
                break
            self.heads.queries += 1
            for cand, head in zip(batch, heads, strict=True):
                if head.state is TreeState.OK:
                    found[cand.url] = head
                else:
                    self.heads.unresolved += 1
        self.heads.pinned = len(found)
        self.progress(
            f"GitHub GraphQL: {len(found):,} default-branch commits in {self.heads.queries} queries"
        )
        return [_headed(c, found[c.url]) if c.url in found else c for c in cands]

    async def _run_group(self, cands: list[Candidate]) -> list[Mirror]:
        out: list[Mirror] = []
        for n, cand in enumerate(cands):
            try:
                out.append(await self.verify_one(cand))
            except BudgetSpent as exc:
                self.budget_note = exc.message
                out += [self._mirror(c, Verdict.UNVERIFIED, exc.message) for c in cands[n:]]
                break
            except Exception as exc:
                if not is_outside_failure(exc):
                    raise
                why = reason(exc)
                failed = self._mirror(cand, Verdict.UNREACHABLE, why)
                out.append(replace(failed, error=why))
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
        if tree.commit:  # listed at a commit: its head's (GitHub) or its branch's (a forge)
            match = replace(match, commit=Commit(tree.commit, tree.sha))
        if is_official(cand, self.official):
            self._public_shas |= {sha for _, sha in tree.entries}
        elif cand.host == GITHUB:
            match = await self._reformatted(cand, tree, match)
            if match.matched and match.commit is None:
                tree, match = await self._pinned(cand, tree, match)
            if tree.sha and not tree.truncated and cand.name not in self.unsampled:
                self._trees.setdefault(tree.sha, (cand, match))
        mirror = self._judge(cand, match)
        if cand.name in self.unsampled and mirror.verdict is Verdict.UNRELATED:
            mirror = replace(
                mirror,
                verdict=Verdict.UNVERIFIED,
                evidence="files at leaked paths with other content were not compared (the "
                "pass's download allowance was spent): absence is not proven; " + mirror.evidence,
            )
        if tree.truncated:
            self.truncated.append(cand.name)
            mirror = _truncated(mirror, tree.subtrees)
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
        first, match = known
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
            gh = github_api(self.services)
            if cand.commit_sha and cand.tree_sha:
                # At the listed tree oid: the files of the commit cited, whatever the branch
                # did since (a recheck asks the same URL while nothing changed: an ETag 304).
                pinned = await gh.tree(cand.name, cand.tree_sha)
                if pinned.state is TreeState.OK and pinned.sha == cand.tree_sha:
                    return replace(pinned, commit=cand.commit_sha)
                if pinned.state is not TreeState.MISSING:
                    return pinned  # blocked or empty: the REST answer says so
                self.heads.unserved += 1  # not served at that oid (gone since?): by branch
            return await gh.tree(cand.name, cand.default_branch or "HEAD")
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
        """A bounded sample of files at leaked paths, compared whitespace- and format-blind."""
        needed = copy_threshold(self.fp.total) - match.matched
        if needed <= 0:
            return match  # a copy already
        pending: dict[str, tuple[str, str]] = {}  # leaked path -> (tree path, blob SHA)
        for path, sha in tree.entries:
            if sha in self.fp.by_sha or is_vendored(path):
                continue
            leaked = self.fp.leaked_path(path)
            if leaked and leaked not in match.blob and leaked not in pending:
                pending[leaked] = (path, sha)
        # Files already matched by blob tie the repository to the leak: half the sample then.
        limit = min(SAMPLE_BLOBS // 2 if match.blob else SAMPLE_BLOBS, len(pending))
        if len(pending) < needed:
            return match  # not a copy whatever the downloads said
        if self.downloads_left < limit:
            self.unsampled.add(cand.name)  # the pass's allowance is spent: said, not guessed
            return match
        content: set[str] = set()
        similar: set[str] = set()
        pairs: list[tuple[str, str]] = []
        least = 1.0
        gh = github_api(self.services)
        # Files the manifest has token fingerprints for first (the scanner keeps a spread few).
        leaked_paths = sorted(pending)
        printed = [p for p in leaked_paths if p in self.fp.winnow]
        others = [p for p in leaked_paths if p not in self.fp.winnow]
        sample = _spread(printed, limit) + _spread(others, max(0, limit - len(printed)))
        for leaked in sample:
            path, sha = pending[leaked]
            self.downloads_left -= 1
            data = await gh.blob(cand.name, sha)
            if data is None:
                break
            same = self.fp.by_norm.get(norm_sha256(data), frozenset()) - match.blob
            if same:
                content |= same
                pairs += [(path, p) for p in sorted(same)]
                continue
            score = similarity(self.fp.winnow.get(leaked, ()), data)
            if score < SIMILAR:
                break  # one file that is not the leaked one: no count by path, stop spending
            similar.add(leaked)
            pairs.append((path, leaked))
            least = min(least, score)
        proven = content | similar
        whole = set(sample) <= proven
        by_path = frozenset(pending) - proven if whole else frozenset()
        return replace(
            match,
            content=frozenset(content),
            similar=frozenset(similar - content),
            by_path=by_path,
            sampled=len(sample),
            least=least,
            pairs=match.pairs + tuple(pairs),
        )

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
            matched_by_content=match.matched - len(match.blob) if match else 0,
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


def _headed(cand: Candidate, head: Head) -> Candidate:
    """The candidate with what GraphQL said its default branch holds now."""
    return replace(
        cand,
        default_branch=head.default_branch or cand.default_branch,
        commit_sha=head.commit,
        tree_sha=head.tree,
        pushed_at=head.pushed_at or cand.pushed_at,
        fork=cand.fork or head.fork,
    )


def _truncated(mirror: Mirror, subtrees: int) -> Mirror:
    """A tree not listed whole proves no absence: never `unrelated`, at most what matched."""
    why = (
        f"the tree listing was truncated by the host (over 100,000 entries or 7 MB) and "
        f"{subtrees:,} sub-tree requests did not list it whole"
    )
    if mirror.verdict is Verdict.UNRELATED:
        return replace(
            mirror,
            verdict=Verdict.UNVERIFIED,
            evidence=f"{why}: absence is not proven; " + mirror.evidence,
        )
    if mirror.verdict is Verdict.PARTIAL:
        return replace(mirror, evidence=f"{mirror.evidence}; {why}: more files may match")
    return replace(mirror, evidence=f"{mirror.evidence}; {why}")


def verification_coverage(verifier: Verifier, mirrors: Iterable[Mirror]) -> Coverage:
    """What verification proved and what it left open (budget, truncated trees)."""
    items = list(mirrors)
    left = [m for m in items if m.verdict is Verdict.UNVERIFIED and m.kind != "archive"]
    named = verifier.unsampled | set(verifier.truncated)  # their own gaps say why
    failed = [m for m in items if m.error]
    gaps: list[Gap] = []
    if verifier.budget_note:
        gaps.append(
            Gap("verify", GapKind.BUDGET, f"{verifier.budget_note} ({len(left):,} unverified)")
        )
    elif rest := sum(1 for m in left if m.name not in named):
        gaps.append(Gap("verify", GapKind.UNVERIFIED, f"{rest:,} candidates not verified"))
    if verifier.truncated:
        names = ", ".join(sorted(verifier.truncated)[:3])
        gaps.append(
            Gap(
                "verify",
                GapKind.TRUNCATED_TREE,
                f"{len(verifier.truncated):,} trees could not be listed whole (first: {names})",
            )
        )
    if verifier.unsampled:
        names = ", ".join(sorted(verifier.unsampled)[:3])
        gaps.append(
            Gap(
                "verify",
                GapKind.UNVERIFIED,
                f"{len(verifier.unsampled):,} candidates hold leaked paths with other content but "
                f"were not sampled for reformatted files: the pass's download allowance was "
                f"spent (first: {names})",
            )
        )
    if failed:
        gaps.append(
            Gap("verify", GapKind.UNREACHABLE, f"{len(failed):,} candidates could not be checked")
        )
    done = len(items) - len(left)
    what = f"{done:,} of {len(items):,} candidates verified"
    searched = [Searched("verify", what)]
    if verifier.heads.wanted:
        searched.append(Searched(HEADS, verifier.heads.describe()))
    return Coverage(tuple(searched), tuple(gaps))


def _spread(items: list[str], n: int) -> list[str]:
    """`n` items evenly spread over `items` (first, last and between): a fair sample."""
    if n >= len(items):
        return items
    step = (len(items) - 1) / max(1, n - 1)
    return [items[round(i * step)] for i in range(n)]


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
