"""Build id: stable over what does not affect the build, changed by everything that does."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config.buildid import build_id, inputs, short
from reconciler.config.load import load_config
from tests.config.conftest import EXAMPLE, edit

LAB = "buildsets/lab/buildset.yaml"
REFERENCE = load_config(EXAMPLE)


def lab_id(repo: Path) -> str:
    return build_id(load_config(repo), "lab")


def test_format_and_short() -> None:
    value = build_id(REFERENCE, "lab")
    assert re.fullmatch(r"[0-9a-f]{64}", value)
    assert short(value) == value[:12]
    assert build_id(REFERENCE, REFERENCE.buildset("lab")) == value


def test_inputs_in_encoding_order() -> None:
    config = load_config(EXAMPLE)
    names = [name for name, _ in inputs(config, "lab")]
    assert names == [
        "revision",
        "arch",
        "src.conf",
        "make.conf",
        "kernconfs",
        "kernel:BUILDER",
        "kernel:WEB",
    ]


def _other_port(repo: Path) -> None:
    edit(repo / LAB, "kernconf: WEB}\n  web2", "kernconf: WEB, port: 2222, user: admin}\n  web2")
    edit(repo / "known_hosts", "web1,127.0.0.13 ", "[web1]:2222,[127.0.0.13]:2222 ")


UNCHANGED: dict[str, Callable[[Path], object]] = {
    "address": lambda r: edit(r / LAB, "127.0.0.13", "127.0.0.99"),
    "port-and-user": _other_port,
    "health-check": lambda r: edit(r / LAB, "- service sshd status", "- service nginx status"),
    "batch": lambda r: edit(r / LAB, "batch: 2", "batch: 1"),
    "soak-and-install": lambda r: (
        edit(r / LAB, "install: boot-environment\n", "install: in-place\n  drift: report\n"),
        # in place has no new BE to smoke-test or revert: validate refuses these there
        edit(r / LAB, "  confirm_timeout: 120", "  # confirm_timeout: 120"),
        edit(r / LAB, "  smoke_checks:", "  # smoke_checks:"),
        edit(r / LAB, "    - test -x /usr/sbin/sshd", "  #  - test -x /usr/sbin/sshd"),
    ),
    "stage": lambda r: edit(
        r / LAB, "kernconf: WEB}\n  web2", "kernconf: WEB, stage: test}\n  web2"
    ),
    "ports-lines": lambda r: edit(r / LAB, "wrkdirprefix: /var/ports", "wrkdirprefix: /var/wrk"),
    "other-sets-make-conf": lambda r: (r / "buildsets/db/make.conf").write_text("CFLAGS+=-O3\n"),
    "other-sets-kernel": lambda r: edit(r / "kernels/DB", "nodevice        fwip\n", ""),
    "known-hosts-comment": lambda r: (r / "known_hosts").write_text(
        "# pinned\n" + (r / "known_hosts").read_text()
    ),
}


@pytest.mark.parametrize("change", sorted(UNCHANGED))
def test_build_id_ignores(change: str, repo: Path) -> None:
    before = lab_id(repo)
    UNCHANGED[change](repo)
    assert lab_id(repo) == before


def _set_revision(repo: Path) -> None:
    path = repo / "fleet.yaml"
    text, count = re.subn(
        r"(?m)^  revision: .*$", "  revision: " + "ab" * 20, path.read_text(), count=1
    )
    assert count == 1
    path.write_text(text)


CHANGED: dict[str, Callable[[Path], object]] = {
    "revision": _set_revision,
    "src-conf": lambda r: edit(r / "buildsets/lab/src.conf", "WITHOUT_TESTS=yes\n", ""),
    "make-conf": lambda r: edit(r / "buildsets/lab/make.conf", "x86-64-v2", "x86-64-v3"),
    "make-conf-comment": lambda r: edit(r / "buildsets/lab/make.conf", "# Shared", "# Common"),
    "kernconf-order": lambda r: edit(r / LAB, "build_host: builder", "build_host: tester"),
    "kernconf-list": lambda r: edit(r / LAB, "kernconf: GENERIC,", "kernconf: MINIMAL,"),
    "custom-kernel-text": lambda r: edit(r / "kernels/WEB", "nodevice        ppi\n", ""),
}


@pytest.mark.parametrize("change", sorted(CHANGED))
def test_build_id_changes_with(change: str, repo: Path) -> None:
    before = lab_id(repo)
    CHANGED[change](repo)
    assert lab_id(repo) != before


def test_included_kernel_edit_alone_changes_the_id(repo: Path) -> None:
    (repo / "kernels/WEBBASE").write_text("include GENERIC\nident WEBBASE\nnodevice sound\n")
    edit(repo / "kernels/WEB", "include GENERIC", "include WEBBASE")
    before = lab_id(repo)
    (repo / "kernels/WEBBASE").write_text("include GENERIC\nident WEBBASE\nnodevice wlan\n")
    assert lab_id(repo) != before


def test_unused_kernel_file_does_not_change_the_id(repo: Path) -> None:
    before = lab_id(repo)
    (repo / "kernels/SPARE").write_text("include GENERIC\nident SPARE\n")
    assert lab_id(repo) == before


def test_header_commit_does_not_enter(repo: Path) -> None:
    from dataclasses import replace

    config = load_config(repo)
    assert build_id(replace(config, commit="f" * 40, origin="elsewhere"), "lab") == build_id(
        config, "lab"
    )
