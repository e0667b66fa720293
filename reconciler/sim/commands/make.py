"""make(1) in /usr/src: the targets of Makefile.inc1 the reconciler uses (ports: portsmake.py).

Follows Makefile.inc1, Makefile.libcompat, sys/conf/kern.post.mk and
share/mk/src.sys.obj.mk (docs/freebsd-commands.md cites them):

- the object tree is ``${MAKEOBJDIRPREFIX:-/usr/obj}${SRCTOP}/amd64.amd64``;
  MAKEOBJDIRPREFIX only from the environment (else src.sys.obj.mk's error);
- KERNCONF: command line, else /etc/make.conf, else the environment, else
  GENERIC; buildkernel builds every listed config (each must exist in
  sys/amd64/conf: ``Missing KERNCONF <dir>/<K>``; config(8) stops on an
  include it cannot open), installkernel the first;
- buildworld prints Makefile.inc1's banners: stage 2.1 only WITH_CLEAN
  (otherwise ``>>> Deleting stale dependencies...``), 4.3 the lib32 shim
  libraries (unless WITHOUT_LIB32), 4.4 everything, then the epilogue;
- installkernel moves ``DESTDIR/boot/kernel`` to ``kernel.old`` and points
  kern.bootfile there when DESTDIR/boot/kernel is the running kernel's
  directory, else it replaces it (kern.post.mk);
- installworld needs ``toolchain-metadata.mk`` (``A build is required
  first.  You may have the wrong MAKEOBJDIRPREFIX set.``); unless DB_FROM_SRC
  is defined, every user (group) of the new etc/master.passwd (etc/group)
  must exist on the RUNNING system, whatever DESTDIR is (CHECK_UIDS runs
  ``id -u``, CHECK_GIDS ``find / -prune -group``): ``ERROR: Required X user
  is missing, see /usr/src/UPDATING.``; DB_FROM_SRC without DESTDIR is
  ``ERROR: Please set DESTDIR!``;
- buildworld leaves ``bin/freebsd-version/freebsd-version`` in the object tree
  (bin/freebsd-version/Makefile: freebsd-version.sh.in with newvers.sh's
  REVISION-BRANCH as USERLAND_VERSION; simulated for ``-u`` only);
- installworld into a DESTDIR carries the world's faults: ``sshd-config-broken``
  (an invalid /etc/ssh/sshd_config) and ``net-broken-after-boot`` (a world
  whose network never comes up: the boot starts no sshd);
- failures end like make's: ``*** Error code 1``, ``Stop.``, exit 2.
"""

from __future__ import annotations

import getopt
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from reconciler.sim import kernconf, kernel, loader
from reconciler.sim.commands import makeopts
from reconciler.sim.commands.common import progress
from reconciler.sim.commands.host import Host

RULE = "-" * 62
ARCH = "amd64.amd64"
_KERNEL_STAGES = (
    "stage 2.2: rebuilding the object tree",
    "stage 2.3: build tools",
    "stage 3.1: building everything",
)


def _banner(text: str) -> str:
    """One of Makefile.inc1's stage banners: an empty line, then the text between rules."""
    return f"\n{RULE}\n>>> {text}\n{RULE}"


class MakeError(Exception):
    """A failed target: its lines go to stderr, make exits 2."""


