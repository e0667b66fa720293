"""The fleet's one detached process: a thread per simulated host (``python -m``).

A host thread boots the host (``unshare`` a mount+pid namespace running
``DIR/start.sh``, which ends by exec'ing sshd as the namespace's init), then
watches for a shutdown request written by the host's ``shutdown`` command
(carried out at the time it names: shutdown(8) returns before the system
goes down) or a power-cycle request (``SimFleet.power_cycle``: the reset
button, honoured in every state, a hung or halted host included). Powering
off is killing the namespace's init: every process of the host dies and its
mounts vanish with it. Then it waits the boot time and boots the activated
boot environment (a one-shot one once: the loader consumes it), unless a
fault says the host hangs (until a power cycle, or until ``reboot-hangs`` is
cleared) or panics (and reboots). SIGTERM stops every host and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from reconciler.sim import exports, kernel, state
from reconciler.sim.commands.service import boot_services
from reconciler.sim.layout import FleetLayout
from reconciler.sim.spec import HostSpec, Timings, load_fleet

_POLL = 0.05
_QUICK_DEATH = 3.0  # seconds: an init dying this soon after boot failed to start
_MAX_QUICK_DEATHS = 3
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If the supervisor dies, unshare gets SIGKILL and (--kill-child) so does the host.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class HostRunner(threading.Thread):
    def __init__(
        self, layout: FleetLayout, spec: HostSpec, timings: Timings, stop: threading.Event
    ):
        super().__init__(name=f"host-{spec.name}", daemon=True)
        self.layout = layout
        self.spec = spec
        self.timings = timings
        self.stop = stop
        self.dir = layout.host(spec.name)
        self.proc: subprocess.Popen[bytes] | None = None

    # -- state helpers -------------------------------------------------------
    def _set(self, **values: Any) -> None:
        with state.update(self.dir) as st:
            st.update(values)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (slow-host factor applied); False when stopping."""
        return not self.stop.wait(seconds * state.slow_factor(self.dir))

    def _take_power_cycle(self) -> bool:
        request = self.dir / "requests" / "power-cycle"
        if request.exists():
            request.unlink(missing_ok=True)
            state.count(self.dir, "power-cycle")
            return True
        return False

    def _wait_fault_cleared(self, kind: str | None) -> bool:
        """Stay down until the fault is cleared (``kind``; None: never) or a power cycle."""
        while not self.stop.is_set():
            if kind is not None and state.fault(self.dir, kind) is None:
                return True
            if self._take_power_cycle():
                return True
            self.stop.wait(_POLL * 4)
        return False

    def _choose_be(self) -> tuple[str, bool]:
        """The BE this boot uses and whether it was a one-shot (consumed now)."""
        with state.update(self.dir) as st:
            if st.get("ufs"):
                return "default", False
            oneshot = st.get("oneshot_be")
            if oneshot and oneshot in st.get("bes", {}):
                st["oneshot_be"] = None
                return str(oneshot), True
            return str(st.get("active_be") or "default"), False

    def _kernel_of(self, be: str) -> dict[str, str]:
        return kernel.read(self.layout.be(self.spec.name, be) / kernel.KERNEL_FILE) or {}

    @staticmethod
    def _same_kernel(a: dict[str, str], b: dict[str, str]) -> bool:
        keys = ("ident", "revision", "built", "objdir")
        return all(a.get(k) == b.get(k) for k in keys)

    # -- the power cycle -----------------------------------------------------
    def run(self) -> None:
        first = True
        quick_deaths = 0
        while not self.stop.is_set():
            be, oneshot = self._choose_be()
            if not first:
                if state.fault(self.dir, "reboot-hangs") is not None:
                    self._set(power="hung")
                    if not self._wait_fault_cleared("reboot-hangs"):
                        break
                    continue
                kern = self._kernel_of(be)
                last_good = state.load(self.dir).get("last_good_kernel") or {}
                new_kernel = not self._same_kernel(kern, last_good)
                if state.fault(self.dir, "kernel-hang") is not None and new_kernel:
                    # A hang does not reboot: the loader already used up the one-shot,
                    # but nothing boots again until someone power-cycles the host.
                    state.count(self.dir, "hang")
                    self._set(power="hung")
                    if not self._wait_fault_cleared(None):
                        break
                    continue
                if state.fault(self.dir, "kernel-panic") is not None and new_kernel:
                    state.count(self.dir, "panic")
                    if oneshot:
                        # The loader falls back to the permanent BE on the next (re)boot.
                        self._set(power="booting")
                        if not self._wait(self.timings.boot_seconds):
                            break
                        continue
                    self._set(power="panic")
                    if not self._wait_fault_cleared("kernel-panic"):
                        break
                    continue
            first = False
            if not self._boot(be):
                break
            booted = time.monotonic()
            how = self._run_until_shutdown()
            self._power_off()
            if how == "died" and time.monotonic() - booted < _QUICK_DEATH:
                quick_deaths += 1
                if quick_deaths >= _MAX_QUICK_DEATHS:
                    # sshd cannot start (address taken?): stop retrying, say so.
                    self._set(power="failed")
                    self.stop.wait()
                    break
            else:
                quick_deaths = 0
            if self.stop.is_set():
                break
            self._set(power="off")
            if how == "halt":
                if not self._wait_fault_cleared(None):  # off until a power cycle
                    break
                continue
            if not self._wait(self.timings.boot_seconds):
                break
        self._power_off()
        self._set(power="off", ns_pid=None, unshare_pid=None)

    def _boot(self, be: str) -> bool:
        kern = self._kernel_of(be)
        services = boot_services(self.layout.be(self.spec.name, be))
        for request in (self.dir / "requests").iterdir():
            request.unlink(missing_ok=True)
        log = open(self.dir / "console.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "--mount-proc",
                    "--propagation",
                    "private",
                    "/bin/sh",
                    str(self.layout.root / "start.sh"),
                    str(self.layout.root),
                    self.spec.name,
                    be,
                    "yes" if self.spec.obj_in_be else "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={"PATH": "/usr/bin:/usr/sbin:/bin:/sbin", "HOME": "/root", "LANG": "C.UTF-8"},
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        ns_pid = None
        for _ in range(200):
            kids = _children(self.proc.pid)
            if kids:
                ns_pid = kids[0]
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        with state.update(self.dir) as st:
            st.update(
                power="on",
                booted_be="" if st.get("ufs") else be,
                running_kernel=kern,
                last_good_kernel=kern,
                bootfile="/boot/kernel/kernel",
                ns_pid=ns_pid,
                unshare_pid=self.proc.pid,
                booted_at=time.time(),
                boot_services=services,
            )
        state.count(self.dir, "boot")
        if "mountd" in services or "nfsd" in services:
            # rc.d/mountd at boot (rc.d/nfsd force_depends on it): /etc/exports loaded
            specs, _, _ = load_fleet(self.layout)
            exports.reload(
                self.dir,
                self.layout.be(self.spec.name, be),
                self.spec.name,
                {s.name: s.address for s in specs},
            )
        return True

    def _run_until_shutdown(self) -> str:
        """Wait for a shutdown request's time or a power cycle: "reboot", "halt" or "cycle"."""
        request = self.dir / "requests" / "shutdown"
        assert self.proc is not None
        while not self.stop.is_set():
            if self.proc.poll() is not None:
                return "died"  # the host's init died (sshd failed?): it resets
            if self._take_power_cycle():
                return "cycle"
            if request.exists():
                try:
                    asked = json.loads(request.read_text())
                except (OSError, ValueError):
                    asked = {}
                if time.time() >= float(asked.get("at", 0)):
                    return str(asked.get("how", "reboot"))
            self.stop.wait(_POLL)
        return "reboot"

    def _power_off(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # Kill the namespace's init and let unshare reap it (so no zombie is left
        # to this machine's init); unshare then exits by itself.
        for pid in _children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def _fleet_id(layout: FleetLayout) -> str | None:
    try:
        return str(json.loads(layout.fleet_json.read_text()).get("id"))
    except (OSError, ValueError):
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def main(argv: list[str]) -> int:
    """``python -m reconciler.sim.supervisor DIR [--owner PID]``.

    With ``--owner``, the fleet powers off by itself when that process ends
    (tests and the demo own their fleets; ``sim up`` leaves it detached).
    """
    layout = FleetLayout(Path(argv[0]).resolve())
    owner = int(argv[argv.index("--owner") + 1]) if "--owner" in argv else None
    owner_started = _start_time(owner) if owner else None
    specs, timings, _ = load_fleet(layout)
    fleet_id = _fleet_id(layout)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    layout.supervisor_pid.write_text(f"{os.getpid()}\n")
    runners = [HostRunner(layout, spec, timings, stop) for spec in specs]
    for runner in runners:
        runner.start()
    while not stop.wait(0.5):
        if owner is not None and _start_time(owner) != owner_started:
            stop.set()  # the owning process is gone: power the fleet off
        if _fleet_id(layout) != fleet_id:
            stop.set()  # the fleet directory was deleted (or remade) under us
    for runner in runners:
        runner.join(timeout=15)
    (layout.root / "supervisor.stopped").write_text(json.dumps({"at": time.time()}) + "\n")
    layout.supervisor_pid.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
