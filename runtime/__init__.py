"""simulsa.runtime: the torch-free side of simulsa (numpy, onnxruntime, soundfile).

Nothing in this package may import torch, transformers or peft, not even lazily;
tests/runtime/test_import_boundary.py proves it in a subprocess.
"""

__version__ = "0.1.0"
