"""Translate: `simulsa translate` (one file, offline) and `simulsa stream` (file or microphone, live) on the runtime."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from simulsa.cli.app import TRANSLATE_PANEL, app, reports_errors
from simulsa.cli.shared import DefaultableBundle, OpenTail, SkipChecksum, Threads, Verbose, check_output_files, load_translator
from simulsa.runtime.errors import SimulsaError

command = functools.partial(app.command, rich_help_panel=TRANSLATE_PANEL)  # every command here is in this --help panel

LoopRepeats = Annotated[int, typer.Option(help="A phrase repeated this often in a row ends the output (0 = off).")]
KeepLineBreaks = Annotated[bool, typer.Option(help="Let the model write past a line break (by default one ends the output).")]
DIM, RESET, CLEAR_LINE = "\x1b[2m", "\x1b[0m", "\r\x1b[K"


@command(epilog="Example:\n\n  simulsa translate talk.wav --bundle bundle")
@reports_errors
def translate(
    audio: Annotated[Path, typer.Argument(help="Audio file (any format soundfile reads, any sample rate).")],
    bundle: DefaultableBundle = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of plain text.")] = False,
    loop_repeats: LoopRepeats = 4,
    keep_line_breaks: KeepLineBreaks = False,
    threads: Threads = None,
    skip_checksum: SkipChecksum = False,
    verbose: Verbose = False,
) -> None:
    """Translate one file, whole utterance, offline."""
    from simulsa.runtime.audio import SAMPLE_RATE
    from simulsa.runtime.session import StreamOptions

    options = StreamOptions(loop_repeats=loop_repeats, stop_at_line_break=not keep_line_breaks)
    samples = _read_audio(audio)
    translator = load_translator(bundle, threads, skip_checksum, verbose)
    started = time.perf_counter()
    with _audio_progress(samples.size / SAMPLE_RATE) as progress:
        text = translator.translate(samples, options=options, progress=progress) if samples.size else ""
    compute_s = time.perf_counter() - started
    if not samples.size:
        typer.echo(f"note: {audio} holds no audio; nothing to translate", err=True)
    if as_json:
        record = {"audio": str(audio), "text": text, "audio_s": samples.size / SAMPLE_RATE, "compute_s": round(compute_s, 3)}
        typer.echo(json.dumps(record, ensure_ascii=False))
    else:
        typer.echo(text)


@contextlib.contextmanager
def _audio_progress(total_s: float):
    """A bar on stderr in seconds of audio translated (gone when done); yields the callback that moves it."""
    from tqdm.auto import tqdm

    with tqdm(total=round(total_s, 1), desc="simulsa translate", unit="s audio", leave=False, file=sys.stderr) as bar:
        yield lambda done_s: bar.update(round(min(done_s, total_s), 1) - bar.n)


def _read_audio(path: Path):
    import numpy as np

    from simulsa.runtime.audio import audio_duration_s, load_audio

    if path.is_file() and audio_duration_s(path) == 0:  # an empty file is not an error: empty output
        return np.zeros(0, dtype=np.float32)
    return load_audio(path)


class LiveView:
    """Committed text plain, tentative text dimmed, one line per segment (plain lines when not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()

    def show(self, event: Any) -> None:
        if self.tty:
            sys.stdout.write(self.line(event))
            sys.stdout.flush()
        elif event.final and event.segment_text.strip():
            print(event.segment_text.strip(), flush=True)

    @staticmethod
    def line(event: Any) -> str:
        """The segment's line redrawn: committed plain, tentative dimmed, without the space the LM starts it with."""
        committed, tentative = event.segment_text, "" if event.final else event.tentative
        if committed.strip():
            committed = committed.lstrip()
        else:
            committed, tentative = "", tentative.lstrip()
        end = "\n" if event.final else ""
        return f"{CLEAR_LINE}{committed}{DIM}{tentative}{RESET}{end}"


class EventLog:
    """JSONL of every event, written as it happens (an interrupted stream keeps what it showed)."""

    FIELDS = ("t_audio_ms", "t_wall_ms", "committed", "tentative", "segment", "final")

    def __init__(self, path: Path | None) -> None:
        self.handle = path.open("w", encoding="utf-8") if path else None

    def write(self, event: Any) -> None:
        if self.handle:
            record = {key: getattr(event, key) for key in self.FIELDS}
            record["t_audio_ms"], record["t_wall_ms"] = round(record["t_audio_ms"], 1), round(record["t_wall_ms"], 1)
            self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.handle.flush()

    def close(self) -> None:
        if self.handle:
            self.handle.close()


@command(epilog="Examples:\n\n  simulsa stream --example --play      (the shipped En->Es model on the shipped example)\n\n"
             "  simulsa stream talk.wav --bundle bundle --chunk-ms 500 --jsonl ev.jsonl --srt out.srt\n\n"
             "  simulsa stream --mic --bundle bundle --policy local-agreement")  # fmt: skip
@reports_errors
def stream(
    audio: Annotated[Path | None, typer.Argument(help="Audio file to stream (or --mic, or --example).")] = None,
    bundle: DefaultableBundle = None,
    mic: Annotated[bool, typer.Option("--mic", help="Stream from the default microphone (Ctrl-C to stop).")] = False,
    example: Annotated[bool, typer.Option("--example", help="Stream the shipped English example (about 10 s).")] = False,
    play: Annotated[bool, typer.Option("--play", help="Play the file while streaming it (implies --realtime).")] = False,
    chunk_ms: Annotated[float, typer.Option(help="Audio per decoding step, milliseconds.")] = 500,
    policy: Annotated[str, typer.Option(help="hold or local-agreement.")] = "hold",
    hold: Annotated[int, typer.Option(help="hold policy: tokens held back until the source ends.")] = 3,
    realtime: Annotated[bool, typer.Option(help="Feed a file at the speed it would play.")] = False,
    no_cache_reuse: Annotated[bool, typer.Option(help="Recompute everything each step (checks, benchmarks).")] = False,
    max_segment_s: Annotated[float, typer.Option(help="Longest segment without a pause, seconds.")] = 20.0,
    min_silence_ms: Annotated[int, typer.Option(help="Pause that ends a segment, milliseconds.")] = 600,
    vad: Annotated[str, typer.Option(help="Voice-activity detector that finds the pauses: energy, or silero (tells "
                                          "speech from noise; fetched once from the pinned silero-vad wheel).")] = "energy",
    context_tokens: Annotated[int, typer.Option(help="Earlier segments' tokens kept as context (0 = none).")] = 0,
    loop_repeats: LoopRepeats = 4,
    keep_line_breaks: KeepLineBreaks = False,
    open_tail: OpenTail = True,
    jsonl: Annotated[Path | None, typer.Option(help="Write every event as a JSON line.")] = None,
    srt: Annotated[Path | None, typer.Option(help="Write SRT subtitles.")] = None,
    vtt: Annotated[Path | None, typer.Option(help="Write WebVTT subtitles.")] = None,
    server: Annotated[str | None, typer.Option(help="Send the audio to a running `simulsa serve` (ws://HOST:PORT) "
                                                    "instead of loading a model here.")] = None,
    token: Annotated[str | None, typer.Option(help="The server's --token.", envvar="SIMULSA_TOKEN")] = None,
    threads: Threads = None,
    skip_checksum: SkipChecksum = False,
    verbose: Verbose = False,
) -> None:
    """Simultaneous translation of a file or the microphone: live text, events, subtitles."""
    from simulsa.runtime.session import StreamOptions

    if (audio is not None) + mic + example != 1:
        raise SimulsaError("give one of: an audio file, --mic, --example")
    if play and mic:
        raise SimulsaError("--play plays a file; with --mic you already hear the speaker")
    check_output_files(jsonl=jsonl, srt=srt, vtt=vtt)
    audio = _example_audio() if example else audio
    options = StreamOptions(chunk_ms=chunk_ms, policy=policy, hold=hold, cache_reuse=not no_cache_reuse,
                            max_segment_s=max_segment_s, min_silence_ms=min_silence_ms, vad=vad,
                            context_tokens=context_tokens, loop_repeats=loop_repeats,
                            stop_at_line_break=not keep_line_breaks, open_tail=open_tail)  # fmt: skip
    samples = _read_audio(audio) if audio is not None else None
    if server is not None and (bundle is not None or no_cache_reuse):
        raise SimulsaError("--server streams to a running server's model; leave out --bundle and --no-cache-reuse")
    session = None if server else load_translator(bundle, threads, skip_checksum, verbose).session(options)
    view, log, finals = LiveView(), EventLog(jsonl), []
    if play:
        from simulsa.runtime.mic import start_playback

        start_playback(samples)  # started after the model loaded, so sound and text stay in step
    try:
        if server:
            events = _served(server, token, options, samples, mic, realtime or play)
        else:
            events = _run(session, _mic_blocks(session) if mic else _file_blocks(samples, chunk_ms, realtime or play))
        for event in events:
            view.show(event)
            log.write(event)
            if event.final:
                finals.append(event)
    finally:
        log.close()
    _write_subtitles(finals, srt, vtt)


def _example_audio() -> Path:
    from simulsa.runtime.examples import example_path

    path = example_path()
    typer.echo(f"example: {path}", err=True)
    return path


def _file_blocks(samples, chunk_ms: float, realtime: bool):
    """Chunks of the file; with `realtime`, each chunk waits until it would have been heard."""
    step = max(1, int(chunk_ms * 16))
    started = time.perf_counter()
    for start in range(0, samples.size, step):
        if realtime:
            time.sleep(max(0.0, (start + step) / 16000 - (time.perf_counter() - started)))
        yield samples[start : start + step]


def _mic_blocks(session):
    from simulsa.runtime.mic import Microphone

    microphone = Microphone()
    with microphone:
        typer.echo("listening… (Ctrl-C to stop)", err=True)
        try:
            while True:
                yield microphone.read()
        finally:
            if microphone.overflows:
                typer.echo(f"note: {microphone.overflows} input overflows (audio was dropped)", err=True)


def _served(url: str, token: str | None, options, samples, mic: bool, realtime: bool):
    """Events from a `simulsa serve` stream, as the local session's TranslationEvents (same view, log, subtitles)."""
    import dataclasses

    from simulsa.runtime.server.client import paced_frames, stream_blocks
    from simulsa.runtime.server.protocol import CLIENT_OPTIONS
    from simulsa.runtime.session import TranslationEvent

    sent = {name: getattr(options, name) for name in CLIENT_OPTIONS}
    sent["chunk_ms"] = "inf" if sent["chunk_ms"] == float("inf") else sent["chunk_ms"]
    blocks = _mic_blocks(None) if mic else paced_frames(samples, 16000, realtime)
    fields = [f.name for f in dataclasses.fields(TranslationEvent)]
    for message in stream_blocks(url, blocks, 16000, sent, token):
        if message["type"] in ("partial", "final"):
            yield TranslationEvent(**{name: message[name] for name in fields})


def _run(session, source):
    """Feed blocks, yield events; Ctrl-C ends the stream cleanly with a final segment."""
    try:
        for block in source:
            session.accept_audio(block)
            yield from session.step()
    except KeyboardInterrupt:
        pass
    yield from session.finish()


def _write_subtitles(finals: list, srt: Path | None, vtt: Path | None) -> None:
    from simulsa.runtime.files import write_text_atomic
    from simulsa.runtime.subtitles import SUBTITLE_FORMATS, cues_from_events

    cues = cues_from_events(finals)
    for path, kind in ((srt, "srt"), (vtt, "vtt")):
        if path is not None:
            write_text_atomic(path, SUBTITLE_FORMATS[kind](cues))
