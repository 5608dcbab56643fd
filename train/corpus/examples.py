"""Rebuild the example recordings shipped in `simulsa.runtime.examples` with simulsa's own TTS pipeline.

    python -m simulsa.train.corpus.examples [--voice flite:slt]

The voice is the corpus's held-out test voice, so the demo is speech the default model never
heard in training; the sentences are new too. The Spanish reference is apertium's, like the
training targets, so what you see can be compared with what the model was taught to say.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE, load_audio, write_wav
from simulsa.runtime.examples import EXAMPLES_DIR, INDEX
from simulsa.runtime.files import write_json_atomic
from simulsa.train.corpus.translate import apertium_translate
from simulsa.train.corpus.tts import Prosody, Voice, check_voices, synthesize

SENTENCES = (
    "The children were playing in the garden.",
    "She opened the window because the room was too warm.",
    "My brother bought a new car last week.",
)
PAUSE_S = 0.8  # longer than the default --min-silence-ms, so each sentence becomes its own segment


def build_examples(voice: Voice, folder: Path = EXAMPLES_DIR) -> list[dict]:
    """One wav with every sentence and a pause after each, plus examples.json describing it."""
    check_voices([voice])
    references = apertium_translate(list(SENTENCES))
    pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), dtype=np.float32)
    pieces = []
    with tempfile.TemporaryDirectory() as scratch:
        for i, sentence in enumerate(SENTENCES):
            synthesize(voice, sentence, Prosody(), Path(scratch) / f"{i}.wav")
            pieces += [load_audio(Path(scratch) / f"{i}.wav"), pause]
    samples = np.concatenate(pieces)
    tmp = folder / ".en_example.wav.tmp.wav"
    write_wav(tmp, samples)
    tmp.replace(folder / "en_example.wav")
    entry = {"name": "en_example", "file": "en_example.wav", "voice": voice.label, "seconds": round(samples.size / SAMPLE_RATE, 2),
             "sentences": list(SENTENCES), "apertium_spanish": references}  # fmt: skip
    write_json_atomic(INDEX, {"examples": [entry], "made_by": "python -m simulsa.train.corpus.examples"})
    return [entry]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="flite:slt", help="ENGINE:NAME (default: the corpus's held-out test voice)")
    for entry in build_examples(Voice.parse(parser.parse_args().voice)):
        print(f"{entry['file']}: {entry['seconds']} s, {entry['voice']}")


if __name__ == "__main__":
    main()
