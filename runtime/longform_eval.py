"""`simulsa eval --longform`: every configuration over whole streams, scored the way IWSLT 2025/2026 score them.

Writes into DIR:
- `instances.jsonl`: one line per (configuration, stream): the SimulEval fields omnisteval reads (`source`,
  `prediction`, `delays`, `elapsed`, `source_length`, ms) plus the re-segmented sentences;
- `omnisteval/CONFIG.jsonl`, `segments.json`, `references.txt`, `audio/` (joined streams): what
  `omnisteval longform --speech_segmentation DIR/segments.json --ref_sentences_file DIR/references.txt
  --hypothesis_file DIR/omnisteval/CONFIG.jsonl` needs to score the same run independently;
- `report.json`, `report.md`, `curve.png` (BLEU against StreamLAAL, the latency regimes shaded).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from simulsa.runtime.audio import write_wav
from simulsa.runtime.eval_run import NO_SCORER_NOTE, EvalConfig, EvalOptions, corpus_quality, markdown_table, pyplot, scored
from simulsa.runtime.evaluation import run_stream
from simulsa.runtime.files import check_output_free
from simulsa.runtime.longform import (
    LongStream,
    SentenceResult,
    long_yaal,
    mweralign_program,
    read_long_streams,
    resegment,
    sentence_results,
    stream_laal,
)
from simulsa.runtime.metrics import units
from simulsa.runtime.session import StreamOptions, Translator

REGIMES_MS = ((0.0, 2000.0), (2000.0, 4000.0))  # IWSLT 2025/2026 latency regimes, on StreamLAAL / LongYAAL


@dataclasses.dataclass(frozen=True)
class LongformOptions:
    eval: EvalOptions = EvalOptions(chunks_ms=(500, 1000, 2000), holds=(3, 5), policies=("hold",))
    pause_ms: float = 700.0  # between joined utterances

    def __post_init__(self) -> None:
        from simulsa.runtime.errors import SimulsaError

        if not 0 <= self.pause_ms <= 10_000:
            raise SimulsaError(f"--pause-ms must be between 0 and 10000, got {self.pause_ms}")


def run_longform_eval(manifest: Path, translator: Translator, out: Path, options: LongformOptions,
                      force: bool = False) -> dict:  # fmt: skip
    from tqdm.auto import tqdm

    mweralign_program()  # refuse before an hour of streaming, not after
    check_output_free(out, force)
    streams = read_long_streams(manifest, options.pause_ms)
    if out.exists():
        shutil.rmtree(out)
    (out / "omnisteval").mkdir(parents=True)
    wavs = _write_inputs(out, streams)
    configs = options.eval.configs()
    records: list[dict] = []
    bar = tqdm(total=len(streams) * len(configs), desc="simulsa eval --longform", unit="stream")
    with (out / "instances.jsonl").open("w", encoding="utf-8") as log, bar:
        for config in configs:
            lines = []
            for stream, wav in zip(streams, wavs):
                record = _stream_record(translator, stream, wav, config, options.eval.stream_options(config))
                log.write(json.dumps(record, ensure_ascii=False) + "\n")
                log.flush()
                records.append(record)
                lines.append({k: record[k] for k in ("source", "prediction", "delays", "elapsed", "source_length")})
                bar.update()
            (out / "omnisteval" / f"{config.name}.jsonl").write_text(
                "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    report = build_longform_report(records, configs, streams)
    write_longform_report(out, report)
    return report


def _write_inputs(out: Path, streams: list[LongStream]) -> list[str]:
    """The streams' audio (for omnisteval and the ear), their segmentation and reference sentences."""
    (out / "audio").mkdir()
    segments, references, wavs = [], [], []
    for stream in streams:
        wav = f"{stream.name}.wav"
        write_wav(out / "audio" / wav, stream.samples)
        wavs.append(wav)
        for sentence in stream.sentences:
            segments.append({"wav": wav, "offset": round(sentence.start_ms / 1000, 4),
                             "duration": round(sentence.duration_ms / 1000, 4)})  # fmt: skip
            references.append(" ".join(sentence.text.split()))
    (out / "segments.json").write_text(json.dumps(segments, indent=1) + "\n", encoding="utf-8")
    (out / "references.txt").write_text("".join(r + "\n" for r in references), encoding="utf-8")
    return wavs


