"""Rules and schema details beyond the issue's list: what is accepted, and the finer refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config.load import load_config
from reconciler.config.rules import OWNED_VARS, PORTS_VARS, owned_assignments
from reconciler.errors import ConfigInvalid
from tests.config.conftest import edit

LAB = "buildsets/lab/buildset.yaml"
DB = "buildsets/db/buildset.yaml"


def problems(repo: Path) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        load_config(repo)
    return [str(p) for p in caught.value.problems]


def test_make_conf_assignment_forms() -> None:
    text = (
        "KERNCONF=A\n"  # 1
        "KERNCONF ?= B\n"  # 2
        "KERNCONF+=C\n"  # 3
        "DESTDIR:=/x\n"  # 4
        "DESTDIR!=echo /x\n"  # 5
        "export MAKEOBJDIRPREFIX=/o\n"  # 6
        ".if ${KERNCONF} == A\n"  # 7: a condition, fine
        "# KERNCONF=commented\n"  # 8
        "CFLAGS+=-O2 \\\n"  # 9
        "  KERNCONF=continued\n"  # 10: part of CFLAGS, fine
        "KERNCONFX=other\n"  # 11: another variable
        "MY_DESTDIR=/y\n"  # 12
    )
    found = [(p.line, p.column) for p in owned_assignments("m", text, OWNED_VARS)]
    assert found == [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 8)]


def test_ports_variables_are_free_without_ports(repo: Path) -> None:
    (repo / "buildsets/db/make.conf").write_text("DISTDIR=/var/distfiles\nPACKAGES=/var/pkg\n")
    load_config(repo)  # db has no ports: block
    assert [p.line for p in owned_assignments("m", "WRKDIRPREFIX=/w\n", PORTS_VARS)] == [1]


def test_optional_settings_are_read(repo: Path) -> None:
    with (repo / "fleet.yaml").open("a") as handle:
        handle.write("reconciler:\n  status_branch: ops/status\n")
    edit(repo / DB, "  soak: 5", "  soak: 5\n  drift: report\n  keep_builds: 5")
    edit(repo / "fleet.yaml", "  revision: b89d0653", "  revision: " + "c" * 40 + "  # b89d0653")
    config = load_config(repo)
    assert config.policy.status_branch == "ops/status"
    assert config.ports is not None and config.ports.revision == "c" * 40
    rollout = config.buildset("db").rollout
    assert (rollout.drift, rollout.keep_builds, rollout.max_failures) == ("report", 5, 0)
    assert config.buildset("db").rollout.reboot_timeout == 60


def test_keep_builds_at_least_one_and_drift_values(repo: Path) -> None:
    edit(repo / DB, "  soak: 5", "  soak: 5\n  drift: ignore\n  keep_builds: 0")
    assert problems(repo) == [
        f"{DB}:12:10: rollout.drift: 'ignore' is not one of heal, report (hint: What to do when a"
        " host drifted from the desired state outside a rollout (make.conf/src.conf, or a listed"
        " package removed or changed by hand): heal (default: rewrite the files, reinstall the"
        " packages in place) or report only.)",
        f"{DB}:13:16: rollout.keep_builds: must be at least 1 (hint: How many builds the build"
        " host keeps in /usr/obj for quick rollbacks (default 3).)",
    ]


def test_health_checks_may_span_lines_but_not_carry_other_control_characters(
    repo: Path,
) -> None:
    edit(repo / DB, "    - service sshd status", "    - |\n      service sshd status\n      true")
    assert [c.command for c in load_config(repo).buildset("db").rollout.health_checks] == [
        "service sshd status\ntrue\n"
    ]
    edit(repo / DB, "      true", '    - "true\\x1b[2J"')
    assert problems(repo) == [
        f"{DB}:16:7: rollout.health_checks.1: 'true\\x1b[2J' contains a control character"
        " (newline, tab, ...) (hint: write the value on one line without control characters)"
    ]


def test_ipv6_address_and_hostname_accepted_bad_ipv6_refused(repo: Path) -> None:
    edit(repo / DB, "127.0.0.21", "'2001:db8::21'")
    edit(repo / DB, "127.0.0.22", "db2.example.org")
    text = (repo / "known_hosts").read_text()
    text = text.replace("db1,127.0.0.21", "db1").replace("db2,127.0.0.22", "db2")
    (repo / "known_hosts").write_text(text)
    assert load_config(repo).host("db1").address == "2001:db8::21"
    edit(repo / DB, "'2001:db8::21'", "'2001:db8:::21'")
    assert problems(repo) == [
        f"{DB}:6:18: hosts.db1.address: '2001:db8:::21' is not a valid IPv6 address"
        " (hint: write it as ipaddress would, e.g. 2001:db8::10)"
    ]


def test_build_host_may_be_the_test_host_and_set_of_one(repo: Path) -> None:
    edit(repo / DB, "  db2: {address: 127.0.0.22, kernconf: DB}\n", "")
    config = load_config(repo)
    assert [h.name for h in config.buildset("db").hosts] == ["db1"]


def test_kernel_including_a_custom_base_takes_its_ident_from_the_last_line(repo: Path) -> None:
    (repo / "kernels/BASE").write_text("include GENERIC\nident BASE\nnooptions WITNESS\n")
    edit(repo / "kernels/WEB", "include GENERIC\nident   WEB", "ident WEB\ninclude BASE")
    assert problems(repo) == [
        "kernels/WEB:1:1: the kernel's ident is 'BASE' (from kernels/BASE), not 'WEB' (hint: end"
        " the file with 'ident WEB': the reconciler checks uname -i against the file name)"
    ]
    edit(repo / "kernels/WEB", "ident WEB\ninclude BASE", "include BASE\nident WEB")
    assert load_config(repo).kernel("BASE") is not None


def test_build_set_directory_and_file_shapes(repo: Path) -> None:
    (repo / "buildsets/Bad Name").mkdir()
    (repo / "buildsets/notes.txt").write_text("x")
    (repo / "kernels/sub").mkdir()
    assert problems(repo) == [
        "buildsets/Bad Name:0:0: 'Bad Name' is not a valid build set name"
        " (hint: use lower-case letters, digits, '_' and '-')",
        "buildsets/notes.txt:0:0: not a directory (hint: each build set is a directory"
        " buildsets/<name>/)",
        "kernels/sub:0:0: is a directory, not a regular file"
        " (hint: commit the file itself; links could point outside the repo)",
    ]


def test_allowed_signers_in_the_repo_is_refused_not_ignored(repo: Path) -> None:
    load_config(repo)
    (repo / "allowed_signers").write_text("alice@example.org ssh-ed25519 AAAA\n")
    with pytest.raises(ConfigInvalid) as info:
        load_config(repo)
    (problem,) = info.value.problems
    assert str(problem).startswith("allowed_signers:0:0: the config repo's allowed_signers is not")
    assert "set allowed_signers = PATH in the reconciler's settings" in str(problem)


def test_config_is_frozen(repo: Path) -> None:
    config = load_config(repo)
    with pytest.raises(AttributeError):
        config.src_host = "x"  # type: ignore[misc]


def test_empty_values_and_too_many_entries(repo: Path) -> None:
    edit(repo / DB, "    - service sshd status", '    - ""')
    assert problems(repo) == [
        f"{DB}:14:7: rollout.health_checks.0: must not be empty"
        " (hint: One shell command, e.g. service sshd status.)"
    ]
    edit(repo / DB, '    - ""', "    - service sshd status")
    for index in range(257):
        (repo / f"kernels/K{index:03d}").write_text(f"include GENERIC\nident K{index:03d}\n")
    assert problems(repo) == [
        "kernels:0:0: 260 entries; the limit is 256"
        " (hint: a config repo describes a fleet, not a file archive)"
    ]


@pytest.mark.parametrize("tree", ["/usr/src/ports", "/usr/obj", "/usr"])
def test_ports_tree_cannot_overlap_src_or_obj(repo: Path, tree: str) -> None:
    edit(repo / "fleet.yaml", "tree: /usr/ports", f"tree: {tree}")
    (found,) = problems(repo)
    assert found.startswith(f"fleet.yaml:9:9: ports.tree: {tree} overlaps /usr/")


def test_confirm_timeout_and_smoke_checks_are_read_and_refused_in_place(repo: Path) -> None:
    lab = load_config(repo).buildset("lab").rollout
    assert (lab.confirm_timeout, lab.smoke_checks) == (120, ("test -x /usr/sbin/sshd",))
    assert load_config(repo).buildset("db").rollout.confirm_timeout == 300  # the default
    edit(repo / LAB, "  confirm_timeout: 120", "  confirm_timeout: 2")
    assert problems(repo) == [
        f"{LAB}:20:20: rollout.confirm_timeout: must be at least 5 (hint: Boot-environment hosts:"
        " seconds the watchdog installed into the new boot environment waits, from its boot on,"
        " for the reconciler to confirm it over a new SSH connection; unconfirmed, the host"
        " re-activates its previous boot environment and reboots by itself (default 300). Must"
        " cover the boot's detection, verification and the health checks.)"
    ]
    edit(repo / LAB, "  confirm_timeout: 2", "  confirm_timeout: 60")
    edit(repo / DB, "  soak: 5", "  soak: 5\n  confirm_timeout: 60\n  smoke_checks: ['true']")
    assert problems(repo) == [
        f"{DB}:{line}:3: rollout.{key}: install: in-place has no new boot environment to"
        " smoke-test before the reboot, nor a previous one for a watchdog to go back to (hint:"
        f" remove rollout.{key}, or use install: boot-environment)"
        for key, line in (("confirm_timeout", 12), ("smoke_checks", 13))
    ]
