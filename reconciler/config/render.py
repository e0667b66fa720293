"""The exact files a host must have, rendered from the model. Pure functions.

``/etc/make.conf`` = managed header, the set's ``make.conf`` verbatim, then the
lines the reconciler owns: ``KERNCONF`` (the host's own kernel; on the build
host every distinct kernel of the set, its own first, because only the first
is installed by a plain installkernel and the others must be built too) and,
when the set has ``ports:``, ``DISTDIR``/``WRKDIRPREFIX`` and, on the build
host only, ``PACKAGES``. ``/etc/src.conf`` = header + the set's ``src.conf``.
Every host of a set gets the same text apart from those owned lines, so the
handbook's "make.conf and src.conf agree across the build set" holds by
construction.

NFS (exports(5), fstab(5)): the src host exports ``/usr/src`` read-only to
every other host of the fleet; each build host exports ``/usr/obj`` read-only
to the other hosts of its set. They are different file systems (``/usr/src``
is its own dataset in the default ZFS layout and the build host needs
``/usr/obj`` on its own), so each path gets its own line. Clients are named
by address, ``-maproot=root`` so root on a client reads what root wrote.
Clients mount at exactly the same paths (the objdir is ``/usr/obj${.CURDIR}``).

The ports tree, when ``fleet.yaml`` has ``ports:``, is exported by the src host
too. DISTDIR must be writable by the user root maps to (HB 24.7), and a host
may have only one set of export options per file system, so: hosts of a build
set whose ``ports.distdir`` lies inside the tree get the tree read-write
(``-maproot=root``, mounted ``rw``); every other host gets it read-only.
"""

from __future__ import annotations

import ipaddress

from reconciler.config.model import BuildSet, Config, Host
from reconciler.remote import OBJ as OBJ
from reconciler.remote import SRC as SRC

MANAGED_HEADER_PREFIX = "# Managed by reconciler"


def header(config: Config, source: str) -> str:
    """The two comment lines every rendered file starts with."""
    # No commit here: a config commit that changes no rendered byte must change
    # no file on any host. Which commit wrote a file is in the ledger.
    origin = "".join(c if c.isprintable() else "?" for c in config.origin)
    return f"{MANAGED_HEADER_PREFIX}: {origin}; edits are overwritten\n# Source: {source}\n"


def _buildset(config: Config, buildset: BuildSet | str) -> BuildSet:
    return config.buildset(buildset) if isinstance(buildset, str) else buildset


def _host(config: Config, host: Host | str) -> Host:
    return config.host(host) if isinstance(host, str) else host


def _verbatim(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def make_conf(config: Config, buildset: BuildSet | str, host: Host | str) -> str:
    """``/etc/make.conf`` for ``host`` of ``buildset``."""
    bs = _buildset(config, buildset)
    target = _host(config, host)
    is_build_host = target.name == bs.build_host
    kernconfs = bs.kernconfs if is_build_host else (target.kernconf,)
    lines = [f"KERNCONF={' '.join(kernconfs)}"]
    if bs.ports is not None:
        if bs.ports.distdir:
            lines.append(f"DISTDIR={bs.ports.distdir}")
        if bs.ports.wrkdirprefix:
            lines.append(f"WRKDIRPREFIX={bs.ports.wrkdirprefix}")
        if bs.ports.packages and is_build_host:
            lines.append(f"PACKAGES={bs.ports.packages}")
    return (
        header(config, f"buildsets/{bs.name}/make.conf")
        + _verbatim(bs.make_conf)
        + "".join(line + "\n" for line in lines)
    )


def src_conf(config: Config, buildset: BuildSet | str) -> str:
    """``/etc/src.conf`` for every host of ``buildset``."""
    bs = _buildset(config, buildset)
    return header(config, f"buildsets/{bs.name}/src.conf") + _verbatim(bs.src_conf)


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def ports_writable(config: Config, buildset: BuildSet) -> bool:
    """Whether the hosts of ``buildset`` need the shared ports tree read-write (DISTDIR in it)."""
    return (
        config.ports is not None
        and buildset.ports is not None
        and buildset.ports.distdir is not None
        and _inside(buildset.ports.distdir, config.ports.tree)
    )


def _export_line(path: str, mode: str, clients: list[Host]) -> str:
    # exports(5) has -ro but no -rw flag: read-write is the default.
    options = "-ro -maproot=root" if mode == "ro" else "-maproot=root"
    return f"{path} {options} {' '.join(h.address for h in clients)}\n"


def exports(config: Config) -> dict[str, str]:
    """Server host name -> the ``/etc/exports`` lines it must contain."""
    lines: dict[str, list[str]] = {}
    src = config.src
    others = [h for h in config.hosts if h.name != src.name]
    if others:
        lines.setdefault(src.name, []).append(_export_line(SRC, "ro", others))
    if config.ports is not None:
        rw = [h for h in others if ports_writable(config, config.buildset(h.buildset))]
        ro = [h for h in others if h not in rw]
        for mode, clients in (("ro", ro), ("rw", rw)):
            if clients:
                lines.setdefault(src.name, []).append(
                    _export_line(config.ports.tree, mode, clients)
                )
    for bs in config.buildsets:
        clients = [h for h in bs.hosts if h.name != bs.build_host]
        if clients:
            lines.setdefault(bs.build_host, []).append(_export_line(OBJ, "ro", clients))
    return {server: "".join(text) for server, text in lines.items()}


def _server(address: str) -> str:
    # mount_nfs(8) takes an IPv6 server in brackets: [2001:db8::1]:/usr/src
    try:
        is_v6 = ipaddress.ip_address(address).version == 6
    except ValueError:
        is_v6 = False
    return f"[{address}]" if is_v6 else address


def fstab(config: Config, host: Host | str) -> str:
    """The NFS ``/etc/fstab`` lines ``host`` must contain ("" for a host that serves itself)."""
    target = _host(config, host)
    bs = config.buildset(target.buildset)
    lines = []
    if target.name != config.src_host:
        src = _server(config.src.address)
        lines.append(f"{src}:{SRC} {SRC} nfs ro 0 0")
        if config.ports is not None:
            mode = "rw" if ports_writable(config, bs) else "ro"
            lines.append(f"{src}:{config.ports.tree} {config.ports.tree} nfs {mode} 0 0")
    if target.name != bs.build_host:
        lines.append(f"{_server(bs.build.address)}:{OBJ} {OBJ} nfs ro 0 0")
    return "".join(line + "\n" for line in lines)
