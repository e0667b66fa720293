"""Package set id: stable over what does not change the repository, changed by all that does."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.config.pkgsetid import inputs, package_set_id, short
from tests.config.conftest import edit
from tests.packages_overlay import add_packages, packaged_example


@pytest.fixture
def repo(repo: Path) -> Path:
    """example-repo's copy with the packages of docs/packages.md (tests/packages_overlay.py)."""
    return add_packages(repo)


LAB = "buildsets/lab/buildset.yaml"
OPTIONS = "buildsets/lab/ports/options/www_nginx/options"
REFERENCE = load_config(packaged_example())


def lab_id(repo: Path) -> str:
    value = package_set_id(load_config(repo), "lab")
    assert value is not None
    return value


def test_format_short_and_sets_without_packages(repo: Path) -> None:
    value = package_set_id(REFERENCE, "lab")
    assert value is not None and re.fullmatch(r"[0-9a-f]{64}", value)
    assert short(value) == value[:12]
    assert package_set_id(REFERENCE, REFERENCE.buildset("lab")) == value
    assert value != package_set_id(REFERENCE, "db")  # db lists other packages, other world
    edit(
        repo / "buildsets/db/buildset.yaml",
        "packages:\n  origins:\n    - databases/postgresql16-server\n",
        "",
    )
    config = load_config(repo)
    assert package_set_id(config, "db") is None
    with pytest.raises(ValueError, match="has no package set"):
        inputs(config, "db")


def test_inputs_in_encoding_order_and_the_encoding() -> None:
    records = inputs(REFERENCE, "lab")
    assert [name for name, _ in records] == [
        "ports-revision",
        "build",
        "method",
        "origins",
        "ports/make.conf",
        "options:www_nginx",
        "signing",
    ]
    values = dict(records)
    assert values["ports-revision"] == "b89d065344ec86b694bca4d508973ba5c87a7d8c"
    assert values["build"] == build_id(REFERENCE, "lab")
    assert values["origins"] == "devel/py-six@py311\nsecurity/sudo\nsysutils/tmux\nwww/nginx"
    # The documented encoding, recomputed independently of the module.
    digest = hashlib.sha256(b"reconciler-package-set-id-v1")
    for name, data in records:
        raw = data.encode()
        digest.update(name.encode() + b"\0" + str(len(raw)).encode() + b"\0" + raw)
    assert digest.hexdigest() == package_set_id(REFERENCE, "lab")


UNCHANGED: dict[str, Callable[[Path], object]] = {
    "extras-moved-to-another-host": lambda r: edit(
        r / LAB, "    builder: [sysutils/tmux]", "    web1: [sysutils/tmux]"
    ),
    "origin-order": lambda r: edit(
        r / LAB, "    - www/nginx\n    - security/sudo\n", "    - security/sudo\n    - www/nginx\n"
    ),
    "extra-that-another-host-has": lambda r: edit(
        r / LAB,
        "    builder: [sysutils/tmux]",
        "    builder: [sysutils/tmux]\n    web2: [sysutils/tmux]",
    ),
    "freebsd-repository-and-keep": lambda r: edit(
        r / LAB,
        "  hosts:\n    builder",
        "  freebsd_repository: false\n  keep: 5\n  hosts:\n    builder",
    ),
    "ports-url-and-branch": lambda r: edit(
        r / "fleet.yaml",
        "https://git.freebsd.org/ports.git",
        "https://github.com/freebsd/freebsd-ports.git",
    ),
    "ports-lines-of-make-conf": lambda r: edit(
        r / LAB, "wrkdirprefix: /var/ports", "wrkdirprefix: /var/wrk"
    ),
    "address-and-health-check": lambda r: edit(
        r / LAB, "- service sshd status", "- service nginx status"
    ),
    "other-sets-packages": lambda r: edit(
        r / "buildsets/db/buildset.yaml", "databases/postgresql16-server", "sysutils/tmux"
    ),
}


@pytest.mark.parametrize("change", sorted(UNCHANGED))
def test_package_set_id_ignores(change: str, repo: Path) -> None:
    before = lab_id(repo)
    UNCHANGED[change](repo)
    assert lab_id(repo) == before


def _set_ports_revision(repo: Path) -> None:
    edit(
        repo / "fleet.yaml",
        "revision: b89d065344ec86b694bca4d508973ba5c87a7d8c",
        "revision: " + "c1" * 20,
    )


CHANGED: dict[str, Callable[[Path], object]] = {
    "ports-revision": _set_ports_revision,
    "src-revision": lambda r: edit(
        r / "fleet.yaml",
        "revision: 8044904954654c62d8dcd995b7ab7df3a3ed8903",
        "revision: " + "ab" * 20,
    ),
    "set-make-conf": lambda r: edit(r / "buildsets/lab/make.conf", "x86-64-v2", "x86-64-v3"),
    "kernel-config": lambda r: edit(r / "kernels/WEB", "nodevice        ppi\n", ""),
    "another-origin": lambda r: edit(
        r / LAB, "    - security/sudo\n", "    - security/sudo\n    - sysutils/tmux@x\n"
    ),
    "another-flavor": lambda r: edit(r / LAB, "devel/py-six@py311", "devel/py-six@py312"),
    "new-extra": lambda r: edit(
        r / LAB, "[sysutils/tmux]", "[sysutils/tmux, databases/postgresql16-server]"
    ),
    "ports-make-conf": lambda r: edit(r / "buildsets/lab/ports/make.conf", "INSULTS", "LDAP"),
    "options-text": lambda r: edit(r / OPTIONS, "OPTIONS_FILE_SET+=MAIL\n", ""),
    "options-file-added": lambda r: (
        (r / "buildsets/lab/ports/options/security_sudo").mkdir(),
        (r / "buildsets/lab/ports/options/security_sudo/options").write_text(
            "OPTIONS_FILE_UNSET+=NLS\n"
        ),
    ),
    "method": lambda r: edit(
        r / LAB, "  hosts:\n    builder", "  method: make\n  hosts:\n    builder"
    ),
    "signing": lambda r: edit(
        r / LAB,
        "  hosts:\n    builder",
        "  signing: {key: /usr/local/etc/ssl/keys/pkg.key, pubkey: /usr/local/etc/ssl/pkg.pub}\n"
        "  hosts:\n    builder",
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGED))
def test_package_set_id_changes_with(change: str, repo: Path) -> None:
    before = lab_id(repo)
    CHANGED[change](repo)
    assert lab_id(repo) != before


def test_header_commit_does_not_enter(repo: Path) -> None:
    from dataclasses import replace

    config = load_config(repo)
    moved = replace(config, commit="f" * 40, origin="elsewhere")
    assert package_set_id(moved, "lab") == package_set_id(config, "lab")
