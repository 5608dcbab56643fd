"""The shipped default as a checkpoint folder (what `models build-default` exports), so other graphs can be exported from it.

    python docs/lab/2026-12-02-fused/make_checkpoint.py /tmp/defckpt
    simulsa export /tmp/defckpt --out /tmp/b_old_int8 --decoder torchscript      # the previous graph, same weights
    simulsa export /tmp/defckpt --out /tmp/b_int4 --quantize int4
"""

import sys
from pathlib import Path

from simulsa.cli.default_build import SilentProgress, _attach_shipped, _compose_base, _pull_bases
from simulsa.runtime.default_model import read_recipe

out = Path(sys.argv[1])
recipe = read_recipe()
encoder, lm = _pull_bases(recipe, SilentProgress())
base = _compose_base(recipe, encoder, lm, out.with_name(out.name + "-base"))
out.mkdir()
_attach_shipped(base, out)
print(out)
