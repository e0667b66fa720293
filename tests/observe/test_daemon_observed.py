"""`reconciler run` on the simulated fleet, watched the way an operator would: the status
page in Chromium, /api/status against its schema, /metrics scraped during the rollout.

One fleet and one daemon for the module (a rollout is the expensive part); the
fixture pushes the first generation and records what the page and the API said
while it rolled out, then waits for convergence.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from reconciler.gitutil import git
from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST
from tests.observe.helpers import (
    HOSTS,
    ROOT,
    Scraper,
    Site,
    api_status,
    browser,
    fetch,
    metric,
    parse_metrics,
)

SCHEMA = json.loads((ROOT / "schema" / "status.schema.json").read_text())
COMMIT_URL = "https://git.example.org/ops/fleet-config/commit/{commit}"


@dataclass
class Observed:
    site: Site
    url: str
    scraper: Scraper
    driver: Any
    first: str
    shots: Path
    during: dict[str, Any] = field(default_factory=dict)


def _rows(driver: Any) -> dict[str, dict[str, str]]:
    found = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "tr.host"):
        cells = row.find_elements(By.TAG_NAME, "td")
        found[row.get_attribute("data-host")] = {
            "text": row.text,
            "desired": cells[2].text,
            "running": cells[3].text,
            "in_sync": cells[5].text,
            "reachable": cells[6].text,
            "last": cells[7].text,
            "commit": cells[9].text,
            "commit_href": next(
                (a.get_attribute("href") for a in cells[9].find_elements(By.TAG_NAME, "a")), ""
            ),
        }
    return found


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    tmp = tmp_path_factory.mktemp("observed")
    fleets: list[SimFleet] = []

    def start_fleet(repo: Path) -> SimFleet:
        fleets.append(SimFleet.up(tmp / "fleet", repo=repo, **FAST))
        return fleets[-1]

    site = Site(tmp, start_fleet, f'commit_url = "{COMMIT_URL}"\n')
    try:
        site.start()
        url = site.url()
        first = git(site.checkout, "rev-parse", "HEAD")
        with Scraper(url + "metrics") as scraper, browser() as driver:
            shots = tmp / "screenshots"
            shots.mkdir()
            obs = Observed(site, url, scraper, driver, first, shots)
            site.push()

            def rolling() -> bool:
                sets = api_status(url)["buildsets"]
                progress = sets[0]["progress"] if sets else None
                if progress and progress["running"] and progress["build_line"]:
                    obs.during["api"] = sets[0]
                    return True
                return False

            site.wait(rolling, "the rollout with build progress on /api/status", 90)
            driver.get(url)
            obs.during["page"] = driver.find_element(By.TAG_NAME, "body").text
            driver.save_screenshot(str(shots / "during.png"))
            site.wait(lambda: site.converged_on(first), "the first generation to converge", 150)
            yield obs
    finally:
        site.stop_all()
        for fleet in fleets:
            fleet.down()


def test_the_page_shows_the_rollout_in_progress(observed: Observed) -> None:
    during = observed.during["api"]
    assert during["progress"]["running"] is True
    # The build's ">>> " lines (buildworld's "stage 4.1: building includes" ...) arrive as
    # BUILD events, without the marker; the read model keeps the last one per build set.
    # the last >>> line of the build's log, as make printed it (Makefile.inc1's own words)
    assert during["progress"]["build_line"].strip(), during
    assert "Rollout in progress." in observed.during["page"]
    assert during["progress"]["build_line"] in observed.during["page"]


def test_the_page_shows_every_host_in_sync_after_the_rollout(observed: Observed) -> None:
    site, driver = observed.site, observed.driver
    # The page reloads itself; wait for the reload that shows the converged fleet.
    deadline = time.monotonic() + 30
    while True:
        driver.get(observed.url)
        rows = _rows(driver)
        if all(rows.get(h, {}).get("in_sync") == "yes" for h in HOSTS):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(1)
    driver.save_screenshot(str(observed.shots / "converged.png"))
    if os.environ.get("RECONCILER_UPDATE_SCREENSHOT"):
        shutil.copy(observed.shots / "converged.png", ROOT / "docs" / "status-page.png")
    assert sorted(rows) == sorted(HOSTS)
    ledger = {e.commit: e for e in site.entries()}
    for host, row in rows.items():
        assert row["reachable"] == "yes", (host, row)
        assert row["desired"] == row["running"] and len(row["running"]) == 12, (host, row)
        assert row["last"].startswith("success"), (host, row)
        # The last outcome links to its ledger commit through the commit_url template.
        commit = row["commit_href"].rsplit("/", 1)[-1]
        assert commit in ledger and commit.startswith(row["commit"]), (host, row)
        assert ledger[commit].host == host
    meta = driver.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert int(meta.get_attribute("content")) > 0
    assert driver.find_element(By.ID, "quarantine").text == "None."
    subjects = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#timeline td.subject")]
    assert subjects[: len(ledger)] == [e.subject for e in site.entries()][: len(subjects)]
    assert "Rollout in progress." not in driver.find_element(By.TAG_NAME, "body").text


def test_api_status_follows_its_schema(observed: Observed) -> None:
    status, headers, body = fetch(observed.url + "api/status")
    assert status == 200 and headers["Content-Type"] == "application/json"
    document = json.loads(body)
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    (lab,) = document["buildsets"]
    assert lab["name"] == "lab" and lab["stage"] == "done" and lab["outcome"] == "converged"
    assert lab["last_build"]["result"] == "success" and lab["last_build"]["duration_seconds"] > 0
    assert document["daemon"]["status"] == "converged"
    assert document["daemon"]["generation"] == observed.first
    assert document["ledger_tip"] == document["timeline"][0]["ref"]["commit"]


def test_commit_subjects_and_ledger_text_are_escaped(observed: Observed) -> None:
    site, driver = observed.site, observed.driver
    evil = "<script>alert(1)</script> & <b>bold</b>"
    accepted = site.commit(evil, allow_empty=True)
    site.push()
    site.wait(lambda: site.converged_on(accepted), "the empty commit to be accepted", 60)
    subject = '<img src=x onerror="alert(2)"> points at nobody'
    bad = site.edit("buildsets/lab/buildset.yaml", r"^build_host: builder",
                    "build_host: nosuch", subject)  # fmt: skip
    site.push()
    site.wait(
        lambda: any(e.generation == bad and e.outcome == "rejected" for e in site.entries()),
        "the rejection",
        30,
    )
    fixed = site.edit("buildsets/lab/buildset.yaml", r"^build_host: nosuch",
                      "build_host: builder", "back to the builder")  # fmt: skip
    site.push()
    site.wait(lambda: site.converged_on(fixed), "the fix to be accepted", 60)
    driver.get(observed.url)
    subjects = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#timeline td.subject")]
    assert any(evil in s and "validated" in s for s in subjects), subjects
    assert any('<img src=x onerror="alert(2)">' in s and "rejected" in s for s in subjects)
    # Shown as text: no element came out of the ledger, no script ran.
    assert driver.find_elements(By.TAG_NAME, "script") == []
    assert driver.find_elements(By.TAG_NAME, "img") == []
    assert driver.find_elements(By.CSS_SELECTOR, "td.subject b") == []
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018
    html = fetch(observed.url)[2].decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


def test_metrics_moved_with_the_rollout(observed: Observed) -> None:
    scraper = observed.scraper
    for host in HOSTS:
        seen = scraper.series("reconciler_host_in_sync", buildset="lab", host=host)
        assert 0.0 in seen and seen[-1] == 1.0, (host, seen)
        assert seen.index(1.0) > seen.index(0.0), (host, seen)  # 0 first, then 1
        assert scraper.series("reconciler_host_reachable", buildset="lab", host=host)[-1] == 1.0
    applies = scraper.series("reconciler_cycle_duration_seconds_count", kind="apply")
    assert applies and applies[-1] >= 1.0
    # Converged, the loop keeps cycling: a drift check at every poll (2 s here).
    count = "reconciler_cycle_duration_seconds_count"
    before = scraper.last(count, kind="drift") or 0.0
    observed.site.wait(
        lambda: (scraper.last(count, kind="drift") or 0.0) >= before + 2,
        "two more drift checks",
        30,
    )
    assert not scraper.errors, scraper.errors
    polls = scraper.series("reconciler_last_successful_poll_timestamp_seconds")
    assert polls[-1] > polls[0] and abs(polls[-1] - time.time()) < 30
    samples = parse_metrics(fetch(observed.url + "metrics")[2].decode())
    assert metric(samples, "reconciler_buildset_rollout_stage", buildset="lab", stage="done") == 1
    assert metric(samples, "reconciler_buildset_build_result", buildset="lab", result="success")
    assert (metric(samples, "reconciler_buildset_build_duration_seconds", buildset="lab") or 0) > 0
    assert metric(samples, "reconciler_buildset_quarantined_builds", buildset="lab") == 0
    # One-hot: the outcome the ledger recorded last for the host is 1, every other one 0.
    for host in api_status(observed.url)["buildsets"][0]["hosts"]:
        hot = {
            dict(labels)["outcome"]: value
            for (name, labels), value in samples.items()
            if name == "reconciler_host_last_outcome" and dict(labels)["host"] == host["name"]
        }
        assert hot[host["last_outcome"]] == 1 and sum(hot.values()) == 1, (host, hot)
        assert {"success", "failure", "rolled-back", "halted"} <= set(hot)
    assert metric(samples, "reconciler_ledger_push_conflicts_total") == 0


def test_a_host_that_stops_answering_shows_in_metrics_and_on_the_page(
    observed: Observed,
) -> None:
    site, scraper = observed.site, observed.scraper

    def failures() -> float:
        samples = parse_metrics(fetch(observed.url + "metrics")[2].decode())
        return metric(samples, "reconciler_ssh_connection_failures_total", host="web2") or 0.0

    before = failures()
    site.fleet.set_fault("web2", "reboot-hangs")
    site.fleet.ssh("web2", "shutdown -r now", timeout=30)
    try:
        site.wait(
            lambda: scraper.last("reconciler_host_reachable", buildset="lab", host="web2") == 0,
            "web2 to be seen unreachable",
            60,
        )
        assert failures() > before
        observed.driver.get(observed.url)
        row = _rows(observed.driver)["web2"]
        assert row["reachable"] == "no" and row["in_sync"] == "no", row
    finally:
        site.fleet.clear_fault("web2", "reboot-hangs")
    site.wait(
        lambda: scraper.last("reconciler_host_reachable", buildset="lab", host="web2") == 1,
        "web2 to be back",
        90,
    )
