"""Weight-space interpolation of two train outputs of the same base (scratch, 2026-12-05, session 20).

2026-12-05c (SimulSA stage) streams better than 2026-12-05b but lost real-speech offline quality; both continue the
same run, so a point between them may keep most of each. No training compute: the projector's tensors are averaged,
and the two LoRAs are joined exactly, so that the merged delta is a·ΔW_a + (1−a)·ΔW_b:
    A' = [A_a; A_b]          (2r × in)
    B' = [a·B_a, (1−a)·B_b]  (out × 2r)      B'A' = a·B_aA_a + (1−a)·B_bA_b
with lora_alpha doubled so alpha/r (PEFT's scale) stays what both were trained with.
usage: soup.py OUT_A OUT_B WEIGHT_A OUT   (OUT_* are train_output.py folders: simulsa.json, adapter/, trained_modules)
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file


def average_modules(a: dict, b: dict, weight_a: float) -> dict:
    return {k: np.asarray(weight_a * a[k] + (1 - weight_a) * b[k], dtype=a[k].dtype) for k in a}


def join_loras(a: dict, b: dict, weight_a: float) -> dict:
    joined = {}
    for key in a:
        if ".lora_A." in key:  # (r × in): stack the two ranks
            joined[key] = np.concatenate([a[key], b[key]], axis=0)
        elif ".lora_B." in key:  # (out × r): weigh each side's columns
            joined[key] = np.concatenate([weight_a * a[key], (1 - weight_a) * b[key]], axis=1).astype(a[key].dtype)
        else:
            raise SystemExit(f"unexpected adapter tensor {key}: only plain LoRA A/B pairs can be joined")
    return joined


def main(out_a: str, out_b: str, weight_a: str, out: str) -> None:
    a_dir, b_dir, dest, w = Path(out_a), Path(out_b), Path(out), float(weight_a)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(a_dir, tmp)
    modules = average_modules(*(load_file(d / "trained_modules.safetensors") for d in (a_dir, b_dir)), w)
    save_file(modules, tmp / "trained_modules.safetensors")
    adapters = [load_file(d / "adapter" / "adapter_model.safetensors") for d in (a_dir, b_dir)]
    if set(adapters[0]) != set(adapters[1]):
        raise SystemExit("the two adapters target different modules: cannot join them")
    save_file(join_loras(*adapters, w), tmp / "adapter" / "adapter_model.safetensors")
    config = json.loads((a_dir / "adapter" / "adapter_config.json").read_text())
    config["r"], config["lora_alpha"] = 2 * config["r"], 2 * config["lora_alpha"]
    (tmp / "adapter" / "adapter_config.json").write_text(json.dumps(config, indent=2))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    print(f"wrote {dest}: {w:g} × {a_dir.name} + {1 - w:g} × {b_dir.name}")


if __name__ == "__main__":
    main(*sys.argv[1:])
