"""The simulated git.freebsd.org/ports.git: a handful of ports on ``main``, and a reader for them.

Like the src upstream (upstream.py), every commit is made with a fixed
identity and date, so the hashes in :data:`COMMITS` are the same on every
machine: the src host starts on the oldest, ``example-repo/fleet.yaml`` pins
the middle one and the newest is the update a user would request.

The ports are laid out as in the real tree (``<category>/<port>/Makefile``,
``pkg-descr``, ``pkg-plist``, ``distinfo``, category Makefiles with
``SUBDIR +=`` lines, ``Mk/bsd.port.mk``) and their Makefiles use the real
framework's variables: PORTNAME, PORTVERSION/DISTVERSION, PORTREVISION,
PORTEPOCH, PKGNAMEPREFIX/SUFFIX, FLAVORS with ``<flavor>_PKGNAMEPREFIX``
(Mk/bsd.port.mk), ``*_DEPENDS`` as ``what:origin``, OPTIONS_DEFINE and
OPTIONS_DEFAULT (Mk/bsd.options.mk), USERS/GROUPS. :func:`read_port` is the
simulator's stand-in for ``make -V``: it reads those assignments, nothing
else of make's language.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.sim.upstream import _IDENTITY, _git, git_env

BRANCH = "main"
URL = "https://git.freebsd.org/ports.git"


@dataclass(frozen=True)
class Port:
    """One simulated port as its Makefile declares it (versions per step below)."""

    origin: str
    portname: str
    comment: str
    maintainer: str
    www: str
    plist: tuple[str, ...]
    version_var: str = "PORTVERSION"
    epoch: int = 0
    revision: int = 0
    prefix: str = ""
    suffix: str = ""
    flavors: tuple[str, ...] = ()
    lib_depends: tuple[str, ...] = ()  # "libfoo.so:cat/port"
    options_define: tuple[str, ...] = ()
    options_default: tuple[str, ...] = ()
    users: tuple[str, ...] = ()


PORTS: tuple[Port, ...] = (
    Port(
        "ports-mgmt/pkg",
        "pkg",
        "Package manager",
        "pkg@FreeBSD.org",
        "https://github.com/freebsd/pkg",
        ("sbin/pkg", "sbin/pkg-static", "etc/pkg.conf.sample", "share/man/man8/pkg.8.gz"),
        version_var="DISTVERSION",
    ),
    Port(
        "devel/pcre2",
        "pcre2",
        "Perl Compatible Regular Expressions library, version 2",
        "garga@FreeBSD.org",
        "https://www.pcre.org/",
        ("include/pcre2.h", "lib/libpcre2-8.so.0"),
    ),
    Port(
        "www/nginx",
        "nginx",
        "Robust and small WWW server",
        "joneum@FreeBSD.org",
        "https://nginx.org/",
        ("sbin/nginx", "etc/nginx/nginx.conf-dist", "etc/rc.d/nginx"),
        epoch=3,
        lib_depends=("libpcre2-8.so:devel/pcre2",),
        options_define=("DEBUG", "HTTP2", "HTTP_SSL", "IPV6", "MAIL"),
        options_default=("HTTP2", "HTTP_SSL", "IPV6"),
    ),
    Port(
        "databases/postgresql16-server",
        "postgresql",
        "PostgreSQL is the most advanced open-source database available anywhere",
        "pgsql@FreeBSD.org",
        "https://www.postgresql.org/",
        ("bin/postgres", "bin/initdb", "etc/rc.d/postgresql"),
        version_var="DISTVERSION",
        suffix="16-server",
        options_define=("DTRACE", "LDAP", "NLS", "SSL"),
        options_default=("NLS", "SSL"),
        users=("postgres",),
    ),
    Port(
        "devel/py-six",
        "six",
        "Python 2 and 3 compatibility utilities",
        "python@FreeBSD.org",
        "https://github.com/benjaminp/six",
        ("%%PYTHON_SITELIBDIR%%/six.py",),
        flavors=("py311", "py312"),
    ),
    Port(
        "security/sudo",
        "sudo",
        "Allow others to run commands as root",
        "garga@FreeBSD.org",
        "https://www.sudo.ws/",
        ("bin/sudo", "sbin/visudo", "etc/sudoers.sample"),
        options_define=("INSULTS", "LDAP", "NLS"),
        options_default=("NLS",),
    ),
    Port(
        "sysutils/tmux",
        "tmux",
        "Terminal Multiplexer",
        "mat@FreeBSD.org",
        "https://tmux.github.io/",
        ("bin/tmux", "share/man/man1/tmux.1.gz"),
        version_var="DISTVERSION",
    ),
)

#: (subject, date, {origin: version}) oldest first; every port is in the first.
STEPS: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "Import the simulated ports tree",
        "2024-06-10T08:00:00Z",
        {
            "ports-mgmt/pkg": "1.21.3",
            "devel/pcre2": "10.43",
            "www/nginx": "1.26.1",
            "databases/postgresql16-server": "16.3",
            "devel/py-six": "1.16.0",
            "security/sudo": "1.9.15p5",
            "sysutils/tmux": "3.4",
        },
    ),
    (
        "www/nginx: update to 1.26.2; databases/postgresql16-server: update to 16.4",
        "2024-08-20T14:30:00Z",
        {"www/nginx": "1.26.2", "databases/postgresql16-server": "16.4"},
    ),
    (
        "security/sudo: 1.9.16p2; sysutils/tmux: 3.5a; devel/pcre2: 10.44; devel/py-six: 1.17.0",
        "2025-01-15T11:45:00Z",
        {
            "security/sudo": "1.9.16p2",
            "sysutils/tmux": "3.5a",
            "devel/pcre2": "10.44",
            "devel/py-six": "1.17.0",
        },
    ),
)

#: The branch's commit hashes, oldest first (a test checks them against :func:`create`).
COMMITS: tuple[str, ...] = (
    "2d4b01d5a50989aeb0104c6c92736e6cd230e62a",
    "b89d065344ec86b694bca4d508973ba5c87a7d8c",
    "c1e4c831634c9921c13ca766165dd568a1e2be25",
)


def _makefile(port: Port, version: str) -> str:
    category = port.origin.split("/")[0]
    lines = [f"PORTNAME=\t{port.portname}", f"{port.version_var}=\t{version}"]
    if port.revision:
        lines.append(f"PORTREVISION=\t{port.revision}")
    if port.epoch:
        lines.append(f"PORTEPOCH=\t{port.epoch}")
    lines.append(f"CATEGORIES=\t{category}")
    if port.flavors:
        lines.append("PKGNAMEPREFIX=\t${PYTHON_PKGNAMEPREFIX}")
    if port.suffix:
        lines.append(f"PKGNAMESUFFIX=\t{port.suffix}")
    lines += [
        "",
        f"MAINTAINER=\t{port.maintainer}",
        f"COMMENT=\t{port.comment}",
        f"WWW=\t\t{port.www}",
        "",
        "LICENSE=\tBSD2CLAUSE",
    ]
    if port.lib_depends:
        lines += ["", f"LIB_DEPENDS=\t{' '.join(port.lib_depends)}"]
    if port.flavors:
        lines += ["", "USES=\t\tpython", f"FLAVORS=\t{' '.join(port.flavors)}"]
        lines += [f"{f}_PKGNAMEPREFIX=\t{f}-" for f in port.flavors]
    if port.users:
        lines += ["", f"USERS=\t\t{' '.join(port.users)}", f"GROUPS=\t\t{' '.join(port.users)}"]
    if port.options_define:
        lines += ["", f"OPTIONS_DEFINE=\t{' '.join(port.options_define)}"]
        lines.append(f"OPTIONS_DEFAULT=\t{' '.join(port.options_default)}")
    lines += ["", ".include <bsd.port.mk>", ""]
    return "\n".join(lines)


def _distinfo(port: Port, version: str, date: str) -> str:
    distfile = f"{port.portname}-{version}.tar.gz"
    digest = hashlib.sha256(distfile.encode()).hexdigest()
    size = int(digest[:6], 16) + 100_000
    return (
        f"TIMESTAMP = {1700000000 + int(digest[6:11], 16) % 10_000_000}\n"
        f"SHA256 ({distfile}) = {digest}\nSIZE ({distfile}) = {size}\n"
    )


def _files(versions: dict[str, str], date: str) -> dict[str, str]:
    files = {
        "Mk/bsd.port.mk": "# Simulated Mk/bsd.port.mk: the variables reconciler/sim/portstree.py "
        "reads.\n",
        "UPDATING": "Notes for users of the simulated ports tree.\n",
    }
    by_category: dict[str, list[str]] = {}
    for port in PORTS:
        if port.origin not in versions:
            continue
        category, name = port.origin.split("/")
        by_category.setdefault(category, []).append(name)
        base = port.origin
        files[f"{base}/Makefile"] = _makefile(port, versions[port.origin])
        files[f"{base}/pkg-descr"] = f"{port.comment}.\n\nWWW: {port.www}\n"
        files[f"{base}/pkg-plist"] = "".join(f"{entry}\n" for entry in port.plist)
        files[f"{base}/distinfo"] = _distinfo(port, versions[port.origin], date)
    for category, names in by_category.items():
        files[f"{category}/Makefile"] = (
            f"COMMENT = {category}\n\n"
            + "".join(f"    SUBDIR += {n}\n" for n in sorted(names))
            + "\n.include <bsd.port.subdir.mk>\n"
        )
    files["Makefile"] = (
        "SUBDIR += " + " \\\n\t".join(sorted(by_category)) + "\n\n.include <bsd.port.subdir.mk>\n"
    )
    return files


def create(bare: Path) -> list[str]:
    """Make the ports upstream at ``bare``; return its commits, oldest first."""
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "-q", "--bare", "-b", BRANCH, str(bare))
    hashes: list[str] = []
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sim-ports-") as tmp:
        work = Path(tmp)
        for subject, date, changes in STEPS:
            versions.update(changes)
            for rel, text in _files(versions, date).items():
                path = work / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            env = git_env() | _IDENTITY | {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
            base = ["--git-dir", str(bare), "--work-tree", str(work)]
            _git(*base, "add", "-A", env=env)
            _git(*base, "commit", "-q", "-m", subject, env=env)
            hashes.append(_git("--git-dir", str(bare), "rev-parse", "HEAD"))
    return hashes


def commits() -> list[str]:
    """The branch's commits, oldest first, made afresh in a scratch repository."""
    with tempfile.TemporaryDirectory(prefix="sim-ports-") as tmp:
        return create(Path(tmp) / "ports.git")


