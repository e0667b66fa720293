"""Helpers for the observability tests: a daemon site on the simulated fleet, a browser,
a webhook receiver, a metrics scraper. Everything is real: sshd per host, git repos,
``reconciler run`` as a process, Debian's Chromium through its chromedriver."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from reconciler.gitutil import git, identity_env
from reconciler.ledger import Entry, Ledger
from reconciler.sim.example import copy_example_repo
from reconciler.sim.fleet import SimFleet
from tests.conftest import fresh_subnet

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ("builder", "tester", "web1", "web2")


class Site:
    """A bare config repo, an admin checkout, the fleet, and ``reconciler run`` processes."""

    def __init__(
        self, tmp: Path, fleet_factory: Callable[..., SimFleet], extra_settings: str = ""
    ) -> None:
        self.tmp = tmp
        self.checkout = copy_example_repo(tmp / "checkout", subnet=fresh_subnet())
        # The lab build set only, short soak: one build, four hosts, one reboot each.
        shutil.rmtree(self.checkout / "buildsets" / "db")
        path = self.checkout / "buildsets" / "lab" / "buildset.yaml"
        path.write_text(re.sub(r"soak: \d+", "soak: 1", path.read_text()), encoding="utf-8")
        git(self.checkout, "add", "-A")
        self.commit("The lab only, short soak, for tests")
        self.bare = tmp / "fleet-config.git"
        subprocess.run(
            ["git", "clone", "-q", "--bare", str(self.checkout), str(self.bare)], check=True
        )
        git(self.checkout, "remote", "add", "origin", str(self.bare))
        self.fleet = fleet_factory(self.checkout)
        self.work = tmp / "work"
        self.settings = tmp / "reconciler.toml"
        self.settings.write_text(
            f'repo = "{self.bare}"\nbranch = "main"\nwork_dir = "{self.work}"\n'
            f'ssh_key = "{self.fleet.client_key}"\npoll_interval = 2\nlog_format = "json"\n'
            'status_listen = "127.0.0.1:0"\n' + extra_settings,
            encoding="utf-8",
        )
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[Path] = []

    def commit(self, message: str, *, allow_empty: bool = False) -> str:
        extra = ["--allow-empty"] if allow_empty else []
        git(self.checkout, "commit", "-q", "-am", message, *extra, env=identity_env())
        return git(self.checkout, "rev-parse", "HEAD")

    def edit(self, path: str, pattern: str, replacement: str, message: str) -> str:
        file = self.checkout / path
        text, count = re.subn(pattern, replacement, file.read_text(), flags=re.M)
        assert count, (pattern, path)
        file.write_text(text, encoding="utf-8")
        return self.commit(message)

    def push(self) -> None:
        git(self.checkout, "push", "-q", "origin", "HEAD:refs/heads/main")

    def start(self) -> subprocess.Popen[str]:
        log = self.tmp / f"daemon{len(self.logs)}.log"
        self.logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "--config", str(self.settings)],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.procs.append(proc)
        return proc

    def events(self, index: int = -1) -> list[dict[str, Any]]:
        lines = self.logs[index].read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def url(self, timeout: float = 30.0) -> str:
        """The status listener of the newest daemon, from its ``status.listen`` log line."""
        found: list[str] = []

        def listening() -> bool:
            found[:] = [str(e["url"]) for e in self.events() if e.get("event") == "status.listen"]
            return bool(found)

        self.wait(listening, "the status listener", timeout)
        return found[-1]

    def state(self) -> dict[str, Any]:
        try:
            (path,) = (self.work / "repos").glob("*.state.json")
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}

    def entries(self) -> list[Entry]:
        return Ledger(self.bare).entries()  # newest first, as pushed to the origin

    def converged_on(self, commit: str) -> bool:
        state = self.state()
        return state.get("generation") == commit and state.get("status") == "converged"

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for proc in self.procs:
                if proc.poll() not in (None, 0, -9):
                    raise AssertionError(f"daemon died ({proc.returncode}):\n{self.tail()}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.logs[-1].read_text().splitlines()[-30:]) if self.logs else ""

    def stop(self, proc: subprocess.Popen[str]) -> int:
        proc.terminate()
        return proc.wait(120)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def fetch(url: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.status, dict(answer.headers.items()), answer.read()


def api_status(base: str) -> dict[str, Any]:
    return dict(json.loads(fetch(base + "api/status")[2]))


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text format -> {(name, labels): value} (what a scraper reads)."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        found = _SAMPLE.match(line)
        assert found, f"not a sample line: {line!r}"
        pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', found.group(3) or "")
        labels = frozenset((key, _unescape(value)) for key, value in pairs)
        samples[(found.group(1), labels)] = float(found.group(4))
    return samples


def metric(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


class Scraper:
    """Scrapes /metrics every ``interval`` seconds in a thread; keeps every scrape."""

    def __init__(self, url: str, interval: float = 0.5) -> None:
        self.url = url
        self.interval = interval
        self.scrapes: list[dict[tuple[str, frozenset[tuple[str, str]]], float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.scrapes.append(parse_metrics(fetch(self.url, 5)[2].decode()))
            except Exception as exc:  # a scrape that fails is kept as a fact, the next one runs
                self.errors.append(repr(exc))

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def series(self, name: str, **labels: str) -> list[float]:
        """The value in each scrape that had it, in order."""
        values = [metric(s, name, **labels) for s in list(self.scrapes)]
        return [v for v in values if v is not None]

    def last(self, name: str, **labels: str) -> float | None:
        """The value in the newest scrape (None when that scrape lacks it)."""
        return metric(self.scrapes[-1], name, **labels) if self.scrapes else None


@contextlib.contextmanager
def browser(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """Debian's Chromium, headless, driven through Debian's chromedriver (no downloads)."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for a driver online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Receiver:
    """A webhook receiver on 127.0.0.1: records every request; answers 503 while ``failing``."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, dict[str, str], bytes]] = []  # (answered, headers, body)
        self.failing = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 503 if receiver.failing else 200
                with receiver.lock:
                    receiver.requests.append((status, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[dict[str, Any]]:
        """The bodies answered 200, in arrival order."""
        with self.lock:
            return [json.loads(body) for status, _, body in self.requests if status == 200]
