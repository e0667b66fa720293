"""Notifications from `reconciler run` on the simulated fleet, across a restart.

A webhook receiver on 127.0.0.1 and a command hook get every ledger outcome
that matters exactly once, in ledger order, signed; the receiver is down while
the daemon stops, and the restarted daemon delivers what it missed, nothing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.gitutil import git
from reconciler.notify import classify
from reconciler.sim.fleet import SimFleet
from tests.observe.helpers import Receiver, Site

SECRET = "webhook secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_each_outcome_that_matters_arrives_once_across_a_restart(
    tmp_path: Path, sim_fleet_factory: Callable[..., SimFleet], receiver: Receiver
) -> None:
    got = tmp_path / "command.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import json, sys\n"
        f"open({str(got)!r}, 'a').write(json.dumps(json.load(sys.stdin)) + '\\n')\n"
    )
    site = Site(
        tmp_path,
        sim_fleet_factory,
        f'webhooks = ["{receiver.url}"]\nwebhook_secret = "{SECRET}"\n'
        f'notify_command = ["{sys.executable}", "{hook}"]\nnotify_attempts = 20\n',
    )
    try:
        _run(site, receiver, got)
    finally:
        site.stop_all()


def _commands(got: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in got.read_text().splitlines()] if got.exists() else []


def _events(items: list[dict[str, object]]) -> list[str]:
    return [str(item["event"]) for item in items]


def _run(site: Site, receiver: Receiver, got: Path) -> None:
    # 1. The first generation: the test stage passes, the rollout converges.
    first = git(site.checkout, "rev-parse", "HEAD")
    daemon = site.start()
    site.push()
    site.wait(lambda: site.converged_on(first), "the first generation to converge", 150)
    expected = ["test.passed", "rollout.converged"]
    site.wait(lambda: _events(receiver.delivered()) == expected, "two webhooks", 30)
    site.wait(lambda: _events(_commands(got)) == expected, "two command runs", 30)

    # 2. The receiver goes down; a bad commit is rejected; the daemon stops meanwhile.
    receiver.failing = True
    bad = site.edit("buildsets/lab/buildset.yaml", r"^build_host: builder",
                    "build_host: nosuch", "point the lab at nobody")  # fmt: skip
    site.push()
    site.wait(
        lambda: any(json.loads(b)["event"] == "config.rejected" for _, _, b in receiver.requests),
        "a failed try of the rejection's webhook",
        30,
    )
    site.wait(lambda: _events(_commands(got))[-1:] == ["config.rejected"], "the command", 30)
    assert site.stop(daemon) == 0, site.tail()
    assert _events(receiver.delivered()) == expected  # not delivered: the receiver was down
    tried = len(receiver.requests)

    # 3. Back up, restarted: the missed webhook arrives; a failing host is reported.
    receiver.failing = False
    site.fleet.set_fault("web1", "health-fails")
    site.edit("buildsets/lab/buildset.yaml", r"^build_host: nosuch", "build_host: builder",
              "back to the builder")  # fmt: skip
    change = site.edit("buildsets/lab/make.conf", r"\Z", "\nCFLAGS+=-pipe\n", "build with -pipe")
    site.push()
    site.start()
    site.wait(lambda: site.state().get("generation") == change and site.state().get("status")
              == "failed", "the new generation to fail on web1", 150)  # fmt: skip
    expected += ["config.rejected", "test.passed", "host.rolled-back", "rollout.halted"]
    site.wait(lambda: len(receiver.delivered()) >= len(expected), "the webhooks", 30)
    site.wait(lambda: len(_commands(got)) >= len(expected), "the command runs", 30)
    assert site.stop(site.procs[-1]) == 0, site.tail()

    # Exactly the ledger's outcomes that matter, oldest first, once each, to both targets.
    ledger = [e for e in reversed(site.entries()) if classify(e) is not None]
    assert [str(classify(e)) for e in ledger] == expected
    for delivered in (receiver.delivered(), _commands(got)):
        assert _events(delivered) == expected
        assert [d["commit"] for d in delivered] == [e.commit for e in ledger]
        assert len({d["delivery"] for d in delivered}) == len(expected)
    rejected = receiver.delivered()[2]
    assert rejected["generation"] == bad and rejected["stage"] == "config"
    assert any(
        json.loads(b)["event"] == "config.rejected" for _, _, b in receiver.requests[tried:]
    )  # fmt: skip  (by the restarted daemon)
    for _, headers, body in receiver.requests:
        expected_signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Reconciler-Signature"] == f"sha256={expected_signature}"
