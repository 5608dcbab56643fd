"""`simulsa serve`: one loaded model, many WebSocket streams, a browser page, captions, health and metrics.

Starlette on uvicorn: Starlette is the small ASGI toolkit FastAPI is built on; this server has one
WebSocket route and a few fixed pages, so FastAPI's request models and OpenAPI would add weight and
nothing used. Every stream runs on one shared `Translator` (one copy of the weights); the compute of
all streams goes through one bounded thread pool (onnxruntime releases the GIL while it computes), and
each stream's own steps run one at a time, in order, so sessions never see each other's state.

Per connection two tasks: the reader validates messages and queues audio; the computer takes all
audio queued so far, runs `accept_audio` + `step` in the pool, and sends the events. A client that
sends faster than real time makes the queue, not the server, wait; one that stops reading is dropped
after `send_timeout_s`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from simulsa.runtime.batching import StepBatcher
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.server.metrics import ServerMetrics
from simulsa.runtime.server.options import ServeOptions
from simulsa.runtime.server.protocol import (
    PROTOCOL,
    CloseCode,
    FrameDecoder,
    ProtocolError,
    StartMessage,
    error_message,
    event_message,
    parse_message,
    parse_start,
)
from simulsa.runtime.session import TranslationEvent, Translator
from simulsa.runtime.subtitles import SUBTITLE_FORMATS, cues_from_events

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/captions": "captions.html", "/app.js": "app.js", "/worklet.js": "worklet.js",
         "/captions.js": "captions.js", "/style.css": "style.css"}  # fmt: skip
RATE_WINDOW_S = 2.0
MAX_BEHIND_S = 30.0  # audio queued but not yet computed; more means the client sends faster than the model can follow
END = object()  # queued after the last audio: finish the stream
log = logging.getLogger("simulsa.serve")


def log_event(level: int, event: str, **fields) -> None:
    """One structured line per happening: {"event": …, fields…} (the CLI sets a JSON formatter)."""
    log.log(level, json.dumps({"event": event, **fields}, ensure_ascii=False, default=str))


class Refusal(Exception):
    def __init__(self, message: str, code: int, reason: str) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason


class CaptionHub:
    """Every stream's events, fanned out to the /captions pages (each subscriber has a short queue)."""

    def __init__(self) -> None:
        self.subscribers: set[asyncio.Queue] = set()

    def publish(self, message: dict) -> None:
        for queue in self.subscribers:
            if queue.full():  # a slow caption page skips old text rather than holding memory
                queue.get_nowait()
            queue.put_nowait(message)


class StreamServer:
    """What every connection shares: the model, the compute pool, the limits, the counters, the open streams."""

    def __init__(self, translator: Translator, options: ServeOptions) -> None:
        self.translator, self.options = translator, options
        self.pool = ThreadPoolExecutor(options.compute_workers, thread_name_prefix="simulsa-compute")
        self.metrics = ServerMetrics()
        model = translator.model
        if options.max_batch_size > 1 and model.bundle.decoder.kind == "fused":  # one KVBuffer slot per open stream
            model.decoder = StepBatcher(model.decoder, options.max_sessions, options.max_batch_size, options.max_wait_ms)
            self.metrics.batcher = model.decoder
        self.connections: set[Connection] = set()
        self.captions = CaptionHub()
        self.draining = False
        self.started = time.time()

    # ---- admission ----------------------------------------------------------------------

    def check_access(self, client: HTTPConnection) -> None:
        """Token and Origin, for WebSockets and the protected pages; raises Refusal."""
        headers = client.headers  # case-insensitive
        if self.options.token:
            bearer = headers.get("authorization", "")
            given = bearer[7:] if bearer.lower().startswith("bearer ") else client.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), self.options.token.encode()):
                raise Refusal("a valid token is required ('Authorization: Bearer T' or ?token=T)",
                              CloseCode.POLICY_VIOLATION, "unauthorized")  # fmt: skip
        origin = headers.get("origin")
        if origin is None:  # not a browser: nothing to check
            return
        own = f"{'https' if client.url.scheme in ('https', 'wss') else 'http'}://{headers.get('host', '')}"
        if origin != own and origin not in self.options.allow_origins and "*" not in self.options.allow_origins:
            raise Refusal(f"origin {origin} is not allowed (serve with --allow-origin {origin})", CloseCode.POLICY_VIOLATION,
                          "origin")  # fmt: skip

    def admit(self) -> None:
        if self.draining:
            raise Refusal("the server is shutting down", CloseCode.GOING_AWAY, "shutting_down")
        if len(self.connections) >= self.options.max_sessions:
            raise Refusal(f"the server is full ({self.options.max_sessions} streams, --max-sessions); try again later",
                          CloseCode.TRY_AGAIN_LATER, "full")  # fmt: skip

    async def drain(self) -> None:
        """Shutdown: refuse new streams, finish every open segment, send its finals, close with 1001."""
        self.draining = True
        for connection in list(self.connections):
            connection.queue.put_nowait(END)
            connection.close_code = CloseCode.GOING_AWAY
        deadline = time.monotonic() + self.options.shutdown_timeout_s
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.pool.shutdown(wait=False, cancel_futures=True)


