"""The status listener over a ledger written by hand in a real git repository.

The ledger is input: whoever can push to its branch controls its text. Host
names, subjects and files from it must show as text; files a newer writer
extends (extra keys) and the quarantine file must still be read.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from reconciler.daemon.logs import EventLog
from reconciler.ledger import Ledger, Record
from reconciler.metrics import Metrics
from reconciler.readmodel import ReadModel
from reconciler.settings import Settings
from reconciler.statusstore import StatusStore, Update
from reconciler.vocabulary import LedgerOutcome, Phase, Stage, StepKind
from reconciler.web.server import StatusApp, StatusServer
from tests.observe.helpers import ROOT, browser, fetch, metric, parse_metrics

EVIL_HOST = '<img src=x onerror="alert(1)">'
GEN = "1" * 40
BUILD = "3f2a9c1e" + "0" * 56
QUARANTINED = "dead" + "b" * 60
FACTS = {
    "host": "web1",
    "reachable": True,
    "observed_at": "2026-11-25T14:32:24Z",
    "marker": {"build": BUILD, "revision": "5a3e9b1c2d4f" + "0" * 28, "kernconf": "WEB"},
    "versions": {"source": {"revision12": "5a3e9b1c2d4f", "count": 1}, "ident": "WEB"},
    "format": 1,
    "added_by_a_newer_writer": {"anything": [1, 2]},
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    repo = tmp_path / "config"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    ledger = Ledger(repo)
    state = StatusStore(ledger).writer("lab", GEN, BUILD)
    state.record(Update("lab: rollout started", Stage.SOURCE, LedgerOutcome.STARTED,
                        rollout={"generation": GEN, "build": BUILD, "stage": "production",
                                 "revision": "5a3e9b1c2d4f" + "0" * 28,
                                 "outcome": "running", "future_key": True}))  # fmt: skip
    state.record(Update("web1: installed build 3f2a9c1e and healthy", Stage.PRODUCTION,
                        LedgerOutcome.SUCCESS, step=StepKind.CONFIRM, host="web1",
                        phase=Phase.DONE, facts=FACTS))  # fmt: skip
    ledger.record(Record(
        subject=f"{EVIL_HOST}: <script>alert(2)</script> failed", generation=GEN,
        buildset="lab", host=EVIL_HOST, stage="production", outcome="failure", build=BUILD,
        files={"status/quarantine.json": json.dumps(
            {"builds": [{"build": QUARANTINED, "buildset": "lab", "reason": "<b>boom</b>",
                         "since": "2026-11-25T15:00:00Z"}]})},
    ))  # fmt: skip
    settings = Settings(commit_url="https://git.example.org/c/{commit}")
    model = ReadModel(repo, settings=settings)
    metrics = Metrics(model.current)
    app = StatusApp(model.current, metrics=metrics.exposition, log=EventLog())
    with StatusServer("127.0.0.1:0", app) as server:
        yield server.url


def test_ledger_text_is_shown_as_text_in_a_browser(served: str, tmp_path: Path) -> None:
    with browser() as driver:
        driver.get(served)
        driver.save_screenshot(str(tmp_path / "ledger-page.png"))
        hosts = [
            r.get_attribute("data-host") for r in driver.find_elements(By.CSS_SELECTOR, "tr.host")
        ]
        assert hosts == ["web1", EVIL_HOST]
        names = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "tr.host td.name strong")]
        assert EVIL_HOST in names
        timeline = driver.find_element(By.ID, "timeline").text
        assert EVIL_HOST in timeline and "<script>alert(2)</script>" in timeline
        assert driver.find_elements(By.TAG_NAME, "img") == []
        assert driver.find_elements(By.TAG_NAME, "script") == []
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018
        quarantine = driver.find_element(By.ID, "quarantine").text
        assert QUARANTINED[:12] in quarantine and "<b>boom</b>" in quarantine
        web1 = driver.find_element(By.CSS_SELECTOR, 'tr.host[data-host="web1"]')
        link = web1.find_element(By.TAG_NAME, "a").get_attribute("href")
        assert link.startswith("https://git.example.org/c/")


def test_the_api_and_metrics_read_the_same_files(served: str) -> None:
    document = json.loads(fetch(served + "api/status")[2])
    schema = json.loads((ROOT / "schema" / "status.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    (lab,) = document["buildsets"]
    web1 = next(h for h in lab["hosts"] if h["name"] == "web1")
    # No config: desired comes from rollout.json; running from the recorded facts.
    assert web1["running_build"] == web1["desired_build"] == BUILD
    assert web1["running_revision"] == web1["desired_revision"] == "5a3e9b1c2d4f"
    assert web1["reachable"] is True and web1["in_sync"] is True
    assert document["quarantine"][0]["build"] == QUARANTINED
    samples = parse_metrics(fetch(served + "metrics")[2].decode())
    assert metric(samples, "reconciler_buildset_quarantined_builds", buildset="lab") == 1
    assert metric(samples, "reconciler_host_last_outcome", buildset="lab", host=EVIL_HOST,
                  outcome="failure") == 1  # fmt: skip
    assert metric(samples, "reconciler_buildset_rollout_stage", buildset="lab",
                  stage="production") == 1  # fmt: skip


def test_the_listener_is_read_only(served: str) -> None:
    for method in ("POST", "PUT", "DELETE"):
        request = urllib.request.Request(served, data=b"x", method=method)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 405
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(served + "nothing-here", timeout=5)
    assert missing.value.code == 404
    status, headers, _ = fetch(served)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src" not in headers["Content-Security-Policy"]  # no script may run at all
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    head = urllib.request.urlopen(urllib.request.Request(served, method="HEAD"), timeout=5)
    assert head.status == 200 and head.read() == b""
