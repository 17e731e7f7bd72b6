"""Takedown claims per repository: the entire repository, or every infringing file by permalink.

The rule (README "What a takedown notice claims"): a repository is claimed *entire* when

- at least ENTIRE_RATIO (90%) of its files outside vendored folders (node_modules/, vendor/,
  third_party/, bower_components/) are leaked files, matched by git blob SHA-1 or identical but
  for white space; or
- its tree SHA equals the tree SHA of a repository claimed entire by the first test (git
  addresses content: the same tree holds the same files).

Otherwise the claim is *files*: every matched file is named, each as a permalink at the commit
SHA that was checked (`https://github.com/o/r/blob/<commit>/<path>`; GitLab's `/-/blob/<commit>/`,
Codeberg's `/src/commit/<commit>/`), and nothing else in the repository is claimed. The remedy
follows from the claim: GitHub disables a repository at once only on an entire-repository claim;
on a files claim the owner gets about one business day to remove the named files. GitHub's form
takes one answer (entire or specific files) per submission, so each kind is a notice of its own.
The verdict `copy` (half of the leaked files present) says the leak is there; it does not make a
repository wholly infringing: half the leak beside 200 files of the owner's own code is a files
claim.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from markupsafe import Markup

from playbook.mirrors.model import Mirror, is_vendored
from playbook.notices.render import missing, safe_url

ENTIRE_RATIO = 0.9
# A file at one commit on each forge ({base} is the repository URL); a `#L<n>` anchor opens the
# line on all three.
PERMALINKS = {
    "github.com": "{base}/blob/{commit}/{path}",
    "gitlab.com": "{base}/-/blob/{commit}/{path}",
    "codeberg.org": "{base}/src/commit/{commit}/{path}",
}


class ClaimKind(StrEnum):
    ENTIRE = "entire"
    FILES = "files"


@dataclass(frozen=True)
class Claim:
    """What a notice asks about one repository or package, and the evidence it cites."""

    mirror: Mirror
    kind: ClaimKind
    reason: str
    files: tuple[str, ...]  # every matched path, as the checked tree names it (distinct, sorted)
    own_matched: int  # matched files outside vendored folders
    identical_to: str | None = None  # the entire-claimed repository whose tree this one equals

    @property
    def entire(self) -> bool:
        return self.kind is ClaimKind.ENTIRE

    @property
    def pinned(self) -> bool:
        return bool(self.mirror.commit_sha)

    @property
    def commit(self) -> Markup | str:
        return self.mirror.commit_sha or missing("commit_sha")

    @property
    def tree(self) -> str:
        return self.mirror.tree_sha or "not recorded"

    @property
    def remedy(self) -> str:
        if self.entire:
            return "disable the repository"
        return f"remove the {len(self.files):,} named files from the repository and its history"

    def permalink(self, path: str) -> Markup:
        """The file at the commit that was checked, or a visible blank when none was recorded."""
        form = PERMALINKS.get(self.mirror.host)
        if form is None or not self.mirror.commit_sha:
            return missing("commit_sha")
        base = self.mirror.url.rstrip("/")
        return safe_url(form.format(base=base, commit=self.mirror.commit_sha, path=quote(path)))


def _files(mirror: Mirror) -> tuple[str, ...]:
    return tuple(sorted({tree_path for tree_path, _leaked in mirror.matched_paths}))


def _by_ratio(mirror: Mirror) -> Claim:
    files = _files(mirror)
    own = sum(1 for f in files if not is_vendored(f))
    total = mirror.unvendored_files
    if total and own >= ENTIRE_RATIO * total:
        reason = (
            f"{own:,} of its {total:,} files outside vendored folders are leaked files "
            f"({100 * own / total:.1f}%, at least {ENTIRE_RATIO:.0%})"
        )
        return Claim(mirror, ClaimKind.ENTIRE, reason, files, own)
    if not files:
        reason = "the stored evidence lists no matched files: recheck the copies before sending"
    else:
        share = f"{100 * own / total:.1f}%" if total else "an unknown share"
        reason = (
            f"{own:,} of its {total:,} files outside vendored folders are leaked files "
            f"({share}, under {ENTIRE_RATIO:.0%}): only those files are claimed"
        )
    return Claim(mirror, ClaimKind.FILES, reason, files, own)


def claims(mirrors: Iterable[Mirror]) -> dict[str, Claim]:
    """Each mirror's claim by URL; identical trees inherit an entire claim."""
    found = {m.url: _by_ratio(m) for m in mirrors}
    whole = {c.mirror.tree_sha: c.mirror for c in found.values() if c.entire and c.mirror.tree_sha}
    for url, claim in found.items():
        twin = whole.get(claim.mirror.tree_sha or "")
        if not claim.entire and twin is not None:
            reason = f"its tree {claim.mirror.tree_sha} is identical to that of {twin.name}"
            found[url] = Claim(
                claim.mirror, ClaimKind.ENTIRE, reason, claim.files, claim.own_matched, twin.name
            )
    return found
