"""Commit trust with real ssh-keygen keys and `git commit -S` (gpg.format=ssh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.daemon.jobs import Hooks
from reconciler.daemon.loop import Daemon
from reconciler.daemon.mirror import Mirror, resolve_origin
from reconciler.daemon.trust import check_allowed_signers, verify_commit
from reconciler.errors import SettingsError
from reconciler.settings import Settings
from tests.daemon.daemon_helpers import FakeClock, ScriptedConverge, Upstream, fake_load


def keypair(directory: Path, name: str, email: str) -> Path:
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", email, "-f", str(key)], check=True
    )
    return key


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    keydir = tmp_path / "keys"
    keydir.mkdir()
    alice = keypair(keydir, "alice", "alice@example.org")
    mallory = keypair(keydir, "mallory", "mallory@example.org")
    signers = tmp_path / "allowed_signers"  # outside the config repo
    pub = (keydir / "alice.pub").read_text().strip()
    signers.write_text(f'alice@example.org namespaces="git" {pub}\n')
    return {"alice": alice, "mallory": mallory, "signers": signers}


def test_verdicts_for_allowed_unknown_and_missing_signatures(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    up = Upstream.create(tmp_path)
    good = up.commit({"a": "1"}, "signed by alice", sign_key=keys["alice"])
    stranger = up.commit({"a": "2"}, "signed by mallory", sign_key=keys["mallory"])
    unsigned = up.commit({"a": "3"}, "unsigned")
    signers = keys["signers"]

    ok = verify_commit(up.work, good, allowed_signers=signers)
    assert ok.trusted and ok.signer == "alice@example.org"
    assert ok.reason == "signed by alice@example.org"

    bad = verify_commit(up.work, stranger, allowed_signers=signers)
    assert not bad.trusted
    assert "not trusted" in bad.reason and str(signers) in bad.reason

    none = verify_commit(up.work, unsigned, allowed_signers=signers)
    assert not none.trusted and none.reason.endswith("no signature")

    # Without the allowed-signers file nobody's SSH signature is trusted.
    assert not verify_commit(up.work, good, allowed_signers=None).trusted


def test_check_allowed_signers(tmp_path: Path) -> None:
    assert check_allowed_signers("") is None
    with pytest.raises(SettingsError, match="missing: no such file; require_signed_commits"):
        check_allowed_signers(str(tmp_path / "missing"))


def test_daemon_refuses_unsigned_and_untrusted_commits(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    up = Upstream.create(tmp_path)
    settings = Settings(
        repo=str(up.bare),
        work_dir=str(tmp_path / "work"),
        require_signed_commits=True,
        allowed_signers=str(keys["signers"]),
    )
    converge = ScriptedConverge()

    def once() -> int:
        mirror = Mirror(settings.work_path, resolve_origin(settings.repo), "main")
        mirror.ensure()
        hooks = Hooks(converge=converge, load_config=fake_load, clock=FakeClock())
        daemon = Daemon(settings, mirror, hooks=hooks, allowed_signers=keys["signers"])
        return daemon.run(once=True)

    unsigned = up.commit({"sets.txt": "lab heal\n"}, "unsigned")
    up.push()
    assert once() == 1
    assert converge.calls == []
    first = up.ledger_trailers()[0]
    assert (first["outcome"], first["stage"], first["generation"]) == (
        "rejected",
        "daemon",
        unsigned,
    )
    assert "no signature" in up.ledger_body()

    stranger = up.commit({"sets.txt": "lab heal\n"}, "mallory", sign_key=keys["mallory"])
    up.push()
    assert once() == 1
    assert converge.calls == []
    assert up.ledger_trailers()[0]["generation"] == stranger

    good = up.commit({"sets.txt": "lab heal\n"}, "alice", sign_key=keys["alice"])
    up.push()
    assert once() == 0
    assert converge.generations() == [good]
    assert [t["outcome"] for t in up.ledger_trailers()] == ["validated", "rejected", "rejected"]
