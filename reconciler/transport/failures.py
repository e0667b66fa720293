"""What went wrong with an SSH connection, in words a person can act on.

paramiko and the socket layer say ``[Errno None] Unable to connect to port 22
on 192.0.2.12`` for a refused connection and ``Error reading SSH protocol
banner`` for a silent server. These functions turn what they raise into the
project's :mod:`reconciler.errors` with a reason and what to check:

==========================================  ==========================================
raised                                      becomes
==========================================  ==========================================
NoValidConnectionsError / ECONNREFUSED      HostUnreachable: connection refused (is sshd running?)
EHOSTUNREACH, ENETUNREACH                   HostUnreachable: no route to host / network unreachable
socket.timeout, ETIMEDOUT                   HostUnreachable: timed out after Ns
socket.gaierror                             HostUnreachable: cannot resolve the name
banner or handshake never came              HostUnreachable: no SSH handshake within Ns
EOF, reset during the handshake             HostUnreachable: connection closed during the handshake
AuthenticationException                     AuthenticationFailed: the host refused the key
==========================================  ==========================================

Host key refusals are raised where the key is checked (``ssh.py``). Every
error carries the host's name in ``.host``; the reason names the address.
"""

from __future__ import annotations

import errno
import socket

import paramiko

from reconciler.errors import AuthenticationFailed, HostUnreachable

_BY_ERRNO = {
    errno.ECONNREFUSED: "connection refused (is sshd running, and on this port?)",
    errno.EHOSTUNREACH: "no route to host (is it up? check the address)",
    errno.ENETUNREACH: "network unreachable (check the address and this machine's routes)",
    errno.ECONNRESET: "connection reset by the host during the SSH handshake",
    errno.ECONNABORTED: "connection aborted during the SSH handshake",
}


def _root(exc: BaseException) -> BaseException:
    """The socket error paramiko wrapped (it folds per-address errors into one)."""
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) and exc.errors:
        return next(iter(exc.errors.values()))
    return exc


def connect_reason(exc: BaseException, timeout: float) -> str:
    """Why a connection (socket, SSH handshake) could not be made, in words."""
    cause = _root(exc)
    if isinstance(cause, socket.gaierror):
        why = cause.strerror or str(cause)
        return f"cannot resolve the host name: {why} (check the address, or DNS)"
    if isinstance(cause, socket.timeout | TimeoutError) or (
        isinstance(cause, OSError) and cause.errno == errno.ETIMEDOUT
    ):
        return (
            f"timed out after {timeout:g}s (is the host up? a firewall dropping "
            "packets looks the same)"
        )
    if isinstance(cause, OSError) and cause.errno in _BY_ERRNO:
        return _BY_ERRNO[cause.errno]
    if isinstance(cause, UnicodeError):  # getaddrinfo's IDNA step: an empty or long label
        return "not a valid host name (check the address)"
    text = str(cause)
    if isinstance(cause, paramiko.SSHException):
        if text.startswith("Error reading SSH protocol banner"):
            # paramiko raises it for a silent server and for one that hung up alike.
            context = cause.__context__
            if isinstance(context, EOFError) or (
                isinstance(context, OSError) and context.errno in _BY_ERRNO
            ):
                cause = EOFError()
            else:
                text = "No existing session"
        if text == "No existing session":  # the handshake never finished in time
            return (
                f"no SSH handshake within {timeout:g}s (not an SSH server on this port, "
                "or sshd overloaded?)"
            )
        if text.startswith("Indecipherable protocol version"):
            return f"not an SSH server on this port (it said {text.partition(' version ')[2]})"
    if isinstance(cause, EOFError):
        return (
            "connection closed by the host during the SSH handshake "
            "(sshd's MaxStartups, a TCP wrapper, or not an SSH server?)"
        )
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[:1].lower() + cause.strerror[1:]
    return text or type(cause).__name__


def unreachable(host: str, where: str, exc: BaseException, timeout: float) -> HostUnreachable:
    """``HostUnreachable`` for a failed connection to ``where`` (``address:port``)."""
    return HostUnreachable(host, f"cannot connect to {where}: {connect_reason(exc, timeout)}")


def authentication_failed(
    host: str, where: str, user: str, exc: paramiko.AuthenticationException, key: str
) -> AuthenticationFailed:
    """The host would not let ``user`` in with the client key (fingerprint ``key``)."""
    if isinstance(exc, paramiko.BadAuthenticationType):
        allowed = ", ".join(exc.allowed_types) or "nothing"
        why = f"the host accepts only {allowed} for {user!r}, not a public key"
    else:
        why = (
            f"the host refused the key {key} for {user!r} "
            f"(is its public key in ~{user}/.ssh/authorized_keys on the host?)"
        )
    return AuthenticationFailed(host, f"authentication at {where} failed: {why}")
