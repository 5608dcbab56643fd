"""Stream N minutes of synthetic speech through a bundle, reporting resident memory per minute (JSON).

Run as `python -m tests.runtime.long_stream BUNDLE MINUTES` in a fresh process, so the numbers are
the runtime's own (no torch loaded).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from simulsa.runtime.session import StreamOptions, Translator
from simulsa.runtime.toy import TOY_LEXICON, toy_utterance


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def one_minute(rng: np.random.Generator) -> np.ndarray:
    """Utterances of 3-8 words, each followed by 1 s of silence, cut to 60 s."""
    pieces, total = [], 0
    while total < 60 * 16000:
        words = [str(w) for w in rng.choice(list(TOY_LEXICON), size=int(rng.integers(3, 9)))]
        pieces += [toy_utterance(words, rng), np.zeros(16000, np.float32)]
        total += pieces[-2].size + 16000
    return np.concatenate(pieces)[: 60 * 16000]


def main(bundle: str, minutes: int) -> None:
    session = Translator.from_bundle(bundle, threads=1).session(StreamOptions(chunk_ms=2000, max_new_tokens=4))
    minute = one_minute(np.random.default_rng(0))
    memory, segments = [], set()
    for _ in range(minutes):
        for start in range(0, minute.size, 32000):
            session.accept_audio(minute[start : start + 32000])
            segments.update(e.segment for e in session.step() if e.final)
        memory.append(resident_mb())
    print(json.dumps({"rss_mb": memory, "segments": len(segments), "cache_positions": session.cache.length}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
