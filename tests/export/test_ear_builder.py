"""The ear graphs written from numpy weights (export/ear_builder.py) against the traced torch wrappers."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from simulsa.export.ear_builder import WhisperShape, build_ear_decoder, build_ear_encoder, build_projector
from simulsa.export.ear_wrappers import EarDecoderWrapper, EarEncoderWrapper, EarProjectorWrapper
from simulsa.train.families.whisper_tokens import tiny_whisper_tokens


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = tiny_whisper_tokens().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or "bias" in name:  # norms at 1 and biases at 0 would hide a missing one
                param.normal_(0.0, 0.3)
        model.projector.table.normal_(0.0, 1.0)
        model.projector.mlp[2].weight.normal_(0.0, 0.1)  # zero at init: would hide the MLP path
        model.projector.log_temperature.fill_(0.4)
    return model


def _numpy(state) -> dict[str, np.ndarray]:
    return {name: tensor.detach().numpy() for name, tensor in state.items()}


def _run(path, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path))
    return session.run(None, {i.name: a.numpy() for i, a in zip(session.get_inputs(), inputs)})


def test_encoder_decoder_and_projector_match_the_traced_graphs(model, tmp_path):
    weights, shape = _numpy(model.whisper.state_dict()), WhisperShape.from_config(model.whisper.config.to_dict())
    encoder_io = build_ear_encoder(weights, shape, tmp_path / "encoder.onnx")
    decoder_io = build_ear_decoder(weights, shape, tmp_path / "decoder.onnx")
    projector_io = build_projector(_numpy(model.projector.state_dict()), shape.d_model, tmp_path / "projector.onnx")
    wrappers = EarEncoderWrapper(model), EarDecoderWrapper(model), EarProjectorWrapper(model)
    for wrapper, io in zip(wrappers, (encoder_io, decoder_io, projector_io)):  # the runtime binds these names
        assert io.inputs == tuple(wrapper.input_names) and io.outputs == tuple(wrapper.output_names)
    cases = [(tmp_path / "encoder.onnx", wrappers[0], (torch.randn(1, shape.n_mels, 200),)),
             (tmp_path / "decoder.onnx", wrappers[1], wrappers[1].example_inputs(positions=100)),
             (tmp_path / "projector.onnx", wrappers[2], wrappers[2].example_inputs())]  # fmt: skip
    for path, wrapper, inputs in cases:
        with torch.no_grad():
            reference = wrapper(*inputs)
        reference = reference if isinstance(reference, tuple) else (reference,)
        ours = _run(path, inputs)
        assert len(ours) == len(reference)
        for got, want in zip(ours, reference):
            want = want.numpy()
            assert got.shape == want.shape and got.dtype == want.dtype, path.name
            assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max()), path.name


def test_the_decoder_sees_no_future_token(model, tmp_path):
    """Changing the last input token must leave every earlier position's state unchanged (the causal mask)."""
    weights, shape = _numpy(model.whisper.state_dict()), WhisperShape.from_config(model.whisper.config.to_dict())
    build_ear_decoder(weights, shape, tmp_path / "decoder.onnx")
    inputs = list(EarDecoderWrapper(model).example_inputs(positions=50))
    inputs[0] = torch.tensor([[1, 2, 3, 4]])
    first = _run(tmp_path / "decoder.onnx", tuple(inputs))[2]
    inputs[0] = torch.tensor([[1, 2, 3, 9]])
    second = _run(tmp_path / "decoder.onnx", tuple(inputs))[2]
    assert np.allclose(first[:, :3], second[:, :3], atol=1e-6) and not np.allclose(first[:, 3], second[:, 3])


def _initializers(path):
    import onnx
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def _nodes(path):
    import onnx

    return list(onnx.load(str(path)).graph.node)


def test_int8_ear_graphs_stay_near_float_and_keep_no_float_token_table(model, tmp_path):
    """int8=True: MatMul weights in 8-bit blocks and the token tables as int8 rows; outputs near the float graphs."""
    weights, shape = _numpy(model.whisper.state_dict()), WhisperShape.from_config(model.whisper.config.to_dict())
    projector = _numpy(model.projector.state_dict())
    wrappers = EarEncoderWrapper(model), EarDecoderWrapper(model), EarProjectorWrapper(model)
    inputs = [(torch.randn(1, shape.n_mels, 200),), wrappers[1].example_inputs(positions=100), wrappers[2].example_inputs()]
    outputs = {}
    for int8 in (False, True):
        folder = tmp_path / ("int8" if int8 else "float")
        folder.mkdir()
        build_ear_encoder(weights, shape, folder / "encoder.onnx", int8=int8)
        build_ear_decoder(weights, shape, folder / "decoder.onnx", int8=int8)
        build_projector(projector, shape.d_model, folder / "projector.onnx", int8=int8)
        outputs[int8] = [_run(folder / f"{name}.onnx", case) for name, case in zip(("encoder", "decoder", "projector"), inputs)]
    vocab = weights["model.decoder.embed_tokens.weight"].shape[0]
    for name in ("encoder", "decoder", "projector"):
        held = _initializers(tmp_path / "int8" / f"{name}.onnx")
        float_tables = [k for k, v in held.items() if v.dtype == np.float32 and vocab in v.shape and v.size > vocab]
        assert not float_tables, f"{name} keeps a float token table: {float_tables}"
        nodes = _nodes(tmp_path / "int8" / f"{name}.onnx")
        float_products = [n.name for n in nodes if n.op_type == "MatMul" and n.input[1] in held]
        assert not float_products and any(n.op_type == "MatMulNBits" for n in nodes), (name, float_products)
    for (got, want, index) in [(outputs[True][0][0], outputs[False][0][0], "encoder cross.0.key"),
                               (outputs[True][1][2], outputs[False][1][2], "decoder hidden"),
                               (outputs[True][2][0], outputs[False][2][0], "projector audio_embeds")]:  # fmt: skip
        assert np.abs(got - want).max() <= 0.05 * np.abs(want).max(), index
    top_int8, top_float = outputs[True][1][1][..., 0], outputs[False][1][1][..., 0]  # the decoder's best token per position
    assert (top_int8 == top_float).mean() >= 0.75
