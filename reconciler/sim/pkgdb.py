"""The simulated pkg's local database: ``<root>/var/db/pkg/local.sqlite``.

A real SQLite database with the tables of pkg's own that the simulator
uses (libpkg/pkgdb.c: packages, files, deps, annotation, pkg_annotation,
option, pkg_option), so the package database lives under the root pkg acts
on: the running system's, or a mounted boot environment's with ``-c``/``-r``.
Pattern matching follows libpkg/pkgdb_query.c (pkgdb_get_pattern_query): a
pattern without ``/`` is a name or name-version, ``category/port`` an origin,
``category/port@flavor`` an origin with that ``flavor`` annotation.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DBDIR = "var/db/pkg"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packages (
    id INTEGER PRIMARY KEY, origin TEXT NOT NULL, name TEXT NOT NULL UNIQUE,
    version TEXT NOT NULL, comment TEXT NOT NULL, desc TEXT NOT NULL, message TEXT,
    arch TEXT NOT NULL, maintainer TEXT NOT NULL, www TEXT, prefix TEXT NOT NULL,
    flatsize INTEGER NOT NULL, automatic INTEGER NOT NULL, locked INTEGER NOT NULL DEFAULT 0,
    licenselogic INTEGER NOT NULL DEFAULT 1, time INTEGER, manifestdigest TEXT,
    pkg_format_version INTEGER, dep_formula TEXT, vital INTEGER NOT NULL DEFAULT 0,
    repository TEXT);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, sha256 TEXT,
    package_id INTEGER REFERENCES packages(id) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS deps (origin TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    package_id INTEGER REFERENCES packages(id) ON DELETE CASCADE, UNIQUE(package_id, name));
CREATE TABLE IF NOT EXISTS annotation (annotation_id INTEGER PRIMARY KEY,
    annotation TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS pkg_annotation (
    package_id INTEGER REFERENCES packages(id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES annotation(annotation_id),
    value_id INTEGER NOT NULL REFERENCES annotation(annotation_id), UNIQUE(package_id, tag_id));
CREATE TABLE IF NOT EXISTS option (option_id INTEGER PRIMARY KEY, option TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS pkg_option (
    package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    option_id INTEGER NOT NULL REFERENCES option(option_id), value TEXT NOT NULL,
    PRIMARY KEY(package_id, option_id));
"""


@dataclass
class Installed:
    """One installed package, as pkg query sees it."""

    id: int
    name: str
    origin: str
    version: str
    comment: str
    automatic: bool
    prefix: str
    repository: str
    annotations: dict[str, str]
    options: dict[str, str]
    deps: list[tuple[str, str, str]]  # (name, origin, version)
    files: list[str]
    flatsize: int

    @property
    def flavor(self) -> str | None:
        return self.annotations.get("flavor")


def path(root: Path) -> Path:
    return root / DBDIR / "local.sqlite"


def exists(root: Path) -> bool:
    return path(root).is_file()


def connect(root: Path, *, create: bool = False) -> sqlite3.Connection | None:
    """The database under ``root`` (None when absent and not ``create``)."""
    db = path(root)
    if not db.is_file():
        if not create:
            return None
        db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.executescript(_SCHEMA)
    return conn


_INTERN = {
    "annotation": (
        "INSERT OR IGNORE INTO annotation(annotation) VALUES (?)",
        "SELECT annotation_id FROM annotation WHERE annotation = ?",
    ),
    "option": (
        "INSERT OR IGNORE INTO option(option) VALUES (?)",
        "SELECT option_id FROM option WHERE option = ?",
    ),
}


def _intern(conn: sqlite3.Connection, table: str, value: str) -> int:
    insert, select = _INTERN[table]
    conn.execute(insert, (value,))
    return int(conn.execute(select, (value,)).fetchone()[0])


