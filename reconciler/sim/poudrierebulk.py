"""The simulated poudriere's state and its ``bulk``: bulk.sh, common.sh, include/pkg.sh.

``bulk -j JAIL [-p TREE] [-z SET] [-f LIST]... [-B NAME] [origin ...]``
(poudriere-bulk(8)): MASTERNAME is ``JAIL-TREE[-SET]``; the repository is
``${POUDRIERE_DATA}/packages/${MASTERNAME}`` and the logs
``${POUDRIERE_DATA}/logs/bulk/${MASTERNAME}/${BUILDNAME}`` with a
``latest`` link and ``.poudriere.ports.{built,failed,skipped}`` records
(badd: ``originspec pkgname ...``).

- Lists take one origin[@flavor] per line, ``#`` comments allowed; an
  origin without a Makefile: "Nonexistent origin listed: X", an unknown
  flavor "Invalid FLAVOR 'F' for X", both fatal.
- The jail's make.conf is assembled from poudriere.d/ ``make.conf``,
  ``SET-``, ``TREE-``, ``JAIL-``, ``TREE-SET-``, ``JAIL-TREE-``,
  ``JAIL-SET-``, ``JAIL-TREE-SET-make.conf`` in that order (setup_makeconf);
  the options directory is the first that exists of ``MASTERNAME-``,
  ``JAIL-SET-``, ``JAIL-TREE-``, ``TREE-SET-``, ``SET-``, ``TREE-``,
  ``JAIL-options``, ``options`` (common.sh, the ref jail's /var/db/ports).
  A port's options: OPTIONS_DEFAULT, then OPTIONS_SET/UNSET, then
  <NAME>_SET/UNSET from make.conf, then the options file's
  OPTIONS_FILE_SET/UNSET (Mk/bsd.options.mk).
- ports-mgmt/pkg is always built (every jail needs it) and
  ``Latest/pkg.pkg`` links to it, for pkg(7) bootstrap.
- Status lines: ``[01] [00:00:02] Building   origin | pkgname`` and
  ``Finished   origin | pkgname: Success`` or ``Failed: build``; dependents
  of a failure ``Skipping   ...: Dependent port ... failed``; the summary
  ``[MASTERNAME] [BUILDNAME] [status] Time: ...`` with ``Queued: N
  Inspected: N Ignored: N Built: N Failed: N Skipped: N Fetched: N
  Remaining: N`` (show_build_summary). Exit status is failed + skipped.
- ATOMIC_PACKAGE_REPOSITORY: built into ``.building`` (a hard-linked copy
  of ``.latest``), committed as ``.real_<epoch>`` by swinging ``.latest``,
  top-level names linked through ``.latest/``; with failures and
  COMMIT_PACKAGES_ON_FAILURE=no nothing is committed.
- Fault ``port-build-fails`` (value: an origin, origin@flavor or package
  name; bare: www/nginx) fails that port's build phase.
"""

from __future__ import annotations

import getopt
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from reconciler.sim import kernel, portstree
from reconciler.sim.commands.host import Host


