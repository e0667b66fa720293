"""The package command builders run on the simulated example fleet, as the rollout will run them.

builder (src host, lab's build host) builds lab's package set with poudriere
from the rendered files; web1 gets it in a new boot environment with pkg -c;
web2 in place, with removals; tester fails midway and keeps its running
system. The builders are pure (test_pkgscripts.py); this proves the scripts
do on FreeBSD-like hosts what their docstrings say.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from reconciler.config import render
from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.config.pkgsetid import package_set_id
from reconciler.rollout import pkgscripts, scripts
from reconciler.rollout.scripts import Job
from reconciler.sim.fleet import SimFleet
from reconciler.transport.command import quote
from tests.conftest import example_fleet_in, ssh_ok
from tests.packages_overlay import add_packages


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    for fleet in example_fleet_in(tmp_path_factory.mktemp("pkgscripts-fleet")):
        add_packages(fleet.repo)  # type: ignore[attr-defined]
        yield fleet


@pytest.fixture(scope="module")
def config(fleet: SimFleet) -> Config:
    return load_config(fleet.repo)  # type: ignore[attr-defined]


def run(fleet: SimFleet, host: str, argv: list[str]) -> str:
    return ssh_ok(fleet, host, quote(argv), timeout=120)


def wait(fleet: SimFleet, host: str, job: Job, timeout: float = 120) -> int:
    """The job's exit status, polled as the rollout polls it (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run(fleet, host, scripts.job_state_command(job)).strip()
        if state.startswith("exit "):
            return int(state.split()[1])
        assert state == "running", state
        time.sleep(0.2)
    raise AssertionError(f"{job.name} on {host} did not finish within {timeout}s")


def write(fleet: SimFleet, host: str, path: str, text: str) -> None:
    ssh_ok(fleet, host, f"mkdir -p {path.rsplit('/', 1)[0]} && cat > {path} <<'EOF'\n{text}EOF")


@pytest.fixture(scope="module")
def built(fleet: SimFleet, config: Config) -> str:
    """lab's package set, built on builder; returns its id."""
    bs = config.buildset("lab")
    build, pkgset = build_id(config, bs), package_set_id(config, bs)
    assert pkgset is not None and config.ports is not None and config.ports.revision is not None
    ssh_ok(
        fleet,
        "builder",
        f"git -C /usr/src fetch -q origin stable/14 && "
        f"git -C /usr/src checkout -q --detach {config.source.revision}",
    )
    # What the rollout does before any job: its directories (scripts.prepare_dirs).
    for host in ("builder", "tester", "web1", "web2"):
        run(fleet, host, scripts.prepare_dirs("/var/log/reconciler", "/var/db/reconciler"))
    run(fleet, "builder", scripts.prepare_dirs(f"/usr/obj/{build}/.reconciler"))
    run(fleet, "builder", scripts.build_command(build, 2, ("GENERIC",)))
    assert wait(fleet, "builder", scripts.build_job(build)) == 0
    for step in pkgscripts.ports_checkout_commands(
        config.ports.tree,
        config.ports.url or "",
        config.ports.branch or "",
        config.ports.revision,
        present=True,
    ):
        run(fleet, "builder", step)
    for path, text in render.package_build_files(config, bs).items():
        write(fleet, "builder", path, text)
    inputs = pkgscripts.inputs_text(
        pkgset_id=pkgset,
        build_id=build,
        ports_revision=config.ports.revision,
        method="poudriere",
        origins=bs.packages.all_origins if bs.packages else (),
    )
    run(fleet, "builder", pkgscripts.poudriere_build_command(build, pkgset, "/usr/ports", inputs))
    job = pkgscripts.packages_job(pkgset)
    assert wait(fleet, "builder", job) == 0, fleet.read_file("builder", job.log)
    write(fleet, "builder", "/etc/exports", render.exports(config)["builder"])
    ssh_ok(
        fleet,
        "builder",
        "sysrc -q rpcbind_enable=YES mountd_enable=YES nfs_server_enable=YES >/dev/null; "
        "service mountd reload 2>/dev/null || service nfsd start >/dev/null",
    )
    for host in ("tester", "web1", "web2"):
        ssh_ok(fleet, host, f"mount -t nfs -o ro {fleet.address('builder')}:/usr/obj /usr/obj")
    return pkgset


def test_poudriere_build_leaves_the_set_and_its_records(
    fleet: SimFleet, config: Config, built: str
) -> None:
    log = fleet.read_file("builder", f"/var/log/reconciler/packages-{built}.log") or ""
    assert ">>> reconciler: poudriere jail -c -j rc" in log
    assert ">>> reconciler: poudriere ports -c -p reconciler -m null -M /usr/ports" in log
    assert "Finished   www/nginx | nginx-1.26.2,3: Success" in log
    assert "Finished   devel/py-six@py311 | py311-six-1.16.0: Success" in log
    assert "Finished   sysutils/tmux | tmux-3.4: Success" in log
    inputs = fleet.read_file("builder", f"/usr/obj/packages/{built}/.reconciler/inputs") or ""
    assert inputs.startswith(f"pkgset={built}\nbuild={build_id(config, 'lab')}\n")
    assert "\nstarted=" in inputs
    assert ssh_ok(fleet, "builder", f"readlink /usr/obj/packages/{built}/repo").startswith(
        "/usr/obj/poudriere/data/packages/rc"
    )
    # The options file and ports/make.conf of the config repo reached the build.
    nginx = ssh_ok(
        fleet,
        "builder",
        "grep -h MAIL /usr/obj/poudriere/data/logs/bulk/*/latest/logs/nginx-*.log",
    )
    assert nginx.strip() == "MAIL=on"


