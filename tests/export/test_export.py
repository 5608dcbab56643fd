"""simulsa export: both families, fp32 and int8, verified; the bundle contract and its failure modes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from simulsa.export.pipeline import ExportError, ExportOptions, run_export
from simulsa.export.quantize import QuantizeOptions, graph_weights_bytes
from simulsa.runtime.bundle import SCHEMA_VERSION, BundleError, BundleRecord, load_bundle
from simulsa.runtime.onnx_model import OnnxSpeechModel
from simulsa.train.families import load_speech_lm
from simulsa.train.lora import LoraOptions, attach_lora, save_trained
from tests.conftest import FAMILY_NAMES


@pytest.fixture(scope="module")
def trained_dirs(tiny_model_dirs, tmp_path_factory):
    """A train output per family whose adapter and projector are far from identity, so merging matters."""
    folders = {}
    for name in FAMILY_NAMES:
        torch.manual_seed(1)
        model = attach_lora(load_speech_lm(tiny_model_dirs[name]), LoraOptions(r=4, alpha=8, dropout=0.0))
        with torch.no_grad():
            for param in model.parameters():
                if param.requires_grad:
                    param.add_(0.05 * torch.randn_like(param))
        folders[name] = tmp_path_factory.mktemp("trained") / name
        folders[name].mkdir()
        save_trained(model, folders[name], str(tiny_model_dirs[name]))
    return folders


@pytest.fixture(scope="module")
def bundles(trained_dirs, tmp_path_factory):
    """(family, mode) -> export result, exported once per module."""
    root = tmp_path_factory.mktemp("bundles")
    results = {}
    for name in FAMILY_NAMES:
        for mode in ("none", "int8"):
            options = ExportOptions(checkpoint=str(trained_dirs[name]), out=root / f"{name}-{mode}", quantize=QuantizeOptions(mode))
            results[name, mode] = run_export(options)
    return results


@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("mode", ["none", "int8"])
def test_export_verifies(bundles, name, mode):
    result = bundles[name, mode]
    fp32 = result.reports[0]
    assert fp32.precision == "fp32" and fp32.passed
    for case in fp32.cases:
        assert case.max_abs_diff <= 1e-3 * case.logits_scale
        assert case.torch_tokens == case.onnx_tokens and case.top1_match == 1.0
    if mode == "int8":
        int8 = result.reports[1]
        assert int8.precision == "int8"
        assert all(0.0 <= c.top1_match <= 1.0 and 0.0 <= c.greedy_agreement <= 1.0 for c in int8.cases)
    meta = json.loads((result.out / "bundle.json").read_text())
    assert meta["quantization"]["mode"] == mode
    assert json.loads((result.out / "verification.json").read_text())[0]["passed"] is True


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_int8_runs_integer_kernels_and_is_smaller(bundles, name):
    fp32, int8 = bundles[name, "none"].out, bundles[name, "int8"].out
    graph = onnx.load(str(int8 / "decoder.onnx")).graph
    weights = {init.name for init in graph.initializer}
    blocks = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert blocks
    for node in blocks:  # 8-bit weights, int8 compute
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes["bits"] == 8 and attributes["accuracy_level"] == 4
    # every product with a weight matrix is quantized; fp32 MatMuls left are activation x activation (attention)
    assert not [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    # the LM is what dominates a real model; tiny encoders are dominated by their positional tables
    def lm_weights(folder, tables):  # the rotary tables are positions, not weights: they stay fp32 and dominate a tiny LM
        rotary = sum(onnx.numpy_helper.to_array(i).nbytes for i in onnx.load(str(folder / "decoder.onnx")).graph.initializer
                     if i.name.startswith("rotary."))  # fmt: skip
        return graph_weights_bytes(folder / "decoder.onnx") - rotary + sum(np.load(folder / t).nbytes for t in tables)

    ratio = lm_weights(fp32, ["embed_tokens.npy"]) / lm_weights(int8, ["embed_tokens.npy", "embed_scales.npy"])
    assert ratio >= 3.0, ratio
    if name == "whisper-tokens":  # --ear-quantize decoder (the default): Whisper's decoder in 8 bits, the rest as fp32
        ear = onnx.load(str(int8 / "ear_decoder.onnx")).graph
        held = {init.name for init in ear.initializer}
        assert any(n.op_type == "MatMulNBits" for n in ear.node)
        assert not [n.name for n in ear.node if n.op_type == "MatMul" and n.input[1] in held]
        for graph_file in ("audio_encoder.onnx", "projector.onnx"):
            assert (int8 / graph_file).read_bytes() == (fp32 / graph_file).read_bytes()
        assert bundles[name, "int8"].compression > 1.1
    else:  # the rotary tables (positions, fp32 in both) left out: in a tiny LM they outweigh its weights
        result = bundles[name, "int8"]
        rotary = lm_weights(int8, []) - graph_weights_bytes(int8 / "decoder.onnx")  # minus the tables' bytes
        assert (result.fp32_bytes + rotary) / (result.bundle_bytes + rotary) > 1.5


def test_the_adapter_is_merged(bundles, trained_dirs, tiny_model_dirs):
    """The bundle computes the trained model, not its base."""
    onnx_model = OnnxSpeechModel.from_path(bundles["composite", "none"].out)
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    bundle_embeds = onnx_model.encode_audio(audio)
    for folder, same in ((trained_dirs["composite"], True), (tiny_model_dirs["composite"], False)):
        model = load_speech_lm(folder).eval()
        with torch.no_grad():
            mel = torch.from_numpy(model.audio_features(audio)["mel"])[None]
            torch_embeds = model.projector(model.encode_blocks(mel))[0].numpy()
        assert np.allclose(bundle_embeds, torch_embeds, atol=1e-4) == same


def test_bundle_round_trip_and_contract(bundles):
    bundle = load_bundle(bundles["qwen2-audio", "int8"].out)
    assert bundle.family == "qwen2-audio" and bundle.record.schema_version == SCHEMA_VERSION == 8
    assert bundle.kv.names(1) == ("past_key_values.1.key", "present.1.key", "past_key_values.1.value", "present.1.value")
    io = bundle.io("decoder")
    assert bundle.decoder.kind == "fused" and bundle.decoder.max_length == 4096  # Qwen2: the builder's graph
    assert io.inputs == ("inputs_embeds", "seqlens_k", "total_sequence_length") and io.outputs == ("logits",)
    assert bundle.io("audio_encoder").inputs == ("input_features", "valid_frames") and bundle.audio.window_s == 30.0
    assert set(bundle.record.sha256) >= {"audio_encoder.onnx", "decoder.onnx", "embed_tokens.npy", "tokenizer.json"}
    # the record written is the record read: bundle.json round-trips through the typed records unchanged
    on_disk = json.loads((bundle.path / "bundle.json").read_text())
    assert BundleRecord.from_json(on_disk).to_json() == on_disk
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundle.file("tokenizer")))
    assert tokenizer.decode(list(bundle.prompt.suffix_ids), skip_special_tokens=False).startswith("<|audio_eos|>")
    # schema 2: a 7-position prefill returns the last position's logits only, and the KV cache for all 7
    model = OnnxSpeechModel(bundle)
    logits, present = model.decode(model.embed_tokens(list(bundle.prompt.prefix_ids[:1]) * 7), model.empty_cache())
    assert logits.shape == (1, bundle.dims.vocab_size) and present.length == 7
    assert present.buffer.arrays[0].shape == (1, bundle.dims.num_kv_heads, 512, bundle.dims.head_dim)


def test_tampered_wrong_schema_and_missing_files(bundles, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(bundles["composite", "int8"].out, copy)
    data = bytearray((copy / "decoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "decoder.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch for decoder.onnx"):
        load_bundle(copy)
    load_bundle(copy, verify_checksums=False)  # --skip-checksum loads it anyway
    (copy / "decoder.onnx").unlink()
    with pytest.raises(BundleError, match="is missing decoder.onnx"):
        load_bundle(copy)
    meta = json.loads((copy / "bundle.json").read_text())
    (copy / "bundle.json").write_text(json.dumps({**meta, "schema_version": 99}))
    with pytest.raises(BundleError, match=f"schema version 99, this simulsa reads version {SCHEMA_VERSION}"):
        load_bundle(copy)
    shutil.copy(bundles["composite", "int8"].out / "decoder.onnx", copy / "decoder.onnx")
    without_record = {k: v for k, v in meta.items() if k != "decoder"}
    (copy / "bundle.json").write_text(json.dumps(without_record))
    with pytest.raises(BundleError, match="bundle.json lacks decoder; re-export"):
        load_bundle(copy, verify_checksums=False)
    (copy / "bundle.json").write_text(json.dumps({**meta, "decoder": {"kind": "fused"}}))
    with pytest.raises(BundleError, match="bundle.json.decoder lacks files, inputs, outputs, kv_layout; re-export"):
        load_bundle(copy, verify_checksums=False)
    (copy / "bundle.json").write_text(json.dumps({**meta, "dims": {**meta["dims"], "num_layers": "two"}}))
    with pytest.raises(BundleError, match="bundle.json.dims.num_layers is 'two', expected int"):
        load_bundle(copy, verify_checksums=False)
    (copy / "bundle.json").write_text(json.dumps({**meta, "prompt": {**meta["prompt"], "suffix_ids": []}}))
    with pytest.raises(BundleError, match="prompt: the suffix is empty"):
        load_bundle(copy, verify_checksums=False)
    (copy / "bundle.json").write_text(json.dumps({**meta, "decoder": {**meta["decoder"], "kind": "tflite"}}))
    with pytest.raises(BundleError, match="decoder kind 'tflite' is not one of fused, torchscript"):
        load_bundle(copy, verify_checksums=False)
    with pytest.raises(BundleError, match="is not a bundle"):
        load_bundle(tmp_path)


def test_interrupted_export_leaves_no_bundle(trained_dirs, tmp_path, monkeypatch):
    import simulsa.export.pipeline as pipeline

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline, "quantize_graph", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        run_export(ExportOptions(checkpoint=str(trained_dirs["composite"]), out=tmp_path / "b"))
    assert list(tmp_path.iterdir()) == []


def test_fp32_parity_failure_fails_the_export(trained_dirs, tmp_path, monkeypatch):
    import simulsa.export.verify as verify

    monkeypatch.setattr(verify, "LOGITS_RTOL", 0.0)  # no difference allowed: float rounding alone must fail it
    with pytest.raises(ExportError, match="fp32 parity failed"):
        run_export(ExportOptions(checkpoint=str(trained_dirs["composite"]), out=tmp_path / "b", quantize=QuantizeOptions("none")))
    assert list(tmp_path.iterdir()) == []


def test_bad_options():
    from simulsa.runtime.errors import SimulsaError

    with pytest.raises(SimulsaError, match="--quantize must be one of int8, int4, none, got 'int3'"):
        QuantizeOptions("int3")
    with pytest.raises(SimulsaError, match="--block-size must be 16, 32, 64, 128 or 256, got 48"):
        QuantizeOptions("int4", block_size=48)
    with pytest.raises(SimulsaError, match="--ear-quantize must be one of none, decoder, all, got 'encoder'"):
        QuantizeOptions("int8", ear="encoder")
    with pytest.raises(SimulsaError, match="--dtype must be one of float32, float16, got 'bfloat16'"):
        QuantizeOptions("int8", dtype="bfloat16")
    with pytest.raises(SimulsaError, match="--dtype float16 applies to the quantized decoder; add --quantize int8"):
        QuantizeOptions("none", dtype="float16")
    from simulsa.export.graphs import DecoderGraphOptions

    with pytest.raises(SimulsaError, match="--decoder must be auto, fused or torchscript, got 'tflite'"):
        DecoderGraphOptions("tflite")


def test_the_ear_quantize_choice_is_read_back_from_the_graphs_a_bundle_quantized():
    from simulsa.export.quantize import ear_quantize_of
    from simulsa.runtime.errors import SimulsaError

    assert ear_quantize_of(("decoder.onnx",)) == "none"
    assert ear_quantize_of(("ear_decoder.onnx", "decoder.onnx")) == "decoder"
    assert ear_quantize_of(("audio_encoder.onnx", "ear_decoder.onnx", "projector.onnx", "decoder.onnx")) == "all"
    with pytest.raises(SimulsaError, match="match no --ear-quantize choice"):
        ear_quantize_of(("projector.onnx", "decoder.onnx"))


def test_ear_quantize_all_writes_every_ear_graph_in_8_bits(trained_dirs, tmp_path):
    """--ear-quantize all: encoder and projector too (written anew from the weights), and the bundle still runs."""
    result = run_export(ExportOptions(checkpoint=str(trained_dirs["whisper-tokens"]), out=tmp_path / "all",
                                      quantize=QuantizeOptions("int8", ear="all")))  # fmt: skip
    meta = json.loads((tmp_path / "all" / "bundle.json").read_text())
    assert meta["quantization"]["graphs"] == ["audio_encoder.onnx", "ear_decoder.onnx", "projector.onnx", "decoder.onnx"]
    for graph_file in ("audio_encoder.onnx", "ear_decoder.onnx", "projector.onnx"):
        ear = onnx.load(str(tmp_path / "all" / graph_file)).graph
        held = {init.name for init in ear.initializer}
        assert not [n.name for n in ear.node if n.op_type == "MatMul" and n.input[1] in held], graph_file
    assert result.reports and result.reports[-1].precision == "int8"  # measured against torch, as every int8 bundle


def test_a_float16_decoder_is_recorded_and_streams_the_int8_tokens(bundles, trained_dirs, speech_like, tmp_path):
    """--dtype float16 (for onnxruntime-gpu): half K/V buffers named in bundle.json; on the CPU its logits are as near
    torch's as the float32 int8 bundle's, and it streams; the TorchScript decoder cannot have it."""
    from simulsa.export.graphs import DecoderGraphOptions
    from simulsa.runtime.session import StreamOptions, Translator

    result = run_export(ExportOptions(checkpoint=str(trained_dirs["composite"]), out=tmp_path / "half",
                                      quantize=QuantizeOptions("int8", dtype="float16")), on_step=lambda step: None)  # fmt: skip
    bundle = load_bundle(result.out)
    assert bundle.decoder.dtype == "float16" and result.reports[-1].precision == "int8 float16"
    kv_inputs = [i for i in onnx.load(str(result.out / "decoder.onnx")).graph.input if i.name.startswith("past_key")]
    assert {i.type.tensor_type.elem_type for i in kv_inputs} == {onnx.TensorProto.FLOAT16}
    int8 = bundles["composite", "int8"].reports[-1]
    for half, single in zip(result.reports[-1].cases, int8.cases):  # torch vs bundle, the same cases
        assert half.top1_match >= single.top1_match - 0.1
        assert half.max_abs_diff <= 2 * single.max_abs_diff + 0.05 * half.logits_scale
    session = Translator.from_bundle(result.out).session(StreamOptions(chunk_ms=500, loop_repeats=0))
    session.accept_audio(speech_like)
    assert session.step() + session.finish()  # events: the half buffers decode through a whole stream
    with pytest.raises(ExportError, match="--dtype float16 needs the fused decoder graph"):
        run_export(ExportOptions(checkpoint=str(trained_dirs["composite"]), out=tmp_path / "ts",
                                 quantize=QuantizeOptions("int8", dtype="float16"), decoder=DecoderGraphOptions("torchscript")),
                   on_step=lambda step: None)  # fmt: skip
    assert not (tmp_path / "ts").exists()


def test_torch_reference_runs_the_same_session(bundles, trained_dirs, speech_like):
    """PyTorch eager behind the runtime's session gives the bundle's tokens (fp32): a fair benchmark partner."""
    from simulsa.export.pipeline import load_merged
    from simulsa.export.torch_reference import TorchSpeechModel
    from simulsa.runtime.session import StreamOptions, Translator

    bundle_path = bundles["composite", "none"].out
    model, _ = load_merged(str(trained_dirs["composite"]))
    runs = []
    for translator in (Translator.from_bundle(bundle_path), Translator(TorchSpeechModel(model, load_bundle(bundle_path)))):
        session = translator.session(StreamOptions(chunk_ms=1000, loop_repeats=0, stop_at_line_break=False))
        session.accept_audio(speech_like)
        runs.append([(e.segment, e.committed) for e in session.step() + session.finish()])
    assert runs[0] == runs[1] and any(text for _, text in runs[0])


def test_gemma3_lm_exports_with_its_scaled_embeddings(tmp_path):
    """Gemma 3 scales embeddings inside its embedding module: the bundle's table and the projector must match that."""
    from simulsa.train.families import save_model
    from simulsa.train.families.composite import tiny_composite

    torch.manual_seed(0)
    model = tiny_composite(lm="gemma3")
    embed = model.input_embeddings()
    assert float(embed.embed_scale) == pytest.approx(8.0)  # sqrt(hidden 64): the quirk under test
    save_model(model, tmp_path / "m")
    result = run_export(ExportOptions(checkpoint=str(tmp_path / "m"), out=tmp_path / "b", quantize=QuantizeOptions("none")))
    fp32 = result.reports[0]
    assert fp32.passed and all(c.torch_tokens == c.onnx_tokens for c in fp32.cases)  # 8 s of audio: past the 16-token window
    ids = torch.tensor([5, 9, 200])
    table = np.load(result.out / "embed_tokens.npy")
    np.testing.assert_allclose(table[ids.numpy()], embed(ids).detach().numpy(), rtol=1e-6)
    rms = float(model.projector.out_norm.weight[0].detach())
    assert rms == pytest.approx(float(embed(torch.arange(embed.num_embeddings)).pow(2).mean().sqrt()), rel=1e-5)


def test_torchscript_and_fused_decoders_stream_the_same_tokens(bundles, trained_dirs, speech_like, tmp_path):
    """The old graph (past in, grown present out) and the fused one (buffers bound in place) on the same weights."""
    from simulsa.export.graphs import DecoderGraphOptions
    from simulsa.runtime.session import StreamOptions, Translator

    old = tmp_path / "torchscript"
    run_export(ExportOptions(checkpoint=str(trained_dirs["composite"]), out=old, quantize=QuantizeOptions("none"),
                             decoder=DecoderGraphOptions("torchscript"), verify=True), on_step=lambda step: None)  # fmt: skip
    assert load_bundle(old).decoder.kind == "torchscript"
    runs = []
    for path in (old, bundles["composite", "none"].out):
        session = Translator.from_bundle(path).session(StreamOptions(chunk_ms=500, loop_repeats=0, stop_at_line_break=False))
        session.accept_audio(speech_like)
        runs.append([(e.segment, e.committed, e.tentative) for e in session.step() + session.finish()])
    assert runs[0] == runs[1] and any(committed for _, committed, _ in runs[0])
