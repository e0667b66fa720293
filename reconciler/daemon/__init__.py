"""``reconciler run``: the continuously running reconciler.

Public API::

    run_daemon(settings: Settings, *, once: bool = False, hooks: Hooks | None = None) -> int
    open_daemon(settings, *, watch=True, hooks=None)  # context manager -> Daemon (tests, embedding)

``run_daemon`` takes the repo locks, clones or fetches the config repo under
``settings.work_path``, starts the filesystem watch (local repos), installs
SIGTERM/SIGINT (stop at a safe point) and SIGHUP (poll now) handlers when
called from the main thread, and runs :class:`Daemon` until stopped.

Modules: ``loop`` (the reconcile loop), ``mirror`` (the daemon's clone),
``trust`` (signed-commit policy), ``watch`` (watchdog on refs), ``state``
(what survives a restart), ``logs`` (text and JSON lines), ``observability``
(status page, metrics and notifications, attached through ``observer``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from reconciler.config.model import ReconcilerPolicy
from reconciler.daemon.jobs import Hooks, Job
from reconciler.daemon.logs import EventLog, setup_logging
from reconciler.daemon.loop import Daemon
from reconciler.daemon.mirror import Mirror, Origin, resolve_origin
from reconciler.daemon.observability import observing
from reconciler.daemon.trust import Verdict, check_allowed_signers, verify_commit
from reconciler.daemon.watch import RefWatcher
from reconciler.errors import SettingsError
from reconciler.lock import RepoLock
from reconciler.settings import Settings

__all__ = [
    "Daemon",
    "EventLog",
    "Hooks",
    "Job",
    "Mirror",
    "Origin",
    "RefWatcher",
    "Verdict",
    "open_daemon",
    "resolve_origin",
    "run_daemon",
    "setup_logging",
    "verify_commit",
]


@contextlib.contextmanager
def _signals(daemon: Daemon) -> Iterator[None]:
    """SIGTERM/SIGINT stop at a safe point, SIGHUP polls now; restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: FrameType | None) -> None:
        daemon.log.info("daemon.signal", f"{signal.Signals(signum).name}: stopping at a safe point")
        daemon.request_shutdown()

    def hup(_signum: int, _frame: FrameType | None) -> None:
        daemon.log.info("daemon.signal", "SIGHUP: polling now")
        daemon.request_poll()

    wanted = {signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: hup}
    previous = {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def open_daemon(
    settings: Settings, *, watch: bool = True, hooks: Hooks | None = None
) -> Iterator[Daemon]:
    """A ready :class:`Daemon`: locks held, clone up to date, ref watch running (local repos).

    Everything is released when the block ends. Raises :class:`LockHeld` when
    another reconciler holds the config repo (or this daemon's clone of it),
    ``RepoError`` when the repo cannot be cloned, ``SettingsError`` for an
    unusable signing policy.
    """
    origin = resolve_origin(settings.repo)
    # allowed_signers has a default path; it must exist only when signatures are checked.
    allowed = (
        check_allowed_signers(settings.allowed_signers) if settings.require_signed_commits else None
    )
    work = settings.work_path
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"work_dir {work}: cannot create it: {exc.strerror} "
            "(set work_dir in the settings file, or --work-dir)"
        ) from exc
    mirror = Mirror(work, origin, settings.branch)
    with contextlib.ExitStack() as stack:
        if origin.local is not None:
            # The source first: two daemons with different work dirs still exclude each other.
            stack.enter_context(RepoLock(origin.local, command="run"))
        mirror.ensure()
        stack.enter_context(RepoLock(mirror.path, command="run"))
        daemon = Daemon(settings, mirror, allowed_signers=allowed, hooks=hooks, log=EventLog())
        # Status page, /metrics, notifications: whatever the settings enable.
        stack.enter_context(observing(daemon))
        if origin.git_dir is not None and watch:
            watcher = RefWatcher(
                origin.git_dir,
                daemon.notify_change,
                ignore=[ReconcilerPolicy().status_branch],
            )
            stack.enter_context(watcher)
        yield daemon


def run_daemon(settings: Settings, *, once: bool = False, hooks: Hooks | None = None) -> int:
    """Run the reconciler until SIGTERM (or one pass with ``once``); the exit status.

    Raises as :func:`open_daemon` does. SIGTERM/SIGINT/SIGHUP handlers are
    installed when called from the main thread.
    """
    with open_daemon(settings, watch=not once, hooks=hooks) as daemon, _signals(daemon):
        return daemon.run(once=once)
