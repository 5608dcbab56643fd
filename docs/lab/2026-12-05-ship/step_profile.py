"""Where a streaming step's time goes in the shipped default (scratch, 2026-12-05, session 19).

usage: step_profile.py [CHUNK_MS]   (the example WAV, as `simulsa bench` streams it; default model as built)
Times the ear's Whisper encoder, its decoder calls (the forced prefix re-read, then greedy tokens), the projector,
and the LM decoder, by wrapping their methods; the rest is the session's own work (features, policy, text).
"""

import collections
import sys
import time

from simulsa.runtime import decoders, ear
from simulsa.runtime.audio import load_audio
from simulsa.runtime.default_model import default_bundle_path
from simulsa.runtime.evaluation import run_stream
from simulsa.runtime.examples import example_path
from simulsa.runtime.session import StreamOptions, Translator

spent: dict[str, float] = collections.defaultdict(float)
calls: dict[str, int] = collections.Counter()


def timed(cls, method: str, name) -> None:
    original = getattr(cls, method)

    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            label = name(args) if callable(name) else name
            spent[label] += time.perf_counter() - start
            calls[label] += 1

    setattr(cls, method, wrapper)


timed(ear.WhisperEar, "cross", "ear: Whisper encoder")
timed(ear.WhisperEar, "_run", lambda args: "ear: decoder, forced prefix re-read" if len(args[0]) > 1 else "ear: decoder, greedy tokens")
timed(ear.WhisperEar, "project", "ear: projector")
timed(decoders.FusedDecoder, "decode", "LM: decode (prompt, segment, tokens)")

chunk_ms = float(sys.argv[1]) if len(sys.argv) > 1 else 500
translator = Translator.from_bundle(default_bundle_path())
audio = load_audio(example_path())
start = time.perf_counter()
trace = run_stream(translator, audio, StreamOptions(chunk_ms=chunk_ms), "es")
total = time.perf_counter() - start
print(f"{len(audio) / 16000:.1f} s of audio at {chunk_ms:g} ms chunks: {total:.2f} s compute, RTF {trace.compute_ms / trace.source_ms:.3f}")
for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
    print(f"  {label:<40} {seconds:6.2f} s  {seconds / total:5.1%}  ({calls[label]} calls)")
rest = total - sum(spent.values())
print(f"  {'the rest (features, policy, text)':<40} {rest:6.2f} s  {rest / total:5.1%}")
