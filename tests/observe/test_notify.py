"""Notifications from a real ledger (a git repository) to a real local receiver and command."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.daemon.logs import EventLog
from reconciler.ledger import Ledger, Record
from reconciler.notify import (
    Command,
    Notice,
    Notifier,
    Position,
    Webhook,
    classify,
    delivery_id,
    load_position,
    pending,
)
from reconciler.settings import Settings
from tests.observe.helpers import Receiver

SECRET = "s3cret"
GEN = "a" * 40
BUILD = "b" * 64

# (record fields, expected notice): what the engine and the daemon write, as they write it.
CASES = [
    (dict(stage="config", outcome="validated"), None),
    (dict(stage="config", outcome="rejected"), Notice.CONFIG_REJECTED),
    (dict(stage="daemon", outcome="rejected"), Notice.CONFIG_REJECTED),
    (dict(buildset="lab", stage="source", outcome="started"), None),
    (dict(buildset="lab", host="builder", stage="build", outcome="started"), None),
    (dict(buildset="lab", host="builder", stage="build", outcome="failure"), Notice.BUILD_FAILED),
    (dict(buildset="lab", stage="build", outcome="halted"), Notice.ROLLOUT_HALTED),
    (dict(buildset="lab", host="tester", stage="test", outcome="started"), None),
    (dict(buildset="lab", host="tester", stage="test", outcome="success"), None),
    (dict(buildset="lab", host="tester", stage="test", outcome="failure"), Notice.HOST_FAILED),
    (dict(buildset="lab", stage="test", outcome="halted"), Notice.TEST_FAILED),
    (dict(buildset="lab", stage="test", outcome="success"), Notice.TEST_PASSED),
    (
        dict(buildset="lab", host="web1", stage="production", outcome="rolled-back"),
        Notice.HOST_ROLLED_BACK,
    ),
    (dict(buildset="lab", host="web1", stage="production", outcome="drift"), None),
    (dict(buildset="lab", host="web1", stage="production", outcome="healed"), None),
    (dict(buildset="lab", stage="production", outcome="halted"), Notice.ROLLOUT_HALTED),
    (dict(buildset="lab", stage="production", outcome="success"), Notice.ROLLOUT_CONVERGED),
    (dict(buildset="lab", stage="build", outcome="quarantined"), Notice.BUILD_QUARANTINED),
    (dict(buildset="lab", stage="build", outcome="something-new"), None),
]


def record(ledger: Ledger, subject: str, **fields: str) -> str:
    fields = {"buildset": None, "host": None, "stage": None, **fields}  # type: ignore[dict-item]
    return ledger.record(Record(subject=subject, generation=GEN, build=BUILD, **fields))  # type: ignore[arg-type]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    repo = tmp_path / "config"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    return Ledger(repo)


def test_every_kind_of_ledger_commit_is_classified_from_its_trailers(ledger: Ledger) -> None:
    for index, (fields, _) in enumerate(CASES):
        record(ledger, f"record {index}", **fields)
    entries = list(reversed(ledger.entries()))
    assert [classify(e) for e in entries] == [notice for _, notice in CASES]


def test_pending_finds_a_replayed_position_by_its_delivery_id(ledger: Ledger) -> None:
    record(ledger, "one", stage="config", outcome="rejected")
    first = ledger.entries()[0]
    record(ledger, "two", stage="config", outcome="rejected")
    entries = ledger.entries()
    # The position's commit was replayed under another id: same message, same author time.
    moved = Position(commit="c" * 40, id=delivery_id(first), time=first.time.isoformat())
    todo, found = pending(entries, moved)
    assert found and [e.subject for e in todo] == ["two"]
    # Not found at all: by time, minus what was delivered.
    lost = Position(commit="c" * 40, id="x", time=first.time.isoformat(),
                    delivered=(delivery_id(first),))  # fmt: skip
    todo, found = pending(entries, lost)
    assert not found and [e.subject for e in todo] == ["two"]


def _notifier(
    ledger: Ledger, tmp: Path, targets: list[Webhook | Command], **kw: object
) -> Notifier:
    settings = Settings(repo="https://alice:pw@git.example.org/fleet.git", commit_url="")
    return Notifier(
        targets, ledger=lambda: ledger, positions=tmp / "positions", settings=settings,
        poll=0.1, backoff=0.05, log=EventLog(), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _wait(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_webhooks_are_signed_delivered_once_and_resume_after_a_restart(
    ledger: Ledger, tmp_path: Path
) -> None:
    record(ledger, "before the notifier: history, not news", stage="config", outcome="rejected")
    time.sleep(1.1)  # git keeps author times in whole seconds
    with Receiver() as receiver:
        hook = Webhook(receiver.url, SECRET, timeout=5)
        notifier = _notifier(ledger, tmp_path, [hook]).start()
        record(ledger, "lab: build passed the test stage", buildset="lab", stage="test",
               outcome="success")  # fmt: skip
        record(ledger, "web1: installed and healthy", buildset="lab", host="web1",
               stage="production", outcome="success")  # fmt: skip
        record(ledger, "web2: rolled back", buildset="lab", host="web2", stage="production",
               outcome="rolled-back")  # fmt: skip
        notifier.wake()
        _wait(lambda: len(receiver.delivered()) == 2, "two deliveries")
        notifier.close()
        record(ledger, "lab: halted", buildset="lab", stage="production", outcome="halted")
        again = _notifier(ledger, tmp_path, [hook]).start()  # a restarted daemon
        _wait(lambda: len(receiver.delivered()) == 3, "the third delivery")
        time.sleep(0.5)  # more polls: nothing else arrives
        again.close()
    got = receiver.delivered()
    assert [d["event"] for d in got] == ["test.passed", "host.rolled-back", "rollout.halted"]
    assert len({d["delivery"] for d in got}) == 3
    assert got[1]["host"] == "web2" and got[1]["commit"] == ledger.entries()[1].commit
    assert got[0]["repo"] == "https://git.example.org/fleet.git"  # no password leaves
    for _, headers, body in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Reconciler-Signature"], expected)
        assert headers["X-Reconciler-Event"] == json.loads(body)["event"]
    saved = load_position(tmp_path / "positions" / f"{hook.key}.json")
    assert saved is not None and saved.commit == ledger.head()


def test_a_failing_target_is_retried_then_given_up_and_the_next_one_still_goes(
    ledger: Ledger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "got.jsonl"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        "event = json.load(sys.stdin)\n"
        "if 'fail' in event['subject']:\n"
        "    sys.exit('pager is down')\n"
        "line = json.dumps([os.environ['RECONCILER_EVENT'], event])\n"
        f"open({str(out)!r}, 'a').write(line + '\\n')\n"
    )
    command = Command((sys.executable, str(script)), timeout=10)
    caplog.set_level(logging.INFO, logger="reconciler")
    notifier = _notifier(ledger, tmp_path, [command], attempts=3).start()
    record(ledger, "fail: config rejected", stage="config", outcome="rejected")
    record(ledger, "lab: converged", buildset="lab", stage="production", outcome="success")
    notifier.wake()
    _wait(lambda: out.exists() and out.read_text().count("\n") == 1, "the second notification")
    notifier.close()
    ((kind, event),) = [json.loads(line) for line in out.read_text().splitlines()]
    assert kind == event["event"] == "rollout.converged"
    retries = [r for r in caplog.records if getattr(r, "reconciler_event", "") == "notify.retry"]
    gave_up = [r for r in caplog.records if getattr(r, "reconciler_event", "") == "notify.gave-up"]
    assert len(retries) == 2 and len(gave_up) == 1
    assert "after 3 tries" in gave_up[0].getMessage() and "pager is down" in gave_up[0].getMessage()