class Connection:
    """One /v1/stream client from "start" to close."""

    def __init__(self, server: StreamServer, websocket: WebSocket) -> None:
        self.server, self.websocket = server, websocket
        self.id = uuid.uuid4().hex[:12]
        self.queue: asyncio.Queue = asyncio.Queue()
        self.close_code = CloseCode.NORMAL
        self.received_s = 0.0  # audio received, in seconds
        self.queued_s = 0.0  # ... of which not yet handed to compute
        self.finals: list[TranslationEvent] = []
        self.message_times: collections.deque[float] = collections.deque()
        self.start: StartMessage | None = None

    # ---- the two tasks -----------------------------------------------------------------

    async def read(self) -> None:
        """Messages -> the queue, until "end" (then returns) or a fault (raises)."""
        decoder = FrameDecoder(self.start)
        while True:
            message = await self._receive()
            if message.get("bytes") is not None:
                frame = message["bytes"]
                if len(frame) > self.server.options.max_frame_bytes:
                    raise ProtocolError(f"a frame of {len(frame)} bytes is over the limit of "
                                        f"{self.server.options.max_frame_bytes}; send smaller frames",
                                        CloseCode.MESSAGE_TOO_BIG)  # fmt: skip
                samples = decoder.decode(frame)
                seconds = samples.shape[0] / self.start.sample_rate
                self.received_s += seconds
                self.queued_s += seconds
                if self.received_s > self.server.options.max_session_s:
                    raise ProtocolError(f"the stream passed --max-session-s {self.server.options.max_session_s:g} s of audio",
                                        CloseCode.POLICY_VIOLATION)  # fmt: skip
                if self.queued_s > MAX_BEHIND_S:
                    raise ProtocolError(f"audio arrives faster than it can be translated ({self.queued_s:.0f} s queued); "
                                        "send it in real time", CloseCode.POLICY_VIOLATION)  # fmt: skip
                self.queue.put_nowait(samples)
                continue
            kind = parse_message(message.get("text") or "")["type"]
            if kind != "end":
                raise ProtocolError(f'unexpected message type {kind!r} during a stream (send audio frames, then "end")')
            self.queue.put_nowait(END)
            return

    async def compute(self) -> None:
        """Queued audio -> events, in order; "end" (or a shutdown) -> finish, finals, the end message."""
        loop = asyncio.get_running_loop()
        try:
            session = await loop.run_in_executor(self.server.pool, self.server.translator.session, self.start.options)
        except SimulsaError as error:  # options this model cannot take (e.g. max_segment_s beyond its window)
            raise ProtocolError(f"bad stream options for this model: {error}", CloseCode.UNSUPPORTED_DATA) from None
        try:
            await self._compute_loop(loop, session)
        finally:
            session.close()  # its KV storage serves the next stream

    async def _compute_loop(self, loop, session) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            audio = [item for item in batch if item is not END]
            finished = len(audio) < len(batch)
            began = time.perf_counter()
            events = await loop.run_in_executor(self.server.pool, self._process, session, audio, finished)
            seconds = sum(x.shape[0] for x in audio) / self.start.sample_rate
            self.queued_s -= seconds
            lag_ms = 1000 * self.queued_s  # audio that arrived while this step ran, still waiting for compute
            self.server.metrics.computed(self.id, seconds, time.perf_counter() - began, lag_ms, len(events))
            for event in events:
                await self._send(event_message(event, lag_ms))
            if finished:
                await self._send(self._end_message())
                return

    # ---- helpers ---------------------------------------------------------------------

    def _process(self, session, audio: list, finished: bool) -> list[TranslationEvent]:
        for samples in audio:
            session.accept_audio(samples, self.start.sample_rate)
        events = session.step() + (session.finish() if finished else [])
        self.finals += [event for event in events if event.final]  # the subtitles need only these: memory stays small
        return events

    def _end_message(self) -> dict:
        subtitles = {name: render(cues_from_events(self.finals)) for name, render in SUBTITLE_FORMATS.items()}
        text = " ".join(e.segment_text.strip() for e in self.finals if e.segment_text.strip())
        return {"type": "end", "session": self.id, "audio_ms": round(1000 * self.received_s, 1), "text": text, **subtitles,
                **({"reason": "the server is shutting down"} if self.close_code == CloseCode.GOING_AWAY else {})}  # fmt: skip

    async def _receive(self) -> dict:
        try:
            message = await asyncio.wait_for(self.websocket.receive(), self.server.options.idle_timeout_s)
        except TimeoutError:
            raise ProtocolError(f"no message for {self.server.options.idle_timeout_s:g} s (--idle-timeout-s)",
                                CloseCode.POLICY_VIOLATION) from None  # fmt: skip
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1006))
        now = time.monotonic()
        self.message_times.append(now)
        while self.message_times[0] < now - RATE_WINDOW_S:
            self.message_times.popleft()
        if len(self.message_times) > self.server.options.max_messages_per_s * RATE_WINDOW_S:
            raise ProtocolError(f"more than {self.server.options.max_messages_per_s:g} messages a second "
                                "(--max-messages-per-s); send larger frames", CloseCode.POLICY_VIOLATION)  # fmt: skip
        return message

    async def _send(self, message: dict) -> None:
        try:
            await asyncio.wait_for(self.websocket.send_text(json.dumps(message, ensure_ascii=False)),
                                   self.server.options.send_timeout_s)  # fmt: skip
        except TimeoutError:
            raise ProtocolError(f"the client read nothing for {self.server.options.send_timeout_s:g} s; dropped",
                                CloseCode.POLICY_VIOLATION) from None  # fmt: skip
        if message["type"] in ("partial", "final"):
            self.server.captions.publish({**message, "session": self.id})

    # ---- the whole connection ------------------------------------------------------------

    async def serve(self) -> None:
        server = self.server
        first = parse_message(await self._receive_text_first())
        self.start = parse_start(first, server.options.stream)
        await self._send({"type": "ready", "protocol": PROTOCOL, "session": self.id, "sample_rate": self.start.sample_rate,
                          "sample_format": self.start.sample_format, "channels": self.start.channels,
                          "options": {k: getattr(self.start.options, k) for k in ("chunk_ms", "policy", "hold")}})  # fmt: skip
        log_event(logging.INFO, "stream_start", session=self.id, client=self.websocket.client, sample_rate=self.start.sample_rate,
                  sample_format=self.start.sample_format, chunk_ms=self.start.options.chunk_ms)  # fmt: skip
        reader, computer = asyncio.create_task(self.read()), asyncio.create_task(self.compute())
        try:
            done, _ = await asyncio.wait({reader, computer}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                reader.result()  # a fault of the client's raises here; after "end" it returns
            await computer  # "end" (or a shutdown) was queued: the computer finishes the stream
        finally:
            for task in (reader, computer):
                task.cancel()

    async def _receive_text_first(self) -> str:
        message = await self._receive()
        if message.get("text") is None:
            raise ProtocolError('audio arrived before the "start" message; send {"type": "start", …} first')
        return message["text"]


async def stream_endpoint(websocket: WebSocket) -> None:
    server: StreamServer = websocket.app.state.server
    await websocket.accept()
    connection = Connection(server, websocket)
    code, reason = CloseCode.NORMAL, "ok"
    try:
        server.check_access(websocket)
        server.admit()
    except Refusal as refusal:
        server.metrics.error(refusal.reason)
        log_event(logging.WARNING, "stream_refused", reason=refusal.reason, client=websocket.client)
        await _close_with_error(websocket, str(refusal), refusal.code)
        return
    server.connections.add(connection)
    server.metrics.opened()
    began = time.perf_counter()
    try:
        await connection.serve()
        code = connection.close_code
    except ProtocolError as error:
        code, reason = error.code, "protocol"
        server.metrics.error(f"protocol_{error.code}")
        await _close_with_error(websocket, str(error), error.code)
    except WebSocketDisconnect:
        code, reason = 1006, "client_vanished"
        server.metrics.error(reason)
    except SimulsaError as error:  # the model refused this stream's audio or options
        code, reason = CloseCode.INTERNAL_ERROR, "model"
        server.metrics.error(reason)
        await _close_with_error(websocket, str(error), CloseCode.INTERNAL_ERROR)
    except Exception as error:  # a bug: keep the traceback in the log, keep serving the others
        code, reason = CloseCode.INTERNAL_ERROR, "internal"
        server.metrics.error(reason)
        log.exception("stream %s failed", connection.id)
        await _close_with_error(websocket, f"internal error: {type(error).__name__}", CloseCode.INTERNAL_ERROR)
    else:
        await _close(websocket, code)
    finally:
        server.connections.discard(connection)
        server.metrics.closed(connection.id)
        log_event(logging.INFO, "stream_end", session=connection.id, code=code, reason=reason,
                  audio_s=round(connection.received_s, 2), wall_s=round(time.perf_counter() - began, 2))  # fmt: skip


def _open(websocket: WebSocket) -> bool:
    return websocket.application_state == WebSocketState.CONNECTED and websocket.client_state == WebSocketState.CONNECTED


async def _close_with_error(websocket: WebSocket, message: str, code: int) -> None:
    if _open(websocket):
        with contextlib.suppress(Exception):  # the client is gone or not reading: closing is all that is left
            await asyncio.wait_for(websocket.send_text(error_message(message)), 2.0)
    await _close(websocket, code)


async def _close(websocket: WebSocket, code: int) -> None:
    if _open(websocket):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code), 2.0)


