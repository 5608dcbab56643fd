"""`simulsa serve` against a real uvicorn server on a loopback port: protocol, parity with a local session, faults."""

from __future__ import annotations

import contextlib
import json
import re
import resource
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the [serve] extra is not installed (pip install -e '.[serve]')")
from websockets.sync.client import connect

from simulsa.runtime.audio import load_audio, quantize_pcm16, write_wav
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.server.client import stream_file
from simulsa.runtime.server.options import ServeOptions
from simulsa.runtime.server.protocol import CloseCode, FrameDecoder, encode_pcm_s16le, parse_start
from simulsa.runtime.server.run import bind, make_server
from simulsa.runtime.session import StreamOptions, Translator
from simulsa.runtime.subtitles import SUBTITLE_FORMATS, cues_from_events

OPTIONS = {"chunk_ms": 500, "hold": 2, "policy": "hold"}
# a random tiny model repeats itself and writes line breaks: the loop guard and the line-break stop are off (as in
# test_session.py), so that there is text to compare
TINY_DEFAULTS = StreamOptions(loop_repeats=0, stop_at_line_break=False)
START = {"type": "start", "sample_rate": 16000, "sample_format": "pcm_s16le", "channels": 1, "options": OPTIONS}


@contextlib.contextmanager
def running(translator, **options):
    """A server on a free loopback port, in a thread; yields (ws url, http url, uvicorn server)."""
    server = make_server(translator, ServeOptions(port=0, stream=TINY_DEFAULTS, **options))
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def translator(tiny_bundles):
    return Translator.from_bundle(tiny_bundles["whisper-tokens", "none"])  # its tiny model writes visible text


@pytest.fixture(scope="module")
def served(translator):
    with running(translator, max_sessions=3, idle_timeout_s=2.0, max_frame_bytes=64_000, max_messages_per_s=50) as urls:
        yield urls


def http_get(url: str, headers: dict | None = None) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def received_until_close(socket) -> tuple[list[dict], int]:
    """Every message until the server closes; (messages, close code)."""
    from websockets.exceptions import ConnectionClosed

    messages = []
    try:
        while True:
            messages.append(json.loads(socket.recv(timeout=20)))
    except ConnectionClosed as closed:
        return messages, closed.rcvd.code if closed.rcvd else 1006


def local_events(translator, audio):
    """The same stream through a local session, fed the audio as a 16-bit wav of it holds (what the client sends)."""
    session = translator.session(parse_start(START, TINY_DEFAULTS).options)
    session.accept_audio(quantize_pcm16(audio))
    return session.step() + session.finish()


def test_samples_of_a_16_bit_file_reach_the_server_unchanged(tmp_path, speech_like):
    write_wav(tmp_path / "a.wav", speech_like)
    from_file = load_audio(tmp_path / "a.wav")
    heard = FrameDecoder(parse_start(START, TINY_DEFAULTS)).decode(encode_pcm_s16le(from_file))
    np.testing.assert_array_equal(heard, from_file)
    full_scale = np.array([-1.0, 1.0, 32767 / 32768], np.float32)  # clipped to the grid's ends, not wrapped around
    np.testing.assert_array_equal(np.frombuffer(encode_pcm_s16le(full_scale), "<i2"), [-32768, 32767, 32767])


