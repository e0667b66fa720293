"""The plan: desired state + facts + progress -> steps (pure; the one decider).

- :mod:`reconciler.plan.model`: the frozen values (Plan, BuildSetPlan, StagePlan, HostPlan, Step);
- :mod:`reconciler.plan.decide`: the comparison, per stage and host;
- :mod:`reconciler.plan.files`: a host's config files, and how its own differ (with diffs);
- :mod:`reconciler.plan.install`: a host's install chain (boot environment or in place);
- :mod:`reconciler.plan.verify`: does a running host match its build;
- :mod:`reconciler.plan.format`: text and markdown.
"""

from reconciler.plan.decide import (
    build_host_plan,
    foreign_changes,
    host_install_plan,
    make_plan,
    plan_buildset,
    shared_plan,
    source_host_plan,
    target_for,
    wanted_exports,
)
from reconciler.plan.files import config_differences, wanted_files
from reconciler.plan.format import format_markdown, format_text
from reconciler.plan.install import Target
from reconciler.plan.model import BuildSetPlan, HostPlan, Plan, StagePlan, Step
from reconciler.plan.verify import verify_problems

__all__ = [
    "BuildSetPlan",
    "HostPlan",
    "Plan",
    "StagePlan",
    "Step",
    "Target",
    "build_host_plan",
    "config_differences",
    "foreign_changes",
    "format_markdown",
    "format_text",
    "host_install_plan",
    "make_plan",
    "plan_buildset",
    "shared_plan",
    "source_host_plan",
    "target_for",
    "verify_problems",
    "wanted_exports",
    "wanted_files",
]
