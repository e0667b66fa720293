"""The package files the reconciler renders: pkg's repository file, poudriere's inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import render
from reconciler.config.load import load_config
from reconciler.config.model import Packages
from reconciler.config.pkgsetid import package_set_id
from tests.config.conftest import edit
from tests.packages_overlay import add_packages, packaged_example


@pytest.fixture
def repo(repo: Path) -> Path:
    """example-repo's copy with the packages of docs/packages.md (tests/packages_overlay.py)."""
    return add_packages(repo)


LAB = "buildsets/lab/buildset.yaml"
HEADER = "# Managed by reconciler: {origin}; edits are overwritten\n"


def lab_pkgset(repo: Path) -> str:
    value = package_set_id(load_config(repo), "lab")
    assert value is not None
    return value


def test_model_carries_packages_and_the_pinned_ports_tree() -> None:
    config = load_config(packaged_example())
    assert config.ports is not None and config.ports.pinned
    assert (config.ports.url, config.ports.branch) == ("https://git.freebsd.org/ports.git", "main")
    packages = config.buildset("lab").packages
    assert isinstance(packages, Packages)
    assert packages.for_host("builder") == (
        "www/nginx",
        "security/sudo",
        "devel/py-six@py311",
        "sysutils/tmux",
    )
    assert packages.for_host("web1") == ("www/nginx", "security/sudo", "devel/py-six@py311")
    assert [opt.name for opt in packages.options] == ["www_nginx"]
    assert packages.make_conf.endswith("security_sudo_SET+=INSULTS\n")
    assert (packages.method, packages.signing, packages.freebsd_repository, packages.keep) == (
        "poudriere",
        None,
        True,
        3,
    )


def test_tree_alone_is_shared_but_not_pinned(repo: Path) -> None:
    text = (repo / "fleet.yaml").read_text()
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if not line.startswith(
            ("  url: https://git.freebsd.org/ports", "  branch: main", "  revision: b89d")
        )
    ]
    (repo / "fleet.yaml").write_text("".join(kept))
    for name in ("lab", "db"):
        path = repo / "buildsets" / name / "buildset.yaml"
        path.write_text(path.read_text().split("\npackages:")[0] + "\n")
    (repo / "buildsets/lab/ports/make.conf").unlink()
    (repo / "buildsets/lab/ports/options/www_nginx/options").unlink()
    for empty in ("options/www_nginx", "options", ""):
        (repo / "buildsets/lab/ports" / empty).rmdir()
    config = load_config(repo)
    assert config.ports is not None and not config.ports.pinned
    assert config.buildset("lab").packages is None
    with pytest.raises(ValueError, match="lists no packages"):
        render.pkg_repo_conf(config, "lab")


def test_pkg_repo_conf_default(repo: Path) -> None:
    pkgset = lab_pkgset(repo)
    text = render.pkg_repo_conf(load_config(repo), "lab")
    assert text == (
        HEADER.format(origin=repo)
        + f"# Source: buildsets/lab/buildset.yaml (packages), package set {pkgset[:12]}\n"
        "reconciler: {\n"
        f'  url: "file:///usr/obj/packages/{pkgset}/repo",\n'
        "  enabled: yes,\n"
        "  priority: 10\n"
        "}\n"
    )


def test_pkg_repo_conf_signed_and_without_freebsd(repo: Path) -> None:
    edit(
        repo / LAB,
        "  hosts:\n    builder",
        "  signing: {key: /usr/local/etc/ssl/keys/pkg.key, pubkey: /usr/local/etc/ssl/pkg.pub}\n"
        "  freebsd_repository: false\n  hosts:\n    builder",
    )
    text = render.pkg_repo_conf(load_config(repo), "lab")
    body = text.split("\n", 2)[2]
    assert body == (
        "reconciler: {\n"
        f'  url: "file:///usr/obj/packages/{lab_pkgset(repo)}/repo",\n'
        "  enabled: yes,\n"
        "  priority: 10,\n"
        '  signature_type: "pubkey",\n'
        '  pubkey: "/usr/local/etc/ssl/pkg.pub"\n'
        "}\n"
        "FreeBSD: { enabled: no }\n"
    )
    conf = render.poudriere_conf(load_config(repo), "lab")
    assert "PKG_REPO_SIGNING_KEY=/usr/local/etc/ssl/keys/pkg.key\n" in conf


def test_poudriere_build_files(repo: Path) -> None:
    config = load_config(repo)
    pkgset = lab_pkgset(repo)
    files = render.package_build_files(config, "lab")
    etc = "/usr/obj/poudriere/etc"
    assert sorted(files) == [
        f"/usr/obj/packages/{pkgset}/.reconciler/origins",
        f"{etc}/poudriere.conf",
        f"{etc}/poudriere.d/{pkgset[:12]}-make.conf",
        f"{etc}/poudriere.d/{pkgset[:12]}-options/www_nginx/options",
    ]
    assert files[f"/usr/obj/packages/{pkgset}/.reconciler/origins"] == (
        "devel/py-six@py311\nsecurity/sudo\nsysutils/tmux\nwww/nginx\n"
    )
    conf = files[f"{etc}/poudriere.conf"].split("\n", 2)[2]
    assert conf == (
        "NO_ZFS=yes\nBASEFS=/usr/obj/poudriere\nPOUDRIERE_DATA=/usr/obj/poudriere/data\n"
        "DISTFILES_CACHE=/usr/ports/distfiles\nUSE_PORTLINT=no\nATOMIC_PACKAGE_REPOSITORY=yes\n"
        "COMMIT_PACKAGES_ON_FAILURE=no\nKEEP_OLD_PACKAGES=no\n"
    )
    make_conf = files[f"{etc}/poudriere.d/{pkgset[:12]}-make.conf"]
    assert make_conf.split("\n", 2)[2] == (
        (repo / "buildsets/lab/make.conf").read_text()
        + (repo / "buildsets/lab/ports/make.conf").read_text()
    )
    assert files[f"{etc}/poudriere.d/{pkgset[:12]}-options/www_nginx/options"] == (
        (repo / "buildsets/lab/ports/options/www_nginx/options").read_text()
    )


def test_make_method_build_files_and_local_distfiles(repo: Path) -> None:
    edit(repo / LAB, "  hosts:\n    builder", "  method: make\n  hosts:\n    builder")
    edit(
        repo / LAB,
        "  distdir: /usr/ports/distfiles   # inside the shared tree: exported read-write\n",
        "",
    )
    config = load_config(repo)
    pkgset = lab_pkgset(repo)
    meta = f"/usr/obj/packages/{pkgset}/.reconciler"
    assert sorted(render.package_build_files(config, "lab")) == [
        f"{meta}/make.conf",
        f"{meta}/options/www_nginx/options",
        f"{meta}/origins",
    ]
    assert "DISTFILES_CACHE=/usr/obj/poudriere/distfiles\n" in render.poudriere_conf(config, "lab")
