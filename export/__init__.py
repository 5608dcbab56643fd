"""simulsa.export: merge, ONNX export, quantization, verification (see issue: export)."""
