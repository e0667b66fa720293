"""The shipped service files: the systemd unit, the FreeBSD rc.d script, its newsyslog snippet."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.settings import DEFAULT_PATHS, STATE_DIRS

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd-and-rc" / "reconciler.service"
RC = ROOT / "systemd-and-rc" / "reconciler"
NEWSYSLOG = ROOT / "systemd-and-rc" / "reconciler.newsyslog.conf"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/usr/bin/systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )


def _runnable_copy(tmp_path: Path, text: str) -> Path:
    # verify insists the ExecStart binary exists; point it at a stand-in, keep the rest.
    binary = tmp_path / "reconciler"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    copy = tmp_path / "reconciler.service"
    copy.write_text(text.replace("/usr/local/bin/reconciler", str(binary)))
    return copy


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    done = _verify(_runnable_copy(tmp_path, UNIT.read_text()))
    assert done.returncode == 0, done.stderr
    # verify only warns about unknown keys and bad values; any output is a defect.
    assert done.stderr.strip() == "", done.stderr


def test_verify_check_catches_a_broken_unit(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace(
        "ProtectSystem=strict", "ProtectSystem=very\nProtectSytem=yes"
    )
    done = _verify(_runnable_copy(tmp_path, broken))
    assert "ProtectSytem" in done.stderr and "protect system" in done.stderr.lower()


def test_systemd_unit_runs_the_daemon_sandboxed_as_its_own_user() -> None:
    service = _unit()["Service"]
    assert service["ExecStart"] == (
        "/usr/local/bin/reconciler run --config /etc/reconciler/reconciler.toml"
    )
    assert service["User"] == "reconciler"
    assert service["Restart"] == "on-failure"
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "ReadWritePaths": "/var/lib/reconciler",
        "StateDirectory": "reconciler",
        "KillMode": "mixed",
    }.items():
        assert service[key] == value, key
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_unit_exposure_is_low(tmp_path: Path) -> None:
    unit = _runnable_copy(tmp_path, UNIT.read_text())
    done = subprocess.run(
        ["/usr/bin/systemd-analyze", "security", "--offline=true", "--threshold=25", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Overall exposure level" in done.stdout


def test_rc_script_parses_with_sh_n() -> None:
    for shell in ("sh", "dash", "bash"):
        path = shutil.which(shell)
        if path is None:
            continue
        done = subprocess.run([path, "-n", str(RC)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{shell}: {done.stderr}"


def test_rc_script_follows_rc_subr_conventions() -> None:
    text = RC.read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/bin/sh"
    header = [line for line in lines if line.startswith("# ") and ":" in line][:10]
    assert "# PROVIDE: reconciler" in header
    assert any(line.startswith("# REQUIRE: ") and "LOGIN" in line for line in header)
    assert "# KEYWORD: shutdown" in header
    order = [
        ". /etc/rc.subr",
        "name=reconciler",
        "rcvar=reconciler_enable",
        "load_rc_config $name",
        ': ${reconciler_enable:="NO"}',
    ]
    positions = [text.index(item) for item in order]
    assert positions == sorted(positions), "rc.subr statements out of order"
    assert lines[-1] == 'run_rc_command "$1"'
    for knob in ("reconciler_config", "reconciler_user"):
        assert f": ${{{knob}:=" in text


RC_SUBR_STUB = r"""
# Stand-in for FreeBSD's /etc/rc.subr: enough to evaluate the script's settings.
load_rc_config() { [ -r "$RC_CONF" ] && . "$RC_CONF"; }
run_rc_command() {
    eval _user=\$${name}_user
    eval _flags=\$${name}_flags
    printf 'rc_user=%s\n' "$_user"
    printf 'rc_flags=%s\n' "$_flags"
    printf 'command=%s\n' "$command"
    printf 'procname=%s\n' "$procname"
    printf 'pidfile=%s\n' "$pidfile"
    printf 'command_args=%s\n' "$command_args"
    printf 'required_files=%s\n' "$required_files"
    printf 'enable=%s\n' "$(eval echo \$$rcvar)"
    printf 'dbdir=%s\n' "$reconciler_dbdir"
    printf 'logfile=%s\n' "$reconciler_logfile"
    printf 'runas=%s\n' "$reconciler_runas"
    printf 'group=%s\n' "$reconciler_group"
}
"""


def _evaluate(tmp_path: Path, rc_conf: str) -> dict[str, str]:
    stub = tmp_path / "rc.subr"
    stub.write_text(RC_SUBR_STUB)
    conf = tmp_path / "rc.conf"
    conf.write_text(rc_conf)
    script = tmp_path / "reconciler"
    script.write_text(RC.read_text().replace(". /etc/rc.subr", f". {stub}"))
    done = subprocess.run(
        ["sh", str(script), "start"],
        capture_output=True,
        text=True,
        check=False,
        env={"RC_CONF": str(conf), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


@pytest.mark.parametrize(
    ("rc_conf", "user", "config", "extra"),
    [
        ("", "reconciler", "/usr/local/etc/reconciler.toml", ""),
        (
            'reconciler_enable="YES"\nreconciler_user="gitops"\n'
            'reconciler_config="/usr/local/etc/fleet.toml"\nreconciler_flags="--log-format json"\n',
            "gitops",
            "/usr/local/etc/fleet.toml",
            " --log-format json",
        ),
    ],
)
def test_rc_script_starts_the_daemon_under_daemon8(
    tmp_path: Path, rc_conf: str, user: str, config: str, extra: str
) -> None:
    got = _evaluate(tmp_path, rc_conf)
    assert got["enable"] == ("YES" if "enable" in rc_conf else "NO")
    assert got["command"] == got["procname"] == "/usr/sbin/daemon"
    assert got["pidfile"] == "/var/run/reconciler.pid"
    # rc.subr must not su(1) to the user nor hand the flags to daemon(8).
    assert got["rc_user"] == "" and got["rc_flags"] == ""
    args = got["command_args"].split()
    assert args[: args.index("/usr/local/bin/reconciler")] == [
        "-r", "-R", "10", "-H", "-f", "-t", "reconciler",
        "-P", "/var/run/reconciler.pid", "-p", "/var/run/reconciler_child.pid",
        "-o", "/var/log/reconciler.log", "-u", user,
    ]  # fmt: skip
    tail = " ".join(args[args.index("/usr/local/bin/reconciler") :])
    assert tail == f"/usr/local/bin/reconciler run --config {config}{extra}"
    assert got["required_files"] == config


def test_one_state_directory_for_the_settings_the_rc_script_and_the_unit(tmp_path: Path) -> None:
    rc = _evaluate(tmp_path, "")
    assert rc["dbdir"] == STATE_DIRS["freebsd"] == "/var/db/reconciler"
    # rc.d's default settings file is the first place the settings loader looks.
    assert rc["required_files"] == str(DEFAULT_PATHS[0])
    service = _unit()["Service"]
    linux = STATE_DIRS["linux"]
    assert linux == "/var/lib/reconciler"
    assert f"/var/lib/{service['StateDirectory']}" == linux
    assert service["ReadWritePaths"] == service["WorkingDirectory"] == linux
    assert service["ExecStart"].endswith(f"--config {DEFAULT_PATHS[1]}")


def _newsyslog_entries() -> list[list[str]]:
    lines = NEWSYSLOG.read_text().splitlines()
    return [line.split() for line in lines if line.strip() and not line.startswith("#")]


def test_newsyslog_snippet_rotates_the_rc_scripts_log(tmp_path: Path) -> None:
    rc = _evaluate(tmp_path, "")
    (entry,) = _newsyslog_entries()
    # newsyslog.conf(5): logfilename [owner:group] mode count size when flags [/pid_file] [sig]
    logfile, owner, mode, count, size, when, flags, pidfile = entry
    assert logfile == rc["logfile"] == "/var/log/reconciler.log"
    assert owner == f"{rc['runas']}:{rc['group']}"
    assert int(mode, 8) == 0o640 and int(count) > 0 and int(size) > 0 and when == "*"
    assert set(flags) <= set("BCDGJXNRUZ-") and "N" not in flags  # N: no process to signal
    # The signal (SIGHUP by default) goes to daemon(8), whose -H reopens the log.
    assert pidfile == rc["pidfile"] == "/var/run/reconciler.pid"
    assert " -H " in f" {rc['command_args']} "
