"""Prometheus metrics, one registry per application (so tests and apps never share counts)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    """The counters and histograms the service exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._messages: dict[tuple[str, str], Any] = {}
        self._replies: dict[str, Any] = {}
        self.messages = Counter(
            "bangfu_messages",
            "Pushes resolved, by message type and outcome",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "bangfu_duplicates",
            "Repeated pushes answered without handling them again",
            ["stage"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "bangfu_rejected_pushes",
            "Requests refused at the edge, by HTTP status",
            ["status"],
            registry=self.registry,
        )
        self.reply_seconds = Histogram(
            "bangfu_reply_seconds",
            "Time from receiving a push to answering it",
            ["channel"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5),
            registry=self.registry,
        )
        self.shed = Counter(
            "bangfu_shed_pushes",
            "Pushes answered `success` at once and answered later by customer-service message: "
            "full (too many under way; started when there is room) or slow (queue past the "
            "reply budget)",
            ["reason"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "bangfu_batch_size",
            "Units of work per shared transaction (group commit)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.wechat_calls = Counter(
            "bangfu_wechat_calls",
            "Outbound WeChat API calls, by endpoint and errcode",
            ["endpoint", "errcode"],
            registry=self.registry,
        )

    def message(self, kind: str, outcome: str) -> None:
        """Count one resolved push (label children cached: this runs on every message)."""
        child = self._messages.get((kind, outcome))
        if child is None:
            child = self._messages[(kind, outcome)] = self.messages.labels(
                type=kind, outcome=outcome
            )
        child.inc()

    def replied(self, channel: str, seconds: float) -> None:
        """Observe one answer's latency (label children cached)."""
        child = self._replies.get(channel)
        if child is None:
            child = self._replies[channel] = self.reply_seconds.labels(channel=channel)
        child.observe(seconds)

    def on_wechat_call(self, endpoint: str, errcode: int) -> None:
        """Count one outbound call (the client's callback)."""
        self.wechat_calls.labels(endpoint=endpoint, errcode=str(errcode)).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
