"""pkg(7)'s check of the package it bootstraps from (usr.sbin/pkg/pkg.c, config.c).

The simulated check in-process, against real repository files and real RSA
signatures: which settings win (the environment, then the last enabled
repository block read), and what each signature type wants beside the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sim import pkgsign
from reconciler.sim.commands import pkg7
from reconciler.sim.prepare import FREEBSD_CONF


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "etc-pkg").mkdir()
    (tmp_path / "etc-pkg" / "FreeBSD.conf").write_text(FREEBSD_CONF)
    (tmp_path / "repos").mkdir()
    (tmp_path / "Latest").mkdir()
    (tmp_path / "Latest" / "pkg.pkg").write_bytes(b"the pkg package\n")
    pkgsign.new_key(tmp_path / "repo.key", tmp_path / "repo.pub")
    for name in ("SIGNATURE_TYPE", "PUBKEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REPOS_DIR", f"{tmp_path / 'etc-pkg'},{tmp_path / 'repos'}")
    return tmp_path


def conf(site: Path, text: str) -> None:
    (site / "repos" / "reconciler.conf").write_text(text)


def test_the_stock_config_wants_freebsds_signature(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not pkg7._signature_ok(site / "Latest" / "pkg.pkg")
    assert capsys.readouterr().err == "Signature for pkg not available.\n"


def test_a_later_enabled_block_replaces_the_settings_a_disabled_one_does_not(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = site / "Latest" / "pkg.pkg"
    conf(site, 'reconciler: {\n  url: "file:///r",\n  enabled: yes\n}\n')
    assert pkg7._signature_ok(package)  # no signature_type in the last enabled block: none
    conf(site, 'reconciler: {\n  url: "file:///r",\n  enabled: no\n}\n')
    assert not pkg7._signature_ok(package)  # disabled: FreeBSD.conf's fingerprints stand
    monkeypatch.setenv("SIGNATURE_TYPE", "NONE")
    assert pkg7._signature_ok(package)  # the environment beats every file


def test_pubkey_wants_the_pubkeysig_made_with_the_key(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = site / "Latest" / "pkg.pkg"
    pub = site / "repo.pub"
    conf(site, f'reconciler: {{\n  signature_type: "pubkey",\n  pubkey: "{pub}"\n}}\n')
    assert not pkg7._signature_ok(package)
    assert capsys.readouterr().err == "Signature for pkg not available.\n"
    signature = pkgsign.sign_file(site / "repo.key", package.read_bytes())
    (site / "Latest" / "pkg.pkg.pubkeysig").write_bytes(signature)
    assert pkg7._signature_ok(package)
    assert capsys.readouterr().out == f"Verifying signature with public key {pub}... done\n"
    package.write_bytes(b"another pkg package\n")
    assert not pkg7._signature_ok(package)
    assert capsys.readouterr().err == "Signature is not valid\n"


def test_a_missing_repos_dir_ends_the_reading_there(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf(site, 'reconciler: {\n  url: "file:///r"\n}\n')
    monkeypatch.setenv("REPOS_DIR", f"{site / 'etc-pkg'},{site / 'nowhere'},{site / 'repos'}")
    assert not pkg7._signature_ok(site / "Latest" / "pkg.pkg")  # repos/ never read
