"""The server's counters, served at /metrics in Prometheus' text format (no client library needed)."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter

PREFIX = "simulsa"


@dataclasses.dataclass
class ServerMetrics:
    sessions_open: int = 0
    sessions_total: int = 0
    audio_seconds: float = 0.0  # audio received and processed
    compute_seconds: float = 0.0  # worker time spent on it
    events_sent: int = 0
    lag_ms_last: dict[str, float] = dataclasses.field(default_factory=dict)  # session -> its latest lag
    errors: Counter = dataclasses.field(default_factory=Counter)  # reason -> count
    batcher: object | None = None  # the StepBatcher when streams' steps are batched (--max-batch-size > 1)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def opened(self) -> None:
        with self._lock:
            self.sessions_open += 1
            self.sessions_total += 1

    def closed(self, session: str) -> None:
        with self._lock:
            self.sessions_open -= 1
            self.lag_ms_last.pop(session, None)

    def computed(self, session: str, audio_s: float, compute_s: float, lag_ms: float, events: int) -> None:
        with self._lock:
            self.audio_seconds += audio_s
            self.compute_seconds += compute_s
            self.events_sent += events
            self.lag_ms_last[session] = lag_ms

    def error(self, reason: str) -> None:
        with self._lock:
            self.errors[reason] += 1

    def render(self) -> str:
        with self._lock:
            rtf = self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0
            lags = list(self.lag_ms_last.values())
            rows = [
                ("sessions_open", "gauge", "Streams open now.", [("", self.sessions_open)]),
                ("sessions_total", "counter", "Streams opened since start.", [("", self.sessions_total)]),
                ("audio_seconds_total", "counter", "Seconds of audio processed.", [("", self.audio_seconds)]),
                ("compute_seconds_total", "counter", "Worker seconds spent processing it.", [("", self.compute_seconds)]),
                ("real_time_factor", "gauge", "compute_seconds_total / audio_seconds_total.", [("", rtf)]),
                ("lag_ms_max", "gauge", "Largest lag of compute behind received audio over open streams.",
                 [("", max(lags, default=0.0))]),
                ("events_total", "counter", "Events sent to clients.", [("", self.events_sent)]),
                ("errors_total", "counter", "Streams ended by an error, by reason.",
                 [(f'{{reason="{reason}"}}', n) for reason, n in sorted(self.errors.items())] or [('{reason="none"}', 0)]),
            ]  # fmt: skip
            if self.batcher is not None:  # mean steps per call = steps / calls: how much the batching batches
                rows += [("decode_calls_total", "counter", "Decoder calls on the shared KV buffer.", [("", self.batcher.calls)]),
                         ("decode_steps_total", "counter", "Tokens (positions) those calls decoded.",
                          [("", self.batcher.batched_tokens)])]  # fmt: skip
        lines = []
        for name, kind, help_text, samples in rows:
            lines += [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} {kind}"]
            lines += [f"{PREFIX}_{name}{labels} {value:g}" for labels, value in samples]
        return "\n".join(lines) + "\n"
