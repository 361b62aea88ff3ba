"""Prometheus metrics of the service, in a registry of its own (two apps in one process never share counters).

gitsync_sync_duration_seconds{source}            histogram   fetch + plan + apply of one sync
gitsync_syncs_total{source,outcome}              counter     applied | unchanged | invalid | refused | failed
gitsync_applied_commit{source,commit}            gauge = 1   info-style: the commit whose flows are active
gitsync_flows{source}                            gauge       active flows
gitsync_triggers{source}                         gauge       registered triggers
gitsync_trigger_fires_total{flow}                counter     executions created by a trigger
gitsync_trigger_fire_lag_seconds                 histogram   execution created minus scheduled time
gitsync_webhooks_total{host,outcome}             counter     accepted | ignored | duplicate | unauthorized | …
"""

from __future__ import annotations

import threading

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """Thread-safe recorders (prometheus_client's own locks), plus `render()` for `GET /metrics`."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sync_duration = Histogram(
            "gitsync_sync_duration_seconds", "Duration of one sync", ["source"], buckets=SYNC_BUCKETS, registry=r
        )
        self.syncs = Counter("gitsync_syncs", "Syncs by outcome", ["source", "outcome"], registry=r)
        self.applied_commit = Gauge(
            "gitsync_applied_commit", "The commit whose flows are active (value 1)", ["source", "commit"], registry=r
        )
        self.flows = Gauge("gitsync_flows", "Active flows", ["source"], registry=r)
        self.triggers = Gauge("gitsync_triggers", "Registered triggers", ["source"], registry=r)
        self.fires = Counter("gitsync_trigger_fires", "Executions created by triggers", ["flow"], registry=r)
        self.fire_lag = Histogram(
            "gitsync_trigger_fire_lag_seconds",
            "Execution creation time minus the trigger's scheduled time",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.webhooks = Counter("gitsync_webhooks", "Webhook deliveries by outcome", ["host", "outcome"], registry=r)
        self._commits: dict[str, str] = {}
        self._lock = threading.Lock()

    def observe_sync(self, source: str, outcome: str, seconds: float, commit: str | None = None) -> None:
        """One finished sync; `commit` (if given) becomes the source's applied commit."""
        self.sync_duration.labels(source=source).observe(max(seconds, 0.0))
        self.syncs.labels(source=source, outcome=outcome).inc()
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
            self.applied_commit.labels(source=source, commit=commit).set(1)
            self._commits[source] = commit

    def set_counts(self, source: str, flows: int, triggers: int) -> None:
        self.flows.labels(source=source).set(flows)
        self.triggers.labels(source=source).set(triggers)

    def observe_fire(self, flow: str, lag_seconds: float) -> None:
        self.fires.labels(flow=flow).inc()
        self.fire_lag.observe(max(lag_seconds, 0.0))

    def webhook(self, host: str, outcome: str) -> None:
        self.webhooks.labels(host=host, outcome=outcome).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric above."""
        return generate_latest(self.registry)
