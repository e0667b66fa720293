"""Whether a job runs is read before anything a job changes (facts/observe.py's COMMON).

A job that ends while the probe script runs must not be seen as "not running"
together with a kern.bootfile read before installkernel moved it: the planner
would then install the kernel again, and /boot/kernel.old would be the new kernel.
"""

from __future__ import annotations

from reconciler.facts import boot, bootenv, installjobs, jobs, marker
from reconciler.facts.observe import COMMON


def test_jobs_are_probed_before_what_a_job_changes() -> None:
    names = [p.name for p in COMMON]
    last_job_probe = max(names.index(p.name) for p in jobs.PROBES)
    for later in (*boot.PROBES, *marker.PROBES, *bootenv.PROBES, *installjobs.PROBES):
        assert names.index(later.name) > last_job_probe, later.name
