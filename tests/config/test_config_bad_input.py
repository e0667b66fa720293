"""Every bad input of issue 2 through `reconciler validate`: exit 1, file:line:col, own message.

Each case mutates a fresh copy of example-repo and names the one problem line
it expects; the run must report exactly that problem (so one mistake gives one
clear message) and never a traceback (checked by the ``validate`` fixture).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.config.conftest import Result, edit

LAB = "buildsets/lab/buildset.yaml"
DB = "buildsets/db/buildset.yaml"


def set_revision(repo: Path, value: str) -> None:
    path = repo / "fleet.yaml"
    text, count = re.subn(
        r"(?m)^  revision: .*$", f"  revision: {value}", path.read_text(), count=1
    )
    assert count == 1
    path.write_text(text)


def append(relpath: str, text: str) -> Callable[[Path], object]:
    def mutate(repo: Path) -> None:
        with (repo / relpath).open("a", encoding="utf-8") as handle:
            handle.write(text)

    return mutate


def replace(relpath: str, old: str, new: str) -> Callable[[Path], object]:
    return lambda repo: edit(repo / relpath, old, new)


def write_bytes(relpath: str, data: bytes) -> Callable[[Path], object]:
    return lambda repo: (repo / relpath).write_bytes(data)


# id -> (mutation, expected "path:line:col" prefix, expected message fragment)
CASES: dict[str, tuple[Callable[[Path], object], str, str]] = {
    "yaml-syntax-error": (
        replace(LAB, "jobs: 2", "jobs: [2"),
        f"{LAB}:5:6:",
        "YAML syntax error",
    ),
    "yaml-bad-indentation": (
        replace(LAB, "  batch: 2", "   batch: 2"),
        f"{LAB}:16:",
        "YAML syntax error",
    ),
    "duplicate-yaml-key": (
        append(LAB, "jobs: 4\n"),
        f"{LAB}:25:1:",
        "duplicate key 'jobs' (first defined on line 4)",
    ),
    "missing-field": (
        replace(LAB, "build_host: builder ", "# no build host "),
        f"{LAB}:2:1:",
        "missing required key 'build_host'",
    ),
    "misspelt-field": (
        replace(LAB, "build_host: builder", "buildhost: builder"),
        f"{LAB}:3:1:",
        "unknown key 'buildhost' (hint: did you mean 'build_host'?)",
    ),
    "unknown-key": (
        replace(DB, "  soak: 5", "  soak: 5\n  colour: blue"),
        f"{DB}:12:3:",
        "rollout: unknown key 'colour'",
    ),
    "unknown-top-level-key": (
        append("fleet.yaml", "mirrors: []\n"),
        "fleet.yaml:13:1:",
        "(top level): unknown key 'mirrors'",
    ),
    "wrong-type-int": (
        replace(LAB, "jobs: 2", "jobs: two"),
        f"{LAB}:4:7:",
        "jobs: must be an integer, not a string",
    ),
    "wrong-type-list": (
        replace(DB, "    - service sshd status", "    service sshd status"),
        f"{DB}:14:5:",
        "rollout.health_checks: must be a list, not a string",
    ),
    "wrong-stage": (
        replace(DB, "stage: test", "stage: canary"),
        f"{DB}:6:",
        "hosts.db1.stage: 'canary' is not one of test, production",
    ),
    "port-out-of-range": (
        replace(DB, "kernconf: DB}", "kernconf: DB, port: 70000}"),
        f"{DB}:7:",
        "hosts.db2.port: must be at most 65535",
    ),
    "bad-user": (
        replace(DB, "kernconf: DB}", "kernconf: DB, user: Root}"),
        f"{DB}:7:",
        "hosts.db2.user: 'Root' is not a valid user name",
    ),
    "bad-address": (
        replace(DB, "127.0.0.22", "'127.0.0.22; id'"),
        f"{DB}:7:",
        "hosts.db2.address: '127.0.0.22; id' is not a valid address",
    ),
    "bad-host-name": (
        replace(DB, "  db2: {", "  DB_2: {"),
        f"{DB}:7:3:",
        "hosts: 'DB_2' is not a valid host name",
    ),
    "duplicate-host-across-sets": (
        replace(DB, "  db2: {", "  web1: {"),
        f"{LAB}:8:3:",  # build sets are read in name order: db first
        "host 'web1' is already in build set 'db' (buildsets/db/buildset.yaml:7)",
    ),
    "build-host-not-a-host": (
        replace(DB, "build_host: db1", "build_host: db9"),
        f"{DB}:3:13:",
        "build_host 'db9' is not a host of build set 'db'",
    ),
    "build-host-in-other-set": (
        replace(DB, "build_host: db1", "build_host: builder"),
        f"{DB}:3:13:",
        "build_host 'builder' is not a host of build set 'db' (it is in build set 'lab')",
    ),
    "src-host-not-a-host": (
        replace("fleet.yaml", "src_host: builder", "src_host: nfs1"),
        "fleet.yaml:7:11:",
        "src_host 'nfs1' is not a host of any build set",
    ),
    "no-test-host": (
        replace(DB, ", stage: test}", "}"),
        f"{DB}:6:3:",
        "build set 'db' has no test host",
    ),
    "kernconf-without-file": (
        replace(DB, "kernconf: DB}", "kernconf: DBX}"),
        f"{DB}:7:",
        "hosts.db2.kernconf: no kernel config 'DBX' (hint: add the file kernels/DBX",
    ),
    "make-conf-kernconf": (
        append("buildsets/lab/make.conf", "KERNCONF=GENERIC\n"),
        "buildsets/lab/make.conf:6:1:",
        "sets KERNCONF, which the reconciler owns",
    ),
    "make-conf-destdir": (
        append("buildsets/lab/make.conf", "DESTDIR?=/mnt\n"),
        "buildsets/lab/make.conf:6:1:",
        "sets DESTDIR, which the reconciler owns",
    ),
    "make-conf-makeobjdirprefix": (
        append("buildsets/db/make.conf", "  MAKEOBJDIRPREFIX+=/tmp/obj\n"),
        "buildsets/db/make.conf:3:3:",
        "sets MAKEOBJDIRPREFIX, which the reconciler owns (hint: remove it: MAKEOBJDIRPREFIX"
        " works only from the environment",
    ),
    "src-conf-kernconf": (
        append("buildsets/db/src.conf", "KERNCONF:=DB\n"),
        "buildsets/db/src.conf:8:1:",
        "sets KERNCONF",
    ),
    "make-conf-ports-var-with-ports": (
        append("buildsets/lab/make.conf", "DISTDIR=/tmp/d\n"),
        "buildsets/lab/make.conf:6:1:",
        "sets DISTDIR, which the reconciler owns (hint: remove it: set ports.distdir",
    ),
    "kernconf-semicolon": (
        replace(DB, "kernconf: DB}", "kernconf: 'GENERIC; rm -rf /'}"),
        f"{DB}:7:",
        "'GENERIC; rm -rf /' is not a valid kernel config name: it contains the shell"
        " metacharacter(s) ;",
    ),
    "kernconf-command-substitution": (
        replace(DB, "kernconf: DB}", "kernconf: '$(id)'}"),
        f"{DB}:7:",
        "'$(id)' is not a valid kernel config name: it contains the shell metacharacter(s) $ ( )",
    ),
    "kernconf-backticks": (
        replace(DB, "kernconf: DB}", "kernconf: '`id`'}"),
        f"{DB}:7:",
        "'`id`' is not a valid kernel config name: it contains the shell metacharacter(s) `",
    ),
    "kernconf-newline": (
        replace(DB, "kernconf: DB}", 'kernconf: "DB\\n"}'),
        f"{DB}:7:",
        "hosts.db2.kernconf: 'DB\\n' contains a control character",
    ),
    "path-metacharacter": (
        replace(LAB, "wrkdirprefix: /var/ports", "wrkdirprefix: '/var/$(id)'"),
        f"{LAB}:12:17:",
        "ports.wrkdirprefix: '/var/$(id)' is not a valid absolute path: it contains the shell"
        " metacharacter(s) $ ( )",
    ),
    "path-newline": (
        replace("fleet.yaml", "tree: /usr/ports", 'tree: "/usr/ports\\n; id"'),
        "fleet.yaml:9:9:",
        "is not a valid absolute path: it contains the control character '\\n'",
    ),
    "path-dotdot": (
        replace(LAB, "distdir: /usr/ports/distfiles", "distdir: /usr/ports/../../etc"),
        f"{LAB}:11:12:",
        "ports.distdir: '/usr/ports/../../etc' is not a valid absolute path: it contains a '..'"
        " component",
    ),
    "path-relative": (
        replace(LAB, "packages: /usr/ports/packages", "packages: usr/ports/packages"),
        f"{LAB}:13:13:",
        "is not a valid absolute path: it is not absolute",
    ),
    "branch-leading-dash": (
        replace("fleet.yaml", "branch: stable/14", "branch: --upload-pack=id"),
        "fleet.yaml:5:11:",
        "source.branch: '--upload-pack=id' is not a valid branch name",
    ),
    "revision-short": (
        lambda repo: set_revision(repo, "5a3e9b1c2d4f"),
        "fleet.yaml:6:13:",
        "source.revision: '5a3e9b1c2d4f' is not a valid full commit id: it has 12 characters",
    ),
    "revision-not-hex": (
        lambda repo: set_revision(repo, "z" * 40),
        "fleet.yaml:6:13:",
        "is not a valid full commit id: it is not lower-case hexadecimal",
    ),
    "revision-all-digits-unquoted": (
        lambda repo: set_revision(repo, "1" * 40),
        "fleet.yaml:6:13:",
        "source.revision: must be a string, not an integer (hint: quote the value",
    ),
    "host-missing-from-known-hosts": (
        lambda repo: (repo / "known_hosts").write_text(
            "".join(
                line + "\n"
                for line in (repo / "known_hosts").read_text().splitlines()
                if not line.startswith("web2,")
            )
        ),
        f"{LAB}:9:3:",
        "host 'web2' has no key in known_hosts (looked for web2 or 127.0.0.14)",
    ),
    "known-hosts-missing": (
        lambda repo: (repo / "known_hosts").unlink(),
        "known_hosts:0:0:",
        "missing file",
    ),
    "malformed-known-hosts-line": (
        append("known_hosts", "web9 ssh-ed25519\n"),
        "known_hosts:9:1:",
        "malformed known_hosts line",
    ),
    "not-utf8-yaml": (
        write_bytes(DB, b"arch: amd64\nbuild_host: db\xe91\n"),
        f"{DB}:2:15:",
        "not UTF-8: byte 0xe9",
    ),
    "not-utf8-make-conf": (
        write_bytes("buildsets/lab/make.conf", b"# caf\xe9\n"),
        "buildsets/lab/make.conf:1:6:",
        "not UTF-8",
    ),
    "kernel-file-bad-name": (
        write_bytes("kernels/WEB;id", b"ident WEB\n"),
        "kernels/WEB;id:0:0:",
        "'WEB;id' is not a valid kernel config name",
    ),
    "kernel-ident-mismatch": (
        replace("kernels/WEB", "ident   WEB", "ident   WWW"),
        "kernels/WEB:6:1:",
        "the kernel's ident is 'WWW', not 'WEB'",
    ),
    "kernel-without-ident": (
        replace("kernels/WEB", "ident   WEB", "# no ident"),
        "kernels/WEB:1:1:",
        "the kernel's ident is 'GENERIC' (from the included stock GENERIC), not 'WEB'",
    ),
    "kernel-file-shadows-stock": (
        write_bytes("kernels/GENERIC", b"ident GENERIC\n"),
        "kernels/GENERIC:0:0:",
        "GENERIC is a stock kernel config; this file would replace it",
    ),
    "make-conf-missing": (
        lambda repo: (repo / "buildsets/db/make.conf").unlink(),
        "buildsets/db/make.conf:0:0:",
        "missing file",
    ),
    "empty-yaml-file": (
        write_bytes(DB, b"# nothing yet\n"),
        f"{DB}:1:1:",
        "the file is empty",
    ),
    "yaml-not-a-mapping": (
        write_bytes(DB, b"- arch\n- amd64\n"),
        f"{DB}:1:1:",
        "(top level): must be a mapping, not a list",
    ),
    "duplicate-address": (
        replace(DB, "127.0.0.22", "127.0.0.21"),
        f"{DB}:7:",
        "hosts.db2.address: 127.0.0.21:22 is also the address of host 'db1'",
    ),
    "kernel-include-missing": (
        replace("kernels/WEB", "include GENERIC", "include GENERIC\ninclude WEB-EXTRA"),
        "kernels/WEB:6:1:",
        "include 'WEB-EXTRA' names no file in kernels/ or in the stock kernel configs",
    ),
    "kernel-include-absolute": (
        replace("kernels/WEB", "include GENERIC", "include /root/mykernel.inc"),
        "kernels/WEB:5:1:",
        "include '/root/mykernel.inc' names no file in kernels/",
    ),
    "kernel-include-quoted-missing": (
        replace("kernels/WEB", "include GENERIC", 'include GENERIC\ninclude "../../conf/std.nope"'),
        "kernels/WEB:6:1:",
        "include '../../conf/std.nope' names no file",
    ),
    "make-conf-trailing-backslash": (
        append("buildsets/lab/make.conf", "CFLAGS+=-O2 \\\n"),
        "buildsets/lab/make.conf:6:13:",
        "the last line ends with '\\': make(1) would join the first line the reconciler adds",
    ),
    "src-conf-trailing-backslash-no-newline": (
        append("buildsets/db/src.conf", "WITHOUT_GAMES=yes \\"),
        "buildsets/db/src.conf:8:19:",
        "the last line ends with '\\'",
    ),
    "make-conf-unclosed-if": (
        append("buildsets/lab/make.conf", ".if ${.CURDIR:M*/usr/ports*}\nWITH_DEBUG=yes\n"),
        "buildsets/lab/make.conf:6:2:",
        "this .if is never closed with .endif: the lines the reconciler adds",
    ),
    "src-conf-unclosed-for": (
        append("buildsets/db/src.conf", ". for o in GAMES PPP\nWITHOUT_${o}=yes\n"),
        "buildsets/db/src.conf:8:3:",
        "this .for is never closed with .endfor",
    ),
    "make-conf-endif-without-if": (
        append("buildsets/lab/make.conf", ".endif\n"),
        "buildsets/lab/make.conf:6:2:",
        ".endif without a matching .if",
    ),
    "git-url-host-is-an-option": (
        replace(
            "fleet.yaml",
            "url: https://git.freebsd.org/src.git",
            "url: ssh://-oProxyCommand/src.git",
        ),
        "fleet.yaml:4:8:",
        "source.url: the host part '-oProxyCommand' starts with '-'",
    ),
    "git-url-user-is-an-option": (
        replace(
            "fleet.yaml",
            "url: https://git.freebsd.org/src.git",
            "url: ssh://-oProxyCommand@git.example.org/src.git",
        ),
        "fleet.yaml:4:8:",
        "source.url: the host part '-oProxyCommand' starts with '-'",
    ),
    "billion-laughs": (
        write_bytes(
            DB,
            b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + b"".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode()
                for i in range(6)
            ),
        ),
        f"{DB}:1:1:",
        "document too large or too deep after expanding aliases",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES), ids=str)
def test_bad_input_fails_with_its_own_message(
    case: str, repo: Path, validate: Callable[..., Result]
) -> None:
    mutate, where, message = CASES[case]
    mutate(repo)
    result = validate(repo)
    assert result.code == 1, result.out
    lines = result.out.splitlines()
    assert len(lines) == 1, f"expected exactly one problem, got:\n{result.out}"
    assert lines[0].startswith(where), lines[0]
    assert message in lines[0], lines[0]
    assert "config repo is invalid: 1 problem" in result.err


def test_closed_conditionals_and_stock_includes_pass(
    repo: Path, validate: Callable[..., Result]
) -> None:
    """The rules above reject only what a host would refuse: these are fine."""
    append("buildsets/lab/make.conf", ".if defined(X)\nA=1 \\\n  2\n.else\nA=3\n.endif\n")(repo)
    append("buildsets/db/src.conf", ".for o in GAMES\nWITHOUT_${o}=yes\n.endfor\n")(repo)
    edit(repo / "kernels/WEB", "include GENERIC", 'include GENERIC\ninclude "std.nodebug"')
    edit(repo / "kernels/DB", "ident", 'include "../../conf/std.nodebug"\nident')
    result = validate(repo)
    assert result.code == 0, result.out


def test_empty_repo(tmp_path: Path, validate: Callable[..., Result]) -> None:
    result = validate(tmp_path)
    assert result.code == 1
    assert result.out == (
        "fleet.yaml:0:0: the config repo is empty (no fleet.yaml, buildsets/, known_hosts)"
        " (hint: start from a copy of example-repo/ and see its README.md)\n"
    )


def test_file_of_50_mib_is_refused_unread(repo: Path, validate: Callable[..., Result]) -> None:
    big = repo / "buildsets/lab/src.conf"
    with big.open("r+b") as handle:
        handle.truncate(50 << 20)  # sparse: instant, and nothing ever reads it
    result = validate(repo)
    assert result.code == 1
    assert result.out.splitlines() == [
        "buildsets/lab/src.conf:0:0: file is 50.0 MiB; the limit is 1 MiB"
        " (hint: config files are small text files; is this the right file?)"
    ]


def test_symlink_is_refused(repo: Path, validate: Callable[..., Result]) -> None:
    (repo / "kernels/WEB").unlink()
    (repo / "kernels/WEB").symlink_to("/etc/hostname")
    result = validate(repo)
    assert result.code == 1
    assert "kernels/WEB:0:0: is a symbolic link, not a regular file" in result.out


def test_every_problem_is_listed_not_just_the_first(
    repo: Path, validate: Callable[..., Result]
) -> None:
    for mutate, _, _ in (CASES["misspelt-field"], CASES["revision-short"], CASES["no-test-host"]):
        mutate(repo)
    append("buildsets/lab/make.conf", "DESTDIR=/mnt\n")(repo)
    result = validate(repo)
    assert result.code == 1
    assert [line.split(":", 1)[0] for line in result.out.splitlines()] == [
        DB,
        LAB,
        "buildsets/lab/make.conf",
        "fleet.yaml",
    ]


def test_missing_repo_is_a_user_error(tmp_path: Path, validate: Callable[..., Result]) -> None:
    result = validate(tmp_path / "nowhere")
    assert result.code == 1
    assert result.out == ""
    assert "no such directory" in result.err
