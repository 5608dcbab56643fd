"""`simulsa serve`: one loaded model for many WebSocket streams, a browser page and captions."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Annotated

import typer

from simulsa.cli.app import TRANSLATE_PANEL, app, reports_errors
from simulsa.cli.shared import DefaultableBundle, SkipChecksum, Threads, Verbose, load_translator
from simulsa.runtime.errors import SimulsaError

command = functools.partial(app.command, rich_help_panel=TRANSLATE_PANEL)


class JsonLines(logging.Formatter):
    """The server's log records are JSON already (runtime/server/app.py: log_event); others get wrapped."""

    def format(self, record: logging.LogRecord) -> str:
        import json
        import time

        message = record.getMessage()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        body = message[1:] if message.startswith("{") and message.endswith("}") else json.dumps({"message": message})[1:]
        extra = f', "traceback": {json.dumps(self.formatException(record.exc_info))}' if record.exc_info else ""
        return f'{{"time": "{stamp}", "level": "{record.levelname.lower()}", "logger": "{record.name}", {body[:-1]}{extra}}}'


@command(epilog="Examples:\n\n"
         "  simulsa serve                         (then open http://127.0.0.1:8765/ and press Start)\n\n"
         "  simulsa serve --host 0.0.0.0 --token $(openssl rand -hex 16) --max-sessions 4\n\n"
         "  simulsa stream talk.wav --server ws://127.0.0.1:8765 --realtime")  # fmt: skip
@reports_errors
def serve(
    bundle: DefaultableBundle = None,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    max_sessions: Annotated[int, typer.Option(help="Streams open at once; one more is refused (close code 1013).")] = 8,
    token: Annotated[str | None, typer.Option(help="Bearer token clients must send (header, or ?token= in the page's "
                                                   "address).", envvar="SIMULSA_TOKEN")] = None,
    allow_origin: Annotated[list[str] | None, typer.Option(help="Browser origin allowed besides the server's own "
                                                                "(repeatable; * allows any).")] = None,
    workers: Annotated[int, typer.Option(help="Compute threads shared by all streams (0: one per core).")] = 0,
    max_batch_size: Annotated[int, typer.Option(help="Decode the streams' token steps together, up to this many per call "
                                                     "(fused bundles; 1: off).")] = 1,
    max_wait_ms: Annotated[float, typer.Option(help="How long a step waits for other streams' steps to join.")] = 2.0,
    chunk_ms: Annotated[float, typer.Option(help="Default audio per step for clients that do not say.")] = 500,
    hold: Annotated[int, typer.Option(help="Default hold for clients that do not say.")] = 3,
    vad: Annotated[str, typer.Option(help="Default voice-activity detector: energy or silero.")] = "energy",
    max_session_s: Annotated[float, typer.Option(help="Longest stream, seconds of audio.")] = 4 * 3600.0,
    idle_timeout_s: Annotated[float, typer.Option(help="A stream with no message for this long is closed.")] = 60.0,
    log_file: Annotated[Path | None, typer.Option(help="Write the JSON log here too (default: stderr only).")] = None,
    threads: Threads = None,
    skip_checksum: SkipChecksum = False,
    verbose: Verbose = False,
) -> None:
    """Serve the model over WebSocket (/v1/stream), with a browser page (/), captions for OBS (/captions),
    /healthz and /metrics."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
        import websockets  # noqa: F401
    except ImportError as missing:
        raise SimulsaError(f"simulsa serve needs the [serve] extra ({missing.name or missing}): "
                           "pip install 'simulsa[serve]'") from None  # fmt: skip
    from simulsa.runtime.server.options import ServeOptions
    from simulsa.runtime.server.run import bind, serve_forever
    from simulsa.runtime.session import StreamOptions

    options = ServeOptions(host=host, port=port, max_sessions=max_sessions, token=token,
                           allow_origins=tuple(allow_origin or ()), workers=workers, max_batch_size=max_batch_size,
                           max_wait_ms=max_wait_ms,
                           stream=StreamOptions(chunk_ms=chunk_ms, hold=hold, vad=vad), max_session_s=max_session_s,
                           idle_timeout_s=idle_timeout_s)  # fmt: skip
    _configure_logging(log_file)
    sock = bind(host, port)  # before loading the model: a port in use fails at once
    translator = load_translator(bundle, threads, skip_checksum, verbose)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"serving {translator.model.bundle.family} on http://{shown}:{sock.getsockname()[1]}/ "
               f"(WebSocket /v1/stream; Ctrl-C finishes open streams and stops)", err=True)  # fmt: skip
    serve_forever(translator, options, sock)


def _configure_logging(log_file: Path | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(JsonLines())
    levels = {"simulsa.serve": logging.INFO, "uvicorn.error": logging.WARNING}  # uvicorn's per-connection lines repeat ours
    for name, level in levels.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = handlers, False
        logger.setLevel(level)
