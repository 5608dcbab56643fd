"""Build the corpus: sentences -> apertium targets -> TTS speech -> train/dev/test manifests.

The test split holds sentences no other split has, spoken by a voice no other split uses, so a
test score measures generalisation to new words and a new speaker at once.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.files import atomic_dir
from simulsa.train.corpus.programs import require
from simulsa.train.corpus.sentences import WORDNET_DIR, clean_sentences, wordnet_examples
from simulsa.train.corpus.translate import apertium_translate
from simulsa.train.corpus.tts import PIPER_BATCH, Prosody, Voice, check_voices, piper_speed, synthesize, synthesize_piper_batch

SPLITS = ("train", "dev", "test")


@dataclasses.dataclass(frozen=True)
class CorpusOptions:
    train_voices: tuple[str, ...] = ("flite:kal16", "flite:awb", "flite:rms", "espeak:en-us")
    test_voice: str = "flite:slt"  # never used for train/dev
    max_sentences: int = 3000  # after filtering and deduplication
    dev_sentences: int = 100
    test_sentences: int = 200
    apertium_mode: str = "eng-spa"
    src_lang: str = "en"
    tgt_lang: str = "es"
    speed_range: tuple[float, float] = (0.9, 1.15)  # random speaking rate per utterance
    pitch_range: tuple[float, float] = (0.85, 1.2)  # random pitch per utterance
    workers: int = 2  # TTS processes at a time
    seed: int = 0
    wordnet_dir: Path = WORDNET_DIR

    def __post_init__(self) -> None:
        if self.test_voice in self.train_voices:
            raise SimulsaError(f"--test-voice {self.test_voice} is also a training voice; the test voice must be unseen")
        if not self.train_voices:
            raise SimulsaError("give at least one training voice")
        if min(self.max_sentences, self.dev_sentences, self.test_sentences, self.workers) <= 0:
            raise SimulsaError("sentence counts and --workers must be positive")
        if self.dev_sentences + self.test_sentences >= self.max_sentences:
            raise SimulsaError(f"--max-sentences {self.max_sentences} leaves nothing to train on after dev and test")
        for voice in (*self.train_voices, self.test_voice):
            Voice.parse(voice)


@dataclasses.dataclass(frozen=True)
class Utterance:
    split: str
    id: str
    source: str
    target: str
    voice: Voice
    prosody: Prosody


def _plan(pairs: list[tuple[str, str]], options: CorpusOptions, rng: random.Random) -> list[Utterance]:
    """Assign splits (test first: unseen sentences) and a voice and prosody to every sentence."""
    n_test, n_dev = options.test_sentences, options.dev_sentences
    train_voices = [Voice.parse(v) for v in options.train_voices]
    plan = []
    for index, (source, target) in enumerate(pairs):
        split = "test" if index < n_test else "dev" if index < n_test + n_dev else "train"
        voice = Voice.parse(options.test_voice) if split == "test" else rng.choice(train_voices)
        prosody = Prosody(rng.uniform(*options.speed_range), rng.uniform(*options.pitch_range))
        plan.append(Utterance(split, f"{split}-{index:05d}", source, target, voice, prosody))
    return plan


def _sentence_pairs(options: CorpusOptions, rng: random.Random) -> tuple[list[tuple[str, str]], dict[str, int]]:
    sentences = clean_sentences(wordnet_examples(options.wordnet_dir))
    if not sentences:
        raise SimulsaError(f"no English sentences in {options.wordnet_dir}: install the Debian package wordnet-base")
    rng.shuffle(sentences)
    targets = apertium_translate(sentences, options.apertium_mode)  # all of them: ~1,000 sentences/s
    pairs = [(s, t) for s, t in zip(sentences, targets) if t][: options.max_sentences]
    if len(pairs) <= options.dev_sentences + options.test_sentences:
        raise SimulsaError(f"only {len(pairs)} sentence pairs survived translation; lower --dev-sentences/--test-sentences")
    return pairs, {"sentences_found": len(sentences), "translated": len(pairs), "dropped_unknown_words": targets.count(None)}


def build_corpus(out: Path, options: CorpusOptions, force: bool = False) -> dict:
    """1. check programs, 2. sentences, 3. targets, 4. plan splits/voices, 5. speak, 6. manifests."""
    require("apertium")
    check_voices([Voice.parse(v) for v in (*options.train_voices, options.test_voice)])
    rng = random.Random(options.seed)
    pairs, counts = _sentence_pairs(options, rng)
    plan = _plan(pairs, options, rng)
    with atomic_dir(out, force) as tmp:
        durations = speak_plan(plan, tmp, options.workers, "simulsa corpus")
        summary = _write_manifests(tmp, plan, durations, options, counts)
    return summary


def speak_plan(plan: list[Utterance], folder: Path, workers: int, description: str) -> list[float]:
    """Render every utterance to folder/audio/<split>/<id>.wav, `workers` TTS processes at a time; durations in s."""
    from tqdm.auto import tqdm

    for split in {u.split for u in plan}:
        (folder / "audio" / split).mkdir(parents=True, exist_ok=True)
    durations: dict[int, float] = {}
    jobs = _tts_jobs(plan, folder)
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(plan), desc=description, unit="utt") as bar:
        for indices, seconds in pool.map(lambda job: (job[0], job[1]()), jobs):
            durations.update(zip(indices, seconds))
            bar.update(len(indices))
    return [durations[i] for i in range(len(plan))]


def _tts_jobs(plan: list[Utterance], folder: Path) -> list[tuple[list[int], Callable[[], list[float]]]]:
    """(plan indices, a call rendering them): one program run per utterance, except piper, which
    loads its voice once for a batch of lines of one voice and (rounded) speed."""
    jobs, piper_groups = [], {}
    for index, u in enumerate(plan):
        if u.voice.engine == "piper":
            piper_groups.setdefault((u.voice, piper_speed(u.prosody)), []).append(index)
        else:
            jobs.append(([index], lambda u=u: [synthesize(u.voice, u.source, u.prosody, folder / audio_path(u))]))
    for (voice, speed), indices in piper_groups.items():
        for start in range(0, len(indices), PIPER_BATCH):
            batch = indices[start : start + PIPER_BATCH]
            texts, outs = [plan[i].source for i in batch], [folder / audio_path(plan[i]) for i in batch]
            jobs.append((batch, lambda v=voice, s=speed, t=texts, o=outs: synthesize_piper_batch(v, t, s, o)))
    return jobs


def audio_path(utterance: Utterance) -> str:
    return f"audio/{utterance.split}/{utterance.id}.wav"


def _write_manifests(folder: Path, plan: list[Utterance], durations: list[float], options: CorpusOptions,
                     counts: dict[str, int]) -> dict:  # fmt: skip
    per_split = {split: {"utterances": 0, "hours": 0.0, "voices": set()} for split in SPLITS}
    handles = {split: (folder / f"{split}.jsonl").open("w", encoding="utf-8") for split in SPLITS}
    for utterance, seconds in zip(plan, durations):
        row = {"id": utterance.id, "audio": audio_path(utterance), "target": utterance.target, "source": utterance.source,
               "src_lang": options.src_lang, "tgt_lang": options.tgt_lang, "voice": utterance.voice.label}  # fmt: skip
        handles[utterance.split].write(json.dumps(row, ensure_ascii=False) + "\n")
        stats = per_split[utterance.split]
        stats["utterances"] += 1
        stats["hours"] += seconds / 3600
        stats["voices"].add(utterance.voice.label)
    for handle in handles.values():
        handle.close()
    summary = {**counts, "splits": {s: {**v, "voices": sorted(v["voices"]), "hours": round(v["hours"], 3)}
                                    for s, v in per_split.items()},
               "options": {k: str(v) for k, v in dataclasses.asdict(options).items()}}  # fmt: skip
    (folder / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
