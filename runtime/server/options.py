"""`simulsa serve` options, validated in one place."""

from __future__ import annotations

import dataclasses
import ipaddress
import os

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.session import StreamOptions

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    max_sessions: int = 8  # streams open at once; one more is refused with close code 1013
    token: str | None = None  # bearer token (header) or ?token= (browsers); required off loopback
    allow_origins: tuple[str, ...] = ()  # browser origins allowed besides the server's own
    workers: int = 0  # compute threads shared by all sessions (onnxruntime releases the GIL); 0: the core count
    max_batch_size: int = 1  # fused decoders: sessions' single-token steps decoded together (runtime/batching.py); 1: off
    max_wait_ms: float = 2.0  # how long a step waits for other sessions' steps to join its batch
    stream: StreamOptions = StreamOptions()  # defaults for what a client's "start" leaves out
    max_frame_bytes: int = 1 << 20  # one binary frame (1 MiB = 32 s of 16 kHz pcm_s16le)
    max_messages_per_s: float = 200.0  # averaged over a 2 s window
    max_session_s: float = 4 * 3600.0  # audio per session
    idle_timeout_s: float = 60.0  # no message for this long closes the stream
    send_timeout_s: float = 10.0  # a client that does not read its events for this long is dropped
    shutdown_timeout_s: float = 30.0  # how long a shutdown waits for open segments to finish

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SimulsaError(f"--port {self.port} is not a TCP port (0-65535)")
        if not is_loopback(self.host) and not self.token:
            raise SimulsaError(f"--host {self.host} is reachable from other machines; give --token T (clients send it "
                               "as 'Authorization: Bearer T' or ?token=T), or bind 127.0.0.1")  # fmt: skip
        positive = {"--max-sessions": self.max_sessions, "--max-frame-bytes": self.max_frame_bytes,
                    "--max-messages-per-s": self.max_messages_per_s, "--max-session-s": self.max_session_s,
                    "--idle-timeout-s": self.idle_timeout_s, "--send-timeout-s": self.send_timeout_s}  # fmt: skip
        for flag, value in positive.items():
            if value <= 0:
                raise SimulsaError(f"{flag} {value} must be positive")
        if self.max_batch_size < 1 or self.max_wait_ms < 0:
            raise SimulsaError(f"--max-batch-size {self.max_batch_size} must be >= 1 and --max-wait-ms {self.max_wait_ms} >= 0")
        if self.workers < 0:
            raise SimulsaError(f"--workers {self.workers} must be >= 0 (0: one per core)")
        for origin in self.allow_origins:
            if not origin.startswith(("http://", "https://")) and origin != "*":
                raise SimulsaError(f"--allow-origin {origin!r} must be an origin like http://host:port (or *)")

    @property
    def compute_workers(self) -> int:
        return self.workers or os.cpu_count() or 1
