"""Prometheus metrics, one registry per app (several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "crr_gateway_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "crr_gateway_http_request_duration_seconds",
            "Time to answer an HTTP request (until the response started for streams).",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.restarts_created = Counter(
            "crr_gateway_restarts_created",
            "Restarts created through this replica.",
            ["namespace"],
            registry=self.registry,
        )
        self.restarts_finished = Counter(
            "crr_gateway_restarts_finished",
            "Restarts seen finishing by the watch cache, by result and failure reason.",
            ["result", "failure_reason"],
            registry=self.registry,
        )
        self.rollouts_created = Counter(
            "crr_gateway_rollouts_created",
            "Rollouts created through this replica.",
            ["namespace"],
            registry=self.registry,
        )
        self.rollouts_finished = Counter(
            "crr_gateway_rollouts_finished",
            "Rollouts this replica's controller saw to their end, by phase.",
            ["phase"],
            registry=self.registry,
        )
        self.rollout_conflicts = Counter(
            "crr_gateway_rollout_step_conflicts",
            "Rollout steps that lost the write to another writer (another replica, a pause) "
            "and were decided again.",
            registry=self.registry,
        )
        self.cache_size = Gauge(
            "crr_gateway_cache_restarts",
            "Restarts held in the watch cache (live CRRs, and tombstones of deleted ones).",
            ["state"],
            registry=self.registry,
        )
        self.watch_restarts = Counter(
            "crr_gateway_watch_restarts",
            "Times a CRR list+watch was restarted, by scope and reason.",
            ["scope", "reason"],
            registry=self.registry,
        )
        self.watch_events = Counter(
            "crr_gateway_watch_events",
            "CRR watch events applied to the cache, by type.",
            ["type"],
            registry=self.registry,
        )
        self.cache_ready = Gauge(
            "crr_gateway_cache_ready",
            "1 when every watch cache (restarts, pods, rollouts, disruption budgets) has "
            "synced every served scope and its watches are healthy.",
            registry=self.registry,
        )
        # every watch cache, restarts included, by name
        self.watch_cache_ready = Gauge(
            "crr_gateway_watch_cache_ready",
            "1 when the cache has synced every served scope and its watches are healthy.",
            ["cache"],
            registry=self.registry,
        )
        self.watch_cache_objects = Gauge(
            "crr_gateway_watch_cache_objects",
            "Objects a watch cache holds (live, and tombstones of deleted ones).",
            ["cache", "state"],
            registry=self.registry,
        )
        self.watch_cache_relists = Counter(
            "crr_gateway_watch_cache_relists",
            "Times a watch cache's list+watch was restarted, by cache, scope and reason.",
            ["cache", "scope", "reason"],
            registry=self.registry,
        )
        self.watch_cache_events = Counter(
            "crr_gateway_watch_cache_events",
            "Watch events applied to a watch cache, by cache and type.",
            ["cache", "type"],
            registry=self.registry,
        )
