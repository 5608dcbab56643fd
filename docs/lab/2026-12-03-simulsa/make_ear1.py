"""The shipped default (ear1) as lab inputs: the composed base (/tmp/proto/wt_base), a `simulsa train`-style
output over it (/tmp/proto/out_ear1, for `simulsa augment --model`), and the projector as train_ear.py's
projector.pt (/tmp/proto/ear1). usage: make_ear1.py   (scratch, 2026-12-03)"""
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from simulsa.cli import default_build
from simulsa.runtime import default_model as shipped

P = Path("/tmp/proto")
recipe = json.loads((shipped.DEFAULT_DIR / "recipe.json").read_text())
models = Path("/tmp/simcache/models")
base = default_build._compose_base(recipe, models / "whisper-base", models / "gemma3-270m", P / "wt_base")
(P / "out_ear1").mkdir(exist_ok=True)
default_build._attach_shipped(base, P / "out_ear1")
state = {k.removeprefix("projector."): v for k, v in load_file(shipped.DEFAULT_DIR / "trained_modules.safetensors").items()}
(P / "ear1").mkdir(exist_ok=True)
torch.save(state, P / "ear1" / "projector.pt")
print("wrote", base, P / "out_ear1", P / "ear1" / "projector.pt")
