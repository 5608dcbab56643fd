"""Measure: `simulsa eval` (quality, latency, stability over a manifest) and `simulsa bench` (speed side by side)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer

from simulsa.cli.app import MEASURE_PANEL, app, reports_errors
from simulsa.cli.shared import DefaultableBundle, Force, OpenTail, Threads, Verbose, bundle_or_default, load_translator
from simulsa.runtime.errors import SimulsaError

command = functools.partial(app.command, rich_help_panel=MEASURE_PANEL)  # every command here is in this --help panel


def _torch_reference(checkpoint: str, bundle: Path):
    import torch

    from simulsa.export.pipeline import load_merged
    from simulsa.export.torch_reference import TorchSpeechModel
    from simulsa.runtime.bundle import load_bundle

    model, _ = load_merged(checkpoint)
    torch.set_num_threads(torch.get_num_threads())  # PyTorch's own default, as a user would run it
    return TorchSpeechModel(model, load_bundle(bundle))


def _numbers(text: str, flag: str, kind=float) -> tuple:
    try:
        return tuple(float("inf") if part.strip() in ("inf", "offline") else kind(part) for part in text.split(","))
    except ValueError:
        raise SimulsaError(f"{flag} {text!r} is not a comma-separated list of numbers (or inf)") from None


EVAL_EXAMPLE = ("Examples:\n\n  simulsa eval --manifest test.jsonl --bundle b --chunk-ms 500,1000,inf --hold 0,3 --out ev\n\n"
                "  simulsa eval --longform --manifest talk_segments.jsonl --chunk-ms 1000,2000 --hold 3 --out ev_long")
# (chunk_ms, hold, policy) when not given: short-form sweeps both policies; long-form the IWSLT-style hold sweep
EVAL_DEFAULTS = {False: ("500,1000,2000,inf", "0,3,5", "hold,local-agreement"), True: ("500,1000,2000", "3,5", "hold")}


@command("eval", epilog=EVAL_EXAMPLE)
@reports_errors
def evaluate(
    manifest: Annotated[Path, typer.Option(help="JSONL manifest with references.")],
    out: Annotated[Path, typer.Option(help="Folder for instances.jsonl, report.json/.md, curve.png.")],
    bundle: DefaultableBundle = None,
    chunk_ms: Annotated[str | None, typer.Option(help="Chunk sizes, comma-separated; inf = offline "
                                                      "[default: 500,1000,2000,inf; --longform: 500,1000,2000].")] = None,
    hold: Annotated[str | None, typer.Option(help="Hold values for the hold policy, comma-separated "
                                                  "[default: 0,3,5; --longform: 3,5].")] = None,
    policy: Annotated[str | None, typer.Option(help="Policies, comma-separated "
                                                    "[default: hold,local-agreement; --longform: hold].")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N rows.")] = None,
    longform: Annotated[bool, typer.Option(help="Stream whole recordings (rows with offset/duration) or the rows "
                                                "joined into one stream, unsegmented; re-segment the output to the "
                                                "reference sentences (mweralign); StreamLAAL, LongYAAL.")] = False,
    pause_ms: Annotated[float, typer.Option(help="--longform: silence between joined utterances.")] = 700.0,
    open_tail: OpenTail = True,
    threads: Threads = None,
    verbose: Verbose = False,
    force: Force = False,
) -> None:
    """Quality (BLEU, chrF), latency (AL, LAAL, AP, DAL and computation-aware), erasure, RTF per configuration."""
    from simulsa.runtime.eval_run import EvalOptions, run_eval
    from simulsa.runtime.files import check_output_free
    from simulsa.runtime.session import StreamOptions

    check_output_free(out, force, "--out")
    chunk_ms, hold, policy = (given or default for given, default in zip((chunk_ms, hold, policy), EVAL_DEFAULTS[longform]))
    options = EvalOptions(chunks_ms=_numbers(chunk_ms, "--chunk-ms"), holds=_numbers(hold, "--hold", int),
                          policies=tuple(p.strip() for p in policy.split(",")), limit=limit,
                          stream=StreamOptions(open_tail=open_tail))  # fmt: skip
    if longform:
        from simulsa.runtime.longform_eval import LongformOptions, run_longform_eval

        if limit is not None:
            raise SimulsaError("--limit cuts a manifest into rows; with --longform give a shorter manifest instead")
        long_options = LongformOptions(eval=options, pause_ms=pause_ms)
        run_longform_eval(manifest, load_translator(bundle, threads, False, verbose), out, long_options, force)
    else:
        run_eval(manifest, load_translator(bundle, threads, False, verbose), out, options, force)
    typer.echo((out / "report.md").read_text())


@command(epilog="Example:\n\n  simulsa bench --bundle b-int8 --fp32-bundle b-fp32 --out bench")
@reports_errors
def bench(
    out: Annotated[Path, typer.Option(help="Folder for bench.json.")],
    bundle: DefaultableBundle = None,
    fp32_bundle: Annotated[Path | None, typer.Option(help="The fp32 bundle of the same model, for int8 vs fp32.")] = None,
    torch_checkpoint: Annotated[str | None, typer.Option(help="The checkpoint the bundle came from: vs PyTorch eager.")] = None,
    baseline_bundle: Annotated[Path | None, typer.Option(help="Another bundle of the same weights (e.g. exported with "
                                                              "--decoder torchscript): the same measures, as ratios.")] = None,
    lengths: Annotated[str, typer.Option(help="Audio heard before the measured step, seconds, comma-separated.")] = "5,10,20,40",
    audio: Annotated[Path | None, typer.Option(help="Speech for the streaming RTF (default: the shipped example).")] = None,
    repeats: Annotated[int, typer.Option(help="Repeats per measurement (the median is reported).")] = 3,
    threads: Threads = None,
    verbose: Verbose = False,
    force: Force = False,
) -> None:
    """Speed side by side: KV reuse vs recompute, int8 vs fp32, RTF, first output, memory, bandwidth bound."""
    from simulsa.runtime.bench import BenchOptions, bench_table, run_bench
    from simulsa.runtime.files import atomic_dir, check_output_free

    check_output_free(out, force, "--out")
    if repeats <= 0:
        raise SimulsaError(f"--repeats must be positive, got {repeats}")
    options = BenchOptions(lengths_s=_numbers(lengths, "--lengths"), repeats=repeats, threads=threads, audio=audio)
    bundle = bundle_or_default(bundle, verbose)
    reference = _torch_reference(torch_checkpoint, bundle) if torch_checkpoint else None
    with atomic_dir(out, force) as tmp:
        report = run_bench(bundle, options, fp32_bundle, reference, baseline_bundle)
        (tmp / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    typer.echo(bench_table(report))
