"""The reconciler's own local settings (never from the config repo).

A TOML file, ``--config FILE``; without it ``$RECONCILER_CONFIG``, then
``/usr/local/etc/reconciler.toml`` (FreeBSD) or ``/etc/reconciler/reconciler.toml``
if present, else built-in defaults. Every setting can be overridden on the
command line. ``reconciler.toml.sample`` at the top of the project (installed
with the package) lists every setting with its default; a test keeps the two
in step.

The daemon's state directory defaults to ``/var/db/reconciler`` on FreeBSD
(hier(7): /var/db holds "automatically generated system-specific database
files") and ``/var/lib/reconciler`` elsewhere
(the FHS place, systemd's ``StateDirectory=``). The rc.d script and the
systemd unit in ``systemd-and-rc/`` use the same directories, and the allowed
signers file defaults to ``allowed_signers`` beside the settings file's
directory (``/usr/local/etc/reconciler/`` on FreeBSD, ``/etc/reconciler/``
elsewhere).

The observability settings are checked by :mod:`reconciler.observe_settings`.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from reconciler.errors import SettingsError
from reconciler.observe_settings import check_observability

DEFAULT_PATHS = (Path("/usr/local/etc/reconciler.toml"), Path("/etc/reconciler/reconciler.toml"))

#: Per platform ("freebsd", "linux"): the daemon's state directory (work_dir).
STATE_DIRS = {"freebsd": "/var/db/reconciler", "linux": "/var/lib/reconciler"}
#: Per platform: the directory of the reconciler's local files beside its settings.
ETC_DIRS = {"freebsd": "/usr/local/etc/reconciler", "linux": "/etc/reconciler"}


def platform_name(platform: str = sys.platform) -> str:
    """``freebsd`` on FreeBSD, else ``linux`` (the two layouts the project ships)."""
    return "freebsd" if platform.startswith("freebsd") else "linux"


#: The defaults on this machine.
DEFAULT_WORK_DIR = STATE_DIRS[platform_name()]
DEFAULT_ALLOWED_SIGNERS = f"{ETC_DIRS[platform_name()]}/allowed_signers"


@dataclass(frozen=True)
class Settings:
    repo: str = "."
    branch: str = "main"
    ssh_key: str = ""
    ssh_user: str = ""
    work_dir: str = DEFAULT_WORK_DIR
    parallel: int = 16
    connect_timeout: float = 10.0
    command_timeout: float = 600.0
    poll_interval: float = 60.0
    require_signed_commits: bool = False
    allowed_signers: str = DEFAULT_ALLOWED_SIGNERS
    log_format: str = "text"
    # Observability (docs/service.md "Status page, metrics, notifications").
    status_listen: str = ""  # "HOST:PORT"; "" = no status server
    commit_url: str = ""  # template with {commit}; "" = ledger commits shown as ids only
    webhooks: tuple[str, ...] = ()
    webhook_secret: str = ""
    notify_command: tuple[str, ...] = ()
    notify_attempts: int = 5
    notify_timeout: float = 10.0
    source: str = "defaults"  # where these settings came from, for messages

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with every override that is not None applied."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def work_path(self) -> Path:
        """work_dir as a path; ``work_dir = ""`` means a per-user one (running by hand)."""
        if self.work_dir:
            return Path(self.work_dir)
        return (
            Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "reconciler"
        )


_TYPES: dict[str, tuple[type, ...]] = {
    "repo": (str,),
    "branch": (str,),
    "ssh_key": (str,),
    "ssh_user": (str,),
    "work_dir": (str,),
    "parallel": (int,),
    "connect_timeout": (int, float),
    "command_timeout": (int, float),
    "poll_interval": (int, float),
    "require_signed_commits": (bool,),
    "allowed_signers": (str,),
    "log_format": (str,),
    "status_listen": (str,),
    "commit_url": (str,),
    "webhooks": (list,),
    "webhook_secret": (str,),
    "notify_command": (list,),
    "notify_attempts": (int,),
    "notify_timeout": (int, float),
}


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the settings file; ``path=None`` looks in the default places."""
    if path is None:
        env = os.environ.get("RECONCILER_CONFIG")
        candidates = [Path(env)] if env else [p for p in DEFAULT_PATHS if p.exists()]
        if not candidates:
            return Settings()
        path = candidates[0]
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SettingsError(f"{path}: no such settings file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _TYPES:
            raise SettingsError(
                f"{path}: unknown setting {key!r} (known: {', '.join(sorted(_TYPES))})"
            )
        allowed = _TYPES[key]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join(t.__name__ for t in allowed)
            raise SettingsError(f"{path}: setting {key!r} must be {names}, not {value!r}")
        values[key] = value
    if values.get("log_format", "text") not in ("text", "json"):
        raise SettingsError(f"{path}: log_format must be 'text' or 'json'")
    if int(values.get("parallel", 1)) < 1:
        raise SettingsError(f"{path}: parallel must be at least 1")
    values.update(check_observability(path, values))
    return Settings(source=str(path), **values)
