"""A toy speech-translation manifest for smoke tests and debugging: each word is a tone.

`python -m simulsa.runtime.toy OUT_DIR [N] [SEED]` writes OUT_DIR/toy.jsonl and OUT_DIR/audio/*.wav.
The mapping word -> pitch is fixed, so a model can learn it: a real (if trivial) task.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE, write_wav

# English word -> (Spanish word, tone frequency in Hz)
TOY_LEXICON = {
    "one": ("uno", 220.0), "two": ("dos", 330.0), "three": ("tres", 440.0), "red": ("rojo", 550.0),
    "green": ("verde", 660.0), "house": ("casa", 770.0), "dog": ("perro", 880.0), "water": ("agua", 990.0),
}  # fmt: skip
WORD_S = 0.4  # seconds of tone per word
GAP_S = 0.1  # seconds of silence between words


def toy_utterance(words: list[str], rng: np.random.Generator) -> np.ndarray:
    pieces = []
    t = np.arange(int(WORD_S * SAMPLE_RATE)) / SAMPLE_RATE
    for word in words:
        pieces.append(0.3 * np.sin(2 * np.pi * TOY_LEXICON[word][1] * t))
        pieces.append(np.zeros(int(GAP_S * SAMPLE_RATE)))
    audio = np.concatenate(pieces)
    return (audio + 0.003 * rng.standard_normal(audio.size)).astype(np.float32)


def make_toy_manifest(out_dir: Path, n: int = 16, seed: int = 0, max_words: int = 6) -> Path:
    """Write `n` utterances of 1..max_words words; returns the manifest path."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    vocabulary = list(TOY_LEXICON)
    manifest = out_dir / "toy.jsonl"
    with manifest.open("w", encoding="utf-8") as handle:
        for i in range(n):
            words = [str(w) for w in rng.choice(vocabulary, size=int(rng.integers(1, max_words + 1)))]
            write_wav(out_dir / "audio" / f"toy{i:04d}.wav", toy_utterance(words, rng))
            row = {"id": f"toy{i:04d}", "audio": f"audio/toy{i:04d}.wav", "source": " ".join(words),
                   "target": " ".join(TOY_LEXICON[w][0] for w in words), "src_lang": "en", "tgt_lang": "es"}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    return manifest


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        sys.exit("usage: python -m simulsa.runtime.toy OUT_DIR [N] [SEED]")
    path = make_toy_manifest(Path(args[0]), *(int(a) for a in args[1:3]))
    print(f"wrote {path}")
