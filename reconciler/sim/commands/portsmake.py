"""make(1) in a port's directory: the ports framework's targets HB 24.7's plain method uses.

Follows freebsd-ports Mk/bsd.port.mk (docs/freebsd-commands.md cites it):

- the package lands in ``PKGFILE``: ``${PACKAGES}/All/${PKGNAME}${PKG_SUFX}``
  when the PACKAGES directory exists (``PKGREPOSITORY`` is
  ``${PACKAGES}/${PKGREPOSITORYSUBDIR}``, ``All``), else in the port's own
  directory; PACKAGES defaults to ``${PORTSDIR}/packages``. Only
  ports-mgmt/pkg also gets the ``Latest`` link (``${PACKAGES}/Latest/pkg.pkg``
  -> ``../All/pkg-<version>.pkg``, the pkg(7) bootstrap's path);
- ``package`` builds and stages the port; its dependencies must be
  *installed* first: every missing one is built and installed with
  DEPENDS_TARGET (``install``), registered automatic, with "===>   X depends
  on ...: - not found" and "===>   Returning to build of X"; every port but
  pkg itself needs pkg (PKG_DEPENDS);
- ``package-recursive`` is ``package``, then ``package-noinstall`` in every
  dependency (ALL-DEPENDS-LIST), so their packages land beside it;
- ``install`` builds, stages and registers the port on the running system;
  one already installed stops it (check-already-installed: "===>   X is
  already installed" or "An older version of O is already installed (X)");
- variables: the command line, then ``__MAKE_CONF`` (default /etc/make.conf),
  then the environment (a makefile assignment beats an environment
  variable); WRKDIR is ``${WRKDIRPREFIX}${.CURDIR}/work``; options from
  make.conf and ``${PORT_DBDIR}/<category>_<port>/options`` (default
  /var/db/ports) as Mk/bsd.options.mk orders them; FLAVOR must be one of
  the port's FLAVORS;
- fault ``port-build-fails`` (an origin, origin@flavor or package name; bare:
  www/nginx) fails that port's build: ``*** Error code 1``, ``Stop.``,
  ``make: stopped in DIR``, exit 1.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from reconciler.sim import kernel, pkgdb, pkgfile, pkgjobs, portstree
from reconciler.sim.commands.host import Host
from reconciler.sim.commands.makeopts import make_conf_path
from reconciler.sim.poudrierebulk import _content, _manifest, port_options

PKG_ORIGIN = "ports-mgmt/pkg"
PKG_SUFX = ".pkg"


class PortFailed(Exception):
    """A target failed; the message is make's, printed on stderr."""


def is_port(directory: Path) -> bool:
    """A port's directory: a Makefile including bsd.port.mk, two levels below the tree."""
    makefile = directory / "Makefile"
    try:
        text = makefile.read_text(encoding="utf-8")
    except OSError:
        return False
    return "<bsd.port.mk>" in text and (directory.parent.parent / "Mk" / "bsd.port.mk").is_file()


