"""Canary waves and the failure budget of a production stage (pure).

``rollout.batch`` is a number or a list of wave sizes, the last repeated
(Ansible's ``serial`` list): ``[1, 2, "25%"]`` is one canary host, then two,
then a quarter of the production hosts at a time. ``max_failures`` is a
number or a share of the production hosts; it counts over the whole stage,
across waves (Ansible counts it per batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def _count(value: int | str, total: int, *, least: int) -> int:
    if isinstance(value, int):
        return value
    share = int(value.rstrip("%"))
    return max(least, math.ceil(total * share / 100))


def waves(hosts: Sequence[T], batch: Sequence[int | str]) -> list[list[T]]:
    """``hosts`` cut into waves of the sizes ``batch`` names, the last size repeated."""
    total = len(hosts)
    sizes = [max(1, _count(b, total, least=1)) for b in batch] or [1]
    found: list[list[T]] = []
    start = 0
    index = 0
    while start < total:
        size = sizes[min(index, len(sizes) - 1)]
        found.append(list(hosts[start : start + size]))
        start += size
        index += 1
    return found


def budget(max_failures: int | str, total: int) -> int:
    """How many production hosts may fail over the stage before it halts."""
    return _count(max_failures, total, least=0)


def describe(batch: Sequence[int | str], max_failures: int | str, total: int) -> str:
    """The production gate in words, for the plan."""
    sizes = [str(b) for b in batch]
    shape = sizes[0] if len(sizes) == 1 else ", then ".join(sizes) + " at a time"
    return (
        f"production in waves of {shape} ({total} host{'s' if total != 1 else ''}); "
        f"at most {budget(max_failures, total)} failure(s) over the stage"
    )
