"""Streaming translation sessions over a bundle (sherpa-onnx style: accept audio, step, finish).

    translator = Translator.from_bundle("bundle")
    session = translator.session(StreamOptions(chunk_ms=500, policy="hold", hold=3))
    session.accept_audio(samples, sample_rate)   # any rate, mono or stereo, float or int16
    for event in session.step(): ...             # one event per processed chunk
    events = session.finish()                    # the source ended: commit everything

Sequence and KV reuse (ARCHITECTURE.md):
    [context][prompt prefix][stable audio ...][unstable audio][prompt suffix][committed][new tokens]
     └──────── reusable KV cache ────────────┘└────────── recomputed each step ───────────┘
Each step encodes only the new audio, extends the cache with newly stable embeddings, runs the
tail on top of the cache, decodes greedily, and lets the policy commit a prefix. The tail's KV is
dropped: cache states are immutable (runtime/kv_cache.py), so the next step decodes on the state
that ends before the tail (with a fused decoder, over the tail's positions in the same buffer).
A segment ends at a pause (VAD), at `max_segment_s`
or at `max_segment_tokens`; the cache is then cut back to the prompt, so memory stays bounded.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE, check_finite, to_mono
from simulsa.runtime.errors import AudioError, SimulsaError
from simulsa.runtime.families import runtime_family
from simulsa.runtime.onnx_model import OnnxSpeechModel
from simulsa.runtime.policies import POLICIES, PolicyState
from simulsa.runtime.text import IncrementalText
from simulsa.runtime.vad import VADS

LEADING_SILENCE_KEPT_S = 0.3  # audio kept before the first speech of a segment (soft onsets)
LOOP_MAX_PERIOD = 8  # longest short phrase, in tokens, the loop guard looks for (said `loop_repeats` times)
LONG_LOOP_MAX_PERIOD = 64  # longest clause the loop guard looks for said twice in a row
# audio reaches the VAD in pieces this long, so that a pause ends the segment where it is, both in a chunk and in
# what finish() reads at the end. Fed whole, a 2000 ms chunk holding "...day. [0.7 s pause] The next..." reset the
# silence count before it ended the segment, sentences ran together to max_segment_s and the LM said only part of
# them (long-form, 2000 ms: length ratio 0.50, 96 of 320 sentences empty); offline, the 44 s two_cities reading came
# out as three short sentences for twelve when cut at 20 s
VAD_PIECE = SAMPLE_RATE // 10


def looping_tail(tokens: Sequence[int], repeats: int) -> int:
    """How many trailing tokens to drop so that a looping phrase at the end stays once; 0: none.

    Why: a small greedy model can fall into "muy muy muy ..." or "un poco de un poco de ..." and
    run to the segment's token limit, showing garbage and spending a decoder step on every token.
    Natural text does not say the same phrase of <= 8 tokens `repeats` times in a row, nor a clause of
    9-64 tokens twice in a row word for word (the 2000 ms long-form run on the real recordings said "En corto,
    que el otro lado era todo lo contrario de lo que se había visto." eleven times over).
    """
    if repeats < 2:
        return 0
    for period in range(1, LOOP_MAX_PERIOD + 1):
        if _repeated(tokens, period, repeats):
            return period * (repeats - 1)
    for period in range(LOOP_MAX_PERIOD + 1, LONG_LOOP_MAX_PERIOD + 1):
        copies = 1
        while _repeated(tokens, period, copies + 1):
            copies += 1
        if copies > 1:
            return period * (copies - 1)
    return 0


def loop_window(repeats: int) -> int:
    """How many trailing tokens `looping_tail` needs to see."""
    return max(LOOP_MAX_PERIOD * repeats, 2 * LONG_LOOP_MAX_PERIOD)


def _repeated(tokens: Sequence[int], period: int, times: int) -> bool:
    """Do the last `period` tokens come `times` times in a row at the end?"""
    span = period * times
    return len(tokens) >= span and all(tokens[-k] == tokens[-k - period] for k in range(1, span - period + 1))


def line_break_ids(tokenizer) -> frozenset[int]:
    """Ids of the tokens whose text holds a line break ("\n", ".\n", "\n\n", ...).

    Why: one utterance translates to one line, and the chat prompt puts a line break right before
    its instruction; a model that writes one has left the translation. A candidate default model
    appended "\nTranslate the English speech into Spanish." to 74 of 200 streaming outputs (the
    shipped one to 17): continuing from committed words it did not expect, it restarts the prompt.
    """
    texts = tokenizer.decode_batch([[i] for i in range(tokenizer.get_vocab_size())], skip_special_tokens=True)
    return frozenset(i for i, text in enumerate(texts) if "\n" in text)


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    chunk_ms: float = 500  # audio per step; float("inf") = decode only when the source ends
    policy: str = "hold"  # hold | local-agreement
    hold: int = 3  # hold policy: tokens held back while the source goes on (paper's b)
    cache_reuse: bool = True  # False recomputes the whole sequence every step (checks and benchmarks)
    max_new_tokens: int = 24  # tokens proposed per step
    max_segment_s: float = 20.0  # a segment ends after this much audio even without a pause
    max_segment_tokens: int = 200  # ... or this many committed tokens
    min_silence_ms: int = 600  # a pause this long after speech ends a segment
    vad: str = "energy"  # energy | silero (runtime/vad.py)
    vad_threshold_db: float = -45.0  # energy VAD: frames louder than this (dBFS) are speech
    context_tokens: int = 0  # committed tokens of earlier segments placed before the prompt
    loop_repeats: int = 4  # a phrase (<= 8 tokens) repeated this often in a row ends the proposal, kept once; 0: off
    stop_at_line_break: bool = True  # a token holding a line break ends the proposal (see line_break_ids)
    open_tail: bool = True  # whisper-tokens: while the segment goes on, the LM does not read the sentence end
    # Whisper writes after audio cut mid-sentence (runtime/ear.py open_tail_end)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise SimulsaError(f"unknown policy {self.policy!r}; choose one of {', '.join(POLICIES)}")
        if self.vad not in VADS:
            raise SimulsaError(f"unknown vad {self.vad!r}; choose one of {', '.join(VADS)}")
        checks = {"chunk_ms": self.chunk_ms > 0, "hold": self.hold >= 0, "max_new_tokens": self.max_new_tokens > 0,
                  "max_segment_s": self.max_segment_s > 0, "max_segment_tokens": self.max_segment_tokens > 0,
                  "min_silence_ms": self.min_silence_ms > 0, "context_tokens": self.context_tokens >= 0,
                  "loop_repeats": self.loop_repeats == 0 or self.loop_repeats >= 2}  # fmt: skip
        for name, ok in checks.items():
            if not ok:
                raise SimulsaError(f"{name} is out of range, got {getattr(self, name)}")

    @property
    def chunk_samples(self) -> float:
        return self.chunk_ms * SAMPLE_RATE / 1000


@dataclasses.dataclass(frozen=True)
class TranslationEvent:
    committed: str  # text committed by this step; never revised later
    tentative: str  # proposed continuation after all committed text; may change
    t_audio_ms: float  # source audio read when the event was emitted
    t_wall_ms: float  # wall-clock since the session started
    segment: int  # index of the segment this event belongs to
    final: bool  # the segment ended and its text is complete
    segment_start_ms: float  # where the segment began in the source
    segment_text: str  # all committed text of the segment so far

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class CommittedWords:
    """The words a session's events commit, released once complete: followed by a space, or at a segment's end.
    Shared by the SimulEval agent and the SimulStream processor, which both emit whole words that never change."""

    def __init__(self) -> None:
        self.unsent = ""  # committed text not yet released (its last word may still grow)

    def add(self, events: list[TranslationEvent]) -> list[str]:
        self.unsent += "".join(e.committed + (" " if e.final and e.segment_text else "") for e in events)
        complete, _, self.unsent = self.unsent.rpartition(" ")
        return complete.split()

    def flush(self) -> list[str]:
        """At the end of the source: the rest, complete or not."""
        words, self.unsent = self.unsent.split(), ""
        return words


class Translator:
    """A loaded bundle: make sessions from it, or translate a whole utterance."""

    def __init__(self, model: OnnxSpeechModel) -> None:
        from tokenizers import Tokenizer

        self.model = model
        self.tokenizer = Tokenizer.from_file(str(model.bundle.file("tokenizer")))
        self.line_breaks = line_break_ids(self.tokenizer)

    @classmethod
    def from_bundle(cls, path: str | Path, threads: int | None = None, verify_checksums: bool = True) -> Translator:
        return cls(OnnxSpeechModel.from_path(path, threads, verify_checksums))

    def session(self, options: StreamOptions | None = None) -> StreamSession:
        return StreamSession(self, options or StreamOptions())

    def translate(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, options: StreamOptions | None = None,
                  progress: Callable[[float], None] | None = None) -> str:  # fmt: skip
        """Offline: the whole recording at once, cut at pauses as a stream is; its segments' text joined.
        `progress(seconds)` is told how much of the audio has been translated after each segment."""
        session = self.session(dataclasses.replace(options or StreamOptions(), chunk_ms=float("inf")))
        session.accept_audio(samples, sample_rate)
        # each segment's text starts with the space the LM writes after "Spanish:": strip spaces (not the line breaks
        # a caller asked to keep) so that segments join with exactly one
        texts = (e.segment_text.strip(" ") for e in session.finish(progress) if e.final)
        return " ".join(text for text in texts if text)


class StreamSession:
    def __init__(self, translator: Translator, options: StreamOptions) -> None:
        self.model, self.tokenizer, self.options = translator.model, translator.tokenizer, options
        line_breaks = translator.line_breaks if options.stop_at_line_break else frozenset()
        self.stop_ids = {translator.model.bundle.prompt.end_id} | line_breaks
        bundle = self.model.bundle
        window = bundle.audio.window_s
        if window and options.max_segment_s > window:
            raise SimulsaError(f"max_segment_s {options.max_segment_s} exceeds the {bundle.family} window of {window:g} s")
        self.policy = POLICIES[options.policy]
        self.prompt = bundle.prompt
        self.suffix_embeds = self.model.embed_tokens(list(self.prompt.suffix_ids))
        self._resamplers: dict[int, object] = {}
        self.empty_cache = self.model.empty_cache()  # this session's KV storage, reused by every segment
        self.reset()

    # ---- public API ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: a new stream starts at audio time 0."""
        self.pending = np.zeros(0, dtype=np.float32)
        self.consumed = 0  # samples moved from `pending` into segments
        self.received = 0  # samples the session had been given when it emitted its last event (>= consumed)
        self.segment_index = 0
        self.context: list[int] = []
        self.started = time.perf_counter()
        self._resamplers.clear()
        self._new_segment()

    def close(self) -> None:
        """Give the KV storage back (a server's shared decoder reuses it for the next session)."""
        self.model.release_cache(self.empty_cache)

    def accept_audio(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
        """Queue audio: (T,) or (T, C), float or integer, any sample rate."""
        x = to_mono(np.asarray(samples))
        check_finite(x, "accept_audio")
        if x.size:
            self.pending = np.concatenate([self.pending, self._resample(x, sample_rate)])

    def step(self) -> list[TranslationEvent]:
        """Process every whole chunk of queued audio; one event per chunk that was decoded."""
        events = []
        while self.pending.size >= self.options.chunk_samples:
            piece = self.pending[: int(self.options.chunk_samples)]
            self.pending = self.pending[piece.size :]
            events += self._advance(piece)
        return events

    def finish(self, progress: Callable[[float], None] | None = None) -> list[TranslationEvent]:
        """The source ended: consume what is queued, commit everything, end the segment. `progress(seconds)`: the
        audio consumed so far, after each segment (a long recording is many)."""
        for resampler in self._resamplers.values():  # a stream resampler holds back its last few samples
            self.pending = np.concatenate([self.pending, resampler.resample_chunk(np.zeros(0, np.float32), last=True)])
        self._resamplers.clear()
        events = []
        self.received = self.consumed + self.pending.size
        while self.pending.size:  # what is left is cut at pauses, as a stream is, and decoded once per segment
            room = int(self.options.max_segment_s * SAMPLE_RATE) - self.audio.samples.size
            take = max(1, min(room, VAD_PIECE))
            piece, self.pending = self.pending[:take], self.pending[take:]
            self._append(piece)
            if self.pending.size and self._segment_over():
                events.append(self._finalize())
                if progress:
                    progress(self.consumed / SAMPLE_RATE)
        events.append(self._finalize())
        if progress:
            progress(self.consumed / SAMPLE_RATE)
        return events

    # ---- internals ------------------------------------------------------------------------

    def _resample(self, x: np.ndarray, rate: int) -> np.ndarray:
        if rate == SAMPLE_RATE:
            return x
        if rate <= 0:
            raise AudioError(f"sample rate must be positive, got {rate}")
        import soxr

        if rate not in self._resamplers:  # a stream resampler: no clicks at chunk borders
            self._resamplers[rate] = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
        return self._resamplers[rate].resample_chunk(x)

    def _new_segment(self) -> None:
        self.audio = runtime_family(self.model.bundle).segment_audio(self.model)
        self.vad = VADS[self.options.vad](self.options)
        self.committed: list[int] = []
        self.previous: tuple[int, ...] | None = None
        self.text = IncrementalText(self.tokenizer)
        self.segment_start = self.consumed
        self.prefix_embeds = self.model.embed_tokens(self.context + list(self.prompt.prefix_ids))
        self.cache = self.empty_cache
        if self.options.cache_reuse:
            _, self.cache = self.model.decode(self.prefix_embeds, self.cache)

    def _append(self, piece: np.ndarray) -> None:
        self.audio.append(piece)
        self.vad.accept(piece)
        self.consumed += piece.size
        if not self.vad.speech_seen:  # nothing said yet: keep only a short lead-in
            keep = int(LEADING_SILENCE_KEPT_S * SAMPLE_RATE)
            dropped = max(0, self.audio.samples.size - keep)
            self.audio.samples = self.audio.samples[dropped:]
            self.segment_start += dropped

    def _advance(self, piece: np.ndarray) -> list[TranslationEvent]:
        """One chunk: segments end where a pause inside it ends them; then the open segment is decoded once."""
        self.received = self.consumed + piece.size
        events = []
        for start in range(0, piece.size, VAD_PIECE):
            self._append(piece[start : start + VAD_PIECE])
            if self.vad.speech_seen and self._segment_over():
                events.append(self._finalize())  # the rest of the chunk starts the next segment
        if self.vad.speech_seen:
            events.append(self._decode_and_commit(source_finished=False))
        return events

    def _segment_over(self) -> bool:
        return (self.vad.endpoint or self.audio.duration_s >= self.options.max_segment_s
                or len(self.committed) >= self.options.max_segment_tokens)  # fmt: skip

    def _finalize(self) -> TranslationEvent:
        # a segment of silence has nothing to say
        event = self._decode_and_commit(source_finished=True) if self.vad.speech_seen else self._event("", "", final=True)
        if self.options.context_tokens:
            self.context = (self.context + self.committed)[-self.options.context_tokens :]
        self.segment_index += 1
        self._new_segment()
        return event

    def _decode_and_commit(self, source_finished: bool) -> TranslationEvent:
        room = self.options.max_segment_tokens - len(self.committed)
        limit = room if source_finished else min(self.options.max_new_tokens, room)
        hypothesis = self._propose(max(limit, 0), open_end=self.options.open_tail and not source_finished)
        state = PolicyState(tuple(hypothesis), self.previous, source_finished, self.options.hold)
        n = self.policy(state)
        self.committed += hypothesis[:n]
        self.previous = tuple(hypothesis[n:])
        delta = self.text.commit(self.committed)
        return self._event(delta, self.text.tentative(self.committed, hypothesis[n:]), final=source_finished)

    def _event(self, delta: str, tentative: str, final: bool) -> TranslationEvent:
        return TranslationEvent(committed=delta, tentative=tentative, t_audio_ms=self.received * 1000 / SAMPLE_RATE,
                                t_wall_ms=(time.perf_counter() - self.started) * 1000, segment=self.segment_index,
                                final=final, segment_start_ms=self.segment_start * 1000 / SAMPLE_RATE,
                                segment_text=self.text.committed_text)  # fmt: skip

    def _propose(self, limit: int, open_end: bool) -> list[int]:
        """Greedy tokens continuing the committed text, until the end token (or a line break) or `limit`."""
        if limit == 0:
            return []
        logits, present = self._prefill(open_end)
        tokens: list[int] = []
        while True:
            token = int(np.argmax(logits[-1]))
            if token in self.stop_ids:
                return tokens
            tokens.append(token)
            window = (self.committed + tokens)[-loop_window(self.options.loop_repeats) :]
            drop = looping_tail(window, self.options.loop_repeats)
            if drop:
                return tokens[: max(0, len(tokens) - drop)]  # repeats already committed cannot be taken back
            if len(tokens) >= limit:
                return tokens
            logits, present = self.model.decode(self.model.embed_tokens([token]), present)

    def _prefill(self, open_end: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        committed = self.model.embed_tokens(self.committed)
        if not self.options.cache_reuse:  # recompute everything from the samples
            sequence = np.concatenate([self.prefix_embeds, self.audio.all_embeddings(open_end), self.suffix_embeds, committed])
            return self.model.decode(sequence, self.empty_cache)
        stable = self.audio.take_new_stable()  # only audio that became final since the last step
        if stable.shape[0]:
            _, self.cache = self.model.decode(stable, self.cache)
        tail = np.concatenate([self.audio.unstable(open_end), self.suffix_embeds, committed])
        return self.model.decode(tail, self.cache)
