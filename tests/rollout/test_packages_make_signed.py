"""The handbook's plain method, signed, end to end (issue 11, docs/packages.md).

lab lists the packages of docs/packages.md with ``method: make`` and a
signing key: builder (build host, production) builds them with ``make
package-recursive`` and ``pkg repo REPO KEY``; tester (the test host) and
builder install them into their new BEs from the repository their
reconciler.conf names, checking its signature with the pubkey the
administrator put on every host. One lab, in order:

1. the signed repository is built by make (no poudriere) where reconciler.conf
   points, and both hosts install from it;
2. tester's pubkey is replaced by another key; the next package set (a ports
   revision bump) is refused by pkg on tester ("Invalid signature"): its new
   BE is destroyed, it does not reboot, production is untouched and the
   ledger says why.
"""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.sim import pkgsign, portstree
from reconciler.sim.fleet import SimFleet
from tests.packages_overlay import add_packages
from tests.rollout.conftest import Lab, _lab
from tests.rollout.test_packages_rollout import LAB, be_of, ids, packages

KEY = "/usr/local/etc/ssl/keys/pkg.key"
PUBKEY = "/usr/local/etc/ssl/pkg.pub"


def _make_signed(repo: Path) -> None:
    shutil.rmtree(repo / "buildsets" / "db")  # one build set: lab
    add_packages(repo, db=False)
    with (repo / LAB).open("a", encoding="utf-8") as handle:
        handle.write(f"  method: make\n  signing: {{key: {KEY}, pubkey: {PUBKEY}}}\n")


@pytest.fixture
def make_lab(sim_fleet_factory: Callable[..., SimFleet], tmp_path: Path) -> Lab:
    return _lab(sim_fleet_factory, tmp_path, drop=("web1", "web2"), before=_make_signed)


def put(fleet: SimFleet, host: str, path: str, text: str) -> None:
    out = fleet.ssh(host, f"mkdir -p {path.rsplit('/', 1)[0]} && cat > {path} <<'EOF'\n{text}EOF")
    assert out.returncode == 0, out.stderr


def test_make_method_signed_repository_installs_and_a_wrong_key_is_refused(
    make_lab: Lab, tmp_path: Path
) -> None:
    lab, fleet = make_lab, make_lab.fleet
    keys = tmp_path / "keys"
    pkgsign.new_key(keys / "pkg.key", keys / "pkg.pub")
    pkgsign.new_key(keys / "other.key", keys / "other.pub")
    # What the administrator does once (docs/packages.md): the key on the build host,
    # the public half on every host of the set.
    put(fleet, "builder", KEY, (keys / "pkg.key").read_text())
    for host in ("builder", "tester"):
        put(fleet, host, PUBKEY, (keys / "pkg.pub").read_text())

    # 1. built by make, signed, installed from where reconciler.conf points
    first = lab.apply()
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert fleet.count("builder", "poudriere-bulk") == 0
    assert fleet.count("builder", "port-build") > 0
    _, pkgset = ids(lab)
    repo = f"/usr/obj/packages/{pkgset}/repo"
    log = fleet.read_file("builder", f"/var/log/reconciler/packages-{pkgset}.log") or ""
    assert ">>> reconciler: make package-recursive in /usr/ports/www/nginx" in log
    assert f">>> reconciler: pkg repo {repo} (signed with {KEY})" in log
    assert "===>   nginx-1.26.2,3 depends on shared library: devel/pcre2 - not found" in log
    # Mk/bsd.port.mk's layout: All/ holds the packages, Latest/ pkg's link; pkg repo's catalogue
    # beside them, each archive signed (pkg-repo(8)).
    listing = fleet.ssh("builder", f"ls {repo} {repo}/All; readlink {repo}/Latest/pkg.pkg").stdout
    for name in ("All", "Latest", "meta.conf", "packagesite.pkg", "data.pkg", "nginx-1.26.2,3.pkg"):
        assert name in listing.split(), listing
    assert listing.splitlines()[-1].startswith("../All/pkg-"), listing
    for archive in ("packagesite.pkg", "data.pkg"):
        with tarfile.open(fleet.host_path("builder", f"{repo}/{archive}")) as tar:
            assert tar.getnames()[0] == "signature", tar.getnames()
    first_be = be_of(lab)
    for host in ("tester", "builder"):
        assert lab.booted_be(host) == first_be
        have = packages(lab, host)
        assert have["www/nginx"] == "1.26.2,3" and have["py311-six"] == "1.16.0", have
        conf = fleet.read_file(host, "/usr/local/etc/pkg/repos/reconciler.conf") or ""
        assert f'url: "file://{repo}"' in conf
        assert 'signature_type: "pubkey"' in conf and f'pubkey: "{PUBKEY}"' in conf
        origins = fleet.ssh(host, "pkg query '%o %R' www/nginx").stdout
        assert origins == "www/nginx reconciler\n", origins  # from the signed repository

    # 2. tester trusts another key: the next package set is refused there, cleanly
    put(fleet, "tester", PUBKEY, (keys / "other.pub").read_text())
    before = len(lab.entries())
    lab.edit(
        "fleet.yaml",
        rf"revision: {portstree.COMMITS[1]}",
        f"revision: {portstree.COMMITS[2]}",
        "ports: next revision",
    )
    refused = lab.apply()
    assert refused.returncode != 0
    assert "test stage failed, production untouched" in refused.stdout, refused.stdout[-3000:]
    assert lab.booted_be("tester") == first_be and lab.booted_be("builder") == first_be
    assert be_of(lab) not in fleet.ssh("tester", "bectl list -H").stdout  # the new BE is gone
    assert packages(lab, "tester")["py311-six"] == "1.16.0"
    failed = [e for e in lab.entries()[before:] if e.host == "tester" and e.outcome == "failure"]
    assert failed, [e.subject for e in lab.entries()[before:]]
    why = failed[-1].subject + "\n" + failed[-1].body
    assert f"pkg: {PUBKEY}: signature verification failure" in why, why
    assert "Invalid signature, removing repository." in why, why
    assert not any(
        e.host == "builder" and e.subject.startswith("builder: installing")
        for e in lab.entries()[before:]
    )