class Ports:
    def __init__(self, host: Host, portsdir: Path, cmdline: dict[str, str]) -> None:
        self.host = host
        self.portsdir = portsdir
        self.cmdline = cmdline
        conf = make_conf_path(cmdline)
        self.make_conf = conf.read_text(encoding="utf-8") if conf.is_file() else ""
        _, timings = host.fleet()
        self.seconds = timings.build_seconds * host.slow_factor() / 8
        world = kernel.read(Path("/") / kernel.WORLD_FILE) or {}
        self.abi = f"FreeBSD:{world.get('version', '14').split('.')[0]}:amd64"

    def var(self, name: str, default: str = "") -> str:
        if name in self.cmdline:
            return self.cmdline[name]
        for line in self.make_conf.splitlines():
            key, sep, value = line.split("#", 1)[0].partition("=")
            if sep and key.strip().rstrip("?") == name:
                return value.strip()
        return os.environ.get(name, default)

    @property
    def packages(self) -> Path:
        return Path(self.var("PACKAGES", f"{self.portsdir}/packages"))

    def info(self, spec: str) -> portstree.PortInfo:
        try:
            return portstree.read_port(self.portsdir, spec)
        except portstree.PortError as exc:
            raise PortFailed(f"===>  {exc}\n*** Error code 1\n\nStop.") from exc

    def workdir(self, info: portstree.PortInfo) -> Path:
        return Path(self.var("WRKDIRPREFIX") + str(self.portsdir / info.origin)) / "work"

    def installed(self) -> dict[str, pkgdb.Installed]:
        conn = pkgdb.connect(Path("/"))
        return {p.origin: p for p in pkgdb.all_installed(conn)} if conn is not None else {}

    def depends(self, info: portstree.PortInfo) -> list[str]:
        """PKG_DEPENDS (pkg itself, for every other port) and the Makefile's *_DEPENDS."""
        return ([] if info.origin == PKG_ORIGIN else [PKG_ORIGIN]) + list(info.depends)

    # -- the stages ----------------------------------------------------------
    def build(self, info: portstree.PortInfo) -> Path:
        """Dependencies installed, then build and stage; returns the package in WRKDIR/pkg."""
        for dep in self.depends(info):
            if dep.partition("@")[0] in self.installed():
                continue
            what = "package" if dep == PKG_ORIGIN else "shared library"
            print(f"===>   {info.pkgname} depends on {what}: {dep} - not found", flush=True)
            self.install(self.info(dep), automatic=True)
            print(f"===>   Returning to build of {info.pkgname}", flush=True)
        print(f"===>  Building for {info.pkgname}", flush=True)
        time.sleep(self.seconds)
        fault = self.host.fault("port-build-fails")
        wanted = None if fault is None else ("www/nginx" if fault is True else str(fault))
        if wanted in (info.origin, info.spec, info.name, info.pkgname):
            raise PortFailed(
                "cc: error: unable to execute command: Killed\n*** Error code 1\n\nStop.\n"
                f"make: stopped in {self.portsdir / info.origin}"
            )
        print(f"===>  Staging for {info.pkgname}", flush=True)
        optdir = Path(self.var("PORT_DBDIR", "/var/db/ports"))
        options = port_options(info, self.make_conf, optdir if optdir.is_dir() else None)
        deps = {}
        for dep_spec in info.depends:
            dep_info = self.info(dep_spec)
            deps[dep_info.name] = {"origin": dep_info.origin, "version": dep_info.version}
        files = {f"/usr/local/{e}": _content(info, e, "the build host") for e in info.plist}
        work = self.workdir(info) / "pkg" / f"{info.pkgname}{PKG_SUFX}"
        pkgfile.write_package(work, _manifest(info, options, self.abi, deps), files)
        self.host.count("port-build")
        return work

    def package(self, info: portstree.PortInfo) -> None:
        built = self.build(info)
        print(f"===>  Building package for {info.pkgname}", flush=True)
        if self.packages.is_dir():
            repository = self.packages / "All"
            repository.mkdir(exist_ok=True)
            target = repository / built.name
            target.unlink(missing_ok=True)
            try:
                os.link(built, target)  # ${LN} -f, else ${CP} -af (another file system)
            except OSError:
                shutil.copy2(built, target)
            if info.origin == PKG_ORIGIN:
                latest = self.packages / "Latest"
                latest.mkdir(exist_ok=True)
                link = latest / f"pkg{PKG_SUFX}"
                link.unlink(missing_ok=True)
                link.symlink_to(f"../All/{built.name}")
        else:
            shutil.copy2(built, self.portsdir / info.origin / built.name)

    def install(self, info: portstree.PortInfo, *, automatic: bool = False) -> None:
        old = self.installed().get(info.origin)
        if old is not None:
            if pkgjobs.newer(info.version, old.version):
                line = (
                    f"===>   An older version of {info.origin} is already installed "
                    f"({old.name}-{old.version})"
                )
            else:
                line = f"===>   {info.pkgname} is already installed"
            raise PortFailed(
                f"{line}\n      You may wish to ``make deinstall'' and install this port again\n"
                "      by ``make reinstall'' to upgrade it properly.\n*** Error code 1\n\nStop.\n"
                f"make: stopped in {self.portsdir / info.origin}"
            )
        built = self.build(info)
        print(f"===>  Installing for {info.pkgname}", flush=True)
        conn = pkgdb.connect(Path("/"), create=True)
        assert conn is not None
        word = " as automatic" if automatic else ""
        print(f"===>   Registering installation for {info.pkgname}{word}", flush=True)
        job = pkgjobs.Job("install", {}, source=built, automatic=automatic)
        try:
            pkgjobs.install(pkgjobs.Target(Path("/"), False), conn, job, 1, 1, self.abi)
        except pkgjobs.PkgFailure as exc:
            raise PortFailed(f"pkg: {exc}\n*** Error code 1\n\nStop.") from exc

    def all_depends(self, info: portstree.PortInfo) -> list[portstree.PortInfo]:
        """ALL-DEPENDS-LIST: every dependency, recursively, each once."""
        found: dict[str, portstree.PortInfo] = {}

        def visit(spec: str) -> None:
            dep = self.info(spec)
            if dep.pkgname in found or dep.pkgname == info.pkgname:
                return
            found[dep.pkgname] = dep
            for sub in self.depends(dep):
                visit(sub)

        for spec in self.depends(info):
            visit(spec)
        return list(found.values())

    def clean(self, info: portstree.PortInfo) -> None:
        print(f"===>  Cleaning for {info.pkgname}", flush=True)
        shutil.rmtree(self.workdir(info), ignore_errors=True)


def run(host: Host, directory: Path, variables: dict[str, str], targets: list[str]) -> int:
    portsdir = directory.parent.parent
    ports = Ports(host, portsdir, variables)
    origin = f"{directory.parent.name}/{directory.name}"
    flavor = ports.var("FLAVOR")
    try:
        info = ports.info(f"{origin}@{flavor}" if flavor else origin)
        for target in targets:
            if target in ("package", "package-noinstall"):
                ports.package(info)
            elif target == "package-recursive":
                ports.package(info)
                for dep in ports.all_depends(info):
                    ports.package(dep)
            elif target in ("install", "all", "build", "stage"):
                if target == "install":
                    ports.install(info)
                else:
                    ports.build(info)
            elif target == "clean":
                ports.clean(info)
            else:
                print(
                    f"make: don't know how to make {target}. Stop\n\nmake: stopped in {directory}",
                    file=sys.stderr,
                )
                return 2
    except PortFailed as exc:
        sys.stdout.flush()
        print(exc, file=sys.stderr, flush=True)
        return 1
    return 0
