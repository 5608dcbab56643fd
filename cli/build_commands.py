"""Build models: compose, align, augment, train, export, probe (torch; imported inside each command)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from simulsa.cli.app import BUILD_PANEL, app, reports_errors
from simulsa.cli.shared import Force
from simulsa.runtime.errors import SimulsaError

command = functools.partial(app.command, rich_help_panel=BUILD_PANEL)  # every command here is in this --help panel


@command(epilog="Examples:\n\n  simulsa compose --tiny composite --out m\n\n"
             "  simulsa compose --encoder openai/whisper-base --lm HuggingFaceTB/SmolLM2-135M-Instruct --out m")  # fmt: skip
@reports_errors
def compose(
    out: Annotated[Path, typer.Option(help="Folder to write the model to.")],
    encoder: Annotated[str | None, typer.Option(help="Whisper model: hub id or folder.")] = None,
    lm: Annotated[str | None, typer.Option(help="Causal LM: hub id or folder.")] = None,
    tiny: Annotated[str | None, typer.Option(help="Build a tiny random model of this family instead.")] = None,
    block_s: Annotated[float, typer.Option(help="Seconds of audio per independently encoded block.")] = 2.0,
    stack: Annotated[int, typer.Option(help="Encoder frames (20 ms) per audio token: 4 = 12.5 tokens/s, 8 = 6.25.")] = 4,
    ear: Annotated[str, typer.Option(help="blocks: projected encoder frames (composite); tokens: Whisper's decoder "
                                          "transcribes and each transcript token is projected (whisper-tokens).")] = "blocks",
    window_s: Annotated[float, typer.Option(help="--ear tokens: audio is padded to whole windows of this length.")] = 5.0,
    src_lang: Annotated[str, typer.Option(help="Default source language code.")] = "en",
    tgt_lang: Annotated[str, typer.Option(help="Default target language code.")] = "es",
    force: Force = False,
) -> None:
    """Build a speech LM from a pretrained Whisper and LM (composite or whisper-tokens), or a tiny random model for tests."""
    from simulsa.runtime.files import check_output_free

    check_output_free(out, force)
    if ear not in EARS:
        raise SimulsaError(f"--ear {ear!r} is not one of {', '.join(EARS)}")
    if tiny is not None and (encoder or lm):
        raise SimulsaError("--tiny builds a random model; do not combine it with --encoder/--lm")
    if tiny is None and not (encoder and lm):
        raise SimulsaError("give --encoder and --lm (pretrained parts), or --tiny FAMILY")
    from simulsa.train.families import build_tiny, save_model

    model = build_tiny(tiny) if tiny else EARS[ear](encoder, lm, block_s=block_s, stack=stack, window_s=window_s,
                                                    src_lang=src_lang, tgt_lang=tgt_lang)  # fmt: skip
    save_model(model, out, force)
    params = sum(p.numel() for p in model.parameters())
    typer.echo(f"wrote {model.family} model to {out} ({params:,} parameters)")


def _compose_blocks(encoder: str, lm: str, block_s: float, stack: int, window_s: float, src_lang: str, tgt_lang: str):
    from simulsa.train.families.composite import compose_composite

    return compose_composite(encoder, lm, block_s, src_lang, tgt_lang, stack)


def _compose_tokens(encoder: str, lm: str, block_s: float, stack: int, window_s: float, src_lang: str, tgt_lang: str):
    from simulsa.train.families.whisper_tokens import compose_whisper_tokens

    return compose_whisper_tokens(encoder, lm, src_lang, tgt_lang, window_s)


EARS = {"blocks": _compose_blocks, "tokens": _compose_tokens}


@command(epilog="Example:\n\n  simulsa align --model m --manifest corpus/train.jsonl --dev corpus/dev.jsonl --out m_aligned")
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


@command(epilog="Example:\n\n  simulsa augment --model m --manifest train.jsonl --out aug --ratio 0.01")
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
               f"mean kept fraction {summary.mean_kept_fraction:.3f} of the targets for {summary.mean_heard_fraction:.3f} "
               f"of the audio; {summary.whole_targets} whole and {summary.empty_targets} empty targets; "
               f"tau {summary.tau:.3g}; wrote {out / 'manifest.jsonl'}")  # fmt: skip
    if summary.tau_too_permissive:
        typer.echo(f"warning: the targets kept ({summary.mean_kept_fraction:.2f}) run well ahead of the audio heard "
                   f"({summary.mean_heard_fraction:.2f}); raise --tau-scale (e.g. {10 * options.tau_scale:g})", err=True)


@command(epilog="Examples:\n\n  simulsa train --model m --train aug/manifest.jsonl --out ckpt --max-steps 5\n\n"
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


@command("export", epilog="Examples:\n\n  simulsa export ckpt --out bundle --quantize int8\n\n"
             "  simulsa export ckpt --out bundle --quantize int4 --block-size 32\n\n"
             "  simulsa export ckpt --out gpu_bundle --quantize int4 --dtype float16   (onnxruntime-gpu)\n\n"
             "  simulsa export ckpt --out old --decoder torchscript   (the previous graph, to compare)\n\n"
             "  simulsa export ckpt --out small --prune-vocab spanish_words.txt --prune-vocab corpus.txt")  # fmt: skip
@reports_errors
def export_bundle(
    checkpoint: Annotated[str, typer.Argument(help="A simulsa train output or a model folder.")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write.")],
    quantize: Annotated[str, typer.Option(help="int8 or int4 (integer kernels on CPU), or none (fp32).")] = "int8",
    block_size: Annotated[int, typer.Option(help="Weights per quantization scale (MatMulNBits block).")] = 32,
    head_quantize: Annotated[str | None, typer.Option(help="Fused decoders: the output head's own precision, e.g. "
                                                           "int8 over int4 layers (default: as --quantize).")] = None,
    ear_quantize: Annotated[str, typer.Option(
        help="whisper-tokens: which ear graphs go 8-bit under int8/int4: decoder (Whisper's decoder and its token "
             "table), all (also the encoder and projector: least memory, -2 BLEU streaming on the default), none.")] = "decoder",
    dtype: Annotated[str, typer.Option(help="The quantized fused decoder's activations and K/V: float32, or float16 "
                                            "(for onnxruntime-gpu: its GroupQueryAttention runs in half precision).")] = "float32",
    decoder: Annotated[str, typer.Option(help="auto: the fused graph (KV buffers bound in place) where the builder knows "
                                              "the LM, else torchscript; or force one of them.")] = "auto",
    max_length: Annotated[int, typer.Option(help="Fused decoder: the longest sequence it decodes (positions).")] = 4096,
    keep_fp32: Annotated[list[str] | None, typer.Option(help="Regex on ONNX node names kept fp32 (repeatable), "
                                                             "e.g. lm_head.")] = None,
    verify: Annotated[bool, typer.Option(help="Check the bundle against torch (fp32 parity is required).")] = True,
    full_tokenizer: Annotated[bool, typer.Option(help="Keep the BPE merges in tokenizer.json (the runtime only decodes: "
                                                      "without them it loads in a fifth of the memory).")] = False,
    prune_vocab: Annotated[list[Path] | None, typer.Option(
        help="Keep only the tokens this file gives (repeatable): a .npy of token ids, or UTF-8 text whose lines and "
             "words are tokenized. Byte, short Latin and prompt tokens are always kept. Fused decoders only.")] = None,
    force: Force = False,
) -> None:
    """Merge the adapter, export ONNX graphs with a KV cache, quantize, verify, and write a bundle."""
    from simulsa.export.graphs import DecoderGraphOptions
    from simulsa.export.pipeline import ExportOptions, run_export
    from simulsa.export.quantize import QuantizeOptions

    options_quantize = QuantizeOptions(mode=quantize, keep_fp32=tuple(keep_fp32 or ()), block_size=block_size,
                                       head=head_quantize, ear=ear_quantize, dtype=dtype)  # fmt: skip
    result = run_export(ExportOptions(checkpoint=checkpoint, out=out, quantize=options_quantize, verify=verify, force=force,
                                      full_tokenizer=full_tokenizer, decoder=DecoderGraphOptions(decoder, max_length),
                                      prune_vocab=tuple(prune_vocab or ())))  # fmt: skip
    for report in result.reports:
        typer.echo(report.table())
    typer.echo(f"wrote {out}: weights {result.bundle_bytes / 1e6:.2f} MB ({quantize}); fp32 {result.fp32_bytes / 1e6:.2f} MB, "
               f"{result.compression:.2f}x smaller")  # fmt: skip


@command(epilog="Example:\n\n  simulsa probe --model ckpt --manifest corpus/test.jsonl --limit 100")
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