def _poudriere_signed(repo: Path) -> None:
    shutil.rmtree(repo / "buildsets" / "db")
    add_packages(repo, db=False)
    with (repo / LAB).open("a", encoding="utf-8") as handle:
        handle.write(f"  signing: {{key: {KEY}, pubkey: {PUBKEY}}}\n")


@pytest.fixture
def poudriere_lab(sim_fleet_factory: Callable[..., SimFleet], tmp_path: Path) -> Lab:
    return _lab(sim_fleet_factory, tmp_path, drop=("web1", "web2"), before=_poudriere_signed)


def test_poudriere_signs_with_its_key_and_a_missing_key_builds_nothing(
    poudriere_lab: Lab, tmp_path: Path
) -> None:
    lab, fleet = poudriere_lab, poudriere_lab.fleet
    keys = tmp_path / "keys"
    pkgsign.new_key(keys / "pkg.key", keys / "pkg.pub")
    for host in ("builder", "tester"):
        put(fleet, host, PUBKEY, (keys / "pkg.pub").read_text())
    conf = "/usr/obj/poudriere/etc/poudriere.conf"

    # No key on the build host yet: poudriere stops before building (common.sh), no host touched.
    missing = lab.apply()
    assert missing.returncode != 0
    assert "PKG_REPO_SIGNING_KEY defined but the file is missing." in missing.stdout, (
        missing.stdout[-3000:]
    )
    assert f"PKG_REPO_SIGNING_KEY={KEY}" in (fleet.read_file("builder", conf) or "")
    assert fleet.count("builder", "poudriere-bulk") == 0
    assert not any(e.subject.startswith("tester: installing") for e in lab.entries())

    # With the key: the committed repository is signed and both hosts install from it.
    put(fleet, "builder", KEY, (keys / "pkg.key").read_text())
    signed = lab.apply()
    assert signed.returncode == 0, signed.stdout[-4000:] + signed.stderr[-2000:]
    _, pkgset = ids(lab)
    repo = fleet.ssh("builder", f"readlink /usr/obj/packages/{pkgset}/repo").stdout.strip()
    with tarfile.open(fleet.host_path("builder", f"{repo}/packagesite.pkg")) as tar:
        assert tar.getnames()[0] == "signature", tar.getnames()
    log = fleet.read_file("builder", f"/var/log/reconciler/packages-{pkgset}.log") or ""
    assert f"Signing repository with key: {KEY}" in log
    for host in ("tester", "builder"):
        assert lab.booted_be(host) == be_of(lab)
        assert packages(lab, host)["www/nginx"] == "1.26.2,3"
