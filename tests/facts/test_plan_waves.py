"""Canary waves and the failure budget (pure)."""

from __future__ import annotations

from reconciler.plan.waves import budget, describe, waves


def test_waves_follow_the_list_and_repeat_its_last_size() -> None:
    hosts = [f"h{i}" for i in range(8)]
    assert waves(hosts, [1, 2, "25%"]) == [["h0"], ["h1", "h2"], ["h3", "h4"], ["h5", "h6"], ["h7"]]
    assert waves(hosts, [3]) == [["h0", "h1", "h2"], ["h3", "h4", "h5"], ["h6", "h7"]]
    assert waves(hosts[:1], ["50%"]) == [["h0"]]  # a share is at least one host
    assert waves([], [1, 2]) == []


def test_budget_is_a_number_or_a_share_of_the_stage() -> None:
    assert budget(0, 10) == 0
    assert budget(2, 10) == 2
    assert budget("10%", 10) == 1
    assert budget("10%", 25) == 3  # rounded up
    assert budget("1%", 5) == 1


def test_the_plan_says_it_in_words() -> None:
    assert describe([1, 2, "25%"], "10%", 8) == (
        "production in waves of 1, then 2, then 25% at a time (8 hosts); "
        "at most 1 failure(s) over the stage"
    )
    assert describe([2], 0, 3) == (
        "production in waves of 2 (3 hosts); at most 0 failure(s) over the stage"
    )
