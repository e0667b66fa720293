"""Rendering: the exact files and lines each host must have."""

from __future__ import annotations

from dataclasses import replace

from reconciler.config import render
from reconciler.config.model import (
    BuildSet,
    Config,
    Host,
    KernelConfig,
    PortsSettings,
    PortsTree,
    RolloutPolicy,
    Source,
)
from reconciler.config.render import MANAGED_HEADER_PREFIX

REV = "5a3e9b1c2d4f" + "0" * 28
COMMIT = "3f2a9c1e0b7d" + "1" * 28


def fleet(*, commit: str | None = COMMIT, ports: bool = True) -> Config:
    web = BuildSet(
        name="web",
        arch="amd64",
        build_host="wbuild",
        jobs=8,
        hosts=(
            Host("wbuild", "web", "192.0.2.10", "BUILDER"),
            Host("wtest", "web", "192.0.2.11", "GENERIC", stage="test"),
            Host("web1", "web", "192.0.2.21", "WEB"),
            Host("web2", "web", "2001:db8::22", "WEB", port=2222, user="admin"),
        ),
        make_conf="CPUTYPE?=haswell\nDEFAULT_VERSIONS+=ssl=base",  # no final newline on purpose
        src_conf="WITHOUT_LIB32=yes\n",
        rollout=RolloutPolicy(),
        ports=PortsSettings(
            distdir="/usr/ports/distfiles",
            wrkdirprefix="/var/ports",
            packages="/usr/ports/packages",
        )
        if ports
        else None,
    )
    db = BuildSet(
        name="db",
        arch="amd64",
        build_host="db1",
        jobs=4,
        hosts=(
            Host("db1", "db", "192.0.2.31", "DB", stage="test"),
            Host("db2", "db", "192.0.2.32", "DB"),
        ),
        make_conf="",
        src_conf="",
        rollout=RolloutPolicy(install="in-place"),
        ports=PortsSettings(distdir="/var/cache/distfiles") if ports else None,
    )
    return Config(
        source=Source("https://git.freebsd.org/src.git", "stable/14", REV),
        src_host="wbuild",
        buildsets=(web, db),
        kernels=(KernelConfig("BUILDER", "include GENERIC\nident BUILDER\n"),),
        known_hosts="",
        ports=PortsTree("/usr/ports") if ports else None,
        commit=commit,
        origin="git@example.org:fleet.git",
    )


HEADER = (
    "# Managed by reconciler: git@example.org:fleet.git; edits are overwritten\n"
)


def test_make_conf_build_host_lists_every_kernel_its_own_first() -> None:
    assert render.make_conf(fleet(), "web", "wbuild") == (
        HEADER + "# Source: buildsets/web/make.conf\n"
        "CPUTYPE?=haswell\n"
        "DEFAULT_VERSIONS+=ssl=base\n"
        "KERNCONF=BUILDER GENERIC WEB\n"
        "DISTDIR=/usr/ports/distfiles\n"
        "WRKDIRPREFIX=/var/ports\n"
        "PACKAGES=/usr/ports/packages\n"
    )


def test_make_conf_other_host_has_its_own_kernel_and_no_packages() -> None:
    config = fleet()
    assert render.make_conf(config, config.buildset("web"), config.host("web1")) == (
        HEADER + "# Source: buildsets/web/make.conf\n"
        "CPUTYPE?=haswell\n"
        "DEFAULT_VERSIONS+=ssl=base\n"
        "KERNCONF=WEB\n"
        "DISTDIR=/usr/ports/distfiles\n"
        "WRKDIRPREFIX=/var/ports\n"
    )


def test_make_conf_without_ports_and_empty_set_make_conf() -> None:
    config = fleet(commit=None, ports=False)
    assert render.make_conf(config, "db", "db2") == (
        "# Managed by reconciler: git@example.org:fleet.git; edits are overwritten\n"
        "# Source: buildsets/db/make.conf\n"
        "KERNCONF=DB\n"
    )
    assert render.make_conf(config, "db", "db1").endswith("KERNCONF=DB\n")


def test_src_conf_is_header_and_verbatim() -> None:
    assert render.src_conf(fleet(), "web") == (
        HEADER + "# Source: buildsets/web/src.conf\nWITHOUT_LIB32=yes\n"
    )
    assert render.src_conf(fleet(), "db") == HEADER + "# Source: buildsets/db/src.conf\n"


def test_every_rendered_file_starts_with_the_managed_header() -> None:
    config = fleet()
    for bs in config.buildsets:
        assert render.src_conf(config, bs).startswith(MANAGED_HEADER_PREFIX + ": ")
        for host in bs.hosts:
            assert render.make_conf(config, bs, host).startswith(MANAGED_HEADER_PREFIX + ": ")


