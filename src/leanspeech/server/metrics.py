"""Prometheus metrics, on a registry of the app's own (so several apps can live in one process)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from leanspeech.runtime import Runtime


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("leanspeech_requests_total", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("leanspeech_request_seconds", "HTTP request latency", ["route"], registry=r,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64))
        self.audio_seconds = Counter("leanspeech_audio_seconds_total", "Seconds of audio transcribed", registry=r)
        self.rtf = Histogram("leanspeech_real_time_factor", "Decode seconds per audio second, per request", registry=r,
                             buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2))
        self.batch_size = Histogram("leanspeech_batch_size", "Windows per decode call", registry=r,
                                    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64))
        self.batch_seconds = Histogram("leanspeech_batch_seconds", "Seconds per decode call", registry=r)
        self.live_audio_seconds = Counter("leanspeech_live_audio_seconds_total",
                                          "Seconds of audio received by live sessions", registry=r)
        self.runtime: Runtime | None = None
        r.register(_RuntimeCollector(self))

    def bind(self, runtime: Runtime) -> None:
        """Read models, queues, sessions and memory from ``runtime`` at scrape time."""
        self.runtime = runtime

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        # the client picks the method and the status follows from it: both are folded into
        # fixed sets, so that no client can grow the label sets (route is a route's template)
        method = method if method in METHODS else "other"
        self.requests.labels(route, method, str(status) if 100 <= status < 600 else "other").inc()
        self.latency.labels(route).observe(seconds)

    def observe_audio(self, audio_s: float, decode_s: float) -> None:
        self.audio_seconds.inc(audio_s)
        if audio_s > 0:
            self.rtf.observe(decode_s / audio_s)

    def observe_live_audio(self, audio_s: float) -> None:
        self.live_audio_seconds.inc(audio_s)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _RuntimeCollector:
    """Metrics read at scrape time: memory, loaded models, queues, live sessions, unloads."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from leanspeech.memory import gpu_memory, peak_rss_lifetime, rss

        mem = GaugeMetricFamily("leanspeech_memory_bytes", "Process and GPU memory", labels=["kind"])
        mem.add_metric(["rss"], rss())
        mem.add_metric(["peak_rss"], peak_rss_lifetime())
        for g in gpu_memory():
            mem.add_metric([f"gpu{g.index}_used"], g.used)
            mem.add_metric([f"gpu{g.index}_total"], g.total)
        yield mem
        runtime = self.metrics.runtime
        if runtime is not None:
            manager = runtime.manager
            status = manager.status()
            loaded = GaugeMetricFamily("leanspeech_models_loaded", "Loaded models", labels=["model", "kind"])
            model_bytes = GaugeMetricFamily(
                "leanspeech_model_bytes", "Bytes counted per loaded model", labels=["model"]
            )
            for m in status:
                loaded.add_metric([m["name"], m["kind"]], 1)
                model_bytes.add_metric([m["name"]], m["bytes"])
            yield loaded
            yield model_bytes
            yield GaugeMetricFamily(
                "leanspeech_queue_depth",
                "Windows waiting to be decoded",
                value=sum(m.get("queue_depth", 0) for m in status),
            )
            packed = CounterMetricFamily("leanspeech_packed_windows", "Windows of requests decoded packed beside "
                                         "other requests' windows (LEANSPEECH_SERVER__PACK_REQUESTS), and those "
                                         "sent back to be decoded again", labels=["outcome"])
            packed.add_metric(["given_back"], sum(m.get("packed_windows", 0) for m in status))
            packed.add_metric(["sent_back"], sum(m.get("packed_sent_back", 0) for m in status))
            yield packed
            unloads = CounterMetricFamily("leanspeech_model_unloads", "Models unloaded")
            unloads.add_metric([], manager.unload_count)
            yield unloads
            yield GaugeMetricFamily("leanspeech_live_sessions", "Open live sessions", value=runtime.live.active)
            by_protocol = GaugeMetricFamily(
                "leanspeech_live_sessions_by_protocol", "Open live sessions per protocol", labels=["protocol"]
            )
            for protocol, count in runtime.live.by_protocol().items():
                by_protocol.add_metric([protocol], count)
            yield by_protocol
            sessions = CounterMetricFamily("leanspeech_live_sessions_opened", "Live sessions opened per protocol",
                                           labels=["protocol"])
            requests = CounterMetricFamily("leanspeech_protocol_requests", "Requests served per protocol (HTTP "
                                           "calls, Realtime items, Wyoming transcriptions and syntheses)",
                                           labels=["protocol"])
            for protocol, counts in runtime.protocols().items():
                sessions.add_metric([protocol], counts["sessions_total"])
                requests.add_metric([protocol], counts["requests_total"])
            yield sessions
            yield requests
            if manager.budget is not None:
                yield GaugeMetricFamily(
                    "leanspeech_memory_budget_bytes", "Configured model memory budget", value=manager.budget
                )
        yield GaugeMetricFamily("leanspeech_time_seconds", "Scrape time", value=time.time())
