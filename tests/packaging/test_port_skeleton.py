"""packaging/freebsd: the port skeleton, read by BSD make and run against the real sdist.

No ports tree is here, so ``bsd.port.mk`` is an empty stand-in: bmake (FreeBSD's
make, Debian's build of it) parses the port's Makefile and expands its
variables, and its own ``post-patch``/``post-install`` recipes run for real on
the extracted sdist, with the commands the framework would supply
(REINPLACE_CMD is ``sed -i.bak`` there too). What the recipes stage must be
exactly what pkg-plist lists.
"""

from __future__ import annotations

import re
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest

from reconciler.settings import STATE_DIRS, load_settings
from tests.packaging.tree import ROOT, build, copy_tree

PORT = ROOT / "packaging" / "freebsd"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PREFIX = "/opt/reconciler-port-test"  # not /usr/local: the PREFIX substitution must show
SPDX_TO_PORTS = {"BSD-2-Clause": "BSD2CLAUSE"}


def _make(tmp_path: Path, *args: str, **variables: str) -> str:
    mk = tmp_path / "mk"
    mk.mkdir(exist_ok=True)
    for stand_in in ("sys.mk", "bsd.port.mk"):
        (mk / stand_in).write_text("# stand-in: no ports framework here\n")
    done = subprocess.run(
        ["bmake", "-m", str(mk), "-f", str(PORT / "Makefile"), *args]
        + [f"{k}={v}" for k, v in variables.items()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"bmake {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _var(tmp_path: Path, name: str) -> str:
    flavor = {"PYTHON_PKGNAMEPREFIX": "py311-", "PY_FLAVOR": "py311"}
    return _make(tmp_path, "-V", f"${{{name}}}", **flavor).strip()


def test_makefile_agrees_with_pyproject(tmp_path: Path) -> None:
    project = PYPROJECT["project"]
    assert _var(tmp_path, "PORTNAME") == project["name"]
    assert _var(tmp_path, "DISTVERSION") == project["version"]
    assert _var(tmp_path, "LICENSE") == SPDX_TO_PORTS[project["license"]]
    minimum = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"])
    assert minimum is not None
    assert _var(tmp_path, "USES").split() == [f"python:{minimum.group(1)}+"]
    assert set(_var(tmp_path, "USE_PYTHON").split()) == {"autoplist", "pep517"}


#: PyPI names the ports tree spells otherwise (devel/py-dateutil, PORTNAME=dateutil).
_PORT_NAMES = {"python-dateutil": "dateutil"}


def _normal(name: str) -> str:
    """PEP 503: case and runs of -_. do not tell packages apart."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_run_depends_are_the_pyproject_dependencies(tmp_path: Path) -> None:
    wanted = {}
    for requirement in PYPROJECT["project"]["dependencies"]:
        parsed = re.fullmatch(r"([A-Za-z0-9._-]+)>=([\d.]+)", requirement)
        assert parsed is not None, f"{requirement}: not NAME>=VERSION, which the port mirrors"
        name = _normal(parsed.group(1))
        wanted[_PORT_NAMES.get(name, name)] = parsed.group(2)
    python, other = {}, []
    for entry in _var(tmp_path, "RUN_DEPENDS").split():
        # The ports tree spells some names its own way (py-Jinja2, py-prometheus-client).
        found = re.fullmatch(r"py311-([A-Za-z0-9._-]+)>=([\d.]+):([a-z-]+/py-\1)@py311", entry)
        if found:
            python[_normal(found.group(1))] = found.group(2)
        else:
            other.append(entry)
    assert python == wanted
    assert other == ["git:devel/git"]  # the config repo and its ledger are git


@pytest.fixture(scope="module")
def wrksrc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, built from this tree and extracted as the port's fetch + extract would."""
    base = tmp_path_factory.mktemp("port")
    build(copy_tree(base / "tree"), base / "dist", "--sdist")
    (sdist,) = (base / "dist").glob("reconciler-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(base / "work", filter="data")
    return base / "work" / f"reconciler-{PYPROJECT['project']['version']}"


def _plist() -> tuple[set[str], set[str]]:
    files, dirs = set(), set()
    for line in (PORT / "pkg-plist").read_text().splitlines():
        line = line.replace("%%ETCDIR%%", "etc/reconciler")
        if line.startswith("@dir "):
            dirs.add(line.removeprefix("@dir "))
        elif line.startswith("@sample "):
            files.add(line.removeprefix("@sample "))
        elif line and not line.startswith("@"):
            files.add(line)
    return files, dirs


def test_recipes_stage_exactly_the_plist(tmp_path: Path, wrksrc: Path) -> None:
    stage = tmp_path / "stage"
    root = stage / PREFIX.lstrip("/")
    (root / "etc" / "rc.d").mkdir(parents=True)  # the framework's mtree (BSD.local.dist) has it
    _make(
        tmp_path,
        "post-patch",
        "post-install",
        WRKSRC=str(wrksrc),
        STAGEDIR=str(stage),
        PREFIX=PREFIX,
        ETCDIR=f"{PREFIX}/etc/reconciler",
        INSTALL_SCRIPT="install -m 555",
        INSTALL_DATA="install -m 0644",
        MKDIR="mkdir -p",
        REINPLACE_CMD="sed -i.bak",
    )
    staged = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    files, dirs = _plist()
    assert staged == files
    for directory in dirs:
        assert (root / directory).is_dir() and not any((root / directory).iterdir())

    rc = root / "etc" / "rc.d" / "reconciler"
    assert rc.stat().st_mode & 0o777 == 0o555
    text = rc.read_text()
    assert "/usr/local" not in text
    assert f"{PREFIX}/bin/reconciler run --config ${{reconciler_config}}" in text
    assert f'reconciler_config:="{PREFIX}/etc/reconciler.toml"' in text
    assert f'reconciler_dbdir:="{STATE_DIRS["freebsd"]}"' in text
    # The staged sample still loads, and names the signers file in the port's ETCDIR.
    sample = root / "etc" / "reconciler.toml.sample"
    assert load_settings(sample).ssh_key == ""
    assert f'#allowed_signers = "{PREFIX}/etc/reconciler/allowed_signers"' in sample.read_text()
    # ...which the package's own default then agrees with.
    settings_py = (wrksrc / "reconciler" / "settings.py").read_text()
    assert f'"freebsd": "{PREFIX}/etc/reconciler"' in settings_py
    newsyslog = (root / "etc" / "newsyslog.conf.d" / "reconciler.conf").read_text()
    assert "/var/log/reconciler.log" in newsyslog


def test_pkg_message_and_descr(tmp_path: Path) -> None:
    assert _var(tmp_path, "SUB_FILES") == "pkg-message"
    message = (PORT / "files" / "pkg-message.in").read_text()
    assert message.lstrip().startswith("[") and message.rstrip().endswith("]")
    assert "type: install" in message and "<<EOM" in message and "\nEOM\n" in message
    for needed in (STATE_DIRS["freebsd"], "sysrc reconciler_enable=YES", "%%PREFIX%%"):
        assert needed in message
    assert "pw useradd reconciler" in message
    descr = (PORT / "pkg-descr").read_text().splitlines()
    assert descr and all(len(line) <= 80 for line in descr)
