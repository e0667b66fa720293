"""Health that holds: an HTTP probe run from the test host, every second through its soak.

The host's service (a tiny HTTP server this test runs on the loopback the
simulated hosts share) answers 200 three times, then 500: the soak catches it
on a later round, the host is rolled back as for any failed check, and the
build is quarantined.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.rollout.conftest import Lab

LAB = "buildsets/lab/buildset.yaml"


class _Flaky(BaseHTTPRequestHandler):
    answers: list[int] = []  # noqa: RUF012 (one server per test, reset by the fixture)

    def do_GET(self) -> None:
        self.answers.append(200 if len(self.answers) < 3 else 500)
        self.send_response(self.answers[-1])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    _Flaky.answers = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_probe_that_fails_during_the_soak_rolls_the_host_back(
    small_lab: Lab, service: str
) -> None:
    lab = small_lab
    lab.edit(
        LAB,
        r"^  soak: 1\n((?:  \w+: .*\n)*?)  health_checks:\n",
        "  soak: 8\n\\1  health_checks:\n"
        f"    - {{http: {{url: '{service}'}}, interval: 1, timeout: 3}}\n",
        "An HTTP probe on the test host, every second",
    )
    before = lab.booted_be("tester")
    done = lab.apply("--host", "tester")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert lab.booted_be("tester") == before  # rolled back, as for any failed check
    assert _Flaky.answers[:4] == [200, 200, 200, 500]  # checked again and again
    rolled = [e for e in lab.entries() if e.host == "tester" and e.outcome == "rolled-back"]
    assert rolled, lab.subjects()
    text = rolled[-1].subject + rolled[-1].body
    assert f"'GET {service}' exited 1: fetch: {service}: Internal Server Error" in text, text
    assert "of a 8s soak" in text
    assert any(e.outcome == "quarantined" for e in lab.entries())
