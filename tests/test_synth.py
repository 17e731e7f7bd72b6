"""Synthetic packages are deterministic and shaped as asked."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from playbook.rehearsal.synth import (
    SECRET_LINE,
    SECRET_PATH,
    make_package,
    make_real_case,
    reconstructed_files,
)
from playbook.scan import scan_tarball


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


def test_same_arguments_same_bytes_and_seed_changes_them() -> None:
    a = make_package("p", "1.0.0", sources=10, first_party=4, with_map=True, seed=1)
    assert a == make_package("p", "1.0.0", sources=10, first_party=4, with_map=True, seed=1)
    assert a != make_package("p", "1.0.0", sources=10, first_party=4, with_map=True, seed=2)
    assert gzip.decompress(a)[:8] == b"package/"


def test_layout_and_map_contents() -> None:
    data = make_package(
        "@s/p", "2.0.0", sources=12, first_party=5, with_map=True, secret="ghp_x", env_file=True
    )
    files = members(data)
    assert set(files) == {
        "package/package.json", "package/.env", "package/README.md",
        "package/dist/index.js", "package/dist/index.js.map",
    }  # fmt: skip
    assert json.loads(files["package/package.json"])["name"] == "@s/p"
    doc = json.loads(files["package/dist/index.js.map"])
    assert len(doc["sources"]) == 12 and all(doc["sourcesContent"])
    assert sum("node_modules" not in s for s in doc["sources"]) == 5
    assert any(s.count("node_modules") == 2 for s in doc["sources"])
    first = reconstructed_files("@s/p", "2.0.0", sources=12, first_party=5, secret="ghp_x")
    secret_file = first[SECRET_PATH].decode().splitlines()
    assert "ghp_x" in secret_file[SECRET_LINE - 1]
    assert [c.encode() for c in doc["sourcesContent"][:5]] == list(first.values())


def test_bundle_size_and_inline_map() -> None:
    data = make_package("p", "1.0.0", sources=3, first_party=1, with_map=False, inline_map=True,
                        bundle_bytes=50_000)  # fmt: skip
    bundle = members(data)["package/dist/index.js"]
    assert b"sourceMappingURL=data:application/json" in bundle
    assert len(bundle) > 50_000


@pytest.mark.slow
def test_real_case_shape(tmp_path: Path) -> None:
    case = make_real_case(tmp_path)
    assert case.tarball.stat().st_size == case.tarball_bytes
    assert 55_000_000 < case.map_bytes < 70_000_000
    assert 12_000_000 < case.bundle_bytes < 14_000_000
    result = scan_tarball(case.tarball)
    s = result.summary()
    assert (s["sources"], s["first_party"]) == (4700, 1900)
    assert len(result.identifiers) == 10
