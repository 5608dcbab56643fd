"""A `simulsa train`-style output from train_ear.py's results: simulsa.json naming the composed base, the trained
projector as trained_modules.safetensors (projector.* names), the LoRA adapter when there is one.
usage: train_output.py BASE RUN_DIR OUT"""
import dataclasses, shutil, sys
from pathlib import Path
import torch
from safetensors.torch import save_file
from simulsa.train.families.config import read_config, write_config
base, run, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), Path(sys.argv[3])
out.mkdir(parents=True)
state = torch.load(run / "projector.pt")
save_file({f"projector.{k}": v.contiguous() for k, v in state.items()}, str(out / "trained_modules.safetensors"))
adapter = None
if (run / "adapter").is_dir():
    shutil.copytree(run / "adapter", out / "adapter"); adapter = "adapter"
write_config(out, dataclasses.replace(read_config(base), base_model=str(base), adapter=adapter,
                                      trained_modules="trained_modules.safetensors"))
print("wrote", out, "adapter" if adapter else "projector only")