# -- reading a port, as make -V would ------------------------------------------------

_ASSIGN = re.compile(r"^([A-Za-z0-9_.]+)\s*(\+?=)\s*(.*?)\s*$")


class PortError(Exception):
    """A port that cannot be evaluated (the message is what poudriere would say)."""


@dataclass(frozen=True)
class PortInfo:
    """What the ports framework computes for one origin@flavor."""

    origin: str
    flavor: str | None
    name: str  # PKGNAME without the version: PKGNAMEPREFIX PORTNAME PKGNAMESUFFIX
    version: str  # PKGVERSION: version[_revision][,epoch]
    comment: str
    maintainer: str
    www: str
    descr: str
    depends: tuple[str, ...]  # origins (default flavors)
    options_define: tuple[str, ...]
    options_default: tuple[str, ...]
    users: tuple[str, ...]
    plist: tuple[str, ...] = field(default=())

    @property
    def pkgname(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def spec(self) -> str:
        return f"{self.origin}@{self.flavor}" if self.flavor else self.origin


def _variables(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _ASSIGN.match(line)
        if match is None:
            continue
        name, op, value = match.groups()
        values[name] = f"{values[name]} {value}".strip() if op == "+=" and name in values else value
    return values


def exists(tree: Path, origin: str) -> bool:
    return (tree / origin / "Makefile").is_file()


def read_port(tree: Path, spec: str) -> PortInfo:
    """origin[@flavor] in the tree at ``tree`` (a checked-out ports tree)."""
    origin, _, flavor = spec.partition("@")
    path = tree / origin / "Makefile"
    try:
        values = _variables(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PortError(f"Nonexistent origin listed: {spec}") from exc
    flavors = values.get("FLAVORS", "").split()
    if flavor and flavor not in flavors:
        raise PortError(f"Invalid FLAVOR '{flavor}' for {origin}")
    chosen = flavor or (flavors[0] if flavors else None)
    prefix = values.get("PKGNAMEPREFIX", "")
    if chosen and f"{chosen}_PKGNAMEPREFIX" in values:
        prefix = values[f"{chosen}_PKGNAMEPREFIX"]
    elif "${" in prefix:
        prefix = ""
    version = values.get("DISTVERSION") or values.get("PORTVERSION", "0")
    if values.get("PORTREVISION", "0") not in ("", "0"):
        version += f"_{values['PORTREVISION']}"
    if values.get("PORTEPOCH", "0") not in ("", "0"):
        version += f",{values['PORTEPOCH']}"
    depends = tuple(
        word.split(":", 1)[1]
        for var in ("BUILD_DEPENDS", "LIB_DEPENDS", "RUN_DEPENDS")
        for word in values.get(var, "").split()
        if ":" in word
    )
    python = f"lib/python{chosen[2]}.{chosen[3:]}/site-packages" if chosen else "lib/python"
    plist_path = tree / origin / "pkg-plist"
    plist = tuple(
        line.replace("%%PYTHON_SITELIBDIR%%", python)
        for line in (plist_path.read_text(encoding="utf-8") if plist_path.is_file() else "").split()
    )
    descr_path = tree / origin / "pkg-descr"
    portname = values.get("PORTNAME", origin.split("/")[1])
    return PortInfo(
        origin=origin,
        flavor=chosen,
        name=f"{prefix}{portname}{values.get('PKGNAMESUFFIX', '')}",
        version=version,
        comment=values.get("COMMENT", ""),
        maintainer=values.get("MAINTAINER", "ports@FreeBSD.org"),
        www=values.get("WWW", ""),
        descr=descr_path.read_text(encoding="utf-8") if descr_path.is_file() else "",
        depends=depends,
        options_define=tuple(values.get("OPTIONS_DEFINE", "").split()),
        options_default=tuple(values.get("OPTIONS_DEFAULT", "").split()),
        users=tuple(values.get("USERS", "").split()),
        plist=plist,
    )