async def captions_endpoint(websocket: WebSocket) -> None:
    """Every stream's partial and final events, for the /captions overlay (read-only)."""
    server: StreamServer = websocket.app.state.server
    await websocket.accept()
    try:
        server.check_access(websocket)
    except Refusal as refusal:
        await _close_with_error(websocket, str(refusal), refusal.code)
        return
    queue: asyncio.Queue = asyncio.Queue(maxsize=64)
    server.captions.subscribers.add(queue)
    receiver = asyncio.create_task(websocket.receive())  # only to notice the page going away
    try:
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                return
            await asyncio.wait_for(websocket.send_text(json.dumps(getter.result(), ensure_ascii=False)),
                                   server.options.send_timeout_s)  # fmt: skip
    except (WebSocketDisconnect, TimeoutError, RuntimeError):
        return
    finally:
        receiver.cancel()
        server.captions.subscribers.discard(queue)


def _protected(endpoint):
    async def guarded(request: Request) -> Response:
        server: StreamServer = request.app.state.server
        try:
            server.check_access(request)
        except Refusal as refusal:
            return PlainTextResponse(str(refusal) + "\n", status_code=401 if refusal.reason == "unauthorized" else 403)
        return await endpoint(request)

    return guarded


async def metrics_page(request: Request) -> Response:
    return PlainTextResponse(request.app.state.server.metrics.render(), media_type="text/plain; version=0.0.4")


async def health_page(request: Request) -> Response:
    server: StreamServer = request.app.state.server
    status = "draining" if server.draining else "ok"
    return JSONResponse({"status": status, "protocol": PROTOCOL, "sessions_open": len(server.connections),
                         "max_sessions": server.options.max_sessions, "family": server.translator.model.bundle.family,
                         "uptime_s": round(time.time() - server.started, 1)},
                        status_code=200 if status == "ok" else 503)  # fmt: skip


def _static(name: str):
    async def page(request: Request) -> Response:
        return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

    return page


def create_app(translator: Translator, options: ServeOptions) -> Starlette:
    """The ASGI app; `app.state.server` holds the shared StreamServer (call its drain() before stopping)."""
    routes = [WebSocketRoute("/v1/stream", stream_endpoint), WebSocketRoute("/v1/captions", captions_endpoint),
              Route("/healthz", health_page), Route("/metrics", _protected(metrics_page))]  # fmt: skip
    routes += [Route(path, _static(name)) for path, name in PAGES.items()]
    app = Starlette(routes=routes)
    app.state.server = StreamServer(translator, options)
    return app
