"""Bad input in the ports half of a config repo: exit 1, file:line:col, one message each.

The same harness as test_config_bad_input.py: each case mutates a fresh copy
of example-repo (whose lab set lists packages, extras for builder, a
ports/make.conf and an options file for www/nginx; db lists one package)
and must yield exactly the one problem named, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.config.conftest import Result, edit
from tests.packages_overlay import add_packages


@pytest.fixture
def repo(repo: Path) -> Path:
    """example-repo's copy with the packages of docs/packages.md (tests/packages_overlay.py)."""
    return add_packages(repo)


LAB = "buildsets/lab/buildset.yaml"
DB = "buildsets/db/buildset.yaml"
OPTIONS = "buildsets/lab/ports/options/www_nginx/options"
PORTS_MAKE_CONF = "buildsets/lab/ports/make.conf"
FLEET_PORTS_PIN = (
    "  url: https://git.freebsd.org/ports.git"
    "   # the simulated fleet plays it, as it plays src.git\n"
    "  branch: main\n"
)


def replace(relpath: str, old: str, new: str) -> Callable[[Path], object]:
    return lambda repo: edit(repo / relpath, old, new)


def append(relpath: str, text: str) -> Callable[[Path], object]:
    def mutate(repo: Path) -> None:
        with (repo / relpath).open("a", encoding="utf-8") as handle:
            handle.write(text)

    return mutate


def write(relpath: str, text: str) -> Callable[[Path], object]:
    def mutate(repo: Path) -> None:
        (repo / relpath).parent.mkdir(parents=True, exist_ok=True)
        (repo / relpath).write_text(text, encoding="utf-8")

    return mutate


def both(*mutations: Callable[[Path], object]) -> Callable[[Path], object]:
    def mutate(repo: Path) -> None:
        for mutation in mutations:
            mutation(repo)

    return mutate


def _drop_db_packages(repo: Path) -> None:
    edit(repo / DB, "packages:\n  origins:\n    - databases/postgresql16-server\n", "")


def _unpin_ports(repo: Path) -> None:
    text = (repo / "fleet.yaml").read_text()
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if not line.startswith(
            ("  url: https://git.freebsd.org/ports", "  branch: main", "  revision: b89d")
        )
    ]
    (repo / "fleet.yaml").write_text("".join(kept))


