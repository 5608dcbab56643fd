"""A `simulsa train`-style output: the shipped ear1 projector + a LoRA adapter on the LM. usage: make_out.py ADAPTER OUT"""
import dataclasses, shutil, sys
from pathlib import Path
from simulsa.train.families.config import read_config, write_config
adapter, out = Path(sys.argv[1]), Path(sys.argv[2])
base = Path("/tmp/proto/wt_base")
out.mkdir(parents=True)
shutil.copy("/work/main/runtime/default/trained_modules.safetensors", out / "trained_modules.safetensors")
shutil.copytree(adapter, out / "adapter")
write_config(out, dataclasses.replace(read_config(base), base_model=str(base), adapter="adapter",
                                      trained_modules="trained_modules.safetensors"))
print("wrote", out)
