"""Pure: ledger files and commits + the accepted config + the daemon's state -> :class:`StatusView`.

Inputs are what the rollout writes (``status/<set>/rollout.json``,
``status/<set>/<host>.json`` with the host's last facts, one commit per
outcome with ``Reconciler-*`` trailers), read tolerantly: unknown keys are
ignored, a missing or malformed value becomes "unknown", never an error, so
a newer writer never breaks the page.

Rules, in one place:

- *desired* build and revision come from the accepted config (the build id
  over its inputs, fleet.yaml's revision); without one, from rollout.json;
- *running* build and revision come from the host's last recorded facts
  (the install marker, ``uname -v``);
- *in sync*: the host's result in the daemon's last job for this generation
  when that is newer than the ledger's record (success/healed = in sync);
  otherwise running == desired and the last outcome is not a failure;
- *reachable*: likewise the last job's result (``unreachable`` or not),
  else the recorded facts' ``reachable``; unknown before either exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from reconciler.config.buildid import build_id
from reconciler.config.model import Config
from reconciler.ledger import Entry
from reconciler.observe_settings import commit_link
from reconciler.readmodel.live import Live, LiveSet
from reconciler.readmodel.views import (
    BuildInfo,
    BuildSetStatus,
    CommitRef,
    DaemonStatus,
    HostStatus,
    LedgerItem,
    Progress,
    Quarantined,
    StatusView,
)
from reconciler.vocabulary import GOOD_HOST_OUTCOMES, HostOutcome, LedgerOutcome, Stage


class DaemonState(Protocol):
    """What the view reads of the daemon's state (reconciler.daemon.state.DaemonState).

    A protocol, so the observers sit below the daemon in the layers.
    """

    @property
    def generation(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def rejected(self) -> str | None: ...
    @property
    def at(self) -> str: ...


TIMELINE = 50
_NOT_IN_SYNC = frozenset({LedgerOutcome.FAILURE, LedgerOutcome.ROLLED_BACK, LedgerOutcome.DRIFT})


@dataclass(frozen=True)
class DesiredSet:
    name: str
    build: str
    revision12: str | None
    hosts: tuple[tuple[str, str], ...]  # (host, stage)


def desired_of(config: Config) -> tuple[DesiredSet, ...]:
    """What the accepted config asks of every build set (pure; no host is read)."""
    return tuple(
        DesiredSet(
            bs.name,
            build_id(config, bs),
            config.source.short,
            tuple((h.name, str(h.stage)) for h in bs.hosts),
        )
        for bs in config.buildsets
    )


@dataclass(frozen=True)
class LedgerSnapshot:
    """The ledger files and commits the view is built from (see ``loader``)."""

    branch: str
    tip: str | None = None
    rollouts: Mapping[str, Any] = field(default_factory=dict)  # set -> rollout.json
    host_files: Mapping[str, Any] = field(default_factory=dict)  # host -> <host>.json
    entries: tuple[Entry, ...] = ()  # the recent window, newest first
    host_last: Mapping[str, Entry] = field(default_factory=dict)  # host -> its newest commit
    quarantine: tuple[Any, ...] = ()  # quarantine documents as found
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # set -> hosts read
    error: str | None = None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _ref(commit: str | None, template: str) -> CommitRef | None:
    return CommitRef(commit, commit_link(template, commit)) if commit else None


def _item(entry: Entry, template: str) -> LedgerItem:
    return LedgerItem(
        ref=CommitRef(entry.commit, commit_link(template, entry.commit)),
        time=entry.time,
        subject=entry.subject,
        outcome=entry.outcome,
        stage=entry.stage,
        buildset=entry.buildset,
        host=entry.host,
        generation=entry.generation,
        build=entry.build,
    )


def _host(
    name: str,
    buildset: str,
    stage: str,
    desired: DesiredSet | None,
    doc: Any,
    last: Entry | None,
    live: Live | None,
    generation: str | None,
    template: str,
) -> HostStatus:
    doc = doc if isinstance(doc, Mapping) else {}
    facts = doc.get("facts")
    running_build = _str(_dig(facts, "marker", "build"))
    running_revision = _str(_dig(facts, "versions", "source", "revision12"))
    recorded_reachable = _dig(facts, "reachable")
    reachable = recorded_reachable if isinstance(recorded_reachable, bool) else None
    # Without a status file (a record written by hand, say), the host's newest commit says it.
    outcome = _str(doc.get("outcome")) or (last.outcome if last else None)
    last_at = parse_time(doc.get("at")) or (last.time if last else None)
    message = _str(doc.get("message")) or (last.subject if last else None)
    desired_build = desired.build if desired else None
    desired_revision = desired.revision12 if desired else None
    in_sync = (
        reachable is not False
        and running_build is not None
        and running_build == desired_build
        and running_revision == desired_revision
        and outcome not in _NOT_IN_SYNC
    )
    seen = live.hosts.get(name) if live else None
    fresh = seen is not None and (last_at is None or seen.at >= last_at)
    if seen is not None and fresh and seen.generation == generation:
        in_sync = seen.outcome in GOOD_HOST_OUTCOMES
        reachable = seen.outcome != HostOutcome.UNREACHABLE
    return HostStatus(
        name=name,
        buildset=buildset,
        stage=stage,
        desired_build=desired_build,
        running_build=running_build,
        desired_revision=desired_revision,
        running_revision=running_revision,
        in_sync=in_sync,
        reachable=reachable,
        phase=_str(doc.get("phase")),
        last_outcome=outcome,
        last_message=message,
        last_at=last_at,
        last_commit=_ref(last.commit if last else None, template),
        observed_at=parse_time(_dig(facts, "observed_at")),
    )


def last_build(buildset: str, entries: Sequence[Entry]) -> BuildInfo | None:
    """The newest build-stage outcome of ``buildset`` in ``entries`` (newest first)."""
    results = (LedgerOutcome.STARTED, LedgerOutcome.SUCCESS, LedgerOutcome.FAILURE)
    newest = next(
        (
            e
            for e in entries
            if e.buildset == buildset and e.stage == Stage.BUILD and e.outcome in results
            and e.build
        ),
        None,
    )  # fmt: skip
    if newest is None or newest.build is None:
        return None
    if newest.outcome == LedgerOutcome.STARTED:
        return BuildInfo(newest.build, "started", newest.host, newest.time, None)
    started = next(
        (
            e.time
            for e in entries
            if e.buildset == buildset and e.stage == Stage.BUILD and e.build == newest.build
            and e.outcome == LedgerOutcome.STARTED and e.time <= newest.time
        ),
        None,
    )  # fmt: skip
    return BuildInfo(newest.build, str(newest.outcome), newest.host, started, newest.time)


def _progress(name: str, live: Live | None) -> Progress | None:
    if live is None:
        return None
    seen = live.sets.get(name)
    running = live.job == "apply" and name in live.job_sets
    if seen is None and not running:
        return None
    seen = seen or LiveSet()
    return Progress(
        running=running,
        host=seen.host,
        step=seen.step,
        message=seen.message,
        build_line=seen.build_line,
        build_at=seen.build_at,
        updated=seen.updated,
    )


def _quarantine(docs: Sequence[Any]) -> tuple[Quarantined, ...]:
    """Quarantine records in whichever shape they come: a list, ``{"builds": [...]}``, or
    ``{build id: {...}}``; each item names a build and optionally a set, a reason, a time."""
    found: list[Quarantined] = []
    for doc in docs:
        items: list[tuple[str | None, Any]] = []
        if isinstance(doc, list):
            items = [(None, item) for item in doc]
        elif isinstance(doc, Mapping):
            listed = doc.get("builds", doc.get("quarantined"))
            if isinstance(listed, list):
                items = [(None, item) for item in listed]
            else:
                items = [(key, item) for key, item in doc.items()]
        for key, item in items:
            info = item if isinstance(item, Mapping) else {}
            build = _str(info.get("build")) or _str(info.get("build_id")) or key
            if build is None and isinstance(item, str):
                build = item
            if build is None:
                continue
            found.append(
                Quarantined(
                    build=build,
                    buildset=_str(info.get("buildset")) or _str(info.get("set")),
                    reason=_str(info.get("reason")) or _str(info.get("message")),
                    since=_str(info.get("since")) or _str(info.get("at")),
                )
            )
    return tuple(found)


def _daemon(
    state: DaemonState | None, live: Live | None, settings: Any, branch: str
) -> DaemonStatus | None:
    if state is None and live is None:
        return None
    return DaemonStatus(
        repo=str(getattr(settings, "repo", "")),
        branch=str(getattr(settings, "branch", "")),
        status_branch=branch,
        generation=state.generation if state else None,
        status=state.status if state else None,
        reason=state.reason if state else "",
        rejected=state.rejected if state else None,
        changed_at=(state.at or None) if state else None,
        job=live.job if live else None,
        job_generation=live.job_generation if live else None,
        job_since=live.job_since if live else None,
        last_poll=live.last_poll if live else None,
        started=live.started if live else None,
    )


def build_view(
    ledger: LedgerSnapshot,
    *,
    config: Config | None,
    live: Live | None = None,
    state: DaemonState | None = None,
    settings: Any = None,
    now: datetime | None = None,
) -> StatusView:
    """The whole status view (pure)."""
    template = str(getattr(settings, "commit_url", "") or "")
    desired = {d.name: d for d in desired_of(config)} if config else {}
    generation = config.commit if config else None
    names = list(desired) or list(ledger.members)
    sets = []
    for name in names:
        doc = ledger.rollouts.get(name)
        doc = doc if isinstance(doc, Mapping) else {}
        want = desired.get(name)
        if want is not None:
            members = want.hosts
        else:  # no config: the hosts the ledger names, with the stage they recorded
            members = tuple(
                (host, str(_dig(ledger.host_files.get(host), "stage") or "-"))
                for host in ledger.members.get(name, ())
            )
            build, revision = _str(doc.get("build")), _str(doc.get("revision"))
            if build is not None:  # what the recorded rollout was bringing the hosts to
                want = DesiredSet(name, build, revision[:12] if revision else None, members)
        hosts = tuple(
            _host(
                host, name, stage, want, ledger.host_files.get(host), ledger.host_last.get(host),
                live, generation, template,
            )
            for host, stage in members
        )  # fmt: skip
        tested = doc.get("tested")
        sets.append(
            BuildSetStatus(
                name=name,
                generation=_str(doc.get("generation")),
                build=_str(doc.get("build")),
                desired_build=want.build if want else _str(doc.get("build")),
                stage=_str(doc.get("stage")),
                outcome=_str(doc.get("outcome")),
                updated=parse_time(doc.get("updated")),
                tested=tuple(t for t in tested if isinstance(t, str))
                if isinstance(tested, list)
                else (),
                last_build=last_build(name, ledger.entries),
                progress=_progress(name, live),
                hosts=hosts,
            )
        )
    return StatusView(
        generated_at=now or datetime.now(UTC),
        ledger_tip=ledger.tip,
        daemon=_daemon(state, live, settings, ledger.branch),
        buildsets=tuple(sets),
        timeline=tuple(_item(e, template) for e in ledger.entries[:TIMELINE]),
        quarantine=_quarantine(ledger.quarantine),
        error=ledger.error,
    )
