"""dedupe_constants: a tensor the tracer wrote twice is stored once, and the graph computes the same."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from simulsa.export.graphs import dedupe_constants


def _graph(path, second):
    table = np.arange(12, dtype=np.float32).reshape(3, 4)
    nodes = [helper.make_node("Constant", [], ["a"], value=numpy_helper.from_array(table, "a")),
             helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(second, "b")),
             helper.make_node("MatMul", ["x", "a"], ["y"]), helper.make_node("MatMul", ["x", "b"], ["z"])]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, 4]) for n in ("y", "z")])  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _run(path):
    return ort.InferenceSession(str(path)).run(None, {"x": np.array([[1.0, 2.0, 3.0]], np.float32)})


def test_identical_constants_are_stored_once_and_the_outputs_do_not_change(tmp_path):
    path = tmp_path / "g.onnx"
    _graph(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    before = _run(path)
    assert dedupe_constants(path, min_elements=1) == 1
    assert [n.op_type for n in onnx.load(str(path)).graph.node].count("Constant") == 1
    assert all(np.array_equal(a, b) for a, b in zip(before, _run(path)))


def test_different_constants_are_kept(tmp_path):
    path = tmp_path / "g.onnx"
    _graph(path, np.ones((3, 4), np.float32))
    assert dedupe_constants(path, min_elements=1) == 0
    assert [n.op_type for n in onnx.load(str(path)).graph.node].count("Constant") == 2