# id -> (mutation, expected "path:line:col" prefix, expected message fragment)
CASES: dict[str, tuple[Callable[[Path], object], str, str]] = {
    "origin-without-slash": (
        replace(LAB, "    - www/nginx", "    - nginx"),
        f"{LAB}:27:7:",
        "packages.origins.0: 'nginx' is not a valid port origin: it has no '/' between category"
        " and port",
    ),
    "origin-two-slashes": (
        replace(LAB, "    - www/nginx", "    - www/nginx/extra"),
        f"{LAB}:27:7:",
        "it has more than one '/'",
    ),
    "origin-shell-metacharacter": (
        replace(LAB, "    - www/nginx", "    - 'www/nginx; id'"),
        f"{LAB}:27:7:",
        "'www/nginx; id' is not a valid port origin: it contains the shell metacharacter(s) ;",
    ),
    "origin-command-substitution": (
        replace(LAB, "    - security/sudo", "    - 'security/$(id)'"),
        f"{LAB}:28:7:",
        "it contains the shell metacharacter(s) $ ( )",
    ),
    "origin-newline": (
        replace(LAB, "    - security/sudo", '    - "security/sudo\\n"'),
        f"{LAB}:28:7:",
        "packages.origins.1: 'security/sudo\\n' contains a control character",
    ),
    "origin-empty-flavor": (
        replace(LAB, "devel/py-six@py311", "devel/py-six@"),
        f"{LAB}:29:7:",
        "nothing follows '@'",
    ),
    "origin-upper-case-category": (
        replace(LAB, "    - www/nginx", "    - WWW/nginx"),
        f"{LAB}:27:7:",
        "its category has upper-case letters",
    ),
    "origin-listed-twice": (
        replace(LAB, "    - security/sudo", "    - www/nginx"),
        f"{LAB}:28:7:",
        "packages.origins[1]: 'www/nginx' is listed twice (first as item 0)",
    ),
    "origins-empty": (
        replace(
            LAB,
            "  origins:\n    - www/nginx\n    - security/sudo\n    - devel/py-six@py311\n",
            "  origins: []\n",
        ),
        f"{LAB}:26:12:",
        "packages.origins: must not be empty",
    ),
    "extras-for-unknown-host": (
        replace(LAB, "    builder: [sysutils/tmux]", "    buildr: [sysutils/tmux]"),
        f"{LAB}:31:5:",
        "packages.hosts.buildr: no host 'buildr' in build set 'lab' (hint: did you mean"
        " 'builder'?)",
    ),
    "extras-for-host-of-other-set": (
        replace(LAB, "    builder: [sysutils/tmux]", "    db1: [sysutils/tmux]"),
        f"{LAB}:31:5:",
        "packages.hosts.db1: no host 'db1' in build set 'lab'",
    ),
    "extras-repeat-set-origin": (
        replace(LAB, "    builder: [sysutils/tmux]", "    builder: [www/nginx]"),
        f"{LAB}:31:15:",
        "packages.hosts.builder[0]: 'www/nginx' is already in packages.origins",
    ),
    "extras-listed-twice": (
        replace(LAB, "[sysutils/tmux]", "[sysutils/tmux, sysutils/tmux]"),
        f"{LAB}:31:30:",
        "packages.hosts.builder[1]: 'sysutils/tmux' is listed twice",
    ),
    "packages-unknown-key": (
        replace(LAB, "  hosts:\n    builder", "  cache: yes\n  hosts:\n    builder"),
        f"{LAB}:30:3:",
        "packages: unknown key 'cache'",
    ),
    "packages-bad-method": (
        append(LAB, "  method: pkgng\n"),
        f"{LAB}:32:11:",
        "packages.method: 'pkgng' is not one of poudriere, make",
    ),
    "packages-signing-without-pubkey": (
        append(LAB, "  signing: {key: /usr/local/etc/ssl/keys/pkg.key}\n"),
        f"{LAB}:32:12:",
        "packages.signing: missing required key 'pubkey'",
    ),
    "packages-signing-relative-key": (
        append(LAB, "  signing: {key: pkg.key, pubkey: /usr/local/etc/ssl/pkg.pub}\n"),
        f"{LAB}:32:",
        "packages.signing.key: 'pkg.key' is not a valid absolute path: it is not absolute",
    ),
    "packages-without-pinned-ports": (
        both(_unpin_ports, _drop_db_packages),
        f"{LAB}:25:1:",
        "build set 'lab' lists packages, but fleet.yaml pins no ports tree (hint: add url,"
        " branch and revision under ports: in fleet.yaml",
    ),
    "ports-revision-without-url-and-branch": (
        replace("fleet.yaml", FLEET_PORTS_PIN, ""),
        "fleet.yaml:10:3:",
        "ports: revision without url and branch",
    ),
    "ports-url-metacharacter": (
        replace("fleet.yaml", "https://git.freebsd.org/ports.git", "'https://x.org/p.git;id'"),
        "fleet.yaml:10:8:",
        "ports.url: 'https://x.org/p.git;id' is not a valid git URL",
    ),
    "ports-branch-leading-dash": (
        replace("fleet.yaml", "  branch: main", "  branch: --upload-pack=id"),
        "fleet.yaml:11:11:",
        "ports.branch: '--upload-pack=id' is not a valid branch name",
    ),
    "ports-revision-short": (
        replace(
            "fleet.yaml", "revision: b89d065344ec86b694bca4d508973ba5c87a7d8c", "revision: b89d0653"
        ),
        "fleet.yaml:12:13:",
        "ports.revision: 'b89d0653' is not a valid full commit id: it has 8 characters, not 40",
    ),
    "options-for-unlisted-port": (
        write("buildsets/lab/ports/options/www_apache24/options", "OPTIONS_FILE_SET+=SSL\n"),
        "buildsets/lab/ports/options/www_apache24/options:0:0:",
        "options for 'www_apache24', a port build set 'lab' does not build",
    ),
    "options-misspelt-port": (
        write("buildsets/lab/ports/options/security_sud/options", "OPTIONS_FILE_SET+=NLS\n"),
        "buildsets/lab/ports/options/security_sud/options:0:0:",
        "(hint: did you mean 'security_sudo'?)",
    ),
    "options-not-an-options-line": (
        append(OPTIONS, "WITH_DEBUG=yes\n"),
        f"{OPTIONS}:7:1:",
        "not an options line: 'WITH_DEBUG=yes' (hint: options files hold OPTIONS_FILE_SET+=NAME",
    ),
    "options-shell-in-options-file": (
        append(OPTIONS, "OPTIONS_FILE_SET+=$(id)\n"),
        f"{OPTIONS}:7:1:",
        "not an options line",
    ),
    "options-lower-case-name": (
        append(OPTIONS, "OPTIONS_FILE_SET+=ipv6\n"),
        f"{OPTIONS}:7:19:",
        "'ipv6' is not an option name",
    ),
    "options-set-and-unset": (
        append(OPTIONS, "OPTIONS_FILE_SET+=DEBUG\n"),
        f"{OPTIONS}:7:19:",
        "option DEBUG is set here and unset on line 6",
    ),
    "options-entry-not-a-directory": (
        write("buildsets/lab/ports/options/README", "notes\n"),
        "buildsets/lab/ports/options/README:0:0:",
        "'README' is not a port's options directory",
    ),
    "options-directory-without-file": (
        lambda repo: (repo / "buildsets/lab/ports/options/security_sudo").mkdir(),
        "buildsets/lab/ports/options/security_sudo/options:0:0:",
        "missing file",
    ),
    "options-stray-file": (
        write("buildsets/lab/ports/options/www_nginx/options.orig", "x\n"),
        "buildsets/lab/ports/options/www_nginx/options.orig:0:0:",
        "unexpected entry",
    ),
    "ports-make-conf-sets-portsdir": (
        append(PORTS_MAKE_CONF, "PORTSDIR=/usr/ports2\n"),
        f"{PORTS_MAKE_CONF}:3:1:",
        "sets PORTSDIR, which the reconciler owns for the ports build",
    ),
    "ports-make-conf-sets-port-dbdir": (
        append(PORTS_MAKE_CONF, "  PORT_DBDIR?=/var/db/ports2\n"),
        f"{PORTS_MAKE_CONF}:3:3:",
        "sets PORT_DBDIR, which the reconciler owns for the ports build (hint: remove it: the"
        " options come from buildsets/<set>/ports/options/",
    ),
    "ports-make-conf-control-character": (
        append(PORTS_MAKE_CONF, "CFLAGS+=-O2\x1b[2J\n"),
        f"{PORTS_MAKE_CONF}:3:1:",
        "contains a control character",
    ),
    "ports-directory-without-packages": (
        both(_drop_db_packages, write("buildsets/db/ports/make.conf", "CFLAGS+=-O2\n")),
        "buildsets/db/ports:0:0:",
        "build set 'db' lists no packages, so nothing reads its ports/ directory",
    ),
    "ports-directory-stray-file": (
        write("buildsets/lab/ports/README", "notes\n"),
        "buildsets/lab/ports/README:0:0:",
        "unexpected entry",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES), ids=str)
def test_bad_packages_input_fails_with_its_own_message(
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


def test_the_example_repo_lists_packages_and_validates(
    repo: Path, validate: Callable[..., Result]
) -> None:
    result = validate(repo)
    assert result.code == 0, result.out
