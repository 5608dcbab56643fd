"""Load test: N clients streaming real-time audio to one `simulsa serve` at once (loopback).

    python -m simulsa.runtime.server.load --url ws://127.0.0.1:8765 --audio talk.wav --clients 1,2,3,4

Per event, the added latency is when the event arrived minus when the audio it covers had been sent
(audio is sent at the speed it would be spoken, so audio time t leaves at start + t). A load keeps
up when every stream's server-reported lag stays under `MAX_LAG_MS` and the p95 added latency stays
under one chunk plus `MAX_LAG_MS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
import time

import numpy as np

from simulsa.runtime.server.client import paced_frames, stream_blocks

MAX_LAG_MS = 1000.0


@dataclasses.dataclass(frozen=True)
class LoadResult:
    clients: int
    events: int
    added_p50_ms: float
    added_p95_ms: float
    max_lag_ms: float
    errors: int
    keeps_up: bool

    def line(self) -> str:
        verdict = "keeps up" if self.keeps_up else "falls behind"
        return (f"{self.clients:>3} clients  {self.events:>5} events  added latency p50 {self.added_p50_ms:7.0f} ms  "
                f"p95 {self.added_p95_ms:7.0f} ms  max lag {self.max_lag_ms:7.0f} ms  errors {self.errors}  {verdict}")


def _one_client(url: str, samples: np.ndarray, rate: int, options: dict, token: str | None, out: list, errors: list) -> None:
    try:
        began = None
        # the frames' clock starts when the sender takes the first one, right after "ready": the same moment as ours
        for message in stream_blocks(url, paced_frames(samples, rate, realtime=True), rate, options, token):
            if message["type"] == "ready":
                began = time.perf_counter()
            elif message["type"] in ("partial", "final"):
                out.append((time.perf_counter() - began - message["t_audio_ms"] / 1000, message["lag_ms"]))
    except Exception as error:  # a refused or dropped stream is a result of the load, not a crash of the test
        errors.append(repr(error))


def run_load(url: str, samples: np.ndarray, rate: int, clients: int, options: dict, token: str | None = None) -> LoadResult:
    records: list[tuple[float, float]] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_one_client, args=(url, samples, rate, options, token, records, errors))
               for _ in range(clients)]  # fmt: skip
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # not all in the same millisecond
    for thread in threads:
        thread.join()
    added = np.array([r[0] for r in records]) * 1000 if records else np.zeros(1)
    lags = [r[1] for r in records] or [0.0]
    chunk_ms = float(options.get("chunk_ms", 500))
    p95 = float(np.percentile(added, 95))
    keeps_up = not errors and max(lags) < MAX_LAG_MS and p95 < chunk_ms + MAX_LAG_MS
    return LoadResult(clients, len(records), float(np.percentile(added, 50)), p95, float(max(lags)), len(errors), keeps_up)


def main() -> None:
    from simulsa.runtime.audio import load_audio

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8765")
    parser.add_argument("--audio", required=True, help="a speech file every client sends")
    parser.add_argument("--clients", default="1,2,3,4", help="client counts to try, comma-separated")
    parser.add_argument("--chunk-ms", type=float, default=500)
    parser.add_argument("--hold", type=int, default=3)
    parser.add_argument("--token", default=None)
    parser.add_argument("--json", action="store_true", help="one JSON line per load instead of text")
    args = parser.parse_args()
    samples = load_audio(args.audio)
    for clients in (int(n) for n in args.clients.split(",")):
        result = run_load(args.url, samples, 16000, clients, {"chunk_ms": args.chunk_ms, "hold": args.hold}, args.token)
        print(json.dumps(dataclasses.asdict(result)) if args.json else result.line(), flush=True)


if __name__ == "__main__":
    main()