class Poudriere:
    def __init__(self, host: Host, etc: Path, conf: dict[str, str]) -> None:
        self.host = host
        self.etc = etc
        self.conf = conf
        base = conf.get("BASEFS", "/usr/local/poudriere")
        self.data = Path(conf.get("POUDRIERE_DATA") or f"{base}/data")
        self.start = time.monotonic()

    # -- messages (common.sh msg, msg_error, err) --------------------------------
    def elapsed(self, since: float | None = None) -> str:
        seconds = int(time.monotonic() - (self.start if since is None else since))
        return time.strftime("%H:%M:%S", time.gmtime(seconds))

    def msg(self, text: str) -> None:
        print(f"[{self.elapsed()}] {text}", flush=True)

    def msg_n(self, text: str) -> None:
        print(f"[{self.elapsed()}] {text}", end="", flush=True)

    def err(self, code: int, text: str) -> int:
        sys.stdout.flush()
        print(f"[{self.elapsed()}] Error: {text}", file=sys.stderr, flush=True)
        return code

    def warn(self, text: str) -> None:
        print(f"[{self.elapsed()}] Warning: {text}", file=sys.stderr, flush=True)

    def usage(self, missing: str = "") -> int:
        if missing:
            print(f"Missing: {missing}", file=sys.stderr)
        print("poudriere jail|ports|bulk [parameters] [options]", file=sys.stderr)
        return 64

    # -- attributes (common.sh attr_set/attr_get) ---------------------------------
    def _attr(self, kind: str, name: str, key: str) -> str:
        try:
            return (self.etc / "poudriere.d" / kind / name / key).read_text().strip()
        except OSError:
            return ""

    def _set(self, kind: str, name: str, key: str, value: str) -> None:
        path = self.etc / "poudriere.d" / kind / name / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n", encoding="utf-8")

    def jget(self, name: str) -> Any:
        return lambda key: self._attr("jails", name, key)

    def pget(self, name: str) -> Any:
        return lambda key: self._attr("ports", name, key)

    def jset(self, name: str, key: str, value: str) -> None:
        self._set("jails", name, key, value)

    def pset(self, name: str, key: str, value: str) -> None:
        self._set("ports", name, key, value)

    def osversion(self, mnt: Path) -> str:
        try:
            text = (mnt / "usr/include/sys/param.h").read_text(encoding="utf-8")
        except OSError:
            return ""
        match = re.search(r"#define\s+__FreeBSD_version\s+(\d+)", text)
        return match.group(1) if match else ""

    # -- jail -c -m src=PATH (jail.sh create_jail, install_from_src, installworld) ----------
    def create_jail(
        self, name: str, src: Path, mnt: Path, method: str, version: str | None, arch: str
    ) -> int:
        objtop = Path(os.environ.get("MAKEOBJDIRPREFIX", "/usr/obj") + str(src)) / "amd64.amd64"
        self.msg_n(f"Copying {src} to {mnt}/usr/src...")
        shutil.copytree(src, mnt / "usr/src", ignore=shutil.ignore_patterns(".git", ".svn"))
        print(" done", flush=True)
        self.msg("Starting make installworld")
        if not (objtop / "toolchain-metadata.mk").is_file():
            self.warn("No completed build found.  Did you mean to pass in -b?")
            print(
                f'make[1]: "{src}/Makefile.inc1" line 1213: A build is required first.  You '
                "may have the wrong MAKEOBJDIRPREFIX set.",
                file=sys.stderr,
            )
            self.err(1, "Failed to 'make installworld'")
            print("Error while creating jail, cleaning up.", file=sys.stderr, flush=True)
            shutil.rmtree(mnt, ignore_errors=True)
            shutil.rmtree(self.etc / "poudriere.d" / "jails" / name, ignore_errors=True)
            return 1
        _, timings = self.host.fleet()
        time.sleep(timings.install_seconds * self.host.slow_factor())
        world = kernel.read(objtop / "world") or {}
        target = mnt / kernel.WORLD_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(kernel.render(world, "FreeBSD world"), encoding="utf-8")
        for rel, dest in (
            ("sys/sys/param.h", "usr/include/sys/param.h"),
            ("etc/login.conf", "etc/login.conf"),
            ("etc/master.passwd", "etc/master.passwd"),
        ):
            if (src / rel).is_file():
                (mnt / dest).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src / rel, mnt / dest)
        release = version or world.get("version") or "14.0-STABLE"
        for key, value in (
            ("version", release),
            ("timestamp", str(int(time.time()))),
            ("arch", arch),
            ("mnt", str(mnt)),
            ("method", method),
            ("pkgbase", "0"),
        ):
            self.jset(name, key, value)
        self.host.count("poudriere-jail")
        self.msg(f"Jail {name} {release} {arch} is ready to be used")
        return 0


def _list_file(path: Path) -> list[str]:
    origins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            origins.append(line)
    return origins


def _make_conf(p: Poudriere, jail: str, tree: str, setname: str) -> str:
    d = p.etc / "poudriere.d"
    names = ["make.conf"] + [f"{n}-make.conf" for n in (setname, tree, jail) if n]
    if setname:
        names.append(f"{tree}-{setname}-make.conf")
    names.append(f"{jail}-{tree}-make.conf")
    if setname:
        names += [f"{jail}-{setname}-make.conf", f"{jail}-{tree}-{setname}-make.conf"]
    text = ""
    for name in names:
        if (d / name).is_file():
            p.msg(f"Appending to make.conf: {d / name}")
            text += (d / name).read_text(encoding="utf-8") + "\n"
    return text


def _options_dir(p: Poudriere, master: str, jail: str, tree: str, setname: str) -> Path | None:
    d = p.etc / "poudriere.d"
    candidates = [master]
    if setname:
        candidates.append(f"{jail}-{setname}")
    candidates.append(f"{jail}-{tree}")
    if setname:
        candidates += [f"{tree}-{setname}", setname]
    candidates += [tree, jail]
    for name in candidates:
        if (d / f"{name}-options").is_dir():
            return d / f"{name}-options"
    return d / "options" if (d / "options").is_dir() else None


