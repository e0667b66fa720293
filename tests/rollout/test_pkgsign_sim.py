"""The simulated pkg repo's signatures, checked as pkg checks them (reconciler/sim/pkgsign.py).

Real RSA keys and real files: a repository signed with one key is read with
its pubkey, refused with another key's or unsigned, in pkg's words.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from reconciler.sim import pkgfile, pkgsign


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("keys")
    pkgsign.new_key(base / "repo.key", base / "repo.pub")
    pkgsign.new_key(base / "other.key", base / "other.pub")
    return base


def _repo(base: Path, key: Path | None) -> Path:
    repo = base / "repo"
    pkgfile.write_package(
        repo / "All" / "hello-1.0.pkg",
        {"name": "hello", "origin": "misc/hello", "version": "1.0", "abi": "FreeBSD:14:amd64"},
        {"/usr/local/bin/hello": b"#!/bin/sh\necho hello\n"},
    )
    pkgfile.write_repo(repo, key)
    return repo


def test_signed_catalogue_reads_with_its_pubkey(keys: Path, tmp_path: Path) -> None:
    repo = _repo(tmp_path, keys / "repo.key")
    for archive in ("packagesite.pkg", "data.pkg"):
        with tarfile.open(repo / archive) as tar:
            names = tar.getnames()
            assert names[0] == "signature" and len(names) == 2, names
    pub = str(keys / "repo.pub")
    found = pkgfile.read_catalogue(repo, "file:///r", (pub, keys / "repo.pub"))
    assert [e["name"] for e in found] == ["hello"]
    assert pkgfile.read_catalogue(repo, "file:///r") == found  # signature_type none: not checked


def test_wrong_key_unsigned_and_missing_pubkey_are_refused(keys: Path, tmp_path: Path) -> None:
    signed = _repo(tmp_path / "signed", keys / "repo.key")
    other = str(keys / "other.pub")
    with pytest.raises(pkgfile.RepoError) as wrong:
        pkgfile.read_catalogue(signed, "file:///r", (other, keys / "other.pub"))
    assert str(wrong.value) == (
        f"{other}: signature verification failure\npkg: Invalid signature, removing repository."
    )
    unsigned = _repo(tmp_path / "unsigned", None)
    pub = str(keys / "repo.pub")
    with pytest.raises(pkgfile.RepoError, match=r"No signature found in the repository\.  Can not"):
        pkgfile.read_catalogue(unsigned, "file:///r", (pub, keys / "repo.pub"))
    with pytest.raises(pkgfile.RepoError, match=r"^No PUBKEY defined\. Removing repository\.$"):
        pkgfile.read_catalogue(signed, "file:///r", ("", Path("/")))
    with pytest.raises(pkgfile.RepoError, match=r"ossl_verify\(cannot read key\)"):
        pkgfile.read_catalogue(signed, "file:///r", ("/nope.pub", tmp_path / "nope.pub"))


def test_a_tampered_catalogue_fails_its_signature(keys: Path, tmp_path: Path) -> None:
    repo = _repo(tmp_path, keys / "repo.key")
    with tarfile.open(repo / "packagesite.pkg") as tar:
        signature = tar.extractfile("signature").read()  # type: ignore[union-attr]
    site = b'{"name":"evil","origin":"misc/evil","version":"6.6.6"}\n'
    with tarfile.open(repo / "packagesite.pkg", "w:xz") as tar:
        for name, data in (("signature", signature), ("packagesite.yaml", site)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    pub = str(keys / "repo.pub")
    with pytest.raises(pkgfile.RepoError, match="signature verification failure"):
        pkgfile.read_catalogue(repo, "file:///r", (pub, keys / "repo.pub"))


def test_pkg_repo_with_an_unreadable_key_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(pkgsign.SignError, match=r"^access\(.*/nokey\): No such file"):
        _repo(tmp_path, tmp_path / "nokey")
    assert not (tmp_path / "repo" / "meta.conf").exists()
