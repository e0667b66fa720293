"""Wake the daemon when a local config repo's branches move (watchdog).

A push to a bare repository on this machine rewrites ``refs/heads/<branch>``
(through ``<branch>.lock`` and a rename) or ``packed-refs``; an inotify (Linux)
or kqueue (FreeBSD) watch on those sees it within milliseconds, so a push is
applied without waiting for the next poll. Only a hint: the daemon then
fetches and compares tips, so a spurious or coalesced event is harmless, and
the poll interval still catches anything a watch misses (NFS, overflow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

_WRITES = frozenset({"created", "modified", "moved", "deleted", "closed"})


class _RefsHandler(FileSystemEventHandler):
    def __init__(
        self, git_dir: Path, on_change: Callable[[str], None], ignore: Iterable[str]
    ) -> None:
        self._git_dir = git_dir
        self._on_change = on_change
        # Our own ledger pushes move these refs; they are not a new desired state.
        self._ignore = tuple(str(git_dir / "refs" / "heads" / name) for name in ignore)

    def _relevant(self, path: str) -> bool:
        if not path:
            return False
        if path.endswith(".lock"):
            path = path[: -len(".lock")]
        if any(path == ignored or path.startswith(ignored + "/") for ignored in self._ignore):
            return False
        name = Path(path).name
        return name == "packed-refs" or path.startswith(str(self._git_dir / "refs") + "/")

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Reads (git opening refs to resolve them) and directory churn are not changes.
        if event.is_directory or event.event_type not in _WRITES:
            return
        paths = [str(event.src_path), str(getattr(event, "dest_path", "") or "")]
        for path in paths:
            if self._relevant(path):
                self._on_change(path)
                return


class RefWatcher:
    """Context manager: ``on_change(path)`` (in a watchdog thread) when a ref may have moved."""

    def __init__(
        self, git_dir: Path, on_change: Callable[[str], None], *, ignore: Iterable[str] = ()
    ) -> None:
        self.git_dir = git_dir
        self._handler = _RefsHandler(git_dir, on_change, ignore)
        self._observer: Observer | None = None  # type: ignore[valid-type]

    def start(self) -> None:
        observer = Observer()
        observer.daemon = True
        observer.schedule(self._handler, str(self.git_dir), recursive=False)  # packed-refs
        observer.schedule(self._handler, str(self.git_dir / "refs"), recursive=True)
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5.0)

    def __enter__(self) -> RefWatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
