"""The project's exception tree.

Third-party exceptions (paramiko, GitPython, ruamel.yaml, jsonschema) are
translated into these at the module that imports the library, chained with
``from exc``. The CLI is the one place that turns them into exit codes::

    ReconcilerError                 exit 3 unless a subclass says otherwise
    ├── UsageError                  exit 2: the command line is wrong
    └── UserError                   exit 1: something the user can act on
        ├── ConfigInvalid           the config repo fails validation (carries every problem)
        ├── RepoError               the config repo cannot be read (no such commit, not a repo)
        ├── SettingsError           the reconciler's local settings are wrong
        ├── TransportError          SSH: cannot reach or trust a host (``.host`` names it)
        │   ├── HostUnreachable     refused, timed out, no route, no such name, link lost
        │   ├── HostKeyRejected     unknown or changed host key (untrusted)
        │   ├── AuthenticationFailed the host refused the client key
        │   └── CommandTimeout
        ├── LedgerError             the status branch cannot be read or written
        │   └── LedgerConflict      another writer moved the branch (compare-and-swap lost)
        ├── LockHeld                another reconciler holds the repo's lock
        ├── RolloutFailed           a rollout ended with hosts not converged
        └── SimError                the simulated fleet cannot start or is not running
"""

from __future__ import annotations

from dataclasses import dataclass


class ReconcilerError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 3


class UsageError(ReconcilerError):
    exit_code = 2


class UserError(ReconcilerError):
    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One validation problem, located in the config repo.

    ``path`` is relative to the repo root; ``line``/``column`` are 1-based
    (0 when the problem concerns the file as a whole).
    """

    path: str
    line: int
    column: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.path}:{self.line}:{self.column}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigInvalid(UserError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.column, p.message))
        count = len(self.problems)
        super().__init__(f"config repo is invalid: {count} problem{'s' if count != 1 else ''}")


class RepoError(UserError):
    pass


class SettingsError(UserError):
    pass


class TransportError(UserError):
    """Trouble with one host's SSH connection.

    ``str(exc)`` is the reason alone (``cannot connect to 192.0.2.1:22: connection
    refused (is sshd running?)``); the host's name is in ``exc.host``. Whoever
    reports it says which host, once: ledger subjects, plan lines and facts are
    already per host, and ``web2: unreachable: web2: ...`` helps nobody.
    """

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        self.reason = message
        super().__init__(message)

    @property
    def described(self) -> str:
        """``host: reason``, for a message that does not name the host otherwise."""
        return f"{self.host}: {self.reason}"


class HostUnreachable(TransportError):
    pass


class HostKeyRejected(TransportError):
    pass


class AuthenticationFailed(TransportError):
    pass


class CommandTimeout(TransportError):
    pass


class LedgerError(UserError):
    pass


class LedgerConflict(LedgerError):
    pass


class LockHeld(UserError):
    pass


class RolloutFailed(UserError):
    pass


class SimError(UserError):
    pass
