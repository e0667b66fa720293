"""A private copy of the project's ``example-repo`` for a simulated fleet.

``copy_example_repo(dest, subnet="127.0.5")`` copies example-repo, moves
every host address ``127.0.0.X`` to ``<subnet>.X`` and rewrites
``known_hosts`` to match, optionally pins ``source.revision``, and commits it
all with a fixed identity through :mod:`reconciler.gitutil` (inherited GIT_*
variables scrubbed, the user's git configuration ignored), so tests and demos
can run fleets side by side without colliding.

example-repo is package data: ``reconciler/example-repo`` is a link to the
project's top-level ``example-repo/`` in a checkout and a copy of it in an
installed wheel, so ``reconciler demo`` works from either.
"""

from __future__ import annotations

import os
import re
import shutil
from importlib import resources
from pathlib import Path

from reconciler.errors import SimError
from reconciler.gitutil import git
from reconciler.sim import hostkeys

#: The example operator's commit: fixed, so the copy's commit id is the same everywhere;
#: no system or global git configuration (a user's commit.gpgsign would otherwise apply).
_COMMIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Example Operator",
    "GIT_AUTHOR_EMAIL": "operator@example.invalid",
    "GIT_COMMITTER_NAME": "Example Operator",
    "GIT_COMMITTER_EMAIL": "operator@example.invalid",
    "GIT_AUTHOR_DATE": "2025-03-01T12:00:00Z",
    "GIT_COMMITTER_DATE": "2025-03-01T12:00:00Z",
}

_ADDRESS = re.compile(r"\b127\.0\.0\.(\d{1,3})\b")
_REVISION = re.compile(r"^(\s*revision:\s*)([0-9a-f]{40})(.*)$", re.M)


def _host_addresses(text: str, path: Path) -> dict[str, tuple[str, int]]:
    """name -> (address, port) of every host a buildset.yaml declares."""
    from ruamel.yaml import YAML  # late: only copies need it
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise SimError(f"{path}: not valid YAML: {exc}") from exc
    hosts = data.get("hosts") if isinstance(data, dict) else None
    found: dict[str, tuple[str, int]] = {}
    for name, spec in (hosts or {}).items():
        if isinstance(spec, dict) and "address" in spec:
            found[str(name)] = (str(spec["address"]), int(spec.get("port", 22)))
    return found


def example_repo_path() -> Path:
    """The example-repo shipped with the package (a directory on disk)."""
    path = Path(str(resources.files("reconciler").joinpath("example-repo")))
    if not (path / "fleet.yaml").is_file():
        raise SimError(
            f"example-repo not found at {path}: the reconciler package is incomplete; "
            "reinstall it (pip install --force-reinstall reconciler)"
        )
    return path


def copy_example_repo(
    dest: Path, *, subnet: str = "127.0.0", commit: bool = True, revision: str | None = None
) -> Path:
    """Copy example-repo to ``dest`` on ``subnet``; return ``dest``."""
    if not re.fullmatch(r"127\.\d{1,3}\.\d{1,3}", subnet):
        raise SimError(f"subnet must look like 127.N.M, not {subnet!r}")
    source = example_repo_path()
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".git"))
    names: dict[str, tuple[str, int]] = {}
    for path in sorted(dest.rglob("*.yaml")):
        text = _ADDRESS.sub(lambda m: f"{subnet}.{m.group(1)}", path.read_text(encoding="utf-8"))
        if path.name == "fleet.yaml" and revision is not None:
            # source.revision: the first one (ports.revision follows it)
            text = _REVISION.sub(lambda m: f"{m.group(1)}{revision}{m.group(3)}", text, count=1)
        path.write_text(text, encoding="utf-8")
        if path.name == "buildset.yaml":
            names.update(_host_addresses(text, path))
    known = dest / "known_hosts"
    header = [
        line for line in known.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    ]
    known.write_text(
        "\n".join(header + [hostkeys.known_hosts_line(n, a, p) for n, (a, p) in names.items()])
        + "\n",
        encoding="utf-8",
    )
    if commit:
        for args in (
            ("init", "-q", "-b", "main"),
            ("add", "-A"),
            ("commit", "-q", "-m", "Example fleet"),
        ):
            git(dest, *args, env=_COMMIT_ENV, error=SimError)
    return dest


# -- packages (docs/packages.md): example-repo pins the ports tree but lists none --------

_LAB_PACKAGES = """packages:                   # built once on builder, installed into each new BE
  origins:
    - www/nginx
    - security/sudo
    - devel/py-six@py311
  hosts:
    builder: [sysutils/tmux]      # extras for one host: built into the same repository
"""
_LAB_PORTS_MAKE_CONF = (
    "# make.conf lines for the lab set's ports build only (poudriere's <set>-make.conf).\n"
    "security_sudo_SET+=INSULTS\n"
)
_NGINX_OPTIONS = (
    "# Options for www/nginx, as 'poudriere options' writes them.\n"
    "_OPTIONS_READ=nginx-1.26.2,3\n"
    "_FILE_COMPLETE_OPTIONS_LIST=DEBUG HTTP2 HTTP_SSL IPV6 MAIL\n"
    "OPTIONS_FILE_SET+=HTTP_SSL\n"
    "OPTIONS_FILE_SET+=MAIL\n"
    "OPTIONS_FILE_UNSET+=DEBUG\n"
)
_DB_PACKAGES = """packages:
  origins:
    - databases/postgresql16-server
"""


def add_packages(repo: Path, *, lab: bool = True, db: bool = True) -> Path:
    """The packages of docs/packages.md on a copy of example-repo (not committed).

    example-repo lists none, so the many rollouts of it build and install
    none; the demo and the packages tests add these: lab's origins (with a
    flavor, and an extra for builder), its ports/make.conf and nginx's
    options in poudriere's layout, and db's one package (in place).
    """
    if lab:
        with (repo / "buildsets/lab/buildset.yaml").open("a", encoding="utf-8") as handle:
            handle.write(_LAB_PACKAGES)
        ports = repo / "buildsets/lab/ports"
        (ports / "options/www_nginx").mkdir(parents=True, exist_ok=True)
        (ports / "make.conf").write_text(_LAB_PORTS_MAKE_CONF, encoding="utf-8")
        (ports / "options/www_nginx/options").write_text(_NGINX_OPTIONS, encoding="utf-8")
    if db:
        with (repo / "buildsets/db/buildset.yaml").open("a", encoding="utf-8") as handle:
            handle.write(_DB_PACKAGES)
    return repo