class Make:
    def __init__(self, host: Host, srctop: Path, variables: dict[str, str], jobs: str) -> None:
        self.host = host
        self.srctop = srctop
        self.vars = variables
        self.jobs = jobs
        prefix = os.environ.get("MAKEOBJDIRPREFIX", "/usr/obj")
        self.objtop = Path(prefix + str(srctop)) / ARCH
        self.destdir = variables.get("DESTDIR", os.environ.get("DESTDIR", ""))
        _, self.timings = host.fleet()

    # -- helpers -------------------------------------------------------------
    def kernconfs(self) -> list[str]:
        if "KERNCONF" in self.vars:
            return self.vars["KERNCONF"].split()
        value = _make_conf_var("KERNCONF")
        if value is None:
            value = os.environ.get("KERNCONF", "GENERIC")
        return value.split() or ["GENERIC"]

    def confdir(self) -> Path:
        return self.srctop / "sys" / "amd64" / "conf"

    def fatal(self, line: int, message: str) -> MakeError:
        return MakeError(
            f'make[1]: "{self.srctop}/Makefile.inc1" line {line}: {message}\n'
            f"make[1]: Fatal errors encountered -- cannot continue\n"
            f"make[1]: stopped in {self.srctop}\n*** Error code 1\n\nStop.\n"
            f"make: stopped in {self.srctop}"
        )

    def failed(self, where: str, text: str, code: int = 1) -> MakeError:
        return MakeError(
            f"{text}\n*** Error code {code}\n\nStop.\nmake[2]: stopped in {self.srctop}/{where}\n"
            f"*** Error code 1\n\nStop.\nmake[1]: stopped in {self.srctop}\n*** Error code 1\n\n"
            f"Stop.\nmake: stopped in {self.srctop}"
        )

    def stopped(self, text: str) -> MakeError:
        """A failed shell line of a Makefile.inc1 target: make[1] and make stop after it."""
        return MakeError(
            f"{text}\n*** Error code 1\n\nStop.\nmake[1]: stopped in {self.srctop}\n"
            f"*** Error code 1\n\nStop.\nmake: stopped in {self.srctop}"
        )

    def banner(self, text: str) -> None:
        print(f"{RULE}\n>>> {text}\n{RULE}", flush=True)

    def jobs_suffix(self) -> str:
        # Makefile.inc1: ${.MAKE.JOBS:S/^/, make -j/}, empty without -j
        return f", make -j{self.jobs}" if self.jobs else ""

    def mk(self, option: str) -> bool:
        return makeopts.mk(option, self.vars)

    def dest(self, path: str) -> Path:
        return Path(self.destdir or "/") / path.lstrip("/")

    # -- targets -------------------------------------------------------------
    def buildworld(self) -> None:
        self.host.count("buildworld")
        self.banner(f"World build started on {kernel.now()}")
        incremental = not self.mk("CLEAN")
        worldtmp = self.objtop / "tmp"
        chunks = [_banner("Rebuilding the temporary build tree")]
        if incremental and worldtmp.is_dir():
            chunks[-1] += "\n>>> Deleting stale files in build tree..."
        chunks += [
            _banner("stage 1.1: legacy release compatibility shims") + "\n===> tools (legacy)",
            _banner("stage 1.2: bootstrap tools") + "\n===> usr.bin/yacc (all)",
            ">>> Deleting stale dependencies..."
            if incremental
            else _banner("stage 2.1: cleaning up the object tree"),
            _banner("stage 2.2: rebuilding the object tree"),
            _banner("stage 2.3: build tools") + "\n===> lib/libz (all)",
            _banner("stage 3: cross tools") + "\n===> usr.bin/clang (all)",
            _banner("stage 3.1: recording build metadata"),
            _banner("stage 4.1: building includes") + "\n===> include (includes)",
            _banner("stage 4.2: building libraries") + "\n===> lib/libc (all)",
        ]
        if self.mk("LIB32"):
            chunks.append(_banner("stage 4.3: building lib32 shim libraries"))
            if incremental and worldtmp.is_dir():
                chunks[-1] += "\n>>> Deleting stale files in build32 tree..."
        chunks.append(_banner("stage 4.4: building everything") + "\n===> bin/sh (all)")
        fail_at = len(chunks) // 2 + 1 if self.host.fault("build-fails") is not None else None
        if progress(self.host, self.timings.build_seconds, chunks, fail_at=fail_at) != len(chunks):
            raise self.failed(
                "lib/libc",
                "--- all_subdir_lib/libc ---\n"
                "cc: error: unable to execute command: Killed\n"
                "cc: error: clang frontend command failed due to signal",
            )
        info = kernel.source_info(self.srctop)
        # stand/common/newvers.sh: the loader built with this world names its date and builder.
        info |= {"loader_built": loader.date(), "loader_builder": f"root@{self.host.name}"}
        worldtmp.mkdir(parents=True, exist_ok=True)
        (self.objtop / "toolchain-metadata.mk").write_text(
            "# Simulated toolchain metadata\nMACHINE=amd64\nMACHINE_ARCH=amd64\n"
            f"COMPILER_TYPE=clang\nSIM_REVISION={info['revision']}\n",
            encoding="utf-8",
        )
        (self.objtop / "world").write_text(
            kernel.render(info, "FreeBSD world build"), encoding="utf-8"
        )
        # bin/freebsd-version/Makefile: the script built from freebsd-version.sh.in
        # with newvers.sh's REVISION-BRANCH as USERLAND_VERSION (userland part only).
        built = self.objtop / "bin/freebsd-version/freebsd-version"
        built.parent.mkdir(parents=True, exist_ok=True)
        built.write_text(
            "#!/bin/sh\n# freebsd-version as built (simulated: -u only)\n"
            f'USERLAND_VERSION="{info["version"]}"\n'
            'case "${1:--u}" in -u) echo "$USERLAND_VERSION" ;; '
            '*) echo "usage: freebsd-version [-u]" >&2; exit 1 ;; esac\n',
            encoding="utf-8",
        )
        built.chmod(0o755)
        # buildworld_epilogue
        print(f"\n{RULE}\n>>> World build completed on {kernel.now()}")
        print(
            f">>> World built in {max(int(self.timings.build_seconds), 1)} seconds, "
            f"ncpu: 2{self.jobs_suffix()}"
        )
        print(RULE, flush=True)

    def _config(self, conf: str) -> None:
        """config(8), stage 1: every include must open (usr.sbin/config/lang.l)."""
        missing = makeopts.missing_include(self.confdir(), self.confdir() / conf)
        if missing is not None:
            where, line = missing
            raise self.stopped(f"config: {where}:{line}: cannot open included file")

    def buildkernel(self) -> None:
        confs = self.kernconfs()
        for conf in confs:
            if not (self.confdir() / conf).is_file():
                raise self.fatal(1835, f"Missing KERNCONF {self.confdir()}/{conf}")
        self.host.count("buildkernel")
        info = kernel.source_info(self.srctop)
        per = self.timings.build_seconds / 2 / max(len(confs), 1)
        stages = list(_KERNEL_STAGES)
        if self.mk("CLEAN"):
            stages.insert(0, "stage 2.1: cleaning up the object tree")
        print(flush=True)
        for conf in confs:
            self.banner(f"Kernel build for {conf} started on {kernel.now()}")
            print(f"===> {conf}", flush=True)
            print(_banner("stage 1: configuring the kernel"), flush=True)
            self._config(conf)
            fail_at = 2 if self.host.fault("build-fails") is not None else None
            lines = [_banner(stage) for stage in stages]
            if progress(self.host, per, lines, fail_at=fail_at) != len(lines):
                raise self.failed(
                    f"sys/{conf}",
                    f"--- kernel.full ---\nld: error: undefined symbol: sim_{conf.lower()}_init",
                )
            ident = _ident(self.confdir() / conf) or conf
            objdir = self.objtop / "sys" / conf
            objdir.mkdir(parents=True, exist_ok=True)
            # newvers.sh: #N counts the builds in this objdir (its "version" file)
            serial_file = objdir / "version"
            try:
                serial = int(serial_file.read_text().strip() or "0")
            except (OSError, ValueError):
                serial = 0
            serial_file.write_text(f"{serial + 1}\n")
            kern = info | {
                "ident": ident,
                "built": kernel.now(),
                "builder": f"root@{self.host.name}",
                "objdir": str(objdir),
                "serial": str(serial),
                "reproducible": "yes" if self.mk("REPRODUCIBLE_BUILD") else "no",
            }
            embedded = kernconf.conftxt(self.confdir(), conf)  # options INCLUDE_CONFIG_FILE
            if embedded is not None:
                kern["conftxt"] = kernconf.encode(embedded)
            (objdir / "kernel").write_text(kernel.render(kern, "FreeBSD kernel"), encoding="utf-8")
            self.banner(f"Kernel build for {conf} completed on {kernel.now()}")
            print(flush=True)
        seconds = max(int(self.timings.build_seconds / 2), 1)
        # BUILDKERNELS starts empty and grows with +=, hence the two spaces
        print(
            f">>> Kernel(s)  {' '.join(confs)} built in {seconds} seconds, ncpu: 2"
            f"{self.jobs_suffix()}"
        )
        print(RULE, flush=True)

    def kernel(self) -> None:
        self.buildkernel()
        self.installkernel()

    def require_destdir(self) -> None:
        """Makefile.inc1's __installcheck_DESTDIR: DB_FROM_SRC needs a DESTDIR."""
        if makeopts.defined("DB_FROM_SRC", self.vars) and not self.destdir:
            raise self.stopped("ERROR: Please set DESTDIR!")

    def installkernel(self) -> None:
        # Makefile.inc1: the first KERNCONF whose config file exists is installed.
        self.require_destdir()
        confs = self.kernconfs()
        conf = next((c for c in confs if (self.confdir() / c).is_file()), "")
        if not conf:
            raise self.stopped(f'ERROR: No kernel "{" ".join(confs)}" to install.')
        built = self.objtop / "sys" / conf / "kernel"
        if not built.is_file():
            raise self.failed(f"sys/{conf}", f"cd: {built.parent}: No such file or directory", 2)
        self.host.count("installkernel")
        self.banner(f"Installing kernel {conf} on {kernel.now()}")
        progress(
            self.host,
            self.timings.install_seconds / 2,
            [
                "install -p -m 555 -o root -g wheel kernel /boot/kernel/",
                "===> linux64 (install)",
                "===> zfs (install)",
            ],
        )
        kodir = self.dest("/boot/kernel")
        bootfile = str(self.host.state().get("bootfile") or "/boot/kernel/kernel")
        running_dir = Path(os.path.dirname(bootfile))
        if kodir.exists():
            if _same_dir(running_dir, kodir):
                old = kodir.with_name("kernel.old")
                shutil.rmtree(old, ignore_errors=True)
                kodir.rename(old)
                with self.host.update() as st:
                    st["bootfile"] = f"{self.destdir.rstrip('/')}/boot/kernel.old/kernel"
            else:
                shutil.rmtree(kodir)
        kodir.mkdir(parents=True)
        shutil.copy2(built, kodir / "kernel")
        self.banner(f"Installing kernel {conf} completed on {kernel.now()}")

    def installworld(self) -> None:
        metadata = self.objtop / "toolchain-metadata.mk"
        if not metadata.is_file():
            raise self.fatal(
                1213, "A build is required first.  You may have the wrong MAKEOBJDIRPREFIX set."
            )
        world = kernel.read(self.objtop / "world") or {}
        print(f"{RULE}\n>>> Install check world\n{RULE}", flush=True)
        self.require_destdir()
        if not makeopts.defined("DB_FROM_SRC", self.vars):
            missing = makeopts.missing_account(self.srctop / "etc", Path("/etc"))
            if missing is not None:
                raise self.stopped(f"ERROR: Required {missing} is missing, see /usr/src/UPDATING.")
        self.host.count("installworld")
        self.banner(f"Installing everything started on {kernel.now()}")
        lines = [
            f"===> {d} (install)"
            for d in (
                "lib/libc",
                "lib/libz",
                "bin/sh",
                "sbin/bectl",
                "usr.bin/uname",
                "usr.sbin/etcupdate",
            )
        ]
        fail_at = 3 if self.host.fault("install-fails") is not None else None
        if progress(self.host, self.timings.install_seconds, lines, fail_at=fail_at) != len(lines):
            raise self.failed("lib/libc", "install: /lib/libc.so.7: Input/output error", 71)
        target = self.dest("/" + kernel.WORLD_FILE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(kernel.render(world, "FreeBSD world"), encoding="utf-8")
        if world.get("loader_built"):  # stand/ installs /boot/loader.efi, never the ESP's copy
            efi = loader.image(world["loader_built"], world.get("loader_builder", "root@localhost"))
            self.dest("/" + loader.WORLD_LOADER).write_bytes(efi)
        if self.destdir:
            self.broken_world()
        self.banner(f"Installing everything completed on {kernel.now()}")

    def broken_world(self) -> None:
        """The faults of a world installed into a DESTDIR (a new boot environment)."""
        if self.host.fault("sshd-config-broken") is not None:
            config = self.dest("/etc/ssh/sshd_config")
            text = config.read_text(encoding="utf-8") if config.is_file() else ""
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(text + "PermitRootLogin maybe-not\n", encoding="utf-8")
        if self.host.fault("net-broken-after-boot") is not None:
            flag = self.dest("/usr/share/freebsd-sim/network-broken")
            flag.parent.mkdir(parents=True, exist_ok=True)
            flag.write_text("the net-broken-after-boot fault: no sshd on boot\n", encoding="utf-8")

    def delete_old(self, libs: bool) -> None:
        self.host.count("delete-old-libs" if libs else "delete-old")
        if (
            self.vars.get("BATCH_DELETE_OLD_FILES", os.environ.get("BATCH_DELETE_OLD_FILES"))
            is None
            and not sys.stdin.isatty()
        ):
            print(">>> Removing old files (only deletes safe to delete libs)")
        what = "libraries" if libs else "files"
        print(
            f">>> Removing old {what} (only deletes safe to delete libs)"
            if not libs
            else ">>> Removing old libraries"
        )
        print(f">>> Old {what} removed")
        if not libs:
            print(">>> Removing old directories\n>>> Old directories removed")
            print("To remove old libraries run 'make delete-old-libs'.")


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def _ident(conf: Path) -> str | None:
    m = re.search(r"^\s*ident\s+(\S+)", conf.read_text(encoding="utf-8"), re.M)
    return m.group(1) if m else None


def _make_conf_var(name: str) -> str | None:
    return makeopts.conf_var(makeopts.make_conf_path(), name)


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, rest = getopt.gnu_getopt(argv, "C:j:sD:kn")
    except getopt.GetoptError as exc:
        print(f"make: {exc.msg}", file=sys.stderr)
        return 2
    directory, jobs = Path.cwd(), ""
    variables: dict[str, str] = {}
    for opt, val in opts:
        if opt == "-C":
            directory = Path(val)
        elif opt == "-j":
            jobs = val
        elif opt == "-D":
            variables[val] = "1"
    for assignment in (a for a in rest if "=" in a):
        name, _, value = assignment.partition("=")
        variables[name] = value
    targets = [a for a in rest if "=" not in a] or ["all"]
    srctop = directory.resolve()
    if not (srctop / "Makefile.inc1").is_file():
        from reconciler.sim.commands import portsmake  # late: src builds never need it

        if portsmake.is_port(srctop):
            return portsmake.run(host, srctop, variables, targets)
        print(
            f"make: don't know how to make {targets[0]}. Stop\n\nmake: stopped in {srctop}",
            file=sys.stderr,
        )
        return 2
    if "MAKEOBJDIRPREFIX" in variables or _make_conf_var("MAKEOBJDIRPREFIX") is not None:
        print(
            f'make: "{srctop}/share/mk/src.sys.obj.mk" line 46: MAKEOBJDIRPREFIX can only be '
            "set in environment or src-env.conf(5), not as a global (in make.conf(5)) or "
            f"command-line variable.\nmake: Fatal errors encountered -- cannot continue\n"
            f"make: stopped in {srctop}",
            file=sys.stderr,
        )
        return 1
    make = Make(host, srctop, variables, jobs)
    actions: dict[str, Callable[[], None]] = {
        "buildworld": make.buildworld,
        "buildkernel": make.buildkernel,
        "installkernel": make.installkernel,
        "installworld": make.installworld,
        "delete-old": lambda: make.delete_old(False),
        "delete-old-libs": lambda: make.delete_old(True),
        "kernel": make.kernel,
    }
    for target in targets:
        if target not in actions:
            print(
                f"make: don't know how to make {target}. Stop\n\nmake: stopped in {srctop}",
                file=sys.stderr,
            )
            return 2
    try:
        for target in targets:
            actions[target]()
    except MakeError as exc:
        sys.stdout.flush()
        print(exc, file=sys.stderr, flush=True)
        return 2
    return 0
