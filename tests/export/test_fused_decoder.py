"""The fused decoder graph against transformers, per LM architecture; its KV buffers, batches and quantized forms."""

from __future__ import annotations

import types

import numpy as np
import onnx
import pytest
import torch

from simulsa.export import fused_decoder
from simulsa.export.fused_decoder import FusedDecoderOptions, StateDictSource, build_fused_decoder
from simulsa.export.lm_architecture import LmArchitecture, UnsupportedArchitecture
from simulsa.runtime.bundle import FUSED_INPUTS, KV_RECORD, DecoderRecord
from simulsa.runtime.bundle_records import Dims
from simulsa.runtime.decoders import FusedDecoder
from simulsa.runtime.errors import SimulsaError

COMMON = {"vocab_size": 300, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4,
          "num_key_value_heads": 2, "max_position_embeddings": 256}  # fmt: skip


def _llama():
    from transformers import LlamaConfig

    return LlamaConfig(**COMMON, tie_word_embeddings=True)


def _qwen2():
    from transformers import Qwen2Config

    return Qwen2Config(**COMMON)  # q/k/v biases, an untied head


def _gemma3():
    from transformers import Gemma3TextConfig

    # a sliding window of 6 over 24-position sequences, so the window really cuts; global layers rotate with another base
    return Gemma3TextConfig(**COMMON, head_dim=32, sliding_window=6, query_pre_attn_scalar=24,
                            layer_types=["sliding_attention", "full_attention", "sliding_attention"])  # fmt: skip


CONFIGS = {"llama": _llama, "qwen2": _qwen2, "gemma3": _gemma3}


def _lm(name: str):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(CONFIGS[name]()).eval()
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if "norm" in param_name or "bias" in param_name:  # norms at 1 and biases at 0 would hide a missing one
                param.normal_(0.0, 0.3)
    return model


def _decoder(model, folder, kv_device=None, **options) -> tuple[FusedDecoder, LmArchitecture]:
    arch = LmArchitecture.from_config(model.config.to_dict())
    weights = StateDictSource(model.state_dict(), lambda t: t.detach().numpy())
    graph_options = FusedDecoderOptions(max_length=128, **options)
    build_fused_decoder(arch, weights, graph_options, folder / "decoder.onnx")
    record = DecoderRecord("fused", ("decoder.onnx",), FUSED_INPUTS, ("logits",), "buffers", max_length=128, kv_capacity=16,
                           dtype=graph_options.dtype)  # fmt: skip
    dims = Dims(hidden_size=arch.hidden_size, num_layers=arch.num_layers, num_kv_heads=arch.num_kv_heads,
                head_dim=arch.head_dim, vocab_size=arch.vocab_size)  # fmt: skip
    # the parts of a bundle the decoder reads: its file, its record, the LM's dims and the KV names
    bundle = types.SimpleNamespace(file=lambda role: folder / "decoder.onnx", decoder=record, dims=dims, kv=KV_RECORD)
    return FusedDecoder(bundle, kv_device=kv_device), arch


