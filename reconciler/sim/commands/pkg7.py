"""pkg(7), the bootstrapper at /usr/sbin/pkg: usr.sbin/pkg/pkg.c in freebsd-src.

When ``${LOCALBASE:-/usr/local}/sbin/pkg`` is executable it is exec'd with
the same arguments, so ``pkg -c MNT ...`` runs the *running system's* pkg.
Otherwise: ``pkg -N`` says "pkg is not installed" (exit 1, never
bootstraps); ``pkg add [-f] FILE`` bootstraps from a local package file;
``pkg bootstrap [-f] [-y]`` and any other command bootstrap from the first
enabled repository's ``Latest/pkg.pkg`` (newer pkg(7); older ones fetched
pkg.txz), but only with ASSUME_ALWAYS_YES (or ``-y``) when stdin is not a
tty: "Please set ASSUME_ALWAYS_YES=yes environment variable to be able to
bootstrap in non-interactive (stdin not being a tty)".

Before installing the package it bootstraps from, pkg(7) checks its
signature as the configuration says (``bootstrap_pkg_local`` and
``bootstrap_pkg`` in usr.sbin/pkg/pkg.c; ``config_init`` in config.c): the
environment first (SIGNATURE_TYPE, PUBKEY, REPOS_DIR as a comma-separated
list), then each repository block of each ``*.conf`` in REPOS_DIR
(``/etc/pkg``, then ``${LOCALBASE}/etc/pkg/repos``), where every *enabled*
block replaces the settings of the ones before it, unset keys included.
``fingerprints`` wants ``FILE.sig``, ``pubkey`` wants ``FILE.pubkeysig`` (an
RSA signature of the file's SHA-256 hex string, as poudriere's sign_pkg
makes it), and either missing is "Signature for pkg not available.". So with
the stock FreeBSD.conf (fingerprints) a package file of one's own does not
bootstrap unless another enabled repository's settings come after it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from reconciler.sim import pkgrepos, pkgsign
from reconciler.sim.commands.host import Host

_NON_INTERACTIVE = (
    "The package management tool is not yet installed on your system.\n"
    "Please set ASSUME_ALWAYS_YES=yes environment variable to be able to bootstrap "
    "in non-interactive (stdin not being a tty)\n"
)


def _install(host: Host, package: Path) -> int:
    from reconciler.sim.commands import pkg as pkg8  # late: pkg(8) is the bigger module

    if not _signature_ok(package):
        return 1
    return pkg8.run(host, "pkg", ["add", str(package)])


def _bootstrap_settings() -> tuple[str | None, str | None]:
    """SIGNATURE_TYPE and PUBKEY as pkg(7)'s config_init leaves them."""
    env_type, env_key = os.environ.get("SIGNATURE_TYPE"), os.environ.get("PUBKEY")
    localbase = os.environ.get("LOCALBASE", "/usr/local")
    dirs = os.environ.get("REPOS_DIR")
    search = dirs.split(",") if dirs else ["/etc/pkg", f"{localbase}/etc/pkg/repos"]
    kind: str | None = None
    key: str | None = None
    for directory in search:
        folder = Path(directory)
        if not folder.is_dir():
            break  # load_repositories fails on a missing directory: config_init stops there
        for conf in sorted(folder.glob("*.conf")):
            text = conf.read_text(encoding="utf-8", errors="replace")
            for keys in pkgrepos.parse(text).values():
                if "enabled" in keys and not pkgrepos.truthy(keys["enabled"]):
                    continue
                kind, key = keys.get("signature_type"), keys.get("pubkey")
    return (env_type if env_type is not None else kind), (env_key if env_key is not None else key)


def _signature_ok(package: Path) -> bool:
    """pkg(7)'s check of the package it bootstraps from; False after saying why."""
    kind, key = _bootstrap_settings()
    if kind is None or kind.upper() == "NONE":
        return True
    if kind.upper() == "FINGERPRINTS":
        if not Path(f"{package}.sig").is_file():
            print("Signature for pkg not available.", file=sys.stderr)
            return False
        # Fingerprint signatures (FreeBSD's own keys) are not simulated.
        print("pkg: simulated pkg(7) cannot check fingerprint signatures", file=sys.stderr)
        return False
    if kind.upper() == "PUBKEY":
        signature = Path(f"{package}.pubkeysig")
        if not signature.is_file():
            print("Signature for pkg not available.", file=sys.stderr)
            return False
        if not key:
            print("pkg: No CONFIG_PUBKEY defined", file=sys.stderr)
            return False
        print(f"Verifying signature with public key {key}... ", end="", flush=True)
        if not pkgsign.verifies(Path(key), signature.read_bytes(), package.read_bytes()):
            print("Signature is not valid", file=sys.stderr)
            return False
        print("done")
        return True
    print(f"pkg: Signature type {kind} is not supported for bootstrapping.", file=sys.stderr)
    return False


def run(host: Host, prog: str, argv: list[str]) -> int:
    real = Path(os.environ.get("LOCALBASE", "/usr/local")) / "sbin" / "pkg"
    bootstrap_only = argv[:1] == ["bootstrap"]
    force = bootstrap_only and "-f" in argv[1:]
    if not force and os.access(real, os.X_OK):
        if bootstrap_only:
            print(f"pkg already bootstrapped at {real}")
            return 0
        sys.stdout.flush()
        os.execv(str(real), [str(real), *argv])  # noqa: S606 - exec, as pkg(7) does
    if argv[:1] == ["-N"]:
        print("pkg: pkg is not installed", file=sys.stderr)
        return 1
    if argv[:1] == ["add"]:
        rest = [a for a in argv[1:] if a != "-f"]
        if not rest:
            print("Path to pkg.pkg required", file=sys.stderr)
            return 1
        if not os.access(rest[0], os.R_OK):
            print(f"No such file: {rest[0]}", file=sys.stderr)
            return 1
        return _install(host, Path(rest[0]))
    yes = os.environ.get("ASSUME_ALWAYS_YES", "").lower() in ("yes", "true") or (
        bootstrap_only and "-y" in argv[1:]
    )
    if not yes:
        if not sys.stdin.isatty():
            sys.stderr.write(_NON_INTERACTIVE)
            return 1
        print("Do you want to fetch and install it now? [y/N]: ", end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 1
    repo = next((r for r in pkgrepos.load(Path("/")) if r.enabled and r.local), None)
    if repo is None or repo.local is None:
        print("pkg: No PACKAGESITE defined", file=sys.stderr)
        return 1
    print(f"Bootstrapping pkg from {repo.url}, please wait...", flush=True)
    package = Path(repo.local) / "Latest" / "pkg.pkg"
    if not package.is_file():
        print(
            f"pkg: Error fetching {repo.url}/Latest/pkg.pkg: File unavailable "
            "(e.g., file not found, no access)",
            file=sys.stderr,
        )
        print("A pre-built version of pkg could not be found for your system.", file=sys.stderr)
        return 1
    status = _install(host, package)
    if status != 0 or bootstrap_only:
        return status
    os.execv(str(real), [str(real), *argv])  # noqa: S606 - exec, as pkg(7) does
    return 1
