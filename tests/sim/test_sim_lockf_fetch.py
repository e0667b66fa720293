"""The simulated lockf(1) and fetch(1) behave as usr.bin/lockf and usr.bin/fetch do, over SSH;
health checks run through them: HTTP probes from the host itself, timeouts, retries."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from reconciler.config.model import HealthCheck, Host
from reconciler.facts.connect import pins_of, target_of
from reconciler.rollout.health import run_check
from reconciler.sim.fleet import SimFleet
from reconciler.transport.ssh import Connection, load_key
from tests.conftest import FAST, fresh_subnet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("sim-lockf") / "fleet"
    fleet = SimFleet.up(directory, hosts=1, subnet=fresh_subnet(), **FAST)
    try:
        yield fleet
    finally:
        fleet.down()


def test_lockf_runs_the_command_and_exits_with_its_status(fleet: SimFleet) -> None:
    done = fleet.ssh("host1", "lockf /var/run/t1.lock sh -c 'echo in; exit 7'; echo status=$?")
    assert done.stdout.split() == ["in", "status=7"]
    kept = fleet.ssh("host1", "test -e /var/run/t1.lock; echo $?")
    assert kept.stdout.strip() == "1"  # removed without -k
    fleet.ssh("host1", "lockf -k /var/run/t2.lock true")
    assert fleet.ssh("host1", "test -e /var/run/t2.lock; echo $?").stdout.strip() == "0"  # -k


def test_a_held_lock_times_out_with_ex_tempfail(fleet: SimFleet) -> None:
    holder = (
        "lockf -k /var/run/t3.lock sleep 3 >/dev/null 2>&1 & sleep 0.7; "
        "lockf -k -t 0 /var/run/t3.lock echo ran; echo status=$?; "
        "lockf -k -s -t 0 /var/run/t3.lock echo ran; echo silent=$?; "
        "start=$(date +%s); lockf -k -t 1 /var/run/t3.lock echo ran; echo waited=$?; "
        "echo took=$(( $(date +%s) - start ))"
    )
    out = fleet.ssh("host1", holder)
    assert "ran" not in out.stdout  # a command is not run when the lock times out
    assert "lockf: /var/run/t3.lock: already locked" in out.stderr
    assert out.stderr.count("already locked") == 2  # -s says nothing
    lines = dict(line.split("=") for line in out.stdout.split())
    assert (lines["status"], lines["silent"], lines["waited"]) == ("75", "75", "75")
    assert 1 <= int(lines["took"]) <= 2
    later = fleet.ssh("host1", "sleep 2.5; lockf -k -t 0 /var/run/t3.lock echo free")
    assert later.stdout.strip() == "free"  # released when the holder's command ended


def test_the_lock_goes_with_the_lockf_process(fleet: SimFleet) -> None:
    # The child does not hold the lock: kill lockf itself and the lock is free.
    started = fleet.ssh(
        "host1",
        "lockf -k /var/run/t4.lock sleep 30 >/dev/null 2>&1 & echo $!",
    )
    pid = started.stdout.strip()
    time.sleep(0.7)
    assert fleet.ssh("host1", "lockf -k -t 0 /var/run/t4.lock true; echo $?").stdout.strip() == "75"
    fleet.ssh("host1", f"kill -9 {pid}")
    time.sleep(0.3)
    assert fleet.ssh("host1", "lockf -k -t 0 /var/run/t4.lock true; echo $?").stdout.strip() == "0"
    fleet.ssh("host1", "pkill -f 'sleep 30' || true")


class _Service(BaseHTTPRequestHandler):
    """What a host's web service answers: /ok, /missing (404), /boom (500), /slow (3 s)."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path == "/slow":
            time.sleep(3)
        code = {"/ok": 200, "/slow": 200, "/boom": 500}.get(self.path, 404)
        body = b"ok\n" if code == 200 else b"no\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # fetch -T gave up on /slow and closed the connection, as the test wants:
        # the late answer's broken pipe is not worth a traceback in the test output.
        pass


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Service)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_fetch_exits_0_on_success_and_1_with_the_reason_otherwise(
    fleet: SimFleet, service: str
) -> None:
    def fetch(url: str, seconds: int = 5) -> tuple[int, str]:
        done = fleet.ssh("host1", f"fetch -q -o /dev/null -T {seconds} {url}")
        return done.returncode, done.stderr.strip()

    assert fetch(f"{service}/ok") == (0, "")
    assert fetch(f"{service}/missing") == (1, f"fetch: {service}/missing: Not Found")
    assert fetch(f"{service}/boom") == (1, f"fetch: {service}/boom: Internal Server Error")
    refused = f"http://127.0.0.1:{_closed_port()}/health"
    assert fetch(refused) == (1, f"fetch: {refused}: Connection refused")
    assert fetch(f"{service}/slow", 1) == (1, "fetch: transfer timed out")
    body = fleet.ssh("host1", f"fetch -q -o - {service}/ok")
    assert (body.returncode, body.stdout) == (0, "ok\n")


def _connect(fleet: SimFleet) -> Connection:
    host = Host("host1", "x", fleet.address("host1"), "GENERIC", port=fleet.port("host1"))
    return Connection(
        target_of(host),
        pins=pins_of(fleet.known_hosts.read_text(), host),
        key=load_key(fleet.client_key),
        user="root",
    ).open()


def test_health_checks_probe_from_the_host_and_time_out(fleet: SimFleet, service: str) -> None:
    with _connect(fleet) as conn:
        assert run_check(conn, HealthCheck(url=f"{service}/ok", timeout=5)) is None
        failed = run_check(conn, HealthCheck(url=f"{service}/boom", timeout=5, retries=2))
        assert failed == (
            f"'GET {service}/boom' exited 1: fetch: {service}/boom: Internal Server Error"
        )
        assert _Service.seen.count("/boom") >= 3  # tried again twice, at once
        start = time.monotonic()
        slow = run_check(conn, HealthCheck(command="sleep 30", timeout=1))
        assert slow == "'sleep 30' timed out after 1s"
        assert time.monotonic() - start < 10
        assert run_check(conn, HealthCheck(command="service sshd status")) is None
