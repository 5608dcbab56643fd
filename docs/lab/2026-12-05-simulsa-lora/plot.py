"""BLEU against LAAL for both stage-2 lengths of the LoRA SimulSA test (scratch, 2026-12-05, session 18).
usage: plot.py [OUT.png]   (reads /tmp/proto/ev_s{3,4}_{sft,simulsa}: eval.sh of docs/lab/2026-12-03-simulsa-open)"""
import json, sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

ARMS = {"SFT, 100 steps": "ev_s3_sft", "SFT+SimulSA, 100 steps": "ev_s3_simulsa",
        "SFT, 400 steps": "ev_s4_sft", "SFT+SimulSA, 400 steps": "ev_s4_simulsa"}
out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results_simulsa_lora_2026-12-05.png")
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
for ax, hold in zip(axes, (0, 3)):
    for (name, folder), color in zip(ARMS.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        path = Path("/tmp/proto") / folder / "report.json"
        if not path.exists():
            continue
        configs = json.loads(path.read_text())["configs"]
        points = sorted((c["LAAL"], c["BLEU"]) for key, c in configs.items() if key == "offline" or c.get("hold") == hold)
        ax.plot(*zip(*points), "-" if "SimulSA" in name else ":", marker="o", color=color, label=name)
    ax.set_title(f"hold {hold}: 500 ms, 1000 ms, offline"); ax.set_xlabel("LAAL (ms)"); ax.grid(alpha=0.3)
axes[0].set_ylabel("BLEU (everyday 1-80 x 2 voices, hand references)"); axes[1].legend(fontsize=8)
fig.suptitle("Stage 2 from 2026-12-05b (projector + LoRA): SFT vs SFT+SimulSA")
fig.tight_layout(); tmp = out.with_suffix(".tmp.png"); fig.savefig(tmp, dpi=110); tmp.rename(out)
print("wrote", out)
