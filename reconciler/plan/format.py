"""A plan for people: text for a terminal, markdown for a pull-request comment (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.plan.model import HostPlan, Plan


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(counts: Mapping[str, int]) -> str:
    parts = [_plural(counts["builds"], "build"), _plural(counts["reboots"], "reboot")]
    if counts["unreachable"]:
        parts.append(_plural(counts["unreachable"], "unreachable host"))
    return ", ".join(parts)


def _host_lines(hp: HostPlan) -> list[str]:
    lines = [f"    {hp.host}: in sync"] if hp.in_sync else []
    if hp.held is not None:
        lines.append(f"    {hp.host}: held: {hp.held}")
    for index, step in enumerate(hp.steps):
        label = f"{hp.host}:" if index == 0 else " " * (len(hp.host) + 1)
        lines.append(f"    {label} {step.kind}: {step.reason}")
    for note in hp.notes:
        lines.append(f"    {' ' * (len(hp.host) + 1)} note: {note}")
    return lines


def format_text(plan: Plan) -> str:
    """The plan for a terminal: the shared src host, then per set, per stage, per host."""
    generation = plan.generation[:12] if plan.generation else "worktree"
    lines = [f"Plan: {plan.branch} @ {plan.revision[:12]} (config {generation})", ""]
    lines.append("src host (shared by every build set)")
    for hp in plan.shared.hosts:
        lines += _host_lines(hp)
    for bs in plan.buildsets:
        lines.append("")
        lines.append(
            f"build set {bs.name}: build {bs.build[:12]} ({bs.arch}, {bs.install_method}); "
            f"{_summary(bs.counts())}"
        )
        for problem in bs.problems:
            lines.append(f"  problem: {problem}")
        if bs.problems:
            lines.append("  (apply halts this set before its first stage: no host is touched)")
        for stage in bs.stages:
            lines.append(f"  {stage.name}")
            if not stage.hosts:
                lines.append("    (no hosts)")
            for hp in stage.hosts:
                lines += _host_lines(hp)
        for gate in bs.gates:
            lines.append(f"  gate: {gate}")
        for warning in bs.warnings:
            lines.append(f"  warning: {warning}")
    lines.append("")
    blocked = [bs.name for bs in plan.buildsets if bs.problems]
    if blocked:
        lines.append(
            f"Preflight: {_plural(len(plan.problems), 'problem')}; "
            f"apply will not touch build set(s) {', '.join(blocked)} until fixed."
        )
    if plan.in_sync:
        lines.append("Everything is in sync.")
    else:
        counts = plan.counts()
        lines.append(f"Total: {_plural(counts['steps'], 'step')}; {_summary(counts)}.")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(plan: Plan) -> str:
    """The plan as a pull-request comment."""
    generation = plan.generation[:12] if plan.generation else "worktree"
    counts = plan.counts()
    lines = [
        f"### reconciler plan: `{plan.branch}` @ `{plan.revision[:12]}` (config `{generation}`)",
        "",
        "Everything is in sync."
        if plan.in_sync
        else f"**{_summary(counts)}**, {_plural(counts['steps'], 'step')} in all.",
    ]
    if plan.shared.steps:
        lines += ["", "#### src host (shared by every build set)", ""]
        lines += ["| host | step | reason |", "| --- | --- | --- |"]
        for hp in plan.shared.hosts:
            for step in hp.steps:
                lines.append(f"| `{hp.host}` | {step.kind} | {_cell(step.reason)} |")
    for bs in plan.buildsets:
        lines += [
            "",
            f"#### Build set `{bs.name}`: build `{bs.build[:12]}` ({bs.arch}, {bs.install_method})",
            "",
            _summary(bs.counts()),
            "",
        ]
        if bs.steps:
            lines += ["| stage | host | step | reason |", "| --- | --- | --- | --- |"]
            for stage in bs.stages:
                for hp in stage.hosts:
                    for step in hp.steps:
                        lines.append(
                            f"| {stage.name} | `{hp.host}` | {step.kind} | {_cell(step.reason)} |"
                        )
            synced = [hp.host for st in bs.stages for hp in st.hosts if hp.in_sync]
            if synced:
                lines += ["", "In sync: " + ", ".join(f"`{h}`" for h in dict.fromkeys(synced))]
        else:
            lines.append("Every host is in sync.")
        for problem in bs.problems:
            lines += ["", f"> **Problem (blocks this build set):** {_cell(problem)}"]
        for gate in bs.gates:
            lines += ["", f"> **Gate:** {_cell(gate)}"]
        for warning in bs.warnings:
            lines += ["", f"> **Warning:** {_cell(warning)}"]
    return "\n".join(lines) + "\n"