def all_installed(conn: sqlite3.Connection) -> list[Installed]:
    rows = conn.execute(
        "SELECT id, name, origin, version, comment, automatic, prefix, repository, flatsize "
        "FROM packages ORDER BY name"
    ).fetchall()
    result = []
    for pid, name, origin, version, comment, automatic, prefix, repo, flatsize in rows:
        annotations = dict(
            conn.execute(
                "SELECT t.annotation, v.annotation FROM pkg_annotation p "
                "JOIN annotation t ON t.annotation_id = p.tag_id "
                "JOIN annotation v ON v.annotation_id = p.value_id WHERE p.package_id = ? "
                "ORDER BY t.annotation",
                (pid,),
            ).fetchall()
        )
        options = dict(
            conn.execute(
                "SELECT o.option, p.value FROM pkg_option p JOIN option o "
                "ON o.option_id = p.option_id WHERE p.package_id = ? ORDER BY o.option",
                (pid,),
            ).fetchall()
        )
        deps = conn.execute(
            "SELECT name, origin, version FROM deps WHERE package_id = ? ORDER BY name", (pid,)
        ).fetchall()
        files = [
            r[0]
            for r in conn.execute(
                "SELECT path FROM files WHERE package_id = ? ORDER BY path", (pid,)
            )
        ]
        result.append(
            Installed(
                pid,
                name,
                origin,
                version,
                comment,
                bool(automatic),
                prefix,
                repo or "unknown-repository",
                annotations,
                options,
                [(d[0], d[1], d[2]) for d in deps],
                files,
                flatsize,
            )
        )
    return result


def matches(pkg: Installed | dict[str, Any], pattern: str) -> bool:
    """pkgdb_get_pattern_query's exact match, for an installed package or a catalogue entry."""
    if isinstance(pkg, Installed):
        name, version, origin, flavor = pkg.name, pkg.version, pkg.origin, pkg.flavor
    else:
        name, version, origin = pkg["name"], pkg["version"], pkg["origin"]
        flavor = (pkg.get("annotations") or {}).get("flavor")
    if "/" not in pattern:
        return pattern in (name, f"{name}-{version}")
    if "@" not in pattern:
        return pattern == origin
    return pattern == f"{origin}@{flavor}"


def register(
    conn: sqlite3.Connection,
    manifest: dict[str, Any],
    files: dict[str, str],
    *,
    automatic: bool,
    repository: str,
) -> None:
    """Record an installed package (replacing one of the same name)."""
    conn.execute("DELETE FROM packages WHERE name = ?", (manifest["name"],))
    cur = conn.execute(
        "INSERT INTO packages (origin, name, version, comment, desc, arch, maintainer, www, "
        "prefix, flatsize, automatic, time, pkg_format_version, repository) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 2, ?)",
        (
            manifest["origin"],
            manifest["name"],
            manifest["version"],
            manifest.get("comment", ""),
            manifest.get("desc", ""),
            manifest.get("abi", ""),
            manifest.get("maintainer", ""),
            manifest.get("www", ""),
            manifest.get("prefix", "/usr/local"),
            int(manifest.get("flatsize", 0)),
            int(automatic),
            int(time.time()),
            repository,
        ),
    )
    pid = cur.lastrowid
    for file_path, digest in sorted(files.items()):
        conn.execute("DELETE FROM files WHERE path = ?", (file_path,))
        conn.execute(
            "INSERT INTO files (path, sha256, package_id) VALUES (?, ?, ?)",
            (file_path, digest, pid),
        )
    for dep_name, dep in sorted((manifest.get("deps") or {}).items()):
        conn.execute(
            "INSERT INTO deps (origin, name, version, package_id) VALUES (?, ?, ?, ?)",
            (dep["origin"], dep_name, dep["version"], pid),
        )
    annotations = dict(manifest.get("annotations") or {})
    if repository:
        annotations["repository"] = repository
    for tag, value in sorted(annotations.items()):
        conn.execute(
            "INSERT INTO pkg_annotation (package_id, tag_id, value_id) VALUES (?, ?, ?)",
            (
                pid,
                _intern(conn, "annotation", tag),
                _intern(conn, "annotation", value),
            ),
        )
    for option, value in sorted((manifest.get("options") or {}).items()):
        conn.execute(
            "INSERT INTO pkg_option (package_id, option_id, value) VALUES (?, ?, ?)",
            (pid, _intern(conn, "option", option), value),
        )


def unregister(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("DELETE FROM packages WHERE name = ?", (name,))


def set_automatic(conn: sqlite3.Connection, name: str, automatic: bool) -> None:
    conn.execute("UPDATE packages SET automatic = ? WHERE name = ?", (int(automatic), name))


def reverse_deps(conn: sqlite3.Connection, name: str) -> list[str]:
    """Names of the installed packages that depend on ``name``."""
    rows = conn.execute(
        "SELECT p.name FROM deps d JOIN packages p ON p.id = d.package_id WHERE d.name = ? "
        "ORDER BY p.name",
        (name,),
    ).fetchall()
    return [r[0] for r in rows]
