"""Commands that write an incident's records after its run hold the same lock the run does."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbook import core
from playbook.config.settings import Settings
from playbook.errors import IncidentLocked
from playbook.store.sqlite import Store
from tests.test_notices_fixture import INCIDENT, build_incident, full_org, store_drafts


def test_notice_sent_refuses_while_a_run_drives_the_incident_then_records(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    store = build_incident(home, with_notices=False)
    store_drafts(store, full_org(tmp_path))
    store.close()
    settings = Settings(home=home, cwd=tmp_path, operator="jane")
    runner = Store(home=home)  # another driver, as `respond resume` would be
    runner.lock(INCIDENT)
    try:
        with pytest.raises(IncidentLocked, match="being driven by another process"):
            core.track_notice(settings, "dmca-github", INCIDENT, sent=True, ref="T-1")
    finally:
        runner.unlock(INCIDENT)
        runner.close()
    after = core.track_notice(settings, "dmca-github", INCIDENT, sent=True, ref="T-1")
    assert after.status == "sent" and after.ref == "T-1"
    check = Store(home=home)
    try:
        check.lock(INCIDENT)  # the command let go of the lock when it was done
        check.unlock(INCIDENT)
    finally:
        check.close()
