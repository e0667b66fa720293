"""Where a large anonymous simulated fleet lives (reconciler.sim.subnets), no hosts started."""

from __future__ import annotations

import fcntl
import ipaddress
from pathlib import Path

import pytest

from reconciler.errors import SimError
from reconciler.sim import subnets
from reconciler.sim.fleet import MAX_HOSTS, SimFleet
from reconciler.sim.subnets import anonymous_addresses, reserve_subnet, subnets_needed


def test_small_fleets_keep_their_addresses() -> None:
    assert anonymous_addresses("127.0.7", 3) == ["127.0.7.101", "127.0.7.102", "127.0.7.103"]
    assert anonymous_addresses("127.0.7", 150)[-1] == "127.0.7.250"
    assert subnets_needed(150) == 1


def test_large_fleets_spread_over_consecutive_subnets() -> None:
    addresses = anonymous_addresses("127.0.40", 500)
    assert subnets_needed(500) == 2
    assert addresses[:2] == ["127.0.40.1", "127.0.40.2"]
    assert addresses[249:251] == ["127.0.40.250", "127.0.41.1"]
    assert addresses[-1] == "127.0.41.250"
    assert len(set(addresses)) == 500
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)
    with pytest.raises(ValueError, match="need 4 /24s"):
        anonymous_addresses("127.0.253", 1000)


def test_several_subnets_are_leased_together(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(subnets, "LOCK_DIR", tmp_path)
    monkeypatch.setattr(subnets, "_held", {})
    # Another process holds 127.0.21: a lease of two /24s must skip past it.
    with (tmp_path / "21.lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        first = reserve_subnet(20, 30, count=2)
        assert first == "127.0.22"
        assert reserve_subnet(20, 30) == "127.0.20"  # the single one left below
        assert reserve_subnet(20, 30, count=3) == "127.0.24"
    with pytest.raises(RuntimeError, match="no 5 free"):
        reserve_subnet(20, 30, count=5)


def test_too_many_hosts_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(SimError, match=f"between 1 and {MAX_HOSTS}"):
        SimFleet.up(tmp_path / "fleet", hosts=MAX_HOSTS + 1)
    with pytest.raises(SimError, match=r"--subnet 127\.0\.254"):
        SimFleet.up(tmp_path / "fleet", hosts=600, subnet="127.0.254")
    assert not (tmp_path / "fleet").exists()
