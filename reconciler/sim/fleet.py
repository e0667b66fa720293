"""The simulated fleet, from the outside: start, stop, inspect, inject faults.

Public API (other engineers and the tests call exactly this)::

    fleet = SimFleet.up(directory, repo=None, hosts=3, build_seconds=3.0,
                        install_seconds=1.0, boot_seconds=1.0, obj_in_be=(), ufs=(),
                        no_git=(), subnet="127.0.0", detached=False,
                        shutdown_seconds=2.0, nfs_retry_seconds=60.0)
    fleet = SimFleet.attach(directory)      # a fleet some other process started
    fleet.hosts                             # ["host1", ...] (config order)
    fleet.ssh_config, fleet.client_key, fleet.known_hosts
    fleet.address(host), fleet.port(host)
    fleet.state(host) -> dict               # state.json (see state.py)
    fleet.set_fault(host, kind, value=None); fleet.clear_fault(host, kind)
    fleet.power_cycle(host)                 # the reset button (a hung host boots again)
    fleet.ssh(host, "uname -i", timeout=30) -> CompletedProcess[str]   # OpenSSH client
    fleet.read_file(host, "/etc/make.conf") -> str | None             # no SSH
    fleet.count(host, "buildworld") -> int
    fleet.accepts(host) -> int              # SSH logins its sshd accepted (all boots)
    fleet.wait_up(host, timeout=30, since=None)
    fleet.down()

``up`` lays the directory out (prepare.py), starts one detached supervisor
(supervisor.py, pid in DIR/supervisor.pid) and returns once every sshd
accepts connections. ``down`` stops it; every host's processes and mounts die
with its namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reconciler.errors import SimError
from reconciler.sim import state
from reconciler.sim.layout import FleetLayout
from reconciler.sim.prepare import prepare
from reconciler.sim.spec import HostSpec, Timings, load_fleet
from reconciler.sim.subnets import anonymous_addresses

_UP_TIMEOUT = 30.0
#: The most anonymous hosts ``up`` starts (four /24s of loopback addresses).
MAX_HOSTS = 1000
#: What sshd (LogLevel INFO) writes to the host's console for each login it accepts.
_ACCEPTED = b"Accepted publickey for "


def check_prerequisites() -> None:
    """Raise SimError naming exactly what this machine lacks."""
    missing = []
    if os.geteuid() != 0:
        missing.append(
            "root privileges (mount namespaces and overlay mounts need them; run as root)"
        )
    for tool, package in (
        ("unshare", "util-linux"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
        ("git", "git"),
    ):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {package})")
    if not Path("/usr/sbin/sshd").exists():
        missing.append("/usr/sbin/sshd (apt-get install openssh-server)")
    try:
        filesystems = Path("/proc/filesystems").read_text()
    except OSError:
        filesystems = ""
    if "overlay" not in filesystems:
        subprocess.run(["modprobe", "overlay"], capture_output=True, check=False)
        if "overlay" not in Path("/proc/filesystems").read_text():
            missing.append("the overlay file system (modprobe overlay)")
    if missing:
        raise SimError("cannot start the simulated fleet: missing " + "; ".join(missing))


def _specs_from_repo(
    repo: Path, obj_in_be: Iterable[str], ufs: Iterable[str], no_git: Iterable[str] = ()
) -> tuple[list[HostSpec], str]:
    from reconciler.config.load import load_config  # late: the config layer is optional here

    config = load_config(repo)
    objs, ufss, gitless = set(obj_in_be), set(ufs), set(no_git)
    # A build set installed in place is the handbook's UFS machine: no boot environments.
    for bs in config.buildsets:
        if bs.rollout.install == "in-place":
            ufss.update(h.name for h in bs.hosts)
    specs = [
        HostSpec(
            name=h.name,
            address=h.address,
            port=h.port,
            kernconf=h.kernconf,
            src=h.name == config.src_host,
            ufs=h.name in ufss,
            obj_in_be=h.name in objs,
            no_git=h.name in gitless,
            kernel_config=custom.text if (custom := config.kernel(h.kernconf)) else "",
        )
        for h in config.hosts
    ]
    return specs, config.src_host


def _banner(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


class SimFleet:
    def __init__(self, directory: Path, supervisor: subprocess.Popen[bytes] | None = None) -> None:
        self.layout = FleetLayout(directory)
        self.directory = directory
        specs, self.timings, _ = load_fleet(self.layout)
        self._specs = {s.name: s for s in specs}
        self._supervisor = supervisor

    # -- life cycle ----------------------------------------------------------
    @classmethod
    def up(
        cls,
        directory: Path,
        *,
        repo: Path | None = None,
        hosts: int | None = None,
        build_seconds: float = 3.0,
        install_seconds: float = 1.0,
        boot_seconds: float = 1.0,
        obj_in_be: Iterable[str] = (),
        ufs: Iterable[str] = (),
        no_git: Iterable[str] = (),
        subnet: str = "127.0.0",
        detached: bool = False,
        shutdown_seconds: float = 2.0,
        nfs_retry_seconds: float = 60.0,
    ) -> SimFleet:
        """Lay out ``directory``, start the supervisor, wait until every sshd answers.

        ``subnet`` places ``hosts=N`` fleets at ``<subnet>.101`` on, or, above
        150 hosts, 250 per /24 from ``<subnet>.1`` on through the /24s after
        it (``reserve_subnet(count=...)`` leases them); a config repo's fleet
        uses the repo's addresses. Unless ``detached`` (what
        ``reconciler sim up`` uses), the fleet belongs to the calling process
        and powers off by itself when that process ends, even if killed.
        """
        check_prerequisites()
        directory = Path(directory).resolve()
        if (repo is None) == (hosts is None):
            raise SimError("give either a config repo or a number of hosts")
        if repo is not None:
            specs, src_host = _specs_from_repo(Path(repo), obj_in_be, ufs, no_git)
        else:
            assert hosts is not None
            if not 1 <= hosts <= MAX_HOSTS:
                raise SimError(f"--hosts must be between 1 and {MAX_HOSTS}")
            try:
                addresses = anonymous_addresses(subnet, hosts)
            except ValueError as exc:
                raise SimError(f"--subnet {subnet}: {exc}") from exc
            objs, ufss, gitless = set(obj_in_be), set(ufs), set(no_git)
            specs = [
                HostSpec(
                    name=f"host{i}",
                    address=addresses[i - 1],
                    src=i == 1,
                    ufs=f"host{i}" in ufss,
                    obj_in_be=f"host{i}" in objs,
                    no_git=f"host{i}" in gitless,
                )
                for i in range(1, hosts + 1)
            ]
            src_host = "host1"
        known = {s.name for s in specs}
        unknown = (set(obj_in_be) | set(ufs) | set(no_git)) - known
        if unknown:
            raise SimError(f"no such host(s) in the fleet: {', '.join(sorted(unknown))}")
        taken = _listening()
        for spec in specs:
            if (spec.address, spec.port) in taken or (
                len(specs) <= 20 and _banner(spec.address, spec.port, timeout=0.2)
            ):
                raise SimError(f"{spec.address}:{spec.port} is already in use (another fleet up?)")
        layout = prepare(
            directory,
            specs,
            Timings(
                build_seconds, install_seconds, boot_seconds, shutdown_seconds, nfs_retry_seconds
            ),
            src_host,
        )
        log = open(layout.supervisor_log, "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "reconciler.sim.supervisor", str(directory)]
                + ([] if detached else ["--owner", str(os.getpid())]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        fleet = cls(directory, proc)
        deadline = time.monotonic() + _UP_TIMEOUT + 0.3 * len(specs)
        pending = list(specs)
        while pending:
            if proc.poll() is not None:
                raise SimError(f"the fleet supervisor exited: {fleet._log_tail()}")
            failed = [s for s in pending if fleet.state(s.name).get("power") == "failed"]
            if failed or time.monotonic() > deadline:
                pending = failed or pending
                fleet.down()
                console = layout.host(pending[0].name) / "console.log"
                try:
                    tail = console.read_text(errors="replace").strip()[-500:] or "(empty)"
                except OSError:
                    tail = "(no console log)"
                raise SimError(
                    f"hosts did not start: {', '.join(s.name for s in pending)}; "
                    f"{pending[0].name}'s console: {tail}"
                )
            # One read of the kernel's socket table tells which sshds listen; only
            # those get the (forking) banner check, once each.
            listening = _listening()
            ready = [s for s in pending if (s.address, s.port) in listening]
            with ThreadPoolExecutor(max_workers=16) as checks:
                answered = set(
                    checks.map(lambda s: s.name if _banner(s.address, s.port) else "", ready)
                )
            pending = [s for s in pending if s.name not in answered]
            if pending:
                time.sleep(0.05 if len(pending) < 50 else 0.25)
        return fleet

    @classmethod
    def attach(cls, directory: Path) -> SimFleet:
        """The fleet in ``directory``, started by another process."""
        return cls(Path(directory).resolve())

    def _log_tail(self) -> str:
        try:
            return self.layout.supervisor_log.read_text(errors="replace")[-2000:].strip()
        except OSError:
            return "(no log)"

    def supervisor_pid(self) -> int | None:
        try:
            pid = int(self.layout.supervisor_pid.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        return self.supervisor_pid() is not None

    def down(self, timeout: float = 20.0) -> None:
        """Power every host off and stop the supervisor; idempotent."""
        pid = self._supervisor.pid if self._supervisor else self.supervisor_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._supervisor is not None:
                    if self._supervisor.poll() is not None:
                        break
                elif not _alive(pid):
                    break
                time.sleep(0.05)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                if self._supervisor is not None:
                    self._supervisor.wait(timeout=5)
        # Whatever survived a killed supervisor: each host's unshare and namespace init.
        for name in self.hosts:
            st = self.state(name)
            for key in ("ns_pid", "unshare_pid"):
                other = st.get(key)
                if isinstance(other, int) and _is_sim_process(other, self.directory, name):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(other, signal.SIGKILL)
        self.layout.supervisor_pid.unlink(missing_ok=True)

    # -- inspection ----------------------------------------------------------
    @property
    def hosts(self) -> list[str]:
        return list(self._specs)

    @property
    def ssh_config(self) -> Path:
        return self.layout.ssh_config

    @property
    def client_key(self) -> Path:
        return self.layout.client_key

    @property
    def known_hosts(self) -> Path:
        return self.layout.known_hosts

    def spec(self, host: str) -> HostSpec:
        try:
            return self._specs[host]
        except KeyError:
            raise SimError(f"no host {host!r} in the fleet at {self.directory}") from None

    def address(self, host: str) -> str:
        return self.spec(host).address

    def port(self, host: str) -> int:
        return self.spec(host).port

    def state(self, host: str) -> dict[str, Any]:
        self.spec(host)
        return state.load(self.layout.host(host))

    def count(self, host: str, event: str) -> int:
        self.spec(host)
        return int(state.load(self.layout.host(host), "counters").get(event, 0))

    def accepts(self, host: str) -> int:
        """How many SSH logins the host's sshd accepted, every boot counted (its console log)."""
        self.spec(host)
        try:
            return (self.layout.host(host) / "console.log").read_bytes().count(_ACCEPTED)
        except FileNotFoundError:
            return 0

    def faults(self, host: str) -> dict[str, Any]:
        return state.load(self.layout.host(host), "faults")

    def set_fault(self, host: str, kind: str, value: Any = None) -> None:
        self.spec(host)
        if kind not in state.FAULT_KINDS:
            raise SimError(f"unknown fault {kind!r} (known: {', '.join(state.FAULT_KINDS)})")
        with state.update(self.layout.host(host), "faults") as faults:
            faults[kind] = True if value is None else value

    def power_cycle(self, host: str) -> None:
        """Press the host's reset button: it goes down at once and boots again, in any state."""
        self.spec(host)
        (self.layout.host(host) / "requests" / "power-cycle").write_text(
            f"{time.time()}\n", encoding="utf-8"
        )

    def clear_fault(self, host: str, kind: str) -> None:
        self.spec(host)
        with state.update(self.layout.host(host), "faults") as faults:
            faults.pop(kind, None)

    def ssh(self, host: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on ``host`` with the OpenSSH client (raises TimeoutExpired)."""
        self.spec(host)
        return subprocess.run(
            ["ssh", "-F", str(self.ssh_config), host, command],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def read_file(self, host: str, path: str) -> str | None:
        """``path`` as the booted host sees it, read from its directories (no SSH)."""
        real = self.host_path(host, path)
        try:
            if real.is_char_device():  # an overlay whiteout: deleted on the host
                return None
            return real.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def host_path(self, host: str, path: str) -> Path:
        """Where ``path`` of the booted host lives on this machine (upper dir or lower)."""
        spec = self.spec(host)
        st = self.state(host)
        rel = Path(path).relative_to("/")
        parts = rel.parts
        if parts[:2] == ("usr", "src"):
            return self.layout.dataset(host, "usr-src").joinpath(*parts[2:])
        if parts[:2] == ("usr", "ports"):
            return self.layout.dataset(host, "usr-ports").joinpath(*parts[2:])
        if parts[:2] == ("usr", "obj") and not spec.obj_in_be:
            return self.layout.dataset(host, "usr-obj").joinpath(*parts[2:])
        if parts[:2] == ("boot", "efi"):
            return self.layout.dataset(host, "efi").joinpath(*parts[2:])
        top = {"bin": ("usr", "bin"), "sbin": ("usr", "sbin"), "lib": ("usr", "lib")}.get(
            parts[0] if parts else ""
        )
        if top:
            parts = top + parts[1:]
        if parts and parts[0] in ("etc", "usr", "boot", "var", "root"):
            upper = self.layout.be(host, st.get("booted_be") or "default").joinpath(*parts)
            if upper.exists() or upper.is_symlink():
                return upper
        return Path("/").joinpath(*parts)

    def wait_up(self, host: str, timeout: float = 30.0, since: float | None = None) -> None:
        """Wait until ``host`` runs and its sshd answers (booted after ``since``, if given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.state(host)
            booted = since is None or float(st.get("booted_at", 0)) > since
            if st.get("power") == "on" and booted and _banner(self.address(host), self.port(host)):
                return
            time.sleep(0.05)
        raise SimError(
            f"{host} did not come up within {timeout:g}s (power: {self.state(host).get('power')})"
        )


def _listening() -> set[tuple[str, int]]:
    """(address, port) of every listening IPv4 TCP socket of this network namespace.

    The hosts share this machine's network namespace, so one read of
    /proc/net/tcp (local address and port in hex, state 0A = LISTEN) covers them all.
    """
    found: set[tuple[str, int]] = set()
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":
            continue
        address, _, port = fields[1].partition(":")
        raw = bytes.fromhex(address)[::-1]  # little-endian on the machines this runs on
        found.add((".".join(str(b) for b in raw), int(port, 16)))
    return found


def _alive(pid: int) -> bool:
    """Is ``pid`` running (reaping it first if it is our own exited child)?"""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _is_sim_process(pid: int, directory: Path, host: str) -> bool:
    """Is ``pid`` still one of this fleet's (not a recycled pid)?"""
    try:
        cmdline = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return False
    return str(directory) in cmdline or "sshd" in cmdline
