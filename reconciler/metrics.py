"""Prometheus metrics of the daemon, on its own registry (never the process-global one).

Two sources, no third:

- the read model (:class:`~reconciler.readmodel.StatusView`), turned into
  gauges at scrape time by :class:`_ViewCollector`: per host in sync,
  reachable, last outcome (one-hot) and its time; per build set the last
  build's duration and result, the rollout stage (one-hot), quarantined builds;
- the daemon's own happenings, counted as they happen: cycle durations (a
  histogram per job kind; its ``_count`` is the number of cycles), the last
  successful poll, ledger compare-and-swap conflicts, failed SSH connection
  attempts, notification deliveries.

Names follow the Prometheus conventions: ``reconciler_`` prefix, base units
(seconds), ``_total`` on counters, ``_timestamp_seconds`` for Unix times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reconciler.readmodel.views import StatusView
from reconciler.vocabulary import LedgerOutcome, Stage

#: Job durations: a drift check takes seconds, a rollout with builds hours.
CYCLE_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
#: The values of rollout.json's "stage": the stages, then "done" once converged.
ROLLOUT_STAGES = (*(str(s) for s in Stage), "done")
BUILD_RESULTS = ("started", "success", "failure")


def _one_hot(
    family: GaugeMetricFamily, labels: list[str], values: Iterable[str], current: str | None
) -> None:
    known = list(values)
    if current is not None and current not in known:
        known.append(current)  # a value a newer writer uses still shows
    for value in known:
        family.add_metric([*labels, value], 1.0 if value == current else 0.0)


class _ViewCollector(Collector):
    """Gauges computed from the read model at each scrape."""

    def __init__(self, view: Callable[[], StatusView]) -> None:
        self._view = view

    def describe(self) -> Iterable[Metric]:
        return []  # the families depend on the fleet; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        view = self._view()
        in_sync = GaugeMetricFamily(
            "reconciler_host_in_sync",
            "1 when the host runs the desired build and revision and its last outcome is good",
            labels=["buildset", "host"],
        )
        reachable = GaugeMetricFamily(
            "reconciler_host_reachable",
            "1 when the host answered SSH at the last look (absent: not known yet)",
            labels=["buildset", "host"],
        )
        outcome = GaugeMetricFamily(
            "reconciler_host_last_outcome",
            "The host's last ledger outcome, one-hot over the outcome label",
            labels=["buildset", "host", "outcome"],
        )
        outcome_time = GaugeMetricFamily(
            "reconciler_host_last_outcome_timestamp_seconds",
            "When the host's last ledger outcome was recorded (Unix time)",
            labels=["buildset", "host"],
        )
        for host in view.hosts():
            labels = [host.buildset, host.name]
            in_sync.add_metric(labels, 1.0 if host.in_sync else 0.0)
            if host.reachable is not None:
                reachable.add_metric(labels, 1.0 if host.reachable else 0.0)
            if host.last_outcome is not None:
                _one_hot(outcome, labels, (str(o) for o in LedgerOutcome), host.last_outcome)
            if host.last_at is not None:
                outcome_time.add_metric(labels, host.last_at.timestamp())
        duration = GaugeMetricFamily(
            "reconciler_buildset_build_duration_seconds",
            "How long the build set's last finished build took",
            labels=["buildset"],
        )
        result = GaugeMetricFamily(
            "reconciler_buildset_build_result",
            "The build set's last build, one-hot over result (started = running)",
            labels=["buildset", "result"],
        )
        stage = GaugeMetricFamily(
            "reconciler_buildset_rollout_stage",
            "The stage the build set's rollout reached, one-hot over stage",
            labels=["buildset", "stage"],
        )
        quarantined = GaugeMetricFamily(
            "reconciler_buildset_quarantined_builds",
            "Builds of the build set held in quarantine",
            labels=["buildset"],
        )
        held: dict[str | None, int] = {}
        for item in view.quarantine:
            held[item.buildset] = held.get(item.buildset, 0) + 1
        for bs in view.buildsets:
            build = bs.last_build
            if build is not None:
                if build.duration_seconds is not None:
                    duration.add_metric([bs.name], build.duration_seconds)
                _one_hot(result, [bs.name], BUILD_RESULTS, build.result)
            if bs.stage is not None:
                _one_hot(stage, [bs.name], ROLLOUT_STAGES, bs.stage)
            quarantined.add_metric([bs.name], float(held.get(bs.name, 0)))
        yield from (in_sync, reachable, outcome, outcome_time, duration, result, stage)
        yield quarantined


class Metrics:
    """The daemon's registry and the instruments the loop, the ledger and SSH update."""

    def __init__(self, view: Callable[[], StatusView] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.cycle_seconds = Histogram(
            "reconciler_cycle_duration_seconds",
            "Duration of one converge job of the loop (apply: a rollout; drift: a re-check)",
            ["kind"],
            buckets=CYCLE_BUCKETS,
            registry=self.registry,
        )
        self.last_poll = Gauge(
            "reconciler_last_successful_poll_timestamp_seconds",
            "When the daemon last fetched the tracked branch successfully (Unix time)",
            registry=self.registry,
        )
        self.ledger_conflicts = Counter(
            "reconciler_ledger_push_conflicts",
            "Ledger writes that lost a compare-and-swap to another writer and were retried",
            registry=self.registry,
        )
        self.ssh_failures = Counter(
            "reconciler_ssh_connection_failures",
            "Failed SSH connection attempts (refused, timed out, key or login refused)",
            ["host"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "reconciler_notifications",
            "Notification deliveries by target kind and result (delivered, failed, gave-up)",
            ["target", "result"],
            registry=self.registry,
        )
        if view is not None:
            self.registry.register(_ViewCollector(view))

    def exposition(self) -> tuple[str, bytes]:
        """(content type, body) of a scrape."""
        return CONTENT_TYPE_LATEST, generate_latest(self.registry)
