"""A plan for people: text for a terminal, markdown for a pull-request comment (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from reconciler.plan.model import HostPlan, Plan, Step

#: Lines of one file's diff shown in text; the JSON plan has every line.
DIFF_LINES = 30


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(counts: Mapping[str, int]) -> str:
    parts = [_plural(counts["builds"], "build"), _plural(counts["reboots"], "reboot")]
    if counts["unreachable"]:
        parts.append(_plural(counts["unreachable"], "unreachable host"))
    return ", ".join(parts)


def diffs(step: Step) -> Iterator[tuple[str, str]]:
    """(path, unified diff) of each file the step changes and the plan could compare."""
    found = step.detail.get("diff")
    if isinstance(found, Mapping):
        for path, text in found.items():
            if isinstance(text, str) and text:
                yield str(path), text


def _diff_lines(step: Step, indent: str) -> list[str]:
    lines = []
    for _path, text in diffs(step):
        body = text.splitlines()
        shown = body[:DIFF_LINES]
        lines += [f"{indent}{line}".rstrip() for line in shown]
        if len(body) > len(shown):
            lines.append(f"{indent}... {len(body) - len(shown)} more lines (--format json has all)")
    return lines


def _host_lines(hp: HostPlan) -> list[str]:
    lines = [f"    {hp.host}: in sync"] if hp.in_sync else []
    if hp.held is not None:
        lines.append(f"    {hp.host}: held: {hp.held}")
    for index, step in enumerate(hp.steps):
        label = f"{hp.host}:" if index == 0 else " " * (len(hp.host) + 1)
        lines.append(f"    {label} {step.kind}: {step.reason}")
        lines += _diff_lines(step, " " * (len(hp.host) + 9))
    for note in hp.notes:
        lines.append(f"    {' ' * (len(hp.host) + 1)} note: {note}")
    if hp.waiting is not None and hp.waits_at is not None:
        lines.append(
            f"    {' ' * (len(hp.host) + 1)} waits: {hp.steps[hp.waits_at].kind} and after: "
            f"{hp.waiting}"
        )
    return lines


def format_text(plan: Plan, preamble: Sequence[str] = ()) -> str:
    """The plan for a terminal: the shared src host, then per set, per stage, per host.

    ``preamble``: lines shown under the title (where the facts came from).
    """
    generation = plan.generation[:12] if plan.generation else "worktree"
    lines = [f"Plan: {plan.branch} @ {plan.revision[:12]} (config {generation})", ""]
    if preamble:
        lines += [*preamble, ""]
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
        lines.append(NO_CHANGES)
    else:
        counts = plan.counts()
        lines.append(f"Total: {_plural(counts['steps'], 'step')}; {_summary(counts)}.")
    return "\n".join(lines)


#: What plan and apply say when nothing is to do.
NO_CHANGES = "No changes. Every host is in sync."


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(plan: Plan, preamble: Sequence[str] = ()) -> str:
    """The plan as a pull-request comment (``preamble`` under the title, as in text)."""
    generation = plan.generation[:12] if plan.generation else "worktree"
    counts = plan.counts()
    lines = [
        f"### reconciler plan: `{plan.branch}` @ `{plan.revision[:12]}` (config `{generation}`)",
        "",
        *(line for text in preamble for line in (text, "")),
        NO_CHANGES
        if plan.in_sync
        else f"**{_summary(counts)}**, {_plural(counts['steps'], 'step')} in all.",
    ]
    if plan.shared.steps:
        lines += ["", "#### src host (shared by every build set)", ""]
        lines += ["| host | step | reason |", "| --- | --- | --- |"]
        for hp in plan.shared.hosts:
            for step in hp.steps:
                lines.append(f"| `{hp.host}` | {step.kind} | {_cell(step.reason)} |")
        lines += _markdown_diffs(plan.shared.hosts)
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
            notes = dict.fromkeys(
                f"`{hp.host}`: {note}" for st in bs.stages for hp in st.hosts for note in hp.notes
            )
            if notes:
                lines += ["", *(f"- {_cell(note)}" for note in notes)]
            busy = {hp.host for st in bs.stages for hp in st.hosts if not hp.in_sync}
            synced = [hp.host for st in bs.stages for hp in st.hosts if hp.host not in busy]
            if synced:
                lines += ["", "In sync: " + ", ".join(f"`{h}`" for h in dict.fromkeys(synced))]
            lines += _markdown_diffs(hp for st in bs.stages for hp in st.hosts)
        else:
            lines.append("Every host is in sync.")
        for problem in bs.problems:
            lines += ["", f"> **Problem (blocks this build set):** {_cell(problem)}"]
        for gate in bs.gates:
            lines += ["", f"> **Gate:** {_cell(gate)}"]
        for warning in bs.warnings:
            lines += ["", f"> **Warning:** {_cell(warning)}"]
    return "\n".join(lines) + "\n"


def _markdown_diffs(hosts: Iterator[HostPlan] | tuple[HostPlan, ...]) -> list[str]:
    """Each diff in a collapsed ``<details>`` block (GitHub and GitLab render them)."""
    lines: list[str] = []
    for hp in hosts:
        for step in hp.steps:
            for path, text in diffs(step):
                fence = "````" if "```" in text else "```"
                lines += [
                    "",
                    f"<details><summary><code>{hp.host}</code>: {path} ({step.kind})</summary>",
                    "",
                    f"{fence}diff",
                    text,
                    fence,
                    "",
                    "</details>",
                ]
    return lines