def _stream_record(translator: Translator, stream: LongStream, wav: str, config: EvalConfig,
                   options: StreamOptions) -> dict:  # fmt: skip
    trace = run_stream(translator, stream.samples, options, stream.tgt_lang)
    words = units(trace.hypothesis, stream.tgt_lang)
    groups = resegment(words, [s.text for s in stream.sentences])
    results = sentence_results(stream, words, trace.delays_ms, trace.elapsed_ms, groups)
    return {"config": config.name, "policy": config.policy, "chunk_ms": config.chunk_ms, "hold": config.hold,
            "tgt_lang": stream.tgt_lang, "source": [wav], "prediction": " ".join(words),
            "delays": [round(d, 1) for d in trace.delays_ms], "elapsed": [round(e, 1) for e in trace.elapsed_ms],
            "source_length": round(trace.source_ms, 1), "compute_ms": round(trace.compute_ms, 1),
            "sentences": [dataclasses.asdict(r) for r in results]}  # fmt: skip


def _config_scores(records: list[dict]) -> dict:
    lang = records[0]["tgt_lang"]
    results = [SentenceResult(**{**s, "delays_ms": tuple(s["delays_ms"]), "elapsed_ms": tuple(s["elapsed_ms"])})
               for r in records for s in r["sentences"]]  # fmt: skip
    hyp_words = sum(len(units(r.hypothesis, lang)) for r in results)
    ref_words = sum(len(units(r.reference, lang)) for r in results)
    scores = {
        "sentences": len(results), "empty": sum(not r.delays_ms for r in results),
        **corpus_quality([r.hypothesis for r in results], [r.reference for r in results], lang),
        "StreamLAAL": stream_laal(results, lang), "StreamLAAL_CA": stream_laal(results, lang, computation_aware=True),
        "LongYAAL": long_yaal(results, lang), "LongYAAL_CA": long_yaal(results, lang, computation_aware=True),
        "length_ratio": round(hyp_words / max(1, ref_words), 3),
        "RTF": round(sum(r["compute_ms"] for r in records) / max(1.0, sum(r["source_length"] for r in records)), 4),
    }  # fmt: skip
    return {k: round(v, 1) if isinstance(v, float) and k.startswith(("Stream", "Long")) else v for k, v in scores.items()}


def regime(latency_ms: float | None) -> str:
    for low, high in REGIMES_MS:
        if latency_ms is not None and low <= latency_ms < high:
            return f"{low / 1000:g}-{high / 1000:g} s"
    return "outside"


def build_longform_report(records: list[dict], configs: list[EvalConfig], streams: list[LongStream]) -> dict:
    by_config = {c.name: [r for r in records if r["config"] == c.name] for c in configs}
    configs_report = {}
    for config in configs:
        if by_config[config.name]:
            scores = _config_scores(by_config[config.name])
            configs_report[config.name] = {**dataclasses.asdict(config), **scores,
                                           "regime_2025": regime(scores["StreamLAAL"]),
                                           "regime_2026": regime(scores["LongYAAL"])}  # fmt: skip
    return {"streams": [{"name": s.name, "duration_s": round(s.duration_ms / 1000, 1), "sentences": len(s.sentences)}
                        for s in streams], "configs": configs_report}  # fmt: skip


LONGFORM_COLUMNS = ("BLEU", "chrF", "StreamLAAL", "StreamLAAL_CA", "LongYAAL", "LongYAAL_CA", "length_ratio", "RTF",
                    "empty", "regime_2025", "regime_2026")  # fmt: skip


def write_longform_report(out: Path, report: dict) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = markdown_table(report["configs"], LONGFORM_COLUMNS)
    streams = ", ".join(f"{s['name']} ({s['duration_s']} s, {s['sentences']} sentences)" for s in report["streams"])
    unscored = "" if scored(report["configs"]) else NO_SCORER_NOTE + ".\n"
    (out / "report.md").write_text("\n".join(lines) + f"\n\nStreams: {streams}. Latencies in ms, from each "
                                   "re-segmented sentence's start; regimes by StreamLAAL (2025) and LongYAAL (2026).\n"
                                   + unscored)  # fmt: skip
    plot_longform_curve(report, out / "curve.png")


def plot_longform_curve(report: dict, path: Path) -> bool:
    """BLEU against StreamLAAL (solid) and LongYAAL (dashed), one line per hold; the regimes shaded."""
    plt = pyplot()
    if plt is None or not scored(report["configs"]):
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (low, high), shade in zip(REGIMES_MS, ("#eef5ee", "#f5f0e6")):
        ax.axvspan(low, high, color=shade, zorder=0)
    lines: dict[str, list[dict]] = {}
    for scores in report["configs"].values():
        lines.setdefault(f"{scores['policy']} b={scores['hold']}", []).append(scores)
    for label, points in lines.items():
        points = sorted(points, key=lambda p: p["chunk_ms"])
        for key, style in (("StreamLAAL", "-o"), ("LongYAAL", "--s")):
            xs = [p[key] for p in points]
            if all(x is not None for x in xs):
                ax.plot(xs, [p["BLEU"] for p in points], style, label=f"{label}, {key}")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("BLEU (re-segmented)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
