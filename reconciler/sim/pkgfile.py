"""Simulated pkg packages and repositories, in pkg's on-disk layout.

A package file (``All/<name>-<version>.pkg``) is a tar archive whose first
members are ``+COMPACT_MANIFEST`` and ``+MANIFEST`` (JSON, which pkg's UCL
parser reads), followed by the files under their absolute paths
(libpkg/pkg_create.c, pkg_manifest.c). A repository (pkg-repository(5),
libpkg/pkg_repo_create.c) holds ``meta.conf`` (UCL: version 2,
packing_format, the catalogue names), ``packagesite.pkg`` (an archive with
``packagesite.yaml``: one compact manifest per line, plus ``path``,
``repopath``, ``pkgsize`` and ``sum``) and ``data.pkg`` (``data``: JSON with
``packages``).

Real pkg compresses with zstd (``tzst``) by default; the simulator writes
``txz`` (xz), which pkg reads as well and meta.conf names, because Python's
standard library has no zstd before 3.14.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from reconciler.sim import pkgsign

PACKING_FORMAT = "txz"
META_CONF = (
    "version = 2;\n"
    f'packing_format = "{PACKING_FORMAT}";\n'
    'manifests = "packagesite.yaml";\n'
    'data = "data";\n'
    'filesite = "filesite.yaml";\n'
    'manifests_archive = "packagesite";\n'
    'filesite_archive = "filesite";\n'
)
#: Keys of a compact manifest, in the order pkg_emit_object emits them.
COMPACT_KEYS = (
    "name",
    "origin",
    "version",
    "comment",
    "maintainer",
    "www",
    "abi",
    "arch",
    "prefix",
    "flatsize",
    "licenselogic",
    "licenses",
    "desc",
    "deps",
    "categories",
    "users",
    "groups",
    "options",
    "annotations",
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _member(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1717502400
    info.uname = info.gname = "root"
    return info, io.BytesIO(data)


def write_package(path: Path, manifest: dict[str, Any], files: dict[str, bytes]) -> None:
    """Write ``path``: the manifests, then ``files`` (absolute path -> content)."""
    full = dict(manifest)
    full["flatsize"] = sum(len(data) for data in files.values())
    full["files"] = {p: f"1${sha256(data)}" for p, data in sorted(files.items())}
    compact = {k: full[k] for k in COMPACT_KEYS if k in full}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with tarfile.open(tmp, "w:xz") as archive:
        archive.addfile(*_member("+COMPACT_MANIFEST", json.dumps(compact).encode()))
        archive.addfile(*_member("+MANIFEST", json.dumps(full).encode()))
        for file_path, data in sorted(files.items()):
            executable = "/bin/" in file_path or "/sbin/" in file_path or "/rc.d/" in file_path
            archive.addfile(*_member(file_path, data, 0o755 if executable else 0o644))
    os.replace(tmp, path)


def read_package(path: Path) -> tuple[dict[str, Any], dict[str, tuple[bytes, int]]]:
    """(the +MANIFEST, absolute path -> (content, mode)) of a package file."""
    files: dict[str, tuple[bytes, int]] = {}
    manifest: dict[str, Any] = {}
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            handle = archive.extractfile(member)
            data = handle.read() if handle is not None else b""
            if member.name == "+MANIFEST":
                manifest = json.loads(data)
            elif member.name.startswith("/"):
                files[member.name] = (data, member.mode)
    if not manifest:
        raise ValueError(f"{path}: not a package (no +MANIFEST)")
    return manifest, files


def _archive(path: Path, name: str, data: bytes, key: Path | None) -> None:
    """One catalogue archive; signed with ``key``, its ``signature`` member first (pkgsign.py)."""
    signature = pkgsign.sign(key, data) if key is not None else None
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with tarfile.open(tmp, "w:xz") as archive:
        if signature is not None:
            archive.addfile(*_member(pkgsign.SIGNATURE_MEMBER, signature))
        archive.addfile(*_member(name, data))
    os.replace(tmp, path)


def write_repo(repo: Path, key: Path | None = None) -> list[dict[str, Any]]:
    """``pkg repo REPO [KEY]``: the catalogue of every ``*.pkg`` below ``repo``, signed with KEY.

    Latest/ and directories starting with '.' are not traversed (pkg-repo(8)).
    A key that cannot be read or loaded fails before anything is written.
    """
    if key is not None:
        pkgsign.sign(key, b"")  # pkg checks the key before packing (ossl_sign: access)
    entries: list[dict[str, Any]] = []
    for pkg in sorted(repo.rglob("*.pkg")):
        rel = pkg.relative_to(repo)
        if (
            rel.parts[0] in ("Latest",)
            or any(p.startswith(".") for p in rel.parts)
            or (len(rel.parts) == 1)
        ):
            continue  # Latest/ and dot directories are not traversed; top-level .pkg are ours
        manifest, _ = read_package(pkg)
        raw = pkg.read_bytes()
        entry = {k: manifest[k] for k in COMPACT_KEYS if k in manifest}
        entry.update(
            {"sum": sha256(raw), "path": str(rel), "repopath": str(rel), "pkgsize": len(raw)}
        )
        entries.append(entry)
    site = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
    _archive(repo / "packagesite.pkg", "packagesite.yaml", site.encode(), key)
    data = json.dumps({"groups": [], "packages": entries}).encode()
    _archive(repo / "data.pkg", "data", data, key)
    for name in ("meta", "meta.conf"):
        (repo / name).write_text(META_CONF, encoding="utf-8")
    return entries


class RepoError(Exception):
    """The repository cannot be read (the message is pkg's)."""


def read_catalogue(
    repo: Path, url: str, pubkey: tuple[str, Path] | None = None
) -> list[dict[str, Any]]:
    """The packages a repository offers, from meta.conf and packagesite.pkg.

    ``pubkey`` (the configured path, the file as this pkg opens it) is given
    for a repository with ``signature_type: "pubkey"``: the catalogue must be
    signed by its key (pkgsign.verify).
    """
    meta = repo / "meta.conf"
    if not meta.is_file():
        raise RepoError(f"{url}/meta.conf: No such file or directory")
    if f'packing_format = "{PACKING_FORMAT}"' not in meta.read_text(encoding="utf-8"):
        raise RepoError(f"{url}/meta.conf: unsupported packing format")
    site = repo / "packagesite.pkg"
    try:
        with tarfile.open(site, "r:*") as archive:
            handle = archive.extractfile("packagesite.yaml")
            raw = handle.read() if handle is not None else b""
            signed = pkgsign.SIGNATURE_MEMBER in archive.getnames()
            sig = archive.extractfile(pkgsign.SIGNATURE_MEMBER) if signed else None
            signature = sig.read() if sig is not None else None
    except (OSError, KeyError, tarfile.TarError) as exc:
        raise RepoError(f"{url}/packagesite.pkg: No such file or directory") from exc
    if pubkey is not None:
        try:
            pkgsign.verify(pubkey[0], pubkey[1], signature, raw)
        except pkgsign.SignError as exc:
            raise RepoError(str(exc)) from exc
    text = raw.decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]
