"""Carrying out confirm-or-revert on a boot-environment host (reconciler/rollout/watchdog.py).

``arm`` before the reboot (the watchdog goes into the new BE), ``confirm_boot``
once the host is back, verified and healthy (over a new SSH connection),
``finish`` after the permanent activation (the watchdog comes out), and
``revert_note`` when the host came back on its previous BE: whether its
watchdog sent it there, and after how long.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.errors import TransportError
from reconciler.plan import Target
from reconciler.plan.install import Running
from reconciler.rollout import watchdog
from reconciler.rollout.host import HostRun


@dataclass(frozen=True)
class Decision:
    """What confirming a boot found: ``confirmed``, or why not."""

    confirmed: bool
    message: str = ""


def arm(w: HostRun, target: Target, previous: str | None) -> str | None:
    """Put the watchdog into ``target.be``; an error message, or None when armed."""
    if not previous or previous == target.be:
        return f"no previous boot environment to revert {target.be} to: cannot arm its watchdog"
    timeout = w.run.buildset.rollout.confirm_timeout
    try:
        command = watchdog.arm_command(target.be, previous, timeout)
    except ValueError as exc:
        return str(exc)
    out = w.conn().run(command, timeout=120)
    if not out.ok:
        return f"arming the watchdog in {target.be} failed: {(out.stderr or out.stdout).strip()}"
    w.say(f"watchdog armed in {target.be}: reverts to {previous} unless confirmed in {timeout}s")
    return None


def confirm_boot(w: HostRun, target: Target) -> Decision:
    """Decide the boot as confirmed over a new SSH connection (not the pooled one)."""
    try:
        fresh = w.run.ctx.fresh_conn(w.host)
    except TransportError as exc:
        return Decision(False, f"a new SSH connection failed ({exc})")
    try:
        out = fresh.run(watchdog.confirm_command(), timeout=60)
    except TransportError as exc:
        return Decision(False, f"confirming over a new SSH connection failed ({exc})")
    finally:
        fresh.close()
    who = out.stdout.strip()
    if out.ok and who == "confirmed":
        w.say(f"confirmed {target.be} over a new SSH connection: its watchdog stands down")
        return Decision(True)
    if who == "reverted":
        return Decision(False, "its watchdog decided first and is reverting the host")
    return Decision(False, f"confirming failed: {(out.stderr or out.stdout).strip() or who}")


def stand_down(w: HostRun) -> None:
    """The reconciler rolls the host back itself: its watchdog must not race it."""
    w.conn().run(watchdog.confirm_command("rolled-back"), timeout=60)


def finish(w: HostRun) -> None:
    """Take the watchdog and its knobs out of the running (now permanent) BE."""
    w.conn().run(watchdog.finish_command(), timeout=60)


def revert_note(w: HostRun, target: Target) -> dict[str, str] | None:
    """The note a watchdog that gave up on ``target.be`` left in this BE (None: none)."""
    out = w.conn().run(watchdog.read_note_command(), timeout=60)
    note = watchdog.parse_note(out.stdout) if out.ok else {}
    return note if note.get("be") == target.be else None


def fallback_message(w: HostRun, target: Target, running: Running) -> str:
    """Why the host came back on another BE: its watchdog (a note says so), or a failed boot."""
    note = revert_note(w, target)
    if note is not None:
        return (
            f"reverted by the host itself: {target.be} booted but was not confirmed within "
            f"{note.get('timeout', '?')}s (its network or sshd broken?); its watchdog "
            f"re-activated {running.booted_be} and rebooted"
        )
    return (
        f"came back on boot environment {running.booted_be}, not {target.be}: the new "
        f"kernel did not boot (running {running.ident} {running.hash12}); the one-shot "
        "activation let it fall back"
    )