def test_header_cannot_be_broken_by_the_origin() -> None:
    config = replace(fleet(), origin="/srv/a\nKERNCONF=EVIL")
    first, second, *_ = render.src_conf(config, "db").splitlines()
    assert (
        first
        == "# Managed by reconciler: /srv/a?KERNCONF=EVIL; edits are overwritten"
    )
    assert second == "# Source: buildsets/db/src.conf"


def test_exports() -> None:
    assert render.exports(fleet()) == {
        "wbuild": (
            "/usr/src -ro -maproot=root 192.0.2.11 192.0.2.21 2001:db8::22 192.0.2.31 192.0.2.32\n"
            "/usr/ports -ro -maproot=root 192.0.2.31 192.0.2.32\n"
            "/usr/ports -maproot=root 192.0.2.11 192.0.2.21 2001:db8::22\n"
            "/usr/obj -ro -maproot=root 192.0.2.11 192.0.2.21 2001:db8::22\n"
        ),
        "db1": "/usr/obj -ro -maproot=root 192.0.2.32\n",
    }


def test_exports_without_ports_tree() -> None:
    assert render.exports(fleet(ports=False))["wbuild"] == (
        "/usr/src -ro -maproot=root 192.0.2.11 192.0.2.21 2001:db8::22 192.0.2.31 192.0.2.32\n"
        "/usr/obj -ro -maproot=root 192.0.2.11 192.0.2.21 2001:db8::22\n"
    )


def test_exports_one_line_per_client_and_file_system() -> None:
    """exports(5): a host once per file system; a single-UFS server gets merged lines."""
    ufs = {p: "/dev/ada0p2" for p in ("/usr/src", "/usr/obj", "/usr/ports")}
    assert render.exports(fleet(), {"wbuild": ufs, "db1": {"/usr/obj": "/dev/ada0p2"}}) == {
        "wbuild": (
            "/usr/src /usr/ports /usr/obj -maproot=root 192.0.2.11 192.0.2.21 2001:db8::22\n"
            "/usr/src /usr/ports -ro -maproot=root 192.0.2.31 192.0.2.32\n"
        ),
        "db1": "/usr/obj -ro -maproot=root 192.0.2.32\n",
    }
    # ZFS with /usr/obj inside the boot environment, like the ports tree: those two share.
    zfs = {
        "/usr/src": "zroot/usr/src",
        "/usr/ports": "zroot/ROOT/default",
        "/usr/obj": "zroot/ROOT/default",
    }
    assert render.exports(fleet(), {"wbuild": zfs})["wbuild"] == (
        "/usr/src -ro -maproot=root 192.0.2.11 192.0.2.21 2001:db8::22 192.0.2.31 192.0.2.32\n"
        "/usr/ports -ro -maproot=root 192.0.2.31 192.0.2.32\n"
        "/usr/ports /usr/obj -maproot=root 192.0.2.11 192.0.2.21 2001:db8::22\n"
    )


def test_fstab_lines() -> None:
    config = fleet()
    assert render.fstab(config, "wbuild") == ""  # serves itself
    assert render.fstab(config, "web1") == (
        "192.0.2.10:/usr/src /usr/src nfs ro,bg 0 0\n"
        "192.0.2.10:/usr/ports /usr/ports nfs rw,bg 0 0\n"
        "192.0.2.10:/usr/obj /usr/obj nfs ro,bg 0 0\n"
    )
    assert render.fstab(config, config.host("db1")) == (
        "192.0.2.10:/usr/src /usr/src nfs ro,bg 0 0\n"
        "192.0.2.10:/usr/ports /usr/ports nfs ro,bg 0 0\n"
    )
    assert render.fstab(config, "db2") == (
        "192.0.2.10:/usr/src /usr/src nfs ro,bg 0 0\n"
        "192.0.2.10:/usr/ports /usr/ports nfs ro,bg 0 0\n"
        "192.0.2.31:/usr/obj /usr/obj nfs ro,bg 0 0\n"
    )


def test_fstab_brackets_an_ipv6_server() -> None:
    base = fleet(ports=False)
    web = base.buildset("web")
    hosts = (replace(web.hosts[0], address="2001:db8::10"), *web.hosts[1:])
    config = replace(base, buildsets=(replace(web, hosts=hosts), base.buildset("db")))
    assert render.fstab(config, "web1") == (
        "[2001:db8::10]:/usr/src /usr/src nfs ro,bg 0 0\n"
        "[2001:db8::10]:/usr/obj /usr/obj nfs ro,bg 0 0\n"
    )
