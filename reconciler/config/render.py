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
to the other hosts of its set. exports(5) allows a host only once per local
file system (mountd's second nmount(2) for it fails: "netcred already exists
for given addr/mask", and the whole line is dropped), and the directories of
one line must share a file system ("fsid mismatch" otherwise). So lines are
made per file system: given the server's file systems (``filesystems``: server
name -> {path: file system}, from its ``mount -p``), each client gets one line
per file system naming every path it needs there, with the weakest access any
of them needs (read-write wins: the client still mounts /usr/src ``ro``).
Without that knowledge each path is taken for a file system of its own, which
holds in the default ZFS layout (``/usr/src`` is its own dataset and the build
host needs ``/usr/obj`` on its own) but not on a single-UFS host.
Clients are named by address, ``-maproot=root`` so root on a client reads what
root wrote. Clients mount at exactly the same paths (the objdir is
``/usr/obj${.CURDIR}``), with ``bg``: mount_nfs(8) otherwise retries in the
foreground until the server answers, so a client booting while its server is
down would hang in rc(8) until then.

The ports tree, when ``fleet.yaml`` has ``ports:``, is exported by the src host
too. DISTDIR must be writable by the user root maps to (HB 24.7), and a host
may have only one set of export options per file system, so: hosts of a build
set whose ``ports.distdir`` lies inside the tree get the tree read-write
(``-maproot=root``, mounted ``rw``); every other host gets it read-only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from reconciler import remote
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


def _export_line(paths: list[str], mode: str, clients: list[Host]) -> str:
    # exports(5) has -ro but no -rw flag: read-write is the default.
    options = "-ro -maproot=root" if mode == "ro" else "-maproot=root"
    return f"{' '.join(paths)} {options} {' '.join(h.address for h in clients)}\n"


def _wanted(config: Config) -> dict[str, list[tuple[str, str, list[Host]]]]:
    """Server -> (path, mode, clients) in order: what each NFS server must offer to whom."""
    wanted: dict[str, list[tuple[str, str, list[Host]]]] = {}
    src = config.src
    others = [h for h in config.hosts if h.name != src.name]
    if others:
        wanted.setdefault(src.name, []).append((SRC, "ro", others))
    if config.ports is not None:
        rw = [h for h in others if ports_writable(config, config.buildset(h.buildset))]
        ro = [h for h in others if h not in rw]
        for mode, clients in (("ro", ro), ("rw", rw)):
            if clients:
                wanted.setdefault(src.name, []).append((config.ports.tree, mode, clients))
    for bs in config.buildsets:
        clients = [h for h in bs.hosts if h.name != bs.build_host]
        if clients:
            wanted.setdefault(bs.build_host, []).append((OBJ, "ro", clients))
    return wanted


def _lines(entries: list[tuple[str, str, list[Host]]], filesystem: Mapping[str, str]) -> str:
    """One line per (file system, paths, access) with every client that shares them."""
    # per file system, per client: the paths it needs there and whether any needs rw
    needs: dict[str, dict[str, tuple[list[str], bool, Host]]] = {}
    for path, mode, clients in entries:
        fs = filesystem.get(path) or f"path:{path}"  # unknown: a file system of its own
        per_client = needs.setdefault(fs, {})
        for client in clients:
            paths, rw, _ = per_client.get(client.name, ([], False, client))
            if path not in paths:
                paths.append(path)
            per_client[client.name] = (paths, rw or mode == "rw", client)
    text = []
    for per_client in needs.values():
        groups: dict[tuple[tuple[str, ...], bool], list[Host]] = {}
        for paths, rw, client in per_client.values():
            groups.setdefault((tuple(paths), rw), []).append(client)
        for (shared, rw), clients in groups.items():
            text.append(_export_line(list(shared), "rw" if rw else "ro", clients))
    return "".join(text)


def exports(
    config: Config, filesystems: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, str]:
    """Server host name -> the ``/etc/exports`` lines it must contain.

    ``filesystems``: server name -> {exported path: the file system holding it}
    (``facts.mounts.Mounts.filesystems``); a server or path missing from it is
    taken to have each path on a file system of its own.
    """
    known = filesystems or {}
    return {
        server: _lines(entries, known.get(server, {}))
        for server, entries in _wanted(config).items()
    }


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
        lines.append(f"{src}:{SRC} {SRC} nfs ro,bg 0 0")
        if config.ports is not None:
            mode = "rw" if ports_writable(config, bs) else "ro"
            lines.append(f"{src}:{config.ports.tree} {config.ports.tree} nfs {mode},bg 0 0")
    if target.name != bs.build_host:
        lines.append(f"{_server(bs.build.address)}:{OBJ} {OBJ} nfs ro,bg 0 0")
    return "".join(line + "\n" for line in lines)


# -- packages (issue 11): the repository file on every host, the build host's inputs --------


def _package_set(config: Config, buildset: BuildSet | str) -> tuple[BuildSet, str, str]:
    """(build set, build id, package set id); ValueError for a set without packages."""
    from reconciler.config.buildid import build_id
    from reconciler.config.pkgsetid import package_set_id

    bs = _buildset(config, buildset)
    pkgset = package_set_id(config, bs)
    if pkgset is None:
        raise ValueError(f"build set {bs.name!r} lists no packages")
    return bs, build_id(config, bs), pkgset


