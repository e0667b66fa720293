"""Shared steps of the simulated-ports tests: a built world, the reconciler's poudriere, a bulk.

Plain shell over real SSH (``ssh_ok``), the way an administrator (or the
reconciler's scripts) would run them on the build host.
"""

from __future__ import annotations

from reconciler.sim import portstree, upstream
from reconciler.sim.fleet import SimFleet
from tests.conftest import ssh_ok

ETC = "/usr/obj/poudriere/etc"
POUDRIERE = f"poudriere -e {ETC}"
DATA = "/usr/obj/poudriere/data"
CONF = (
    "NO_ZFS=yes\nBASEFS=/usr/obj/poudriere\nPOUDRIERE_DATA=${BASEFS}/data\n"
    "DISTFILES_CACHE=/usr/obj/poudriere/distfiles\nCOMMIT_PACKAGES_ON_FAILURE=no\n"
)


def checkout_ports(fleet: SimFleet, host: str, index: int) -> str:
    rev = portstree.COMMITS[index]
    ssh_ok(
        fleet,
        host,
        f"git -C /usr/ports fetch -q origin main && git -C /usr/ports checkout -q --detach {rev}",
    )
    return rev


def build_world(fleet: SimFleet, host: str, obj: str) -> None:
    """/usr/src at the newest src commit, buildworld into MAKEOBJDIRPREFIX=obj (once)."""
    if fleet.read_file(host, f"{obj}/usr/src/amd64.amd64/toolchain-metadata.mk") is not None:
        return
    ssh_ok(
        fleet,
        host,
        "git -C /usr/src fetch -q origin stable/14 && "
        f"git -C /usr/src checkout -q --detach {upstream.COMMITS[-1]} && "
        f"env MAKEOBJDIRPREFIX={obj} make -C /usr/src -j 2 buildworld",
    )


def setup_poudriere(fleet: SimFleet, host: str, obj: str, jail: str) -> None:
    """The reconciler's poudriere.conf, a jail of the world in ``obj``, the shared tree (once)."""
    build_world(fleet, host, obj)
    ssh_ok(
        fleet, host, f"mkdir -p {ETC}/poudriere.d && cat > {ETC}/poudriere.conf <<'EOF'\n{CONF}EOF"
    )
    if jail not in ssh_ok(fleet, host, f"{POUDRIERE} jail -l -n -q").split():
        ssh_ok(
            fleet, host, f"env MAKEOBJDIRPREFIX={obj} {POUDRIERE} jail -c -j {jail} -m src=/usr/src"
        )
    if "reconciler" not in ssh_ok(fleet, host, f"{POUDRIERE} ports -l -n").split():
        ssh_ok(fleet, host, f"{POUDRIERE} ports -c -p reconciler -m null -M /usr/ports")


def bulk(fleet: SimFleet, host: str, jail: str, setname: str, origins: list[str]) -> str:
    """``poudriere bulk -f LIST``; the repository path (fails the test unless it exits 0)."""
    listing = "".join(f"{o}\n" for o in origins)
    ssh_ok(fleet, host, f"cat > /tmp/{setname}.list <<'EOF'\n# origins\n{listing}EOF")
    ssh_ok(
        fleet,
        host,
        f"{POUDRIERE} bulk -j {jail} -p reconciler -z {setname} -f /tmp/{setname}.list",
        timeout=120,
    )
    return f"{DATA}/packages/{jail}-reconciler-{setname}"