def test_be_install_with_pkg_c_leaves_the_running_system_alone(
    fleet: SimFleet, config: Config, built: str
) -> None:
    packages = config.buildset("lab").packages
    assert packages is not None
    be = "rc-pkgtest"
    ssh_ok(fleet, "web1", f"bectl create {be}")
    conf = render.pkg_repo_conf(config, "lab")
    wanted = packages.for_host("web1")
    marker = pkgscripts.marker_text(pkgset_id=built, origins=wanted, when="2025-01-01T00:00:00Z")
    run(fleet, "web1", pkgscripts.be_packages_command(built, be, conf, marker, wanted))
    job = pkgscripts.pkg_install_job(built)
    assert wait(fleet, "web1", job) == 0, fleet.read_file("web1", job.log)
    assert "be_mount" not in ssh_ok(fleet, "web1", "mount -p")  # everything unmounted again
    assert ssh_ok(fleet, "web1", "pkg query '%n'") == "pkg\n"  # the running system: only pkg itself
    assert fleet.read_file("web1", "/usr/local/sbin/nginx") is None
    mnt = ssh_ok(fleet, "web1", f"bectl mount {be}").strip()
    try:
        origins = ssh_ok(fleet, "web1", f"pkg -c {mnt} query '%o %a' | sort").splitlines()
        assert origins == [
            "devel/pcre2 1",
            "devel/py-six 0",
            "ports-mgmt/pkg 0",
            "security/sudo 0",
            "www/nginx 0",
        ]
        assert ssh_ok(fleet, "web1", f"cat {mnt}/usr/local/etc/pkg/repos/reconciler.conf") == conf
        assert ssh_ok(fleet, "web1", f"cat {mnt}/var/db/reconciler/packages") == marker
    finally:
        ssh_ok(fleet, "web1", f"bectl umount {be} && bectl destroy -F {be}")


def test_in_place_install_and_removal_of_only_what_it_installed(
    fleet: SimFleet, config: Config, built: str
) -> None:
    conf = render.pkg_repo_conf(config, "lab")
    job = pkgscripts.pkg_install_job(built)

    def install(wanted: tuple[str, ...], drop: tuple[str, ...] = ()) -> None:
        marker = pkgscripts.marker_text(pkgset_id=built, origins=wanted, when="now")
        run(fleet, "web2", pkgscripts.inplace_packages_command(built, conf, marker, wanted, drop))
        assert wait(fleet, "web2", job) == 0, fleet.read_file("web2", job.log)

    install(("www/nginx", "security/sudo", "devel/pcre2"))
    assert ssh_ok(fleet, "web2", "/usr/local/sbin/nginx") == "nginx 1.26.2,3\n"
    install(("www/nginx",), drop=("security/sudo", "devel/pcre2", "sysutils/tmux"))
    log = fleet.read_file("web2", job.log) or ""
    assert ">>> reconciler: pkg delete security/sudo" in log
    assert ">>> reconciler: pkg set -A 1 devel/pcre2 (still needed)" in log
    assert "sysutils/tmux" not in log.split(">>> reconciler: pkg install")[-1].split("\n", 1)[1]
    assert ssh_ok(fleet, "web2", "pkg query '%n %a' | sort") == "nginx 0\npcre2 1\npkg 0\n"
    assert fleet.read_file("web2", "/var/db/reconciler/packages") == (
        f"pkgset={built}\npackages=www/nginx\ninstalled=now\n"
    )


def test_a_failed_be_install_leaves_the_be_unmounted_and_the_host_untouched(
    fleet: SimFleet, config: Config, built: str
) -> None:
    be = "rc-pkgfail"
    ssh_ok(fleet, "tester", f"bectl create {be}")
    fleet.set_fault("tester", "pkg-install-fails", "www/nginx")
    try:
        run(
            fleet,
            "tester",
            pkgscripts.be_packages_command(
                built, be, render.pkg_repo_conf(config, "lab"), "m", ("www/nginx",)
            ),
        )
        job = pkgscripts.pkg_install_job(built)
        assert wait(fleet, "tester", job) != 0
    finally:
        fleet.clear_fault("tester", "pkg-install-fails")
    assert "pkg: Failed to write" in (fleet.read_file("tester", job.log) or "")
    listing = ssh_ok(fleet, "tester", "bectl list -H; mount -p")
    assert f"{be}\t-\t-\t" in listing and "nullfs" not in listing and "be_mount" not in listing
    assert ssh_ok(fleet, "tester", "pkg query '%n'") == "pkg\n"
    ssh_ok(fleet, "tester", f"bectl destroy -F {be}")


def test_prune_removes_old_sets_their_repositories_and_jails(
    fleet: SimFleet, config: Config, built: str
) -> None:
    jail = f"rc{build_id(config, 'lab')[:12]}"
    repo = ssh_ok(fleet, "builder", f"readlink /usr/obj/packages/{built}/repo").strip()
    out = run(fleet, "builder", pkgscripts.prune_package_sets_command([built], [jail]))
    assert out == ""  # kept: nothing removed
    out = run(fleet, "builder", pkgscripts.prune_package_sets_command([], []))
    assert f"removing {repo}\n" in out and f"removing /usr/obj/packages/{built}\n" in out
    assert f"removing jail {jail}\n" in out
    assert (
        ssh_ok(
            fleet,
            "builder",
            "ls -A /usr/obj/packages; poudriere -e /usr/obj/poudriere/etc jail -l -n -q",
        )
        == ""
    )
