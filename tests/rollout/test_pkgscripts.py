"""The package build and install command builders: every value a positional parameter."""

from __future__ import annotations

import shlex

import pytest

from reconciler import remote
from reconciler.rollout import pkgscripts
from reconciler.transport.command import quote

B = "3e948da47b67" + "d" * 52
P = "ec0169768168" + "e" * 52
HOSTILE = ["www/nginx; rm -rf /", "$(id)", "`id`", "a\nb", "' \"", "--help", "*", "a b"]


def _script(argv: list[str]) -> str:
    return argv[argv.index("-c") + 1]


def builders(value: str) -> list[list[str]]:
    return [
        pkgscripts.poudriere_build_command(B, P, value, value),
        pkgscripts.make_build_command(P, value, value, value),
        pkgscripts.be_packages_command(P, value, value, value, (value, "www/nginx"), (value,)),
        pkgscripts.inplace_packages_command(P, value, value, (value,), (value, value)),
        pkgscripts.prune_package_sets_command([value, P], [value]),
        *pkgscripts.ports_checkout_commands(value, value, value, value, present=False),
    ]


@pytest.mark.parametrize("value", HOSTILE)
def test_values_are_positional_parameters(value: str) -> None:
    for argv in builders(value):
        line = quote(argv)
        assert shlex.split(line) == argv  # the shell sees the same words back
        if "-c" in argv and any(c.isalpha() for c in value):
            assert value not in _script(argv)
        assert value in argv  # it is there, as one argument of its own


def test_detached_jobs_and_their_files() -> None:
    build = pkgscripts.poudriere_build_command(B, P, "/usr/ports", "pkgset=x\n")
    assert build[:6] == [
        "daemon",
        "-f",
        "-p",
        remote.PACKAGES_PIDFILE,
        "-o",
        f"/var/log/reconciler/packages-{P}.log",
    ]
    args = build[build.index("-c") + 3 :]
    assert args[:2] == [f"/usr/obj/packages/{P}/.reconciler/exit", f"/usr/obj/{B}"]
    assert args[2:] == [
        "/usr/obj/poudriere/etc",
        f"rc{B[:12]}",
        "reconciler",
        P[:12],
        "/usr/ports",
        f"/usr/obj/packages/{P}",
        f"/usr/obj/poudriere/data/packages/rc{B[:12]}-reconciler-{P[:12]}",
        "pkgset=x\n",
    ]
    script = _script(build)
    assert (
        'poudriere -e "$etc" bulk -j "$jail" -p "$ptree" -z "$setname" -f "$meta/origins"' in script
    )
    assert (
        'env MAKEOBJDIRPREFIX="$obj" poudriere -e "$etc" jail -c -j "$jail" -m src=/usr/src'
        in script
    )
    install = pkgscripts.be_packages_command(
        P, "rc-x", "conf", "marker", ("www/nginx", "a/b@c"), ("d/e",)
    )
    assert install[3] == remote.INSTALL_PIDFILE
    tail = install[install.index("-c") + 3 :]
    assert tail == [
        f"/var/db/reconciler/pkg-install-{P}.exit",
        "rc-x",
        "/usr/obj",
        f"/usr/obj/packages/{P}/repo",
        "conf",
        "/usr/local/etc/pkg/repos/reconciler.conf",
        "marker",
        "/var/db/reconciler/packages",
        "2",
        "www/nginx",
        "a/b@c",
        "d/e",
    ]
    body = _script(install)
    assert 'pkg="pkg -c $mnt"' in body and 'mount -t nullfs -o ro "$obj" "$mnt$obj"' in body
    assert "pkg -r" not in body  # -r would read the running system's repositories
    live = _script(pkgscripts.inplace_packages_command(P, "c", "m", ("x/y",)))
    assert 'root=; pkg="pkg"' in live and "bectl" not in live


def test_marker_inputs_and_checkout() -> None:
    assert pkgscripts.marker_text(
        pkgset_id=P, origins=("www/nginx", "devel/py-six@py311"), when="T"
    ) == (f"pkgset={P}\npackages=www/nginx devel/py-six@py311\ninstalled=T\n")
    assert (
        pkgscripts.inputs_text(
            pkgset_id=P, build_id=B, ports_revision="r" * 40, method="poudriere", origins=("a/b",)
        )
        == f"pkgset={P}\nbuild={B}\nports_revision={'r' * 40}\nmethod=poudriere\norigins=a/b\n"
    )
    assert pkgscripts.ports_checkout_commands(
        "/usr/ports", "https://x/p.git", "main", "f" * 40, present=True
    ) == [
        ["git", "-C", "/usr/ports", "fetch", "--quiet", "https://x/p.git", "main"],
        ["git", "-C", "/usr/ports", "checkout", "--quiet", "--detach", "f" * 40],
    ]
