"""Mounts.filesystem_of: which file system holds a path, from recorded ``mount -p`` output.

mountd keys exports by file system (exports(5): a host once per local file
system), so render.exports needs this for each path a server exports.
"""

from __future__ import annotations

from reconciler.facts.mounts import Mounts, parse_fstab

ZFS_BUILDER = (
    "zroot/ROOT/default\t/\t\t\tzfs\trw,nfsv4acls \t0 0\n"
    "devfs\t\t\t/dev\t\t\tdevfs\trw\t\t0 0\n"
    "zroot/usr/src\t\t/usr/src\t\tzfs\trw,nfsv4acls \t0 0\n"
    "zroot/usr/obj\t\t/usr/obj\t\tzfs\trw,nfsv4acls \t0 0\n"
)
UFS_ONE_DISK = "/dev/ada0p2\t\t/\t\t\tufs\trw\t\t1 1\ndevfs\t\t\t/dev\t\t\tdevfs\trw\t\t0 0\n"
PATHS = ("/usr/src", "/usr/obj", "/usr/ports")


def _mounts(text: str) -> Mounts:
    return Mounts(mounted=parse_fstab(text), fstab=())


def test_zfs_datasets_and_the_boot_environment() -> None:
    assert _mounts(ZFS_BUILDER).filesystems(PATHS) == {
        "/usr/src": "zroot/usr/src",
        "/usr/obj": "zroot/usr/obj",
        "/usr/ports": "zroot/ROOT/default",
    }


def test_one_ufs_disk_holds_everything() -> None:
    assert set(_mounts(UFS_ONE_DISK).filesystems(PATHS).values()) == {"/dev/ada0p2"}


def test_the_last_mount_on_a_point_wins_and_nothing_is_guessed() -> None:
    covered = ZFS_BUILDER + "builder:/usr/obj\t/usr/obj\t\tnfs\tro\t\t0 0\n"
    assert _mounts(covered).filesystem_of("/usr/obj/x") == "builder:/usr/obj"
    assert _mounts(ZFS_BUILDER).filesystem_of("/usr/srcx") == "zroot/ROOT/default"
    assert Mounts(mounted=(), fstab=(), mounted_known=False).filesystems(PATHS) == {}