def pkg_repo_conf(config: Config, buildset: BuildSet | str) -> str:
    """``/usr/local/etc/pkg/repos/reconciler.conf`` for every host of ``buildset``.

    pkg.conf(5) repository syntax: a ``file://`` url of the set's repository
    (NFS-mounted read-only at the same path; the build host's own), a priority
    above the default 0 so the set's builds win over another repository's,
    ``signature_type: "pubkey"`` when the set signs, and ``FreeBSD: { enabled:
    no }`` only when the config asks for it.
    """
    bs, _, pkgset = _package_set(config, buildset)
    packages = bs.packages
    assert packages is not None
    lines = [
        f"{remote.PKG_REPO_NAME}: {{",
        f'  url: "file://{remote.pkg_repo(pkgset)}",',
        "  enabled: yes,",
        "  priority: 10,",
    ]
    if packages.signing is not None:
        lines += ['  signature_type: "pubkey",', f'  pubkey: "{packages.signing.pubkey}",']
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}")
    if not packages.freebsd_repository:
        lines.append("FreeBSD: { enabled: no }")
    source = f"buildsets/{bs.name}/buildset.yaml (packages), package set {remote.short(pkgset)}"
    return header(config, source) + "".join(line + "\n" for line in lines)


def ports_make_conf(config: Config, buildset: BuildSet | str) -> str:
    """The make.conf of the ports build: the set's make.conf, then ``ports/make.conf``.

    The same lines a port built by hand on the build host would see in
    /etc/make.conf (HB 24.7: make.conf agrees across the set), plus the
    set's ports-only settings; poudriere reads it as ``<set>-make.conf``.
    """
    bs = _buildset(config, buildset)
    packages = bs.packages
    extra = packages.make_conf if packages is not None else ""
    return (
        header(config, f"buildsets/{bs.name}/make.conf, buildsets/{bs.name}/ports/make.conf")
        + _verbatim(bs.make_conf)
        + _verbatim(extra)
    )


def poudriere_conf(config: Config, buildset: BuildSet | str) -> str:
    """``poudriere.conf`` of the reconciler's poudriere (``poudriere -e POUDRIERE_ETC``).

    Everything on /usr/obj's own file system without ZFS datasets of its own
    (NO_ZFS): jails, logs and repositories survive a BE switch and work on UFS
    build hosts too. A failed bulk commits nothing (COMMIT_PACKAGES_ON_FAILURE),
    so a repository is complete or absent.
    """
    bs = _buildset(config, buildset)
    packages = bs.packages
    distfiles = (bs.ports.distdir if bs.ports and bs.ports.distdir else None) or (
        f"{remote.POUDRIERE_BASE}/distfiles"
    )
    lines = [
        "NO_ZFS=yes",
        f"BASEFS={remote.POUDRIERE_BASE}",
        f"POUDRIERE_DATA={remote.POUDRIERE_DATA}",
        f"DISTFILES_CACHE={distfiles}",
        "USE_PORTLINT=no",
        "ATOMIC_PACKAGE_REPOSITORY=yes",
        "COMMIT_PACKAGES_ON_FAILURE=no",
        "KEEP_OLD_PACKAGES=no",
    ]
    if packages is not None and packages.signing is not None:
        lines.append(f"PKG_REPO_SIGNING_KEY={packages.signing.key}")
    return header(config, f"buildsets/{bs.name}/buildset.yaml (packages)") + "".join(
        line + "\n" for line in lines
    )


def package_build_files(config: Config, buildset: BuildSet | str) -> dict[str, str]:
    """Absolute path -> text of every file the build host needs before the package build.

    poudriere: its poudriere.conf, ``poudriere.d/<set>-make.conf`` and
    ``poudriere.d/<set>-options/<NAME>/options`` (poudriere copies the
    options directory named after the set into the jail's /var/db/ports);
    make: the same make.conf and options under the package set's
    ``.reconciler/`` (used as __MAKE_CONF and PORT_DBDIR). Both: the origin
    list (``.reconciler/origins``, ``poudriere bulk -f``'s format).
    """
    bs, _, pkgset = _package_set(config, buildset)
    packages = bs.packages
    assert packages is not None
    meta = f"{remote.pkg_set_dir(pkgset)}/{remote.BUILD_META}"
    files = {f"{meta}/origins": "".join(origin + "\n" for origin in packages.all_origins)}
    if packages.method == "poudriere":
        conf_dir = f"{remote.POUDRIERE_ETC}/poudriere.d"
        setname = remote.pkg_setname(pkgset)
        files[f"{remote.POUDRIERE_ETC}/poudriere.conf"] = poudriere_conf(config, bs)
        files[f"{conf_dir}/{setname}-make.conf"] = ports_make_conf(config, bs)
        options_dir = f"{conf_dir}/{setname}-options"
    else:
        files[f"{meta}/make.conf"] = ports_make_conf(config, bs)
        options_dir = f"{meta}/options"
    for opt in packages.options:
        files[f"{options_dir}/{opt.name}/options"] = _verbatim(opt.text)
    return files
