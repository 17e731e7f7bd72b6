"""Is a package's declared licence open source? SPDX expressions checked against OSI's list.

`OPEN_SOURCE` holds the SPDX identifiers the Open Source Initiative approves (taken from the
`spdx-license-list` package, 6.12.0, `osiApproved`), plus public-domain dedications and permissive
licences npm packages commonly use (CC0-1.0, WTFPL, CC-BY). `UNLICENSED`, `SEE LICENSE IN ...`,
a URL, an unknown word or nothing at all is not open source: the guard then treats the package's
original source as proprietary.
"""

from __future__ import annotations

import re

_IDS = """
0BSD AAL AFL-1.1 AFL-1.2 AFL-2.0 AFL-2.1 AFL-3.0 AGPL-3.0 AGPL-3.0-only AGPL-3.0-or-later
ALGLIB-Documentation APL-1.0 APSL-1.0 APSL-1.1 APSL-1.2 APSL-2.0 Apache-1.1 Apache-2.0
Artistic-1.0 Artistic-1.0-Perl Artistic-1.0-cl8 Artistic-2.0 BSD-1-Clause BSD-2-Clause
BSD-2-Clause-Patent BSD-3-Clause BSD-3-Clause-LBNL BSD-3-Clause-Open-MPI BSL-1.0 BlueOak-1.0.0
CAL-1.0 CAL-1.0-Combined-Work-Exception CATOSL-1.1 CDDL-1.0 CECILL-2.1 CERN-OHL-P-2.0
CERN-OHL-S-2.0 CERN-OHL-W-2.0 CNRI-Python CPAL-1.0 CPL-1.0 CUA-OPL-1.0 ECL-1.0 ECL-2.0 EFL-1.0
EFL-2.0 EPL-1.0 EPL-2.0 EUDatagrid EUPL-1.1 EUPL-1.2 Entessa Fair Frameworx-1.0 GPL-2.0 GPL-2.0+
GPL-2.0-only GPL-2.0-or-later GPL-3.0 GPL-3.0+ GPL-3.0-only GPL-3.0-or-later
GPL-3.0-with-GCC-exception HPND ICU IPA IPL-1.0 ISC Intel Jam LGPL-2.0 LGPL-2.0+ LGPL-2.0-only
LGPL-2.0-or-later LGPL-2.1 LGPL-2.1+ LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0 LGPL-3.0+
LGPL-3.0-only LGPL-3.0-or-later LPL-1.0 LPL-1.02 LPPL-1.3c LiLiQ-P-1.1 LiLiQ-R-1.1
LiLiQ-Rplus-1.1 MIT MIT-0 MIT-Modern-Variant MPL-1.0 MPL-1.1 MPL-2.0
MPL-2.0-no-copyleft-exception MS-PL MS-RL MirOS Motosoto MulanPSL-2.0 Multics NASA-1.3 NCSA NGPL
NPOSL-3.0 NTP Naumen Nokia OCLC-2.0 OFL-1.1 OFL-1.1-RFN OFL-1.1-no-RFN OGTSL OLDAP-2.8 OLFL-1.3
OSC-1.0 OSET-PL-2.1 OSL-1.0 OSL-2.0 OSL-2.1 OSL-3.0 PHP-3.0 PHP-3.01 PostgreSQL Python-2.0
QPL-1.0 RPL-1.1 RPL-1.5 RPSL-1.0 RSCPL SISSL SPL-1.0 SimPL-2.0 Sleepycat UCL-1.0 UPL-1.0
Unicode-3.0 Unicode-DFS-2016 Unlicense VSL-1.0 W3C W3C-20150513 Watcom-1.0 WordNet Xnet ZPL-2.0
ZPL-2.1 Zlib wxWindows CC0-1.0 CC-BY-3.0 CC-BY-4.0 WTFPL BSD-4-Clause Python-2.0.1 PSF-2.0
"""
OPEN_SOURCE = frozenset(_IDS.split())
_FOLDED = {i.lower(): i for i in OPEN_SOURCE}
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def is_open_source(expression: str | None) -> bool:
    """True when the SPDX expression lets anyone use the code under an open-source licence.

    `A OR B` needs one side open, `A AND B` both; `WITH exception` keeps the licence's answer;
    `-only`, `-or-later` and a trailing `+` are parts of the identifier. Unparsable is not open.
    """
    if not expression:
        return False
    tokens = _TOKEN.findall(expression)
    try:
        value, rest = _or(tokens)
    except (IndexError, ValueError):
        return False
    return value and not rest


def _or(tokens: list[str]) -> tuple[bool, list[str]]:
    value, tokens = _and(tokens)
    while tokens and tokens[0].upper() == "OR":
        right, tokens = _and(tokens[1:])
        value = value or right
    return value, tokens


def _and(tokens: list[str]) -> tuple[bool, list[str]]:
    value, tokens = _atom(tokens)
    while tokens and tokens[0].upper() == "AND":
        right, tokens = _atom(tokens[1:])
        value = value and right
    return value, tokens


def _atom(tokens: list[str]) -> tuple[bool, list[str]]:
    head, tokens = tokens[0], tokens[1:]
    if head == "(":
        value, tokens = _or(tokens)
        if not tokens or tokens[0] != ")":
            raise ValueError("unbalanced parenthesis")
        return value, tokens[1:]
    if head in (")",) or head.upper() in ("AND", "OR", "WITH"):
        raise ValueError(f"unexpected {head!r}")
    if tokens and tokens[0].upper() == "WITH":
        tokens = tokens[2:] if len(tokens) >= 2 else []
    return _known(head), tokens


def _known(identifier: str) -> bool:
    name = identifier.lower()
    return name in _FOLDED or name.rstrip("+") in _FOLDED