def _vars(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(\+?=)\s*(.*?)\s*$", line.split("#", 1)[0])
        if match:
            name, op, value = match.groups()
            words = value.split()
            values[name] = values.get(name, []) + words if op == "+=" else words
    return values


def port_options(info: portstree.PortInfo, make_conf: str, optdir: Path | None) -> dict[str, str]:
    """Mk/bsd.options.mk's order: defaults, global SET/UNSET, per-port SET/UNSET, the file."""
    defined = set(info.options_define)
    chosen = set(info.options_default)
    conf = _vars(make_conf)
    name = info.origin.replace("/", "_", 1)
    chosen |= defined & set(conf.get("OPTIONS_SET", []))
    chosen -= set(conf.get("OPTIONS_UNSET", []))
    chosen |= defined & set(conf.get(f"{name}_SET", []))
    chosen -= set(conf.get(f"{name}_UNSET", []))
    if optdir is not None and (optdir / name / "options").is_file():
        saved = _vars((optdir / name / "options").read_text(encoding="utf-8"))
        chosen |= defined & set(saved.get("OPTIONS_FILE_SET", []))
        chosen -= set(saved.get("OPTIONS_FILE_UNSET", []))
    return {opt: ("on" if opt in chosen else "off") for opt in sorted(defined)}


def _content(info: portstree.PortInfo, entry: str, jail: str) -> bytes:
    if info.origin == "ports-mgmt/pkg" and entry in ("sbin/pkg", "sbin/pkg-static"):
        from reconciler.sim.cmdscript import command_script  # late: only the pkg package

        return command_script("pkg8").encode()
    if entry.startswith(("bin/", "sbin/", "etc/rc.d/")):
        return (
            f"#!/bin/sh\n# {info.pkgname}, built by poudriere in jail {jail} (simulated)\n"
            f'echo "{info.name} {info.version}"\n'
        ).encode()
    return f"{info.pkgname}: {entry} (simulated)\n".encode()


def _users_script(users: tuple[str, ...]) -> str:
    # The ports framework's USERS/GROUPS pre-install script, which calls
    # pw(8) with -R ${PKG_ROOTDIR} when pkg installs into another root; the
    # simulator has no pw(8), so it edits the same files directly.
    lines = [
        'if [ -n "${PKG_ROOTDIR}" ] && [ "${PKG_ROOTDIR}" != "/" ]; then R="${PKG_ROOTDIR}"; '
        "else R=; fi"
    ]
    for user in users:
        uid = 770 if user == "postgres" else 900
        lines += [
            'echo "===> Creating groups"',
            f"if ! grep -q '^{user}:' \"$R/etc/group\" 2>/dev/null; then",
            f"  echo \"Creating group '{user}' with gid '{uid}'\"",
            f"  echo '{user}:*:{uid}:' >> \"$R/etc/group\"",
            f"else echo \"Using existing group '{user}'\"; fi",
            'echo "===> Creating users"',
            f"if ! grep -q '^{user}:' \"$R/etc/master.passwd\" 2>/dev/null; then",
            f"  echo \"Creating user '{user}' with uid '{uid}'\"",
            f"  echo '{user}:*:{uid}:{uid}::0:0:{user} daemon:/var/db/{user}:/bin/sh' "
            '>> "$R/etc/master.passwd"',
            f"else echo \"Using existing user '{user}'\"; fi",
        ]
    return "\n".join(lines) + "\n"


def _manifest(
    info: portstree.PortInfo, options: dict[str, str], abi: str, deps: dict[str, Any]
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "name": info.name,
        "origin": info.origin,
        "version": info.version,
        "comment": info.comment,
        "maintainer": info.maintainer,
        "www": info.www,
        "abi": abi,
        "arch": abi.lower().replace("amd64", "x86:64"),
        "prefix": "/usr/local",
        "licenselogic": "single",
        "licenses": ["BSD2CLAUSE"],
        "desc": info.descr,
        "deps": deps,
        "categories": [info.origin.split("/")[0]],
        "users": list(info.users),
        "groups": list(info.users),
        "options": options,
        "annotations": {"flavor": info.flavor} if info.flavor else {},
    }
    if info.users:
        manifest["scripts"] = {"pre-install": _users_script(info.users)}
    return manifest


def bulk(p: Poudriere, argv: list[str]) -> int:
    from reconciler.sim.poudrierebuild import run_bulk  # the build loop, kept apart for size

    try:
        opts, origins = getopt.gnu_getopt(argv, "ab:B:CcFf:HiIj:J:knNO:p:RrSTtvwz:")
    except getopt.GetoptError:
        print("poudriere bulk [options] [-a|-f file|cat/port ...]", file=sys.stderr)
        return 64
    jail, tree, setname, lists, buildname = "", "default", "", [], ""
    for opt, value in opts:
        if opt == "-j":
            if not (p.etc / "poudriere.d/jails" / value).is_dir():
                return p.err(1, f"No such jail: {value}")
            jail = value
        elif opt == "-p":
            if not (p.etc / "poudriere.d/ports" / value).is_dir():
                return p.err(2, f"No such ports tree {value}")
            tree = value
        elif opt == "-z":
            if not value:
                return p.err(1, "Empty set name")
            setname = value
        elif opt == "-f":
            lists.append(Path(value))
        elif opt == "-B":
            buildname = value
    if not jail:
        return p.err(1, "Don't know on which jail to run please specify -j")
    for listed in lists:
        if not listed.is_file():
            return p.err(1, f"No such list of packages: {listed}")
        origins += _list_file(listed)
    master = f"{jail}-{tree}{'-' + setname if setname else ''}"
    context = {
        "jail": jail,
        "tree": tree,
        "setname": setname,
        "master": master,
        "buildname": buildname or time.strftime("%Y-%m-%d_%Hh%Mm%Ss"),
    }
    return run_bulk(p, origins, context)
