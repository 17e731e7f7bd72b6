"""Package specs: what is accepted, and a clear UsageError with what is accepted for anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playbook.errors import UsageError
from playbook.spec import PackageSpec, parse_spec


@pytest.mark.parametrize(
    ("text", "name", "version"),
    [
        ("pkg@1.2.3", "pkg", "1.2.3"),
        ("@acme/cli@2.1.88", "@acme/cli", "2.1.88"),
        ("a.b-c_d@0.0.0-rc.1+build.5", "a.b-c_d", "0.0.0-rc.1+build.5"),
    ],
)
def test_accepted(text: str, name: str, version: str) -> None:
    spec = parse_spec(text)
    assert (spec.name, spec.version) == (name, version)
    assert str(spec) == text


def test_escaped_name_and_slug() -> None:
    spec = PackageSpec("@acme/cli", "2.1.88")
    assert spec.escaped_name == "@acme%2fcli"
    assert spec.slug == "acme-cli-2.1.88"
    assert spec.scope == "@acme"


@pytest.mark.parametrize(
    "text",
    ["notaspec", "@scope/", "pkg@", "pkg@not-semver", "pkg@1.2", "pkg@^1.2.3", "pkg@v1.2.3",
     "Pkg@1.0.0", "@/x@1.0.0", "x/y@1.0.0", "@s/x/y@1.0.0", "pkg@01.2.3", " @1.0.0", "a" * 215 + "@1.0.0"],
)  # fmt: skip
def test_rejected_with_what_is_accepted(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_spec(text)
    assert "accepted:" in caught.value.message
    assert "\n" not in caught.value.message


@given(st.text(max_size=300))
def test_never_a_traceback_on_any_text(text: str) -> None:
    try:
        spec = parse_spec(text)
    except UsageError as exc:
        assert "accepted:" in exc.message
    else:
        assert parse_spec(str(spec)) == spec
