"""The share of SimulSA rows in stage 2 against what it buys (scratch, 2026-12-05, session 19).

usage: share_plot.py OUT.png   (reads /tmp/proto/ev_*: everyday test80 and the 7 real recordings, one bundle per share;
the SFT twins are share 0: seed 0 and, where it was run, seed 1 as a second point showing run-to-run spread)
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

P = Path("/tmp/proto")
RUNS = [(0.0, "s3_sft", "s3_sft"), (0.0, "sft_seed1", "sft_seed1"), (1.9, "share2pct", "share2pct"),
        (3.9, "share4pct", "share4pct"), (7.5, "s3_simulsa", "s3_simulsa")]  # (% of rows, everyday dir, real dir)
PANELS = [("everyday, 1000 ms hold 3", "ev_{}", "hold-b3-1000ms", "BLEU"),
          ("everyday, 500 ms hold 0", "ev_{}", "hold-b0-500ms", "BLEU"),
          ("everyday, offline", "ev_{}", "offline", "BLEU"),
          ("real speech, 1000 ms hold 3", "ev_real_{}", "hold-b3-1000ms", "chrF"),
          ("real speech, offline", "ev_real_{}", "offline", "chrF")]


def score(folder: str, config: str, metric: str) -> float | None:
    report = P / folder / "report.json"
    return json.loads(report.read_text())["configs"][config][metric] if report.exists() else None


fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.4))
for ax, (title, pattern, config, metric) in zip(axes, PANELS):
    points = {name: (share, score(pattern.format(real if "real" in pattern else name), config, metric))
              for share, name, real in RUNS}
    line = [xy for name, xy in points.items() if name != "sft_seed1" and xy[1] is not None]
    ax.plot([x for x, _ in line], [y for _, y in line], "o-", label="seed 0")
    if points["sft_seed1"][1] is not None:
        ax.plot(*points["sft_seed1"], "s", color="tab:red", label="SFT twin, seed 1")
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("SimulSA rows, % of stage 2")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
fig.suptitle("Stage 2 from 2026-12-05b, 100 steps: the share of SimulSA rows (0 % = the SFT twins)")
fig.tight_layout()
fig.savefig(sys.argv[1], dpi=110)
print("wrote", sys.argv[1])
