"""Run the app on uvicorn, finishing open segments before a shutdown closes the connections."""

from __future__ import annotations

import socket

from simulsa.runtime.server.app import create_app
from simulsa.runtime.server.options import ServeOptions
from simulsa.runtime.session import Translator

WS_SIZE_SLACK = 4  # frames up to 4x --max-frame-bytes get the server's own error message; beyond, the protocol's 1009


def make_server(translator: Translator, options: ServeOptions):
    """A uvicorn.Server whose shutdown first drains the streams (finals sent, close 1001)."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            await self.config.app.state.server.drain()
            await super().shutdown(sockets)

    app = create_app(translator, options)
    config = uvicorn.Config(app, host=options.host, port=options.port, ws="websockets-sansio", lifespan="off", log_config=None,
                            ws_max_size=WS_SIZE_SLACK * options.max_frame_bytes, ws_ping_interval=20.0, ws_ping_timeout=20.0,
                            timeout_graceful_shutdown=int(options.shutdown_timeout_s) + 5, access_log=False)  # fmt: skip
    return DrainingServer(config)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port; tests read it back with getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve_forever(translator: Translator, options: ServeOptions, sock: socket.socket | None = None) -> None:
    """Block serving until SIGINT/SIGTERM (then drain and stop)."""
    server = make_server(translator, options)
    server.run(sockets=[sock or bind(options.host, options.port)])
