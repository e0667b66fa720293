"""What ``reconciler init`` reads on a host: read-only commands in one round trip.

The fact probes (``freebsd-version -kru``, ``uname -vmiKU``, ``/etc/make.conf``,
``/etc/src.conf``, ``bectl list -H``, ``mount -p``, ``/usr/src``'s HEAD, the
marker) plus what only adoption needs:

- ``uname -p``: the processor (MACHINE_ARCH) next to ``uname -m`` (MACHINE,
  the TARGET a build set names);
- ``sysctl -n kern.conftxt``: the running kernel's configuration, present when
  it was built with ``options INCLUDE_CONFIG_FILE`` (``sys/kern/kern_mib.c``;
  format in docs/freebsd-commands.md);
- ``/usr/src/sys/$(uname -m)/conf/$(uname -i)``: the config file of that
  name, as the host sees its /usr/src (a fallback for a kernel without the option);
- ``sysctl -n hw.ncpu`` for the build's ``jobs``, ``remote.origin.url`` of
  /usr/src for the source URL.

Parsing is pure (:func:`parse`), tested with recorded outputs; :func:`read`
runs the probes over a :func:`connection` pinned to the confirmed key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import paramiko

from reconciler import remote
from reconciler.errors import TransportError
from reconciler.facts import bootenv, etcfiles, marker, mounts, source, versions
from reconciler.facts.mounts import Mounts
from reconciler.facts.probe import (
    Output,
    Probe,
    batch_command,
    new_nonce,
    probe_outputs,
    split_batch,
)
from reconciler.facts.source import SourceTree
from reconciler.facts.versions import Versions
from reconciler.transport import target as transport
from reconciler.transport.ssh import Connection, parse_pins

READ_TIMEOUT = 120.0

#: The script reads only files, names come from uname itself: no value of ours in it.
_OWN_CONF = f'exec cat "{remote.SRC}/sys/$(uname -m)/conf/$(uname -i)"'

PROBES: tuple[Probe, ...] = (
    *versions.PROBES,
    Probe("uname-p", ("uname", "-p")),
    *etcfiles.PROBES,
    *bootenv.PROBES,
    *mounts.PROBES,
    *source.PROBES,
    *marker.PROBES,
    Probe("conftxt", ("sysctl", "-n", "kern.conftxt")),
    Probe("own-conf", ("sh", "-c", _OWN_CONF)),
    Probe("ncpu", ("sysctl", "-n", "hw.ncpu")),
    # The URL as configured: get-url would apply url.<base>.insteadOf rewrites.
    Probe("src-origin", ("git", "-C", remote.SRC, "config", "--get", "remote.origin.url")),
)


@dataclass(frozen=True)
class HostKey:
    """The host key the person confirmed, as known_hosts pins it."""

    keytype: str
    base64: str
    fingerprint: str  # SHA256:...

    @property
    def pin(self) -> str:
        return f"{self.keytype} {self.base64}"


@dataclass(frozen=True)
class Target:
    """A host as ``--host NAME=ADDRESS[:PORT]`` named it."""

    name: str
    address: str
    port: int = 22
    user: str = "root"


@dataclass(frozen=True)
class HostReading:
    target: Target
    key: HostKey
    versions: Versions
    processor: str | None  # uname -p
    make_conf: str | None  # None: no such file
    src_conf: str | None
    boot_environments: bool  # bectl list works
    mounts: Mounts
    source: SourceTree  # /usr/src as a git checkout (present=False: none)
    origin: str | None  # remote.origin.url of /usr/src
    conftxt: str | None  # kern.conftxt; None: the kernel has no embedded config
    own_conf: str | None  # /usr/src/sys/<machine>/conf/<ident> as this host sees it
    ncpu: int | None
    managed: bool  # the reconciler's install marker is there

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def machine(self) -> str | None:
        return self.versions.machine

    @property
    def ident(self) -> str | None:
        return self.versions.ident

    @property
    def local_source(self) -> bool:
        """/usr/src is a git checkout of this host's own (not an NFS mount of another's)."""
        mount = self.mounts.at(remote.SRC)
        return self.source.present and not (mount is not None and mount.fstype == "nfs")


def _text(out: Output) -> str | None:
    return out.stdout if out.ok else None


def parse_conftxt(out: Output) -> str | None:
    """The embedded config, without the empty line sysctl prints after it."""
    if not out.ok or not out.stdout.strip():
        return None
    return out.stdout.rstrip("\n") + "\n"


def parse(target: Target, key: HostKey, outputs: Mapping[str, Output]) -> HostReading:
    """One host's reading from its probes' outputs (pure)."""
    got = dict(outputs)
    cpu = got["ncpu"].stdout.strip()
    processor = got["uname-p"].stdout.strip() if got["uname-p"].ok else ""
    origin = got["src-origin"].stdout.strip() if got["src-origin"].ok else ""
    return HostReading(
        target=target,
        key=key,
        versions=versions.parse(got),
        processor=processor or None,
        make_conf=_text(got["make.conf"]),
        src_conf=_text(got["src.conf"]),
        boot_environments=bootenv.parse(got).available,
        mounts=mounts.parse(got),
        source=source.parse(got),
        origin=origin or None,
        conftxt=parse_conftxt(got["conftxt"]),
        own_conf=_text(got["own-conf"]),
        ncpu=int(cpu) if got["ncpu"].ok and cpu.isdigit() else None,
        managed=marker.parse(got) is not None,
    )


def connection(target: Target, key: HostKey, client: paramiko.PKey, timeout: float) -> Connection:
    """A connection to ``target`` that trusts ``key`` and no other."""
    where = transport.Target(target.name, target.address, target.port, target.user)
    pins = parse_pins([key.pin], target.name)
    return Connection(where, pins=pins, key=client, user=target.user, connect_timeout=timeout)


def read(conn: Connection, target: Target, key: HostKey) -> HostReading:
    """Every probe in one round trip (raises TransportError)."""
    nonce = new_nonce()
    result = conn.run(batch_command(PROBES, nonce), timeout=READ_TIMEOUT)
    framed = split_batch(result.stdout, nonce)
    if not framed:
        why = result.stderr.strip().splitlines()[-1:] or [f"exit status {result.exit_code}"]
        raise TransportError(target.name, f"the host could not be read: {why[0][:200]}")
    return parse(target, key, probe_outputs(PROBES, framed))