def test_the_server_sends_what_a_local_session_computes(served, translator, speech_like):
    ws, _, _ = served
    messages = list(stream_file(ws, speech_like, 16000, OPTIONS, realtime=False))
    expected = local_events(translator, speech_like)
    assert messages[0]["type"] == "ready" and messages[0]["protocol"] == "v1" and messages[-1]["type"] == "end"
    events = [m for m in messages if m["type"] in ("partial", "final")]
    assert [(e["committed"], e["final"], e["segment"]) for e in events] == \
        [(e.committed, e.final, e.segment) for e in expected]  # fmt: skip
    assert "".join(e["committed"] for e in events) and all(e["lag_ms"] >= 0 for e in events)
    assert all(e["type"] == ("final" if e["final"] else "partial") for e in events)
    for name, render in SUBTITLE_FORMATS.items():  # the session's subtitles, rendered by the server
        assert messages[-1][name] == render(cues_from_events(expected))
    assert re.match(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S", messages[-1]["srt"])
    assert messages[-1]["vtt"].startswith("WEBVTT\n\n") and messages[-1]["audio_ms"] == pytest.approx(8000, abs=1)


def test_frames_of_any_size_and_other_rates_give_the_same_text(served, translator, speech_like):
    ws, _, _ = served
    with connect(ws + "/v1/stream") as socket:
        socket.send(json.dumps(START))
        assert json.loads(socket.recv(timeout=10))["type"] == "ready"
        data = encode_pcm_s16le(speech_like)
        for start in range(0, len(data), 3001):  # odd sizes: samples split across frames
            socket.send(data[start : start + 3001])
        socket.send(json.dumps({"type": "end"}))
        messages, code = received_until_close(socket)
    assert code == CloseCode.NORMAL
    served_text = "".join(m["committed"] for m in messages if m["type"] in ("partial", "final"))
    assert served_text == "".join(e.committed for e in local_events(translator, speech_like))


FAULTS = {  # name -> (what the client sends after connecting, the close code, a phrase of the error)
    "malformed JSON": (["{not json"], CloseCode.PROTOCOL_ERROR, "not JSON"),
    "binary before start": ([b"\x00\x01" * 100], CloseCode.PROTOCOL_ERROR, "before the \"start\""),
    "wrong format": ([json.dumps({**START, "sample_format": "mp3"})], CloseCode.UNSUPPORTED_DATA, "sample_format 'mp3'"),
    "wrong rate": ([json.dumps({**START, "sample_rate": 0})], CloseCode.UNSUPPORTED_DATA, "sample_rate must be"),
    "unknown option": ([json.dumps({**START, "options": {"beam": 4}})], CloseCode.UNSUPPORTED_DATA, "unknown stream option"),
    "bad option": ([json.dumps({**START, "options": {"hold": -1}})], CloseCode.UNSUPPORTED_DATA, "hold is out of range"),
    "option the model cannot take": ([json.dumps({**START, "options": {"max_segment_s": 600}})], CloseCode.UNSUPPORTED_DATA,
                                     "exceeds the whisper-tokens window"),
    "oversized frame": ([json.dumps(START), b"\x00" * 100_000], CloseCode.MESSAGE_TOO_BIG, "over the limit of 64000"),
    "flood of tiny frames": ([json.dumps(START)] + [b"\x00\x00"] * 400, CloseCode.POLICY_VIOLATION, "messages a second"),
    "unknown message": ([json.dumps(START), json.dumps({"type": "pause"})], CloseCode.PROTOCOL_ERROR, "'pause'"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_bad_input_gets_an_error_and_a_fitting_close_and_the_server_keeps_serving(served, speech_like, fault, caplog):
    ws, _, _ = served
    sends, code, phrase = FAULTS[fault]
    with connect(ws + "/v1/stream") as socket:
        with contextlib.suppress(Exception):  # the server may close while the flood is still going out
            for message in sends:
                socket.send(message)
        messages, closed_with = received_until_close(socket)
    errors = [m for m in messages if m["type"] == "error"]
    assert closed_with == code and len(errors) == 1 and phrase in errors[0]["message"], (closed_with, messages[-1:])
    assert "Traceback" not in caplog.text
    assert list(stream_file(ws, speech_like[:16000], 16000, OPTIONS, realtime=False))[-1]["type"] == "end"


def test_a_client_that_vanishes_mid_stream_frees_its_slot(served, speech_like):
    ws, http, _ = served
    for _ in range(4):  # more than max_sessions: each vanished stream must have been released
        socket = connect(ws + "/v1/stream")
        socket.send(json.dumps(START))
        socket.recv(timeout=10)
        socket.send(encode_pcm_s16le(speech_like[:8000]))
        socket.close()  # gone without "end"
    deadline = time.monotonic() + 10
    while json.loads(http_get(http + "/healthz")[1])["sessions_open"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(http_get(http + "/healthz")[1])["sessions_open"] == 0
    assert list(stream_file(ws, speech_like[:16000], 16000, OPTIONS, realtime=False))[-1]["type"] == "end"


def test_a_silent_client_is_closed_after_the_idle_timeout(served):
    ws, _, _ = served
    with connect(ws + "/v1/stream") as socket:
        socket.send(json.dumps(START))
        messages, code = received_until_close(socket)  # sends nothing more
    assert code == CloseCode.POLICY_VIOLATION and "--idle-timeout-s" in messages[-1]["message"]


def test_one_stream_more_than_max_sessions_is_refused_clearly(served, speech_like):
    ws, _, _ = served
    held = [connect(ws + "/v1/stream") for _ in range(3)]
    try:
        for socket in held:
            socket.send(json.dumps(START))
            assert json.loads(socket.recv(timeout=10))["type"] == "ready"
        with pytest.raises(SimulsaError, match=r"the server is full \(3 streams, --max-sessions\)"):
            list(stream_file(ws, speech_like[:8000], 16000, OPTIONS, realtime=False))
    finally:
        for socket in held:
            socket.close()


def test_health_metrics_and_pages(served):
    _, http, _ = served
    status, body = http_get(http + "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok" and json.loads(body)["family"] == "whisper-tokens"
    status, metrics = http_get(http + "/metrics")
    assert status == 200 and re.search(r"^simulsa_sessions_total \d+$", metrics, re.M)
    assert re.search(r"^simulsa_audio_seconds_total [\d.e+]+$", metrics, re.M)
    assert "# TYPE simulsa_real_time_factor gauge" in metrics
    for path, marker in (("/", "app.js"), ("/app.js", "getUserMedia"), ("/worklet.js", "registerProcessor"),
                         ("/captions", "captions.js"), ("/captions.js", "/v1/captions")):  # fmt: skip
        status, body = http_get(http + path)
        assert status == 200 and marker in body, path
        assert "http://" not in body.replace("http://host", "") and "cdn" not in body.lower()  # nothing from elsewhere


def test_token_and_origin_are_enforced(translator, speech_like):
    with running(translator, token="s3cret") as (ws, http, _):
        with pytest.raises(SimulsaError, match="a valid token is required"):
            list(stream_file(ws, speech_like[:8000], 16000, OPTIONS, realtime=False))
        assert list(stream_file(ws, speech_like[:8000], 16000, OPTIONS, token="s3cret", realtime=False))[-1]["type"] == "end"
        with connect(ws + "/v1/stream?token=s3cret", additional_headers={"Origin": "http://evil.example"}) as socket:
            messages, code = received_until_close(socket)
        assert code == CloseCode.POLICY_VIOLATION and "origin http://evil.example is not allowed" in messages[0]["message"]
        with connect(ws + "/v1/stream?token=s3cret", additional_headers={"Origin": http}) as socket:  # the page's own origin
            socket.send(json.dumps(START))
            assert json.loads(socket.recv(timeout=10))["type"] == "ready"
        assert http_get(http + "/metrics")[0] == 401 and http_get(http + "/metrics?token=s3cret")[0] == 200
        assert http_get(http + "/healthz")[0] == 200  # health stays open for probes


def test_off_loopback_needs_a_token():
    with pytest.raises(SimulsaError, match="--host 0.0.0.0 is reachable from other machines; give --token"):
        ServeOptions(host="0.0.0.0")
    assert ServeOptions(host="0.0.0.0", token="t").host == "0.0.0.0" and ServeOptions(host="::1").token is None


def test_shutdown_finishes_open_segments_first(translator, speech_like):
    with running(translator) as (ws, _, server):
        socket = connect(ws + "/v1/stream")
        socket.send(json.dumps(START))
        socket.recv(timeout=10)
        socket.send(encode_pcm_s16le(speech_like[: 16000 * 3]))
        time.sleep(0.5)
        server.should_exit = True
        messages, code = received_until_close(socket)
    assert code == CloseCode.GOING_AWAY
    assert messages[-1]["type"] == "end" and "shutting down" in messages[-1]["reason"]
    assert any(m["type"] == "final" for m in messages)


def test_memory_stays_flat_over_many_sessions(served, speech_like):
    ws, _, _ = served
    audio = speech_like[:8000]

    def sessions(n):
        for _ in range(n):
            assert list(stream_file(ws, audio, 16000, OPTIONS, realtime=False))[-1]["type"] == "end"

    sessions(30)  # warm up allocators and caches
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sessions(200)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 40, f"peak resident grew {grown_mb:.0f} MB over 200 sessions"


def test_the_load_test_measures_concurrent_real_time_streams(served, speech_like):
    from simulsa.runtime.server.load import run_load

    ws, _, _ = served
    result = run_load(ws, speech_like[: 16000 * 2], 16000, clients=2, options=OPTIONS)
    assert result.clients == 2 and result.errors == 0 and result.events >= 2 * 4  # 4 chunks of 500 ms each + finals
    assert 0 <= result.added_p50_ms <= result.added_p95_ms and "clients" in result.line()


def test_simulsa_stream_with_server_shows_the_servers_events(served, speech_like, tmp_path):
    from typer.testing import CliRunner

    from simulsa.cli.app import app
    from simulsa.runtime.audio import write_wav

    ws, _, _ = served
    wav = tmp_path / "speech.wav"
    write_wav(wav, speech_like)
    result = CliRunner().invoke(app, ["stream", str(wav), "--server", ws, "--chunk-ms", "500", "--hold", "2",
                                      "--jsonl", str(tmp_path / "ev.jsonl"), "--srt", str(tmp_path / "out.srt")])  # fmt: skip
    assert result.exit_code == 0, result.output
    logged = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    direct = [m for m in stream_file(ws, speech_like, 16000, OPTIONS, realtime=False) if m["type"] in ("partial", "final")]
    assert [e["committed"] for e in logged] == [e["committed"] for e in direct] and logged[-1]["final"]
    assert (tmp_path / "out.srt").read_text().startswith("1\n00:00:")
    refused = CliRunner().invoke(app, ["stream", str(wav), "--server", "http://x", "--chunk-ms", "500"])
    assert refused.exit_code == 1 and "--server 'http://x' must be a ws:// or wss:// address" in refused.output


def test_a_client_that_never_reads_is_dropped_and_others_are_served(translator, speech_like):
    import socket as sockets

    with running(translator, send_timeout_s=1.0, max_messages_per_s=10_000) as (ws, http, _):
        raw = sockets.socket()
        raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)  # a full receive window after a few events
        raw.connect(("127.0.0.1", int(ws.rsplit(":", 1)[1])))
        silent = connect(ws + "/v1/stream", sock=raw)
        silent.send(json.dumps({**START, "options": {"chunk_ms": 20}}))  # an event every 20 ms of audio
        frame = encode_pcm_s16le(np.tile(speech_like, 8)[: 16000 * 60])
        with contextlib.suppress(Exception):  # never reads; sends 60 s of audio as fast as it can
            for start in range(0, len(frame), 32_000):
                silent.send(frame[start : start + 32_000])
        deadline = time.monotonic() + 60
        while json.loads(http_get(http + "/healthz")[1])["sessions_open"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert json.loads(http_get(http + "/healthz")[1])["sessions_open"] == 0, "the silent client was not dropped"
        metrics = http_get(http + "/metrics")[1]
        assert 'simulsa_errors_total{reason="protocol_1008"} 1' in metrics
        assert list(stream_file(ws, speech_like[:16000], 16000, OPTIONS, realtime=False))[-1]["type"] == "end"
        raw.close()


def test_serve_without_the_extra_says_what_to_install(tmp_path):
    import os
    import subprocess
    import sys

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        "class NoServe(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'uvicorn':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoServe())\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "simulsa.cli", "serve"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(hook)})  # fmt: skip
    assert result.returncode == 1 and "simulsa serve needs the [serve] extra (uvicorn): pip install" in result.stderr


def test_ctrl_c_on_a_live_source_still_gets_the_finals_and_the_end(served, speech_like):
    import _thread
    import signal

    from simulsa.runtime.server.client import stream_blocks

    ws, _, _ = served
    sent = [0]

    def microphone():  # like --mic: blocks until the user presses Ctrl-C (here at most 60 s of audio)
        for k in range(2_400):
            yield speech_like[(k % 20) * 1600 : (k % 20 + 1) * 1600]
            sent[0] += 1
            time.sleep(0.025)  # 40 frames a second: under the server's 50 even while Ctrl-C takes a while to land
            if k == 20:
                _thread.interrupt_main()  # Ctrl-C, delivered to the main thread (the reader)

    # a process started in the background by a shell ignores SIGINT, and interrupt_main() then does nothing
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        messages = list(stream_blocks(ws, microphone(), 16000, OPTIONS))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert messages[-1]["type"] == "end" and any(m["type"] == "final" for m in messages)
    assert sent[0] < 200, f"the microphone went on for {sent[0]} blocks after Ctrl-C: the client did not stop sending"


def test_batched_streams_get_what_each_computes_alone(tiny_bundles, translator, speech_like):
    """--max-batch-size: two clients at once, their token steps decoded together, each gets its own local events."""
    from concurrent.futures import ThreadPoolExecutor

    from simulsa.runtime.batching import StepBatcher

    expected = [(e.committed, e.final) for e in local_events(translator, speech_like)]
    shared = Translator.from_bundle(tiny_bundles["whisper-tokens", "none"])  # its decoder becomes the server's batcher
    with running(shared, max_batch_size=4, max_wait_ms=50, workers=2) as (ws, http, _):
        assert isinstance(shared.model.decoder, StepBatcher)
        with ThreadPoolExecutor(2) as clients:
            runs = list(clients.map(lambda _: list(stream_file(ws, speech_like, 16000, OPTIONS, realtime=False)), range(2)))
        metrics = http_get(http + "/metrics")[1]
        calls = float(re.search(r"^simulsa_decode_calls_total (\S+)$", metrics, re.M).group(1))
        steps = float(re.search(r"^simulsa_decode_steps_total (\S+)$", metrics, re.M).group(1))
        assert steps >= calls > 0 and calls == shared.model.decoder.calls
    for messages in runs:
        assert [(m["committed"], m["final"]) for m in messages if m["type"] in ("partial", "final")] == expected
    # whether steps met in one call depends on timing here; tests/runtime/test_batching.py checks that they do
    assert len(shared.model.decoder.free_slots) == 8  # both streams gave their slot back
    with pytest.raises(SimulsaError, match="--max-batch-size 0 must be >= 1"):
        ServeOptions(max_batch_size=0)
