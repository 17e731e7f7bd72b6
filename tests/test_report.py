"""The incident report: Markdown, self-contained HTML drawn by headless Chromium, and JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from playbook.config.settings import Settings
from playbook.errors import RespondError, UsageError
from playbook.notices.report import build_timeline, render_documents, render_report
from playbook.notices.view import load_view
from playbook.steps.base import StepOutputs
from tests.test_notices_fixture import (
    FULL_TOML,
    INCIDENT,
    NOW,
    RAW_SECRET,
    build_incident,
    full_org,
)

BAR_GREEN = bytes((0x1A, 0x7F, 0x37))  # --ok in the report's CSS: succeeded bars
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("report")
    org = full_org(tmp)
    store = build_incident(tmp / "home", org=org)
    view = load_view(store, INCIDENT)
    return {fmt: render_documents(view, org, fmt, now=NOW) for fmt in ("md", "html", "json")}


@pytest.fixture(scope="module")
def hostile_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("hostile-report")
    org = full_org(tmp)
    store = build_incident(tmp / "home", org=org, hostile=True)
    return render_documents(load_view(store, INCIDENT), org, "html", now=NOW)


# Markdown ---------------------------------------------------------------------------------------


def test_markdown_report_has_every_postmortem_section(reports: dict[str, str]) -> None:
    headings = re.findall(r"^##+ (.+)$", reports["md"], flags=re.M)
    for wanted in [
        "Summary",
        "Impact",
        "Root cause",
        "Trigger",
        "Detection",
        "Resolution: containment steps",
        "Timeline (UTC)",
        "Copies found",
        "Notices",
        "Action items",
        "Lessons learned",
        "What went well",
        "What went wrong",
        "Where we got lucky",
        "Evidence",
    ]:
        assert wanted in headings


def test_markdown_report_carries_exposure_steps_mirrors_and_notices(
    reports: dict[str, str],
) -> None:
    md = reports["md"]
    assert "| First-party source files exposed | 1,906 |" in md
    assert "| Original source | 30.1 MB, 512,000 lines |" in md
    assert "| retag | @acme/cli@2.1.88 | succeeded | 2026-03-31 08:03:05 UTC |" in md
    assert "| https://github.com/fork2/acme-cli-src |  | partial | files (420) | 420 of 1,906" in md
    assert "| dmca-github | dmca-github | drafted |" in md
    assert "- unpublish approved by jane at 2026-03-31 08:06:10 UTC" in md


def test_the_action_items_table_has_owner_and_type_columns(reports: dict[str, str]) -> None:
    table = reports["md"].split("## Action items")[1].split("##")[0]
    assert "| Action | Owner | Type | Status |" in table
    assert {"prevent", "mitigate", "process"} <= set(re.findall(r"\| (\w+) \| open \|", table))


# HTML -------------------------------------------------------------------------------------------


def test_html_report_is_one_self_contained_file(reports: dict[str, str]) -> None:
    html = reports["html"]
    for external in ("<script", "<link", "src=", "@import", "url(", "<iframe", "<img"):
        assert external not in html
    assert "default-src 'none'" in html  # and the browser is told to load nothing else
    assert "@media print" in html


def test_html_timeline_is_an_inline_svg_drawn_from_the_event_log(
    reports: dict[str, str],
) -> None:
    svg = reports["html"].split('<svg class="timeline"')[1].split("</svg>")[0]
    assert svg.count('<rect class="bar-succeeded"') == 9  # the nine steps that ran
    assert svg.count('<circle class="mark"') == 3  # opened, approval, first copy


def test_timeline_positions_follow_the_event_times(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", with_notices=False)
    timeline = build_timeline(load_view(store, INCIDENT))
    xs = [bar.x for bar in timeline.bars]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    unpublish = next(b for b in timeline.bars if b.label == "unpublish")
    lookup = next(b for b in timeline.bars if b.label == "lookup")
    assert unpublish.width > lookup.width  # it waited for approval


def test_hostile_strings_from_mirrors_are_inert_in_html(hostile_html: str) -> None:
    assert "<script>" not in hostile_html and "<img src=x" not in hostile_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_html
    assert 'href="https://github.com/evil/x%22%3E%3Cscript%3E' in hostile_html
    assert "\x1b" not in hostile_html and "\x07" not in hostile_html
    assert "{{ 7*7 }}" in hostile_html  # shown as text, never evaluated
    assert 'href="javascript:' not in hostile_html


def test_hostile_strings_from_mirrors_are_inert_in_markdown(tmp_path: Path) -> None:
    org = full_org(tmp_path)
    store = build_incident(tmp_path / "home", org=org, hostile=True)
    md = render_documents(load_view(store, INCIDENT), org, "md", now=NOW)
    row = next(line for line in md.splitlines() if "evil/x" in line and "| copy |" in line)
    assert len(re.findall(r"(?<!\\)\|", row)) == 7  # six cells: a `|` in the data is escaped
    assert "\\<script\\>" in row and not re.search(r"(?<!\\)[<>*\[\]{}#`]", row.split("|")[2])
    assert "\x1b" not in md and "## second line" not in md


# JSON and the Store entry point -----------------------------------------------------------------


def test_json_report_holds_the_whole_view_without_raw_secrets(reports: dict[str, str]) -> None:
    data = json.loads(reports["json"])
    assert data["incident"]["id"] == INCIDENT and data["draft"] is False
    assert len(data["mirrors"]) == 8 and len(data["notices"]) == 10
    assert RAW_SECRET not in reports["json"]
    scan = next(s for s in data["steps"] if s["uses"] == "npm.scan")
    assert scan["outputs"]["summary"]["secrets"][0]["redacted"] == "AKIA************WXYZ"


def test_render_report_reads_the_store_and_respond_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = build_incident(tmp_path / "home")
    (tmp_path / "respond.toml").write_text(FULL_TOML)
    monkeypatch.chdir(tmp_path)
    md = render_report(store, INCIDENT, "md")
    assert "- Organization: Acme Corp" in md
    settings = Settings(home=tmp_path / "home", cwd=tmp_path / "home", npm_env={})
    assert "- Organization: [MISSING: name]" in render_report(
        store, INCIDENT, "md", settings=settings
    )
    with pytest.raises(UsageError, match="not one of md, html, json"):
        render_report(store, INCIDENT, "pdf", settings=settings)  # type: ignore[arg-type]


def test_a_dry_run_report_is_marked_as_such(tmp_path: Path) -> None:
    store = build_incident(tmp_path / "home", mode="dry-run")
    org = full_org(tmp_path)
    view = load_view(store, INCIDENT)
    assert "> **DRAFT OF A DRY RUN.**" in render_documents(view, org, "md", now=NOW)
    html = render_documents(view, org, "html", now=NOW)
    assert '<p class="draft">DRAFT OF A DRY RUN' in html
    assert json.loads(render_documents(view, org, "json", now=NOW))["draft"] is True


# Headless Chromium ------------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI: apt-get install -y chromium")
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); CI unset")
    return found


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, channels and unfiltered rows of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        if kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    assert depth == 8 and interlace == 0
    raw, stride = zlib.decompress(b"".join(idat)), width * channels
    prev, rows = bytearray(stride), []
    for y in range(height):
        start = y * (stride + 1)
        line = unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), prev, channels)
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    if kind == 2:
        return bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
        if kind == 1:
            line[i] = (line[i] + a) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return line


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium_with_its_timeline(
    reports: dict[str, str], tmp_path: Path
) -> None:
    browser = chromium()
    page = tmp_path / "report.html"
    page.write_text(reports["html"], encoding="utf-8")
    shot = tmp_path / "report.png"
    flags = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run(
        [*flags, "--window-size=900,1600", f"--screenshot={shot}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    width, height, channels, rows = decode_png(shot.read_bytes())
    assert (width, height) == (900, 1600)
    colours = Counter(r[i : i + 3] for r in rows for i in range(0, len(r), channels))
    white = colours[b"\xff\xff\xff"] / (width * height)
    assert 0.3 < white < 0.97, "the page is blank or a solid block"
    assert len(colours) > 100, "too few colours for rendered text"
    assert colours[BAR_GREEN] > 1000, "the timeline's step bars were not drawn"
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()], check=True, capture_output=True, timeout=120
    ).stdout.decode()
    assert 'id="timeline-svg"' in dom and dom.count('class="bar-succeeded"') == 9


def test_chromium_check_would_fail_on_a_blank_page() -> None:
    """The PNG checks above can fail: a blank 4x4 white PNG has one colour and no bars."""
    row = b"\x00" + b"\xff\xff\xff" * 4
    png = _png(4, 4, zlib.compress(row * 4))
    _, _, channels, rows = decode_png(png)
    colours = Counter(r[i : i + 3] for r in rows for i in range(0, len(r), channels))
    assert colours == Counter({b"\xff\xff\xff": 16}) and colours[BAR_GREEN] == 0


def _png(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@dataclasses.dataclass(frozen=True)
class RenamedVerify(StepOutputs):
    """VerifyOutput with `contained` renamed, as a careless refactor would leave it."""

    is_contained: bool = True
    checked_at: str | None = "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_a_missing_attribute_fails_the_report_instead_of_leaving_a_blank(
    tmp_path: Path, fmt: str
) -> None:
    """Templates render with StrictUndefined on attributes of typed objects, in `if`s too."""
    org = full_org(tmp_path)
    view = load_view(build_incident(tmp_path / "home", org=org), INCIDENT)
    target = view.targets[0]
    assert target.verify is not None and "Containment" in render_documents(view, org, fmt, now=NOW)
    broken = dataclasses.replace(
        view,
        targets=(dataclasses.replace(target, verify=RenamedVerify()),),  # type: ignore[arg-type]
    )
    with pytest.raises(RespondError, match="contained"):
        render_documents(broken, org, fmt, now=NOW)
