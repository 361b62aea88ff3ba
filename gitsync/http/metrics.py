"""Prometheus metrics of the service, held per `Metrics` (two apps in one process never share counters).

gitsync_sync_duration_seconds{source}            histogram   fetch + plan + apply of one sync
gitsync_syncs_total{source,outcome}              counter     applied | unchanged | invalid | refused | failed
gitsync_applied_commit{source,commit}            gauge = 1   info-style: the commit whose flows are active
gitsync_flows{source}                            gauge       active flows
gitsync_triggers{source}                         gauge       registered triggers
gitsync_trigger_fires_total{flow}                counter     executions created by a trigger
gitsync_trigger_fire_lag_seconds                 histogram   execution created minus scheduled time
gitsync_webhooks_total{host,outcome}             counter     accepted | ignored | duplicate | unauthorized | …

`render()` writes them in Prometheus' text exposition format (version 0.0.4), each counter and histogram series
with its `_created` time as prometheus_client writes it. The format is a few lines of text: writing it here
spares every daemon the metrics library, which imports an HTTP server, a WSGI stack and more (over a megabyte
held for eight families).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge", "histogram"]


@dataclass
class _Series:
    """One series of a family (one set of label values): a value, or a histogram's bucket counts and sum."""

    created: float = field(default_factory=time.time)
    value: float = 0.0
    buckets: list[int] = field(default_factory=list)


class _Family:
    """A metric family: its series by label values (in `labels` order). Not locked: `Metrics` holds the lock."""

    def __init__(
        self, name: str, documentation: str, kind: Kind, labels: Sequence[str] = (), buckets: Sequence[float] = ()
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.kind = kind
        self.labels = tuple(labels)
        self.bounds = (*(float(b) for b in buckets), math.inf) if kind == "histogram" else ()
        self.series: dict[tuple[str, ...], _Series] = {}
        if not self.labels:
            self._get(())  # a family without labels has its one series from the start

    def _get(self, values: tuple[str, ...]) -> _Series:
        series = self.series.get(values)
        if series is None:
            series = self.series[values] = _Series(buckets=[0] * len(self.bounds))
        return series

    def inc(self, *values: str) -> None:
        self._get(values).value += 1

    def set(self, value: float, *values: str) -> None:
        self._get(values).value = float(value)

    def observe(self, value: float, *values: str) -> None:
        series = self._get(values)
        series.value += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                series.buckets[i] += 1

    def remove(self, *values: str) -> None:
        self.series.pop(values, None)

    def lines(self) -> Iterator[str]:
        base = self.name.removesuffix("_total") if self.kind == "counter" else self.name
        yield from _header(self.name, self.documentation, self.kind)
        for values, series in self.series.items():
            labels = list(zip(self.labels, values, strict=True))
            if self.kind == "histogram":
                for bound, count in zip(self.bounds, series.buckets, strict=True):
                    yield _sample(f"{base}_bucket", [*labels, ("le", _number(bound))], count)
                yield _sample(f"{base}_count", labels, series.buckets[-1])
                yield _sample(f"{base}_sum", labels, series.value)
            else:
                yield _sample(self.name, labels, series.value)
        if self.kind != "gauge" and self.series:
            yield from _header(f"{base}_created", self.documentation, "gauge")
            for values, series in self.series.items():
                yield _sample(f"{base}_created", list(zip(self.labels, values, strict=True)), series.created)


def _header(name: str, documentation: str, kind: str) -> Iterator[str]:
    escaped = documentation.replace("\\", "\\\\").replace("\n", "\\n")
    yield f"# HELP {name} {escaped}"
    yield f"# TYPE {name} {kind}"


def _sample(name: str, labels: list[tuple[str, str]], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    pairs = ",".join(f'{key}="{_label_value(text)}"' for key, text in sorted(labels))
    return f"{name}{{{pairs}}} {_number(value)}"


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return "NaN" if math.isnan(value) else repr(value)


class Metrics:
    """Thread-safe recorders (one lock), plus `render()` for `GET /metrics`."""

    content_type = CONTENT_TYPE

    def __init__(self) -> None:
        self.sync_duration = _Family(
            "gitsync_sync_duration_seconds", "Duration of one sync", "histogram", ["source"], SYNC_BUCKETS
        )
        self.syncs = _Family("gitsync_syncs_total", "Syncs by outcome", "counter", ["source", "outcome"])
        self.applied_commit = _Family(
            "gitsync_applied_commit", "The commit whose flows are active (value 1)", "gauge", ["source", "commit"]
        )
        self.flows = _Family("gitsync_flows", "Active flows", "gauge", ["source"])
        self.triggers = _Family("gitsync_triggers", "Registered triggers", "gauge", ["source"])
        self.fires = _Family("gitsync_trigger_fires_total", "Executions created by triggers", "counter", ["flow"])
        self.fire_lag = _Family(
            "gitsync_trigger_fire_lag_seconds",
            "Execution creation time minus the trigger's scheduled time",
            "histogram",
            buckets=LAG_BUCKETS,
        )
        self.webhooks = _Family(
            "gitsync_webhooks_total", "Webhook deliveries by outcome", "counter", ["host", "outcome"]
        )
        self._families = (
            self.sync_duration,
            self.syncs,
            self.applied_commit,
            self.flows,
            self.triggers,
            self.fires,
            self.fire_lag,
            self.webhooks,
        )
        self._commits: dict[str, str] = {}
        self._lock = threading.Lock()
        self.extra: list[Callable[[], list[str]]] = []
        """More lines, each a whole family in the text format (the Celery executor's gauges)."""

    def observe_sync(self, source: str, outcome: str, seconds: float, commit: str | None = None) -> None:
        """One finished sync; `commit` (if given) becomes the source's applied commit."""
        with self._lock:
            self.sync_duration.observe(max(seconds, 0.0), source)
            self.syncs.inc(source, outcome)
        if commit:
            self.set_applied_commit(source, commit)

    def set_applied_commit(self, source: str, commit: str) -> None:
        """Keep exactly one `commit` series per source: the previous one is removed."""
        with self._lock:
            previous = self._commits.get(source)
            if previous == commit:
                return
            if previous is not None:
                self.applied_commit.remove(source, previous)
            self.applied_commit.set(1, source, commit)
            self._commits[source] = commit

    def set_counts(self, source: str, flows: int, triggers: int) -> None:
        with self._lock:
            self.flows.set(flows, source)
            self.triggers.set(triggers, source)

    def observe_fire(self, flow: str, lag_seconds: float) -> None:
        with self._lock:
            self.fires.inc(flow)
            self.fire_lag.observe(max(lag_seconds, 0.0))

    def webhook(self, host: str, outcome: str) -> None:
        with self._lock:
            self.webhooks.inc(host, outcome)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric above."""
        with self._lock:
            lines = [line for family in self._families for line in family.lines()]
        for more in self.extra:
            lines.extend(more())
        return ("\n".join(lines) + "\n").encode()
