"""`simulsa eval`: quality, latency, stability and speed of every configuration over a manifest.

Writes DIR/instances.jsonl as it goes (an interrupted eval keeps what it finished), then
DIR/report.json, DIR/report.md and DIR/curve.png. sacrebleu and matplotlib are the `[eval]` extra.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import shutil
from pathlib import Path

import numpy as np

from simulsa.runtime.audio import load_audio
from simulsa.runtime.errors import AudioError, SimulsaError
from simulsa.runtime.evaluation import StreamTrace, run_stream
from simulsa.runtime.files import check_output_free
from simulsa.runtime.manifest import read_manifest
from simulsa.runtime.metrics import (
    CHARACTER_LANGUAGES,
    average_lagging,
    average_proportion,
    differentiable_average_lagging,
    length_adaptive_average_lagging,
    normalized_erasure,
    units,
)
from simulsa.runtime.session import StreamOptions, Translator

OFFLINE = float("inf")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    policy: str
    chunk_ms: float  # inf = offline (the whole utterance at once)
    hold: int

    @property
    def name(self) -> str:
        if self.chunk_ms == OFFLINE:
            return "offline"
        hold = f"-b{self.hold}" if self.policy == "hold" else ""
        return f"{self.policy}{hold}-{int(self.chunk_ms)}ms"


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    chunks_ms: tuple[float, ...] = (500, 1000, 2000, OFFLINE)
    holds: tuple[int, ...] = (0, 3, 5)
    policies: tuple[str, ...] = ("hold", "local-agreement")
    limit: int | None = None  # first N manifest rows only
    stream: StreamOptions = StreamOptions()  # every other stream option (open tail, VAD, ...), the same in each config

    def __post_init__(self) -> None:
        if not self.chunks_ms or any(c <= 0 for c in self.chunks_ms):
            raise SimulsaError(f"--chunk-ms must be positive numbers or inf, got {self.chunks_ms}")
        if any(h < 0 for h in self.holds):
            raise SimulsaError(f"--hold must be >= 0, got {self.holds}")
        for policy in self.policies:
            StreamOptions(policy=policy)  # validates the name

    def stream_options(self, config: EvalConfig) -> StreamOptions:
        return dataclasses.replace(self.stream, chunk_ms=config.chunk_ms, policy=config.policy, hold=config.hold)

    def configs(self) -> list[EvalConfig]:
        configs = []
        for chunk in self.chunks_ms:
            if chunk == OFFLINE:
                configs.append(EvalConfig("hold", OFFLINE, 0))
                continue
            for policy in self.policies:
                holds = self.holds if policy == "hold" else (0,)
                configs += [EvalConfig(policy, chunk, hold) for hold in holds]
        return list(dict.fromkeys(configs))


def run_eval(manifest: Path, translator: Translator, out: Path, options: EvalOptions, force: bool = False) -> dict:
    from tqdm.auto import tqdm

    check_output_free(out, force)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rows = read_manifest(manifest)[: options.limit]
    configs = options.configs()
    skipped: dict[str, str] = {}
    bar = tqdm(total=len(rows) * len(configs), desc="simulsa eval", unit="utt")
    with (out / "instances.jsonl").open("w", encoding="utf-8") as log, bar:
        for config in configs:
            for row in rows:
                record = _evaluate_row(translator, row, config, options.stream_options(config), skipped)
                if record is not None:
                    log.write(json.dumps(record, ensure_ascii=False) + "\n")
                    log.flush()
                bar.update()
    report = build_report(out / "instances.jsonl", configs, skipped, len(rows))
    write_report(out, report)
    return report


def _evaluate_row(translator: Translator, row, config: EvalConfig, options: StreamOptions,
                  skipped: dict[str, str]) -> dict | None:  # fmt: skip
    if row.id in skipped:
        return None
    try:
        samples = load_audio(row.audio)
    except AudioError as err:
        skipped[row.id] = str(err)  # reported and counted, never a crash after an hour of work
        return None
    trace = run_stream(translator, samples, options, row.tgt_lang)
    return {"id": row.id, "config": config.name, "policy": config.policy, "chunk_ms": config.chunk_ms, "hold": config.hold,
            "tgt_lang": row.tgt_lang, **_trace_record(trace), "reference": row.target}  # fmt: skip


def _trace_record(trace: StreamTrace) -> dict:
    return {"hypothesis": trace.hypothesis, "source_ms": round(trace.source_ms, 1), "delays_ms": trace.delays_ms,
            "elapsed_ms": [round(e, 1) for e in trace.elapsed_ms], "displays": [" ".join(d) for d in trace.displays],
            "compute_ms": round(trace.compute_ms, 1), "first_output_ms": trace.first_output_ms}  # fmt: skip


def _latencies(records: list[dict], key: str) -> dict[str, float | None]:
    scores = {"AL": [], "LAAL": [], "AP": [], "DAL": []}
    for r in records:
        delays = r[key]
        if not delays:
            continue  # an empty hypothesis has no latency; counted in "empty"
        ref_len = len(units(r["reference"], r["tgt_lang"]))
        scores["AL"].append(average_lagging(delays, r["source_ms"], ref_len))
        scores["LAAL"].append(length_adaptive_average_lagging(delays, r["source_ms"], ref_len))
        scores["AP"].append(average_proportion(delays, r["source_ms"]))
        scores["DAL"].append(differentiable_average_lagging(delays, r["source_ms"]))
    return {name: round(float(np.mean(v)), 3) if v else None for name, v in scores.items()}


NO_SCORER_NOTE = "BLEU and chrF need sacrebleu, which this install lacks: pip install 'simulsa[eval]'"


def corpus_quality(hypotheses: list[str], references: list[str], lang: str) -> dict[str, float | None]:
    """BLEU and chrF of a corpus; None for both without sacrebleu (the [eval] extra): latencies still get measured."""
    try:
        import sacrebleu
    except ImportError:
        return {"BLEU": None, "chrF": None}
    tokenize = "zh" if lang in CHARACTER_LANGUAGES else "13a"
    return {"BLEU": round(sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score, 2),
            "chrF": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2)}  # fmt: skip


def scored(configs: dict[str, dict]) -> bool:
    return all(scores.get("BLEU") is not None for scores in configs.values())


def _config_report(records: list[dict]) -> dict:
    erasure = [normalized_erasure([d.split() for d in r["displays"]]) for r in records]
    firsts = [r["first_output_ms"] for r in records if r["first_output_ms"] is not None]
    return {
        "utterances": len(records), "empty": sum(not r["delays_ms"] for r in records),
        **corpus_quality([r["hypothesis"] for r in records], [r["reference"] for r in records], records[0]["tgt_lang"]),
        **_latencies(records, "delays_ms"),
        **{f"{k}_CA": v for k, v in _latencies(records, "elapsed_ms").items()},
        "erasure": round(float(np.mean(erasure)), 4),
        "RTF": round(sum(r["compute_ms"] for r in records) / max(1.0, sum(r["source_ms"] for r in records)), 4),
        "first_output_ms": round(float(np.mean(firsts)), 1) if firsts else None,
    }  # fmt: skip


def build_report(instances: Path, configs: list[EvalConfig], skipped: dict[str, str], rows: int) -> dict:
    records = [json.loads(line) for line in instances.read_text(encoding="utf-8").splitlines()]
    by_config = {c.name: [r for r in records if r["config"] == c.name] for c in configs}
    return {
        "rows": rows, "skipped": len(skipped), "skipped_reasons": skipped,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "configs": {name: {**dataclasses.asdict(c), **_config_report(by_config[name])}
                    for c in configs if (name := c.name) and by_config[name]},
    }  # fmt: skip


REPORT_COLUMNS = ("BLEU", "chrF", "AL", "LAAL", "AP", "DAL", "LAAL_CA", "erasure", "RTF", "first_output_ms", "empty")


def write_report(out: Path, report: dict) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = markdown_table(report["configs"], REPORT_COLUMNS)
    notes = (f"\n{report['rows']} rows, {report['skipped']} skipped (missing or unreadable audio); "
             f"peak RSS {report['peak_rss_mb']} MB.\n") + ("" if scored(report["configs"]) else NO_SCORER_NOTE + ".\n")
    (out / "report.md").write_text("\n".join(lines) + "\n" + notes)
    plot_curve(report, out / "curve.png")


def markdown_table(configs: dict[str, dict], columns: tuple[str, ...]) -> list[str]:
    """One row per configuration, one column per score ("-" where there is none)."""
    lines = ["| config | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, scores in configs.items():
        lines.append(f"| {name} | " + " | ".join(_cell(scores.get(c)) for c in columns) + " |")
    return lines


def _cell(value) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def pyplot():
    """matplotlib's pyplot on a file backend, or None without the [eval] extra (the curve is then skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_curve(report: dict, path: Path) -> bool:
    """BLEU against LAAL (solid) and LAAL_CA (dashed), one line per policy/hold; offline as a horizontal line."""
    plt = pyplot()
    if plt is None or not scored(report["configs"]):
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4))
    lines: dict[str, list[dict]] = {}
    for name, scores in report["configs"].items():
        if name == "offline":
            ax.axhline(scores["BLEU"], color="grey", linestyle=":", label="offline")
            continue
        label = scores["policy"] + (f" b={scores['hold']}" if scores["policy"] == "hold" else "")
        lines.setdefault(label, []).append(scores)
    for label, points in lines.items():
        points = sorted((p for p in points if p["LAAL"] is not None), key=lambda p: p["chunk_ms"])
        line = ax.plot([p["LAAL"] for p in points], [p["BLEU"] for p in points], marker="o", label=label)[0]
        ax.plot([p["LAAL_CA"] for p in points], [p["BLEU"] for p in points], marker="x", linestyle="--", color=line.get_color())
    ax.set_xlabel("LAAL (ms); dashed: computation-aware")
    ax.set_ylabel("BLEU")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
