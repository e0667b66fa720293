"""A plain OpenSSH sshd on a loopback address, for transport tests.

Real sshd, real keys: the host key is the simulator's deterministic one for
the given name, the client key is generated per run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reconciler.config.model import Host
from reconciler.sim import hostkeys

SSHD = "/usr/sbin/sshd"


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def make_client_key(directory: Path) -> tuple[Path, str]:
    key = Ed25519PrivateKey.generate()
    path = directory / "id_ed25519"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return path, public.decode()


@dataclass
class Sshd:
    host: Host
    known_hosts: str
    key_path: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_sshd(
    directory: Path, name: str, address: str, key_path: Path, public: str, port: int = 22
) -> Sshd:
    directory.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    host_key = directory / "ssh_host_ed25519_key"
    host_key.write_bytes(hostkeys.private_key_openssh(name))
    host_key.chmod(0o600)
    authorized = directory / "authorized_keys"
    authorized.write_text(public + "\n")
    config = directory / "sshd_config"
    config.write_text(
        f"ListenAddress {address}:{port}\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\n"
        f"PidFile {directory / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "MaxSessions 50\n"
        "MaxStartups 100:30:200\n"
        "LogLevel ERROR\n"
    )
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "sshd.log", "wb"),  # noqa: SIM115
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError((directory / "sshd.log").read_text()) from None
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("sshd did not start")
    host = Host(name=name, buildset="lab", address=address, kernconf="GENERIC", port=port)
    known = hostkeys.known_hosts_line(name, address, port) + "\n"
    return Sshd(host, known, key_path, process)
