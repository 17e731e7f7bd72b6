"""Query planning: which few searches find the most copies of the leaked files.

How the code-search queries are chosen (code search allows about 9 requests a minute and ignores
punctuation, so every query must count):

1. Candidates are the manifest's `identifiers` (the scanner picked rare tokens) kept only when
   they are purely alphanumeric (`[A-Za-z0-9_]`), 8 to 64 characters long, mix case or digits
   (camelCase, snake_case, a digit: real identifiers, not English words), occur only in
   first-party files, and are not an English-looking word.
2. A greedy maximum-coverage pick: repeatedly take the identifier that appears in the most
   first-party files not covered yet (ties: the one in fewer files overall, i.e. rarer, then
   alphabetical for determinism). A repository that copied any covered file answers one of
   the queries, and its forks are then enumerated, so coverage of distinct files is what counts.
3. Up to PATH_QUERIES queries search distinctive paths as `filename:<name> path:<dir>`: they
   catch copies whose content was reformatted (identifiers survive that too) or whose files the
   identifier picks missed.
Every code query carries `fork:true`: without it GitHub leaves forks out of code search results
(and it indexes only forks with more stars than their parent; forks are listed separately).
Repository search adds the package name with "leak", "source" and the version, restricted to
repositories created after the publish time. Other hosts are searched by the package name.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from playbook.mirrors.fingerprints import Manifest

FORKS = " fork:true"
IDENT = re.compile(r"^[A-Za-z0-9_]{8,64}$")
DEFAULT_CODE_QUERIES = 9
PATH_QUERIES = 2
REPO_WORDS = ("leak", "source")


@dataclass(frozen=True)
class CodeQuery:
    query: str
    covers: int  # first-party files this query can find that earlier queries could not


@dataclass(frozen=True)
class QueryPlan:
    code: tuple[CodeQuery, ...]
    repos: tuple[str, ...]
    words: str  # the package name as search words, for the other hosts
    covered_files: int
    first_party_files: int


def looks_like_identifier(token: str) -> bool:
    if not IDENT.match(token):
        return False
    has_digit = any(c.isdigit() for c in token)
    mixed = token != token.lower() and token != token.upper()
    return has_digit or mixed or "_" in token.strip("_")


def package_words(package: str) -> str:
    """`@acme/widget-cli` -> `widget cli`: search engines split on punctuation anyway."""
    bare = package.rsplit("/", 1)[-1]
    return " ".join(w for w in re.split(r"[^A-Za-z0-9]+", bare) if w)


def pick_identifiers(manifest: Manifest, limit: int) -> list[CodeQuery]:
    """Greedy maximum coverage of distinct first-party files (see the module docstring)."""
    first = {f.path for f in manifest.first_party}
    pool = {
        i.token: frozenset(i.files)
        for i in manifest.identifiers
        if looks_like_identifier(i.token) and i.files and set(i.files) <= first
    }
    covered: set[str] = set()
    picked: list[CodeQuery] = []
    while pool and len(picked) < limit:
        token = min(pool, key=lambda t: (-len(pool[t] - covered), len(pool[t]), t))
        files = pool.pop(token)
        gain = len(files - covered)
        if gain == 0:
            break
        covered |= files
        picked.append(CodeQuery(token + FORKS, gain))
    return picked


def _files_of(manifest: Manifest, token: str) -> frozenset[str]:
    return next((frozenset(i.files) for i in manifest.identifiers if i.token == token), frozenset())


def path_queries(manifest: Manifest, limit: int) -> list[CodeQuery]:
    """`filename:X path:dir` for the deepest, longest-named first-party paths (most distinctive)."""
    first = {f.path for f in manifest.first_party}
    paths = [p for p in (manifest.paths or tuple(sorted(first))) if p in first and "/" in p]
    paths.sort(key=lambda p: (-p.count("/"), -len(posixpath.basename(p)), p))
    out = []
    for path in paths[:limit]:
        folder, name = posixpath.split(path)
        out.append(CodeQuery(f"filename:{name} path:{folder}{FORKS}", 1))
    return out


def plan_queries(
    manifest: Manifest, published_at: str | None, max_code: int = DEFAULT_CODE_QUERIES
) -> QueryPlan:
    paths = path_queries(manifest, min(PATH_QUERIES, max_code // 3))
    idents = pick_identifiers(manifest, max_code - len(paths))
    covered: set[str] = set()
    for q in idents:
        covered |= _files_of(manifest, q.query.removesuffix(FORKS))
    words = package_words(manifest.package)
    since = f" created:>={published_at[:10]}" if published_at else ""
    repos = (
        f"{words} in:name,description,readme{since}",
        *(f"{words} {w}{since}" for w in REPO_WORDS),
        f"{words} {manifest.version}{since}",
    )
    return QueryPlan(tuple(idents + paths), repos, words, len(covered), len(manifest.first_party))
