"""`simulsa bench`: speed measured side by side in one run, reported as ratios with medians over repeats.

Timed assertions never go into tests: these numbers are for people, printed and written to bench.json.
"""

from __future__ import annotations

import dataclasses
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE
from simulsa.runtime.evaluation import run_stream
from simulsa.runtime.onnx_model import OnnxSpeechModel
from simulsa.runtime.session import StreamOptions, Translator

BENCH_TOKENS = 8  # tokens proposed per measured step: the same work for every variant


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    lengths_s: tuple[float, ...] = (5, 10, 20, 40)
    repeats: int = 3
    chunk_ms: float = 500
    threads: int | None = None
    audio: Path | None = None  # speech for the streaming RTF (default: the shipped example, else toy tones)


def median_ms(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Continuous tone-and-noise audio (no pauses, so no segment ends early)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.2 * np.sin(2 * np.pi * (220 + 110 * np.sin(t)) * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def step_ms(translator: Translator, seconds: float, reuse: bool, options: BenchOptions) -> float:
    """Median time of one streaming step when `seconds` of audio have been heard (the step's own cost only)."""
    stream = StreamOptions(chunk_ms=options.chunk_ms, cache_reuse=reuse, max_new_tokens=BENCH_TOKENS, hold=0, loop_repeats=0,
                           stop_at_line_break=False,
                           max_segment_s=seconds + 1, max_segment_tokens=10_000, min_silence_ms=10_000)  # fmt: skip
    audio, chunk = speech(seconds), int(options.chunk_ms * SAMPLE_RATE / 1000)

    def one_step() -> None:
        session = translator.session(stream)
        session._append(audio[: audio.size - chunk])
        session._decode_and_commit(source_finished=False)  # warm: the stable prefix is in the cache
        session._append(audio[audio.size - chunk :])
        started = time.perf_counter()
        session._decode_and_commit(source_finished=False)
        timings.append((time.perf_counter() - started) * 1000)

    timings: list[float] = []
    for _ in range(options.repeats):
        one_step()
    return statistics.median(timings)


def _step_ms_after(model: OnnxSpeechModel, context: np.ndarray, repeats: int, tokens: int) -> float:
    """ms per single-token decode step after `context` (T, H) is in the cache, median over repeats."""
    _, past = model.decode(context, model.empty_cache())
    one = model.embed_tokens([model.bundle.prompt.end_id])

    def run() -> None:
        cache = past
        for _ in range(tokens):
            _, cache = model.decode(one, cache)

    return median_ms(run, repeats) / tokens


def decode_ms_per_token(model: OnnxSpeechModel, repeats: int, tokens: int = 32) -> float:
    prompt = model.embed_tokens([*model.bundle.prompt.prefix_ids, *model.bundle.prompt.suffix_ids])
    return _step_ms_after(model, prompt, repeats, tokens)


def decode_ms_at_length(model: OnnxSpeechModel, cached: int, repeats: int, tokens: int = 16) -> float:
    """ms per decode step once `cached` positions are in the KV cache: flat for in-place buffers, growing for concat."""
    rng = np.random.default_rng(0)
    context = model.embed_tokens(rng.integers(0, model.bundle.dims.vocab_size, cached))
    return _step_ms_after(model, context, repeats, tokens)


def batched_step_ms(model: OnnxSpeechModel, batch: int, repeats: int, tokens: int = 16) -> float:
    """ms per decode call when `batch` sequences (100 cached positions each) step together (fused decoders only)."""
    rng = np.random.default_rng(0)
    first = model.decoder.new_cache(slots=batch)
    context = model.embed_tokens(rng.integers(0, model.bundle.dims.vocab_size, 100))
    caches = [model.decoder.decode(context, first.buffer.empty(slot))[1] for slot in range(batch)]
    step = np.repeat(model.embed_tokens([model.bundle.prompt.end_id]), batch, axis=0)  # (B, H)

    def run() -> None:
        states = caches
        for _ in range(tokens):
            _, states = model.decoder.decode_steps(step, states)

    return median_ms(run, repeats) / tokens


def batched_steps(model: OnnxSpeechModel, repeats: int, sizes: tuple[int, ...] = (1, 2, 4, 8)) -> dict[str, dict]:
    """Per batch size: ms per call, tokens/s, and the gain over stepping the sequences one by one."""
    timings = {b: batched_step_ms(model, b, repeats) for b in sizes}
    single = timings[sizes[0]] / sizes[0]
    return {str(b): {"ms_per_call": round(ms, 3), "tokens_per_s": round(1000 * b / ms, 1),
                     "vs_one_by_one": round(b * single / ms, 2)} for b, ms in timings.items()}  # fmt: skip


def encoder_ms_per_audio_s(model: OnnxSpeechModel, repeats: int, seconds: float = 10.0) -> float:
    audio = speech(min(seconds, 29.0))
    return median_ms(lambda: model.encode_audio(audio), repeats) / (audio.size / SAMPLE_RATE)


def copy_bandwidth_gbs(megabytes: int = 256) -> float:
    """Memory bandwidth from a large numpy copy: bytes read + written per second (best of 3)."""
    source = np.ones(megabytes * 2**20 // 8)
    target = np.empty_like(source)
    best = min(median_ms(lambda: np.copyto(target, source), 1) for _ in range(3))
    return 2 * source.nbytes / (best / 1000) / 1e9


def bundle_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).iterdir() if p.is_file())


def streaming_speed(translator: Translator, options: BenchOptions) -> dict[str, float | None]:
    audio = bench_speech(options.audio)
    trace = run_stream(translator, audio, StreamOptions(chunk_ms=options.chunk_ms), "es")
    return {"rtf": trace.compute_ms / trace.source_ms, "first_output_ms": trace.first_output_ms,
            "first_output_ms_ca": trace.elapsed_ms[0] if trace.elapsed_ms else None}  # fmt: skip


def bench_speech(path: Path | None) -> np.ndarray:
    """Real speech when there is some: a trained model says more (and works longer) on speech than on tones."""
    from simulsa.runtime.audio import load_audio
    from simulsa.runtime.errors import SimulsaError
    from simulsa.runtime.examples import example_path

    if path is not None:
        return load_audio(path)
    try:
        return load_audio(example_path())
    except SimulsaError:  # an install without the example: 20 s of toy words with pauses
        from simulsa.runtime.toy import toy_utterance  # torch-free: numpy + soundfile

        rng = np.random.default_rng(1)
        return toy_utterance([str(w) for w in rng.choice(["one", "two", "red", "dog", "house", "water"], size=40)], rng)


def decode_profile(bundle: Path, threads: int | None, tokens: int = 32) -> dict[str, float]:
    """Share of decode time per ONNX op type (onnxruntime's profiler), largest first: where a token's time goes."""
    import json
    import tempfile

    model = OnnxSpeechModel.from_path(bundle, threads, verify_checksums=False)
    with tempfile.TemporaryDirectory() as scratch:
        model.decoder = type(model.decoder)(model.bundle, threads, profile_prefix=str(Path(scratch) / "decode"))
        decode_ms_per_token(model, repeats=1, tokens=tokens)
        events = json.loads(Path(model.decoder.session.end_profiling()).read_text())
    per_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            per_op[op] = per_op.get(op, 0.0) + event["dur"]
    total = sum(per_op.values()) or 1.0
    return {op: round(us / total, 3) for op, us in sorted(per_op.items(), key=lambda kv: -kv[1])}


def compare_engines(translator: Translator, reference: Translator, options: BenchOptions) -> dict:
    """Our engine vs another model object (PyTorch eager) behind the same session code, side by side."""
    ours, theirs = streaming_speed(translator, options), streaming_speed(reference, options)
    decode_ours = decode_ms_per_token(translator.model, options.repeats)
    decode_theirs = decode_ms_per_token(reference.model, options.repeats)
    return {"decode_ms_per_token": round(decode_theirs, 3), "rtf": round(theirs["rtf"], 3),
            "decode_speedup": round(decode_theirs / decode_ours, 2),
            "rtf_speedup": round(theirs["rtf"] / ours["rtf"], 2)}  # fmt: skip


def step_growth(translator: Translator, options: BenchOptions) -> list[dict]:
    window = translator.model.bundle.audio.window_s
    growth = []
    for seconds in [s for s in options.lengths_s if not window or s < window]:
        reuse, full = step_ms(translator, seconds, True, options), step_ms(translator, seconds, False, options)
        growth.append({"audio_s": seconds, "reuse_ms": round(reuse, 2), "recompute_ms": round(full, 2),
                       "speedup": round(full / reuse, 2)})  # fmt: skip
    return growth


def _streaming(translator: Translator, options: BenchOptions) -> dict:
    return {k: None if v is None else round(v, 3) for k, v in streaming_speed(translator, options).items()}


def against_baseline(report: dict, baseline: Path, options: BenchOptions, bandwidth: float) -> dict:
    """The same measures on another bundle of the same weights (e.g. the TorchScript decoder graph), as ratios."""
    translator = Translator.from_bundle(baseline, threads=options.threads)
    other = {"bundle": str(baseline), "step_growth": step_growth(translator, options), "streaming": _streaming(translator, options),
             **_speed(translator.model, options, baseline, bandwidth)}  # fmt: skip
    steps = {g["audio_s"]: g["reuse_ms"] for g in other["step_growth"]}
    ratios = {"decode_speedup": round(other["decode_ms_per_token"] / report["decode_ms_per_token"], 2),
              "step_at_400_cached_speedup": round(other["decode_ms_at_400_cached"] / report["decode_ms_at_400_cached"], 2),
              "streaming_rtf_ratio": round(report["streaming"]["rtf"] / other["streaming"]["rtf"], 2),
              "reuse_step_speedup": {str(g["audio_s"]): round(steps[g["audio_s"]] / g["reuse_ms"], 2)
                                     for g in report["step_growth"] if g["audio_s"] in steps}}  # fmt: skip
    return {"baseline": other, "vs_baseline": ratios}


def run_bench(bundle: Path, options: BenchOptions, fp32_bundle: Path | None = None, reference=None,
              baseline_bundle: Path | None = None) -> dict:  # fmt: skip
    """1. reuse vs recompute per step at growing lengths, 2. int8 vs fp32, 3. streaming RTF, 4. bandwidth bound,
    5. the same on a baseline bundle (another decoder graph of the same weights), side by side."""
    translator = Translator.from_bundle(bundle, threads=options.threads)
    growth = step_growth(translator, options)
    streaming = _streaming(translator, options)
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # before the bandwidth buffers
    bandwidth = copy_bandwidth_gbs()
    report = {"bundle": str(bundle), "quantization": translator.model.bundle.record.quantization.mode,
              "repeats": options.repeats, "step_growth": growth, "copy_bandwidth_gbs": round(bandwidth, 2),
              **_speed(translator.model, options, bundle, bandwidth), "streaming": streaming,
              "peak_rss_mb": peak_rss_mb, "decode_time_by_op": decode_profile(bundle, options.threads)}  # fmt: skip
    if fp32_bundle is not None:
        other = _speed(OnnxSpeechModel.from_path(fp32_bundle, options.threads), options, fp32_bundle, bandwidth)
        report["fp32"] = other
        report["int8_vs_fp32"] = {key: round(other[field] / report[field], 2) for key, field in
                                  (("decode_speedup", "decode_ms_per_token"), ("encoder_speedup", "encoder_ms_per_audio_s"),
                                   ("size_ratio", "bundle_mb"))}  # fmt: skip
    if reference is not None:
        report["ours_vs_pytorch_eager"] = compare_engines(translator, Translator(reference), options)
    if translator.model.bundle.decoder.kind == "fused":  # what batching sessions' steps would buy (simulsa serve)
        report["batched_steps"] = batched_steps(translator.model, options.repeats)
    if baseline_bundle is not None:
        report.update(against_baseline(report, baseline_bundle, options, bandwidth))
    return report


def _speed(model: OnnxSpeechModel, options: BenchOptions, path: Path, bandwidth_gbs: float) -> dict[str, float]:
    decode = decode_ms_per_token(model, options.repeats)
    encoder = encoder_ms_per_audio_s(model, options.repeats)
    at_50, at_400 = (decode_ms_at_length(model, n, options.repeats) for n in (50, 400))
    files = model.bundle.decoder.files
    weights = sum((model.bundle.path / name).stat().st_size for name in files)  # every decoder weight is read once per token
    bound_ms = weights / (bandwidth_gbs * 1e9) * 1000
    return {"decoder_kind": model.bundle.decoder.kind, "decode_ms_per_token": round(decode, 3),
            "encoder_ms_per_audio_s": round(encoder, 3), "bundle_mb": round(bundle_bytes(path) / 1e6, 2),
            "bandwidth_bound_ms_per_token": round(bound_ms, 4), "decode_vs_bound": round(decode / bound_ms, 2),
            "decode_ms_at_50_cached": round(at_50, 3), "decode_ms_at_400_cached": round(at_400, 3),
            "step_400_vs_50": round(at_400 / at_50, 2)}  # fmt: skip


def bench_table(report: dict) -> str:
    lines = [f"bench: {report['bundle']} ({report['quantization']}), medians of {report['repeats']}",
             f"{'audio':>7}{'reuse ms':>11}{'recompute ms':>14}{'speedup':>9}"]  # fmt: skip
    for g in report["step_growth"]:
        lines.append(f"{g['audio_s']:>6.0f}s{g['reuse_ms']:>11.1f}{g['recompute_ms']:>14.1f}{g['speedup']:>8.2f}x")
    lines.append(f"decode {report['decode_ms_per_token']:.2f} ms/token = {report['decode_vs_bound']}x the memory-bandwidth "
                 f"bound; encoder {report['encoder_ms_per_audio_s']:.1f} ms per audio second")
    lines.append(f"decode step with 50 / 400 positions cached: {report['decode_ms_at_50_cached']:.2f} / "
                 f"{report['decode_ms_at_400_cached']:.2f} ms ({report['step_400_vs_50']}x); "
                 f"decoder graph: {report['decoder_kind']}")
    lines.append(f"bundle {report['bundle_mb']} MB; copy bandwidth {report['copy_bandwidth_gbs']} GB/s")
    if "int8_vs_fp32" in report:
        ratio = report["int8_vs_fp32"]
        lines.append(f"int8 vs fp32: decode {ratio['decode_speedup']}x faster, encoder {ratio['encoder_speedup']}x, "
                     f"{ratio['size_ratio']}x smaller")  # fmt: skip
    if "ours_vs_pytorch_eager" in report:
        torch_ratio = report["ours_vs_pytorch_eager"]
        lines.append(f"vs PyTorch eager (same session and policy): decode {torch_ratio['decode_speedup']}x faster, "
                     f"streaming RTF {torch_ratio['rtf_speedup']}x lower")  # fmt: skip
    if "vs_baseline" in report:
        ratio, base = report["vs_baseline"], report["baseline"]
        lines.append(f"vs baseline {base['bundle']} ({base['decoder_kind']}): decode {ratio['decode_speedup']}x faster "
                     f"({base['decode_ms_per_token']:.2f} ms/token, {base['decode_vs_bound']}x the bound), step at 400 cached "
                     f"{ratio['step_at_400_cached_speedup']}x faster, streaming RTF {base['streaming']['rtf']} -> "
                     f"{report['streaming']['rtf']}; reuse steps {ratio['reuse_step_speedup']}")  # fmt: skip
    if "batched_steps" in report:
        steps = ", ".join(f"{b}: {v['tokens_per_s']} tok/s ({v['vs_one_by_one']}x)" for b, v in report["batched_steps"].items())
        lines.append(f"decode steps batched across sequences: {steps}")
    top = ", ".join(f"{op} {share:.0%}" for op, share in list(report["decode_time_by_op"].items())[:5])
    lines.append(f"decode time by op: {top}")
    s = report["streaming"]
    lines.append(f"streaming at 500 ms: RTF {s['rtf']}, first output at {s['first_output_ms']} ms of audio; "
                 f"peak RSS {report['peak_rss_mb']} MB")  # fmt: skip
    return "\n".join(lines)
