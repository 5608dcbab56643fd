"""BLEU against LAAL for the two arms of the fair SimulSA test (scratch, 2026-12-03, session 16).
usage: plot.py [OUT.png]   (reads /tmp/proto/ev_sft and /tmp/proto/ev_open)"""
import json, sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

ARMS = {"SFT only": "/tmp/proto/ev_sft", "SFT + SimulSA (open tail, tau 1000/V, 10 %)": "/tmp/proto/ev_open"}
out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results_simulsa_open_2026-12-03.png")
fig, ax = plt.subplots(figsize=(7, 4.5))
for (name, folder), marker in zip(ARMS.items(), "os"):
    configs = json.loads((Path(folder) / "report.json").read_text())["configs"]
    for hold, style in ((0, ":"), (3, "-")):
        points = sorted((c["LAAL"], c["BLEU"]) for c in configs.values() if c.get("hold") == hold or c["policy"] == "offline")
        ax.plot(*zip(*points), style, marker=marker, label=f"{name}, hold {hold}")
ax.set_xlabel("LAAL (ms)"); ax.set_ylabel("BLEU (everyday 1-80 x 2 voices, hand references)")
ax.set_title("SFT vs SFT+SimulSA, whisper-tokens, 500 / 1000 ms / offline")
ax.grid(alpha=0.3); ax.legend(fontsize=8)
fig.tight_layout(); tmp = out.with_suffix(".tmp.png"); fig.savefig(tmp, dpi=110); tmp.rename(out)
print("wrote", out)
