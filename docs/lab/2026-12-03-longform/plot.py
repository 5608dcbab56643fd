"""The long-form curve of docs/results.md from sweep.sh's reports (scratch, 2026-12-03).

One panel per stream (everyday 949 s, real 83 s): BLEU (solid) and chrF (dashed) against StreamLAAL, one colour per
hold, IWSLT's 0-2 s and 2-4 s regimes shaded; also prints the markdown rows.
usage: plot.py [OUT=/tmp/ev_long] [PNG=docs/results_longform_2026-12-03b.png]
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ev_long")
png = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/results_longform_2026-12-03b.png")
STREAMS = (("everyday_long", "everyday, 949 s (TTS voices)"), ("real", "7 real recordings joined, 83 s"))
COLOURS = {3: "tab:blue", 5: "tab:orange"}

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
for ax, (stream, title) in zip(axes, STREAMS):
    ax.axvspan(0, 2000, color="#eef5ee", zorder=0)
    ax.axvspan(2000, 4000, color="#f5f0e6", zorder=0)
    for hold, colour in COLOURS.items():
        report = out / f"{stream}_h{hold}" / "report.json"
        if not report.is_file():
            continue
        points = sorted(json.loads(report.read_text())["configs"].values(), key=lambda p: p["chunk_ms"])
        xs = [p["StreamLAAL"] for p in points]
        ax.plot(xs, [p["BLEU"] for p in points], "-o", color=colour, label=f"BLEU, hold {hold}")
        ax.plot(xs, [p["chrF"] for p in points], "--s", color=colour, label=f"chrF, hold {hold}")
        for p in points:
            ax.annotate(f"{p['chunk_ms']:.0f}", (p["StreamLAAL"], p["chrF"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
            print(f"| {stream} | {p['chunk_ms']:.0f} ms | {hold} | {p['BLEU']:.2f} / {p['chrF']:.2f} | "
                  f"{p['StreamLAAL']:.0f} / {p['LongYAAL']:.0f} | {p['StreamLAAL_CA'] / 1000:.0f} s / "
                  f"{p['LongYAAL_CA'] / 1000:.0f} s | {p['length_ratio']:.2f} | {p['empty']} | {p['RTF']:.2f} |")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("StreamLAAL (ms); shaded: IWSLT regimes 0-2 s, 2-4 s; labels: chunk ms")
    ax.set_ylabel("score (re-segmented)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
fig.suptitle("default 2026-12-02a, long-form (unsegmented), 2-core CPU", fontsize=10)
fig.tight_layout()
fig.savefig(png, dpi=110)
print("wrote", png)