def _reference(model, embeds: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(inputs_embeds=torch.from_numpy(embeds)[None]).logits[0].numpy()  # (N, V)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fused_graph_matches_transformers_through_the_buffer(name, tmp_path):
    model = _lm(name)
    decoder, arch = _decoder(model, tmp_path)
    embeds = np.random.default_rng(1).standard_normal((24, arch.hidden_size)).astype(np.float32)
    reference = _reference(model, embeds)  # (24, V)
    scale = np.abs(reference).max()
    cache = decoder.new_cache()  # capacity 16: the buffer grows (one copy) on the way to 24
    got = {}
    for start, end in ((0, 8), (8, 12), *((t, t + 1) for t in range(12, 24))):  # prompt, a tail on top of it, steps
        logits, cache = decoder.decode(embeds[start:end], cache)
        got[end - 1] = logits[0]
    assert cache.length == 24 and cache.buffer.capacity == 32
    for position, logits in got.items():
        assert np.abs(logits - reference[position]).max() <= 1e-5 * scale, position
    rolled = cache.truncated(10)  # roll back to a prefix: nothing copied, later positions are overwritten
    for t in range(10, 24):
        logits, rolled = decoder.decode(embeds[t : t + 1], rolled)
        assert np.abs(logits[0] - reference[t]).max() <= 1e-5 * scale, t


def test_a_batch_of_steps_with_a_length_per_row_matches_single_steps(tmp_path):
    model = _lm("gemma3")
    decoder, arch = _decoder(model, tmp_path)
    rng = np.random.default_rng(2)
    sequences = [rng.standard_normal((n, arch.hidden_size)).astype(np.float32) for n in (9, 5, 14)]
    first = decoder.new_cache(slots=4)  # slot 2 stays idle between the stepping rows 0, 1 and 3
    caches = [first.buffer.empty(slot) for slot in (0, 1, 3)]
    for i, sequence in enumerate(sequences):
        _, caches[i] = decoder.decode(sequence[:-1], caches[i])  # each row's prompt, at its own length
    batch_logits, stepped = decoder.decode_steps(np.stack([s[-1] for s in sequences]), caches)
    assert [c.length for c in stepped] == [9, 5, 14]
    for i, sequence in enumerate(sequences):
        reference = _reference(model, sequence)[-1]
        assert np.abs(batch_logits[i] - reference).max() <= 1e-5 * np.abs(reference).max()


def test_int8_and_int4_keep_the_next_token_and_shrink_the_graph(tmp_path):
    model = _lm("llama")
    embeds = np.random.default_rng(3).standard_normal((12, 64)).astype(np.float32)
    reference = _reference(model, embeds)[-1]
    sizes, top1 = {}, {}
    for mode in ("none", "int8", "int4"):
        folder = tmp_path / mode
        folder.mkdir()
        decoder, _ = _decoder(model, folder, quantize=mode, block_size=16)
        logits, _ = decoder.decode(embeds, decoder.new_cache())
        sizes[mode] = (folder / "decoder.onnx").stat().st_size
        top1[mode] = np.argsort(logits[0])[-5:]
        error = np.abs(logits[0] - reference).max() / np.abs(reference).max()
        assert error < {"none": 1e-5, "int8": 0.05, "int4": 0.3}[mode], (mode, error)
    assert sizes["int4"] < sizes["int8"] < sizes["none"]
    assert reference.argmax() in top1["int8"]


def test_keep_fp32_leaves_the_named_projection_unquantized(tmp_path):
    model = _lm("llama")
    arch = LmArchitecture.from_config(model.config.to_dict())
    weights = StateDictSource(model.state_dict(), lambda t: t.detach().numpy())
    _, kept = build_fused_decoder(arch, weights, FusedDecoderOptions("int8", keep_fp32=("lm_head",)), tmp_path / "d.onnx")
    assert kept == ["lm_head/MatMul"]


def test_weights_past_the_limit_go_to_a_side_file(tmp_path, monkeypatch):
    model = _lm("qwen2")
    inline, _ = _decoder(model, tmp_path)
    monkeypatch.setattr(fused_decoder, "EXTERNAL_DATA_ABOVE", 1000)
    side = tmp_path / "side"
    side.mkdir()
    external, _ = _decoder(model, side)
    assert (side / "decoder.onnx.data").stat().st_size > (side / "decoder.onnx").stat().st_size
    embeds = np.random.default_rng(4).standard_normal((6, 64)).astype(np.float32)
    a, _ = inline.decode(embeds, inline.new_cache())
    b, _ = external.decode(embeds, external.new_cache())
    assert np.array_equal(a, b)


def test_architectures_the_builder_does_not_know_are_named():
    with pytest.raises(UnsupportedArchitecture, match="does not know model_type 'gpt2'"):
        LmArchitecture.from_config({"model_type": "gpt2"})
    config = _llama().to_dict() | {"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}}
    with pytest.raises(UnsupportedArchitecture, match="no 'yarn' rotary scaling"):
        LmArchitecture.from_config(config)
    with pytest.raises(UnsupportedArchitecture, match="does not handle attn_logit_softcapping"):
        LmArchitecture.from_config(_gemma3().to_dict() | {"attn_logit_softcapping": 50.0})


def test_the_head_can_keep_8_bits_over_4_bit_layers(tmp_path):
    import onnx

    model = _lm("llama")
    arch = LmArchitecture.from_config(model.config.to_dict())
    weights = StateDictSource(model.state_dict(), lambda t: t.detach().numpy())
    build_fused_decoder(arch, weights, FusedDecoderOptions("int4", head_quantize="int8"), tmp_path / "d.onnx")
    bits = {node.name: next(a.i for a in node.attribute if a.name == "bits")
            for node in onnx.load(str(tmp_path / "d.onnx")).graph.node if node.op_type == "MatMulNBits"}  # fmt: skip
    assert bits.pop("lm_head/MatMulNBits") == 8 and set(bits.values()) == {4}
    with pytest.raises(SimulsaError, match="head_quantize must be one of none, int8, int4, got 'int2'"):
        FusedDecoderOptions("int4", head_quantize="int2")


class _RowSource(StateDictSource):
    """A source that reads rows, as the GGUF one does; counts the reads of whole vocabulary-sized matrices."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.whole_reads: list[str] = []

    def get(self, name: str) -> np.ndarray:
        if name in ("embed_tokens.weight", "lm_head.weight"):
            self.whole_reads.append(name)
        return super().get(name)

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        return super().get(name)[start:stop]


def test_the_head_quantized_a_block_of_rows_at_a_time_is_the_same_graph(tmp_path, monkeypatch):
    import onnx
    from onnx import numpy_helper

    model = _lm("qwen2")  # an untied head
    arch = LmArchitecture.from_config(model.config.to_dict())
    state = model.state_dict()
    build_fused_decoder(arch, StateDictSource(state, lambda t: t.detach().numpy()), FusedDecoderOptions("int8"),
                        tmp_path / "whole.onnx")  # fmt: skip
    monkeypatch.setattr(fused_decoder, "ROW_BLOCK", 7)  # 300 rows: 42 blocks and a short last one
    source = _RowSource(state, lambda t: t.detach().numpy())
    build_fused_decoder(arch, source, FusedDecoderOptions("int8"), tmp_path / "blocks.onnx")
    assert source.whole_reads == []
    head = {}
    for name in ("whole", "blocks"):
        graph = onnx.load(str(tmp_path / f"{name}.onnx")).graph
        head[name] = {t.name: numpy_helper.to_array(t) for t in graph.initializer if t.name.startswith("lm_head.")}
    assert sorted(head["whole"]) == sorted(head["blocks"]) == ["lm_head.scales", "lm_head.weight_q8"]
    for key, want in head["whole"].items():
        assert np.array_equal(head["blocks"][key], want), key


@pytest.mark.parametrize("kv_device", [None, "cpu"])
def test_a_float16_graph_keeps_the_logits_with_half_kv_buffers(kv_device, tmp_path):
    """float16 (the CUDA provider's GroupQueryAttention needs it) on the CPU, with the K/V in host arrays and in
    onnxruntime memory bound by address (kv_device "cpu": the path the GPU takes)."""
    model = _lm("qwen2")
    decoder, arch = _decoder(model, tmp_path, kv_device=kv_device, dtype="float16", quantize="int8", block_size=16)
    embeds = np.random.default_rng(4).standard_normal((20, arch.hidden_size)).astype(np.float32)
    reference = _reference(model, embeds)  # (20, V)
    cache = decoder.new_cache()  # capacity 16: grows on the way to 20
    logits, cache = decoder.decode(embeds[:10], cache)
    for t in range(10, 20):
        logits, cache = decoder.decode(embeds[t : t + 1], cache)
        error = np.abs(logits[0] - reference[t]).max() / np.abs(reference[t]).max()
        assert logits.dtype == np.float32 and error < 0.05, (t, error)
    assert cache.buffer.capacity == 32 and cache.buffer.host_copy(0).dtype == np.float16
    assert np.abs(cache.buffer.host_copy(1)[0, :, :20]).min(axis=-1).max() > 0  # every position written
    assert cache.buffer.nbytes() == 2 * arch.num_layers * arch.num_kv_heads * 32 * arch.head_dim * 2


def test_a_float16_graph_keeps_the_residual_stream_in_float32(tmp_path):
    """Gemma 3 270M's residual reaches 1e5, past float16's 65,504: the stream and its norms stay float32, only the
    blocks compute in half precision. Embeddings of that size would overflow a graph that is half throughout."""
    model = _lm("gemma3")
    decoder, arch = _decoder(model, tmp_path, dtype="float16")
    embeds = 1e5 * np.random.default_rng(5).standard_normal((12, arch.hidden_size)).astype(np.float32)
    reference = _reference(model, embeds)[-1]
    logits, _ = decoder.decode(embeds, decoder.new_cache())
    error = np.abs(logits[0] - reference).max() / np.abs(reference).max()
    assert np.isfinite(logits).all() and error < 0.05, error
    graph = onnx.load(str(tmp_path / "decoder.onnx")).graph
    types = {init.name: init.data_type for init in graph.initializer}
    stream_norms = [n for n in graph.node if n.op_type == "SkipSimplifiedLayerNormalization"]
    assert stream_norms and {types[n.input[2]] for n in stream_norms} == {onnx.TensorProto.FLOAT}


def test_a_float16_record_needs_the_fused_graph():
    with pytest.raises(SimulsaError, match="decoder dtype 'float16'"):
        DecoderRecord("torchscript", ("decoder.onnx",), ("inputs_embeds",), ("logits",), "concat", dtype="float16")
    with pytest.raises(SimulsaError, match="dtype must be one of float32, float16"):
        FusedDecoderOptions(dtype="bfloat16")
