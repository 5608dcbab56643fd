"""The shipped default 2026-12-05b as stage-1 inputs for train_ear.py: /tmp/proto/s1/projector.pt (the projector),
lora.pt beside it (what `--lora 8 --resume s1/projector.pt` loads) and adapter/ (PEFT's files, for train_output.py).
train_ear.py loads lora.pt with strict=False, so a renamed key would be dropped silently: every key is checked
against the names the PEFT-wrapped Gemma really has.  usage: adopt_lora.py [DEFAULT_DIR]   (scratch, 2026-12-05,
session 18). Since 2026-12-05c ships, runtime/default holds stage 2: pass 2026-12-05b's folder, e.g.
`git worktree add /tmp/d05b 86f8e63` then `adopt_lora.py /tmp/d05b/runtime/default`."""
import shutil
import sys
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from simulsa.runtime import default_model as shipped

DEFAULT_DIR = Path(sys.argv[1]) if len(sys.argv) > 1 else shipped.DEFAULT_DIR
OUT = Path("/tmp/proto/s1")
OUT.mkdir(parents=True, exist_ok=True)
projector = {k.removeprefix("projector."): v for k, v in load_file(DEFAULT_DIR / "trained_modules.safetensors").items()}
lora = {k.removeprefix("base_model.model.").replace(".weight", ".default.weight"): v
        for k, v in load_file(DEFAULT_DIR / "adapter" / "adapter_model.safetensors").items()}
lm = AutoModelForCausalLM.from_pretrained("/tmp/simcache/models/gemma3-270m", torch_dtype=torch.float32)
lm = get_peft_model(lm, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=[
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])).base_model.model
expected = {n for n, _ in lm.named_parameters() if "lora_" in n}
if set(lora) != expected:
    raise SystemExit(f"adapter keys do not match: {sorted(set(lora) ^ expected)[:4]}")
torch.save(projector, OUT / "projector.pt")
torch.save(lora, OUT / "lora.pt")
shutil.copytree(DEFAULT_DIR / "adapter", OUT / "adapter", dirs_exist_ok=True)
joint = Path("/tmp/proto/joint200")  # the run that made 2026-12-05b, where it is still on disk: the same numbers
if (joint / "lora.pt").exists():
    ran = torch.load(joint / "lora.pt")
    worst = max(float((ran[k] - v).abs().max()) for k, v in lora.items())
    print(f"largest difference from {joint}/lora.pt: {worst:.2e}")
print(f"wrote {OUT}: the projector ({len(projector)} tensors) and {len(lora)} LoRA tensors of 2026-12-05b")
