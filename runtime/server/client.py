"""A /v1/stream client: `simulsa stream --server`, the tests and the load test use it.

    from simulsa.runtime.server.client import stream_file
    for event in stream_file("ws://127.0.0.1:8765", samples, 16000, {"chunk_ms": 500, "hold": 3}):
        print(event["type"], event.get("committed", ""))
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable, Iterator

import numpy as np

from simulsa.runtime.audio import to_mono
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.server.protocol import encode_pcm_s16le

FRAME_S = 0.1  # audio per binary frame of a file


def _connect(url: str, token: str | None):
    try:
        from websockets.sync.client import connect
    except ImportError:
        raise SimulsaError("--server needs the websockets package: pip install 'simulsa[serve]'") from None

    if not url.startswith(("ws://", "wss://")):
        raise SimulsaError(f"--server {url!r} must be a ws:// or wss:// address, e.g. ws://127.0.0.1:8765")
    endpoint = url.rstrip("/") + ("" if url.rstrip("/").endswith("/v1/stream") else "/v1/stream")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return connect(endpoint, additional_headers=headers, open_timeout=10, max_size=None)
    except OSError as error:
        raise SimulsaError(f"cannot reach the server at {endpoint}: {error}; is `simulsa serve` running?") from None


def paced_frames(samples: np.ndarray, sample_rate: int, realtime: bool = True, frame_s: float = FRAME_S) -> Iterator[np.ndarray]:
    """A file as frames of `frame_s`; with `realtime`, a frame is released once all of its audio would have been
    spoken (as a microphone delivers a block when it is recorded)."""
    mono = to_mono(np.asarray(samples)).astype(np.float32)
    step = max(1, int(frame_s * sample_rate))
    began = time.perf_counter()
    for start in range(0, mono.size, step):
        frame = mono[start : start + step]
        if realtime:
            time.sleep(max(0.0, began + (start + frame.size) / sample_rate - time.perf_counter()))
        yield frame


def stream_file(url: str, samples: np.ndarray, sample_rate: int, options: dict | None = None, token: str | None = None,
                realtime: bool = True) -> Iterator[dict]:  # fmt: skip
    """A whole file through the server: see stream_blocks."""
    return stream_blocks(url, paced_frames(samples, sample_rate, realtime), sample_rate, options, token)


def stream_blocks(url: str, blocks: Iterable[np.ndarray], sample_rate: int, options: dict | None = None,
                  token: str | None = None) -> Iterator[dict]:  # fmt: skip
    """Send the blocks (float, mono, as they come), then "end"; yield every event the server sends, in order.

    The sender runs on its own thread so that events are read while audio is still going out (a
    microphone's blocks arrive forever until Ctrl-C; the stream then ends cleanly with its finals).
    Raises SimulsaError with the server's message if it answers with {"type": "error"}.
    """
    from websockets.exceptions import ConnectionClosed

    socket = _connect(url, token)
    ready = _start(socket, {"type": "start", "sample_rate": sample_rate, "sample_format": "pcm_s16le", "channels": 1,
                            "options": options or {}})  # fmt: skip
    yield ready
    stop = threading.Event()

    def send_all() -> None:
        try:
            for block in blocks:
                if stop.is_set():
                    break
                socket.send(encode_pcm_s16le(block))
            socket.send(json.dumps({"type": "end"}))
        except ConnectionClosed:
            pass  # the server closed the stream: the reader reports why

    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    try:
        for text in socket:
            event = json.loads(text)
            if event["type"] == "error":
                raise SimulsaError(f"the server ended the stream: {event['message']}")
            yield event
            if event["type"] == "end":
                break
    except KeyboardInterrupt:
        stop.set()  # Ctrl-C: stop sending, let the server finish the segment
        yield from _finish_after_interrupt(socket, sender)
    finally:
        stop.set()
        socket.close()
        sender.join(timeout=5)


def _start(socket, start: dict) -> dict:
    """Send "start", return "ready"; a refusal (full, token, origin, bad options) raises with the server's message."""
    from websockets.exceptions import ConnectionClosed

    with contextlib.suppress(ConnectionClosed):  # a refusal may close the stream before "start" is sent; its reason is queued
        socket.send(json.dumps(start))
    try:
        ready = json.loads(socket.recv(timeout=30))
    except ConnectionClosed as closed:
        socket.close()
        raise SimulsaError(f"the server closed the stream ({closed.rcvd.code if closed.rcvd else 'no close frame'})") from None
    if ready.get("type") != "ready":
        socket.close()
        raise SimulsaError(f"the server refused the stream: {ready.get('message', ready)}")
    return ready


def _finish_after_interrupt(socket, sender: threading.Thread) -> Iterator[dict]:
    sender.join(timeout=5)
    for text in socket:
        event = json.loads(text)
        yield event
        if event["type"] in ("end", "error"):
            return
