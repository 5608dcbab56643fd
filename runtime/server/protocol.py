"""The `/v1/stream` WebSocket protocol (docs/protocol.md): messages in, events out, close codes.

Pure Python + numpy, no web framework: the server, the client and the tests share it.

    client                                   server
    {"type": "start", "sample_rate": 48000,
     "sample_format": "pcm_s16le", "channels": 1,
     "options": {"chunk_ms": 500, "hold": 3}}  ──►
                                             ◄──  {"type": "ready", "protocol": "v1", "session": "…", …}
    binary frames of audio, any size         ──►
                                             ◄──  {"type": "partial", "committed": …, "tentative": …, "lag_ms": …}
                                             ◄──  {"type": "final", "segment_text": …}   (one per segment)
    {"type": "end"}                          ──►
                                             ◄──  finals, then {"type": "end", "audio_ms": …}; close 1000
    on any error                             ◄──  {"type": "error", "message": …}; close with a fitting code
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from simulsa.runtime.audio import quantize_pcm16
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.session import StreamOptions, TranslationEvent

PROTOCOL = "v1"
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8
# the stream options a client may set, and their JSON type; the rest (cache_reuse, loop guard, …) are the server's
CLIENT_OPTIONS = {"chunk_ms": float, "policy": str, "hold": int, "max_new_tokens": int, "max_segment_s": float,
                  "min_silence_ms": int, "vad": str, "vad_threshold_db": float, "context_tokens": int}  # fmt: skip


class CloseCode:
    """RFC 6455 close codes the server uses, and why."""

    NORMAL = 1000  # the stream ended ("end" answered)
    GOING_AWAY = 1001  # the server shuts down (open segments were finished first)
    PROTOCOL_ERROR = 1002  # malformed JSON, an unknown message type, audio before "start"
    UNSUPPORTED_DATA = 1003  # a "start" with a format, rate or channel count the server does not take
    POLICY_VIOLATION = 1008  # no or a wrong token, a foreign origin, a limit (rate, session length, idle) reached
    MESSAGE_TOO_BIG = 1009  # a frame over the size limit
    INTERNAL_ERROR = 1011  # the model failed on this stream
    TRY_AGAIN_LATER = 1013  # --max-sessions reached


class ProtocolError(SimulsaError):
    """A client mistake: sent as {"type": "error"} and answered with `code`."""

    def __init__(self, message: str, code: int = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


SAMPLE_FORMATS = {  # name -> (bytes per sample, numpy dtype, scale to [-1, 1])
    "pcm_s16le": (2, np.dtype("<i2"), 1 / 32768),
    "f32le": (4, np.dtype("<f4"), 1.0),
}


@dataclasses.dataclass(frozen=True)
class StartMessage:
    sample_rate: int
    sample_format: str
    channels: int
    options: StreamOptions

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample of every channel."""
        return SAMPLE_FORMATS[self.sample_format][0] * self.channels


def parse_message(text: str) -> dict:
    """A text message as a JSON object with a string `type`."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProtocolError(f"message is not JSON ({error.msg} at character {error.pos}): {text[:60]!r}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f'a message must be a JSON object with a "type", got {text[:60]!r}')
    return message


def _integer(message: dict, field: str, default: int, low: int, high: int) -> int:
    value = message.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(f"{field} must be an integer from {low} to {high}, got {value!r}", CloseCode.UNSUPPORTED_DATA)
    return value


def parse_start(message: dict, defaults: StreamOptions) -> StartMessage:
    """A "start" message -> its audio format and stream options (the server's defaults for what it leaves out)."""
    if message.get("type") != "start":
        raise ProtocolError(f'the first message must be {{"type": "start", …}}, got type {message.get("type")!r}')
    sample_format = message.get("sample_format", "pcm_s16le")
    if sample_format not in SAMPLE_FORMATS:
        raise ProtocolError(f"sample_format {sample_format!r} is not one of {', '.join(SAMPLE_FORMATS)}",
                            CloseCode.UNSUPPORTED_DATA)  # fmt: skip
    options = message.get("options", {})
    if not isinstance(options, dict):
        raise ProtocolError(f"options must be a JSON object, got {options!r}", CloseCode.UNSUPPORTED_DATA)
    unknown = sorted(set(options) - set(CLIENT_OPTIONS))
    if unknown:
        raise ProtocolError(f"unknown stream option {unknown[0]!r}; a client may set {', '.join(CLIENT_OPTIONS)}",
                            CloseCode.UNSUPPORTED_DATA)  # fmt: skip
    try:
        stream_options = dataclasses.replace(defaults, **{k: _option_value(k, v) for k, v in options.items()})
    except (SimulsaError, TypeError, ValueError) as error:
        raise ProtocolError(f"bad stream options: {error}", CloseCode.UNSUPPORTED_DATA) from None
    return StartMessage(sample_rate=_integer(message, "sample_rate", 16000, 8000, MAX_SAMPLE_RATE),
                        sample_format=sample_format, channels=_integer(message, "channels", 1, 1, MAX_CHANNELS),
                        options=stream_options)  # fmt: skip


def _option_value(name: str, value):
    """A JSON value as the option's type; chunk_ms "inf" (JSON has no infinity) decodes only at the end."""
    kind = CLIENT_OPTIONS[name]
    if name == "chunk_ms" and value == "inf":
        return float("inf")
    if kind is str and isinstance(value, str):
        return value
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is float and is_number:
        return float(value)
    if kind is int and is_number and float(value).is_integer():
        return int(value)
    raise ValueError(f"{name} must be {'a string' if kind is str else 'an integer' if kind is int else 'a number'}, "
                     f"got {value!r}")


class FrameDecoder:
    """Binary frames of any size -> float32 samples (T,) or (T, C); a sample split across frames is kept for the next."""

    def __init__(self, start: StartMessage) -> None:
        self.start = start
        self.leftover = b""

    def decode(self, frame: bytes) -> np.ndarray:
        data = self.leftover + frame
        whole = len(data) - len(data) % self.start.frame_bytes
        self.leftover = data[whole:]
        _, dtype, scale = SAMPLE_FORMATS[self.start.sample_format]
        samples = np.frombuffer(data[:whole], dtype=dtype).astype(np.float32) * np.float32(scale)
        if self.start.sample_format == "f32le" and not np.isfinite(samples).all():
            raise ProtocolError("f32le audio holds NaN or infinity", CloseCode.UNSUPPORTED_DATA)
        return samples.reshape(-1, self.start.channels) if self.start.channels > 1 else samples


def event_message(event: TranslationEvent, lag_ms: float) -> dict:
    """A session event as sent: the fields of `stream --jsonl`, the kind, and how far compute is behind the audio."""
    return {"type": "final" if event.final else "partial", **event.to_json(), "lag_ms": round(lag_ms, 1)}


def error_message(message: str) -> str:
    return json.dumps({"type": "error", "message": message})


def encode_pcm_s16le(samples: np.ndarray) -> bytes:
    """float samples in [-1, 1] -> the bytes of the default sample format (clients and tests). Rounded on the grid the
    server decodes with (k / 32768), so audio read from a 16-bit file reaches the server exactly as it is in the file."""
    return (quantize_pcm16(np.asarray(samples, np.float32)) * 32768).astype("<i2").tobytes()
