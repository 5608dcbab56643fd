"""The torch-free default build (export/torch_free_default.py) against the torch path, on a tiny whisper-tokens model.

The tiny model's weights are written the way the registry wheels carry them (a GGUF for the LM, a
CTranslate2 model.bin for Whisper); the torch path's int8 bundle of the same model is the reference
recorded at packaging; the torch-free build must reproduce it, in a process where torch cannot be imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from simulsa.export import vocabulary
from simulsa.export.gguf_weights import GgufWeights, permute_rotary
from simulsa.export.pipeline import ExportOptions, run_export
from simulsa.export.quantize import QuantizeOptions
from simulsa.export.torch_free_default import MergedLora, ReferenceMismatch, check_reference
from simulsa.runtime.bundle import load_bundle
from simulsa.train.build_inputs import record_build_inputs
from simulsa.train.families import save_model
from simulsa.train.families.whisper_tokens import tiny_whisper_tokens
from tests.import_blocker import blocker_source
from tests.installed_extras import modules_outside
from tests.train.ct2_writer import whisper_to_ct2, write_model_bin

GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
              "input_layernorm": "attn_norm", "post_attention_layernorm": "post_attention_norm",
              "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
              "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}  # fmt: skip
BLOCKED = modules_outside(("build",))  # all that `pip install '.[build]'` would not install (torch, transformers, …)
HOOK = blocker_source(BLOCKED)


def write_gguf(path: Path, architecture: str, tensors: dict[str, np.ndarray], tokens: list[str], heads: int = 0,
               kv_heads: int = 0) -> None:  # fmt: skip
    """As llama.cpp writes one: gguf names, Gemma's norms as 1 + w, Llama's q/k rows permuted, the vocabulary."""
    import gguf

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_array("tokenizer.ggml.tokens", tokens)
    if heads:
        writer.add_uint32(f"{architecture}.attention.head_count", heads)
        writer.add_uint32(f"{architecture}.attention.head_count_kv", kv_heads)
    for name, array in tensors.items():
        array = np.ascontiguousarray(array, dtype=np.float32)
        if architecture == "gemma3" and name.endswith("norm.weight"):
            array = array + 1
        if architecture == "llama" and name.endswith(("q_proj.weight", "k_proj.weight")):
            array = permute_rotary(array, heads if "q_proj" in name else kv_heads)
        writer.add_tensor(_gguf_name(name), array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _gguf_name(name: str) -> str:
    if name.startswith("layers."):
        _, index, rest = name.split(".", 2)
        module, kind = rest.rsplit(".", 1)
        return f"blk.{index}.{GGUF_NAMES[module]}.{kind}"
    return {"embed_tokens.weight": "token_embd.weight", "norm.weight": "output_norm.weight"}[name]


def _lm_tensors(model) -> dict[str, np.ndarray]:
    return {name.removeprefix("model."): t.detach().numpy() for name, t in model.lm.state_dict().items()
            if not name.startswith("lm_head")}  # fmt: skip


def _package(root: Path, prune_vocab: Path | None = None):
    """A tiny default as packaging leaves it: base folder, torch-path bundle, default dir, wheel-format weights."""
    torch.manual_seed(0)
    model = tiny_whisper_tokens("gemma3").eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or "bias" in name:
                param.normal_(0.0, 0.3)
        model.projector.mlp[2].weight.normal_(0.0, 0.05)
        model.projector.log_temperature.fill_(0.3)
    save_model(model, root / "base")
    with pytest.MonkeyPatch.context() as patch:  # the tiny byte pieces all look like short Latin ones: keep the text's
        patch.setattr(vocabulary, "SHORT_LATIN", vocabulary.re.compile(r"^$"))
        run_export(ExportOptions(checkpoint=str(root / "base"), out=root / "bundle", quantize=QuantizeOptions("int8"),
                                 prune_vocab=(prune_vocab,) if prune_vocab else ()), on_step=lambda step: None)  # fmt: skip
    default = root / "default"
    default.mkdir()
    projector = {f"projector.{k}": v.detach().numpy() for k, v in model.projector.state_dict().items() if k != "table"}
    save_file(projector, str(default / "trained_modules.safetensors"))
    record_build_inputs(root / "base", root / "bundle", default)
    spec = json.loads(model.tokenizer.backend_tokenizer.to_str())  # the LM's whole vocabulary, as the GGUF carries it
    by_id = {**{i: t for t, i in spec["model"]["vocab"].items()}, **{a["id"]: a["content"] for a in spec["added_tokens"]}}
    tokens = [by_id[i] for i in range(len(by_id))]  # a GGUF lists every token, the added ones included
    write_gguf(root / "lm.gguf", "gemma3", _lm_tensors(model), tokens)
    whisper = {k: v.detach().numpy() for k, v in model.whisper.state_dict().items()}
    write_model_bin(root / "model.bin", whisper_to_ct2(whisper, model.whisper.config, np.float32), {})
    return root, model


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    return _package(tmp_path_factory.mktemp("tiny_default"))


@pytest.fixture(scope="module")
def packaged_pruned(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_default_pruned")
    (root / "words.txt").write_text("the cat sat on the mat\n", encoding="utf-8")
    return _package(root, root / "words.txt")


def _build_without_torch(root: Path, out: Path) -> None:
    hook = out.parent / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    code = ("import sys; from pathlib import Path\n"
            "from simulsa.export.torch_free_default import DefaultSources, build_default\n"
            "out = Path(sys.argv[1]); out.mkdir()\n"
            "sources = DefaultSources(whisper_bin=Path(sys.argv[2]), gguf=Path(sys.argv[3]), default_dir=Path(sys.argv[4]))\n"
            "build_default(sources, out)\n"
            "assert 'torch' not in sys.modules\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code, out, root / "model.bin", root / "lm.gguf", root / "default"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(hook)}, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def _same_bundle(root: Path, out: Path) -> None:
    built, reference = load_bundle(out), load_bundle(root / "bundle")
    assert built.record.prompt == reference.record.prompt and built.record.audio == reference.record.audio
    assert built.record.dims == reference.record.dims and built.io("ear_decoder") == reference.io("ear_decoder")
    assert built.record.vocabulary == reference.record.vocabulary
    # the ear's precision as packaged (build_inputs.json ear_quantize, recorded from the torch bundle's graphs)
    assert built.record.quantization.graphs == reference.record.quantization.graphs == ("ear_decoder.onnx", "decoder.onnx")
    from tokenizers import Tokenizer

    ours, theirs = (Tokenizer.from_file(str(b.file("tokenizer"))) for b in (built, reference))
    ids = list(range(reference.dims.vocab_size))
    assert [ours.decode([i]) for i in ids] == [theirs.decode([i]) for i in ids]
    inputs = json.loads((root / "default" / "build_inputs.json").read_text())
    assert check_reference(out, inputs["reference"]) <= 0.05  # the check the build ran, run again here


def test_gguf_weights_are_the_model_weights(packaged):
    root, model = packaged
    weights = GgufWeights(root / "lm.gguf")
    for name, want in _lm_tensors(model).items():
        assert np.allclose(weights.get(name), want, atol=1e-6), name  # norms: (w + 1) - 1 in float32


def test_llama_rotary_rows_are_put_back(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"layers.0.self_attn.q_proj.weight": rng.normal(size=(8, 6)),
               "layers.0.self_attn.k_proj.weight": rng.normal(size=(4, 6))}
    write_gguf(tmp_path / "l.gguf", "llama", tensors, ["a", "b"], heads=2, kv_heads=1)
    weights = GgufWeights(tmp_path / "l.gguf")
    for name, want in tensors.items():
        assert np.allclose(weights.get(name), want), name
    q = tensors["layers.0.self_attn.q_proj.weight"]
    assert not np.allclose(permute_rotary(q, 2), q)  # the GGUF really holds them reordered


def test_gguf_rows_read_a_q8_0_table_a_block_at_a_time(tmp_path):
    import gguf
    from gguf.quants import quantize

    rng = np.random.default_rng(1)
    table, norm = rng.normal(size=(40, 64)).astype(np.float32), rng.normal(size=(2, 64)).astype(np.float32)
    writer = gguf.GGUFWriter(str(tmp_path / "q.gguf"), "gemma3")
    writer.add_tensor("token_embd.weight", quantize(table, gguf.GGMLQuantizationType.Q8_0),
                      raw_dtype=gguf.GGMLQuantizationType.Q8_0)  # fmt: skip
    writer.add_tensor("blk.0.attn_norm.weight", norm + 1)  # a matrix here only to reach the transformed path
    for write in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file, writer.close):
        write()
    weights = GgufWeights(tmp_path / "q.gguf")
    whole = weights.get("embed_tokens.weight")
    assert np.abs(whole - table).max() < 0.02  # Q8_0 rounding
    for start, stop in ((0, 7), (7, 33), (33, 40)):
        assert np.array_equal(weights.rows("embed_tokens.weight", start, stop), whole[start:stop])
    assert np.allclose(weights.rows("layers.0.input_layernorm.weight", 1, 2), norm[1:2], atol=1e-6)  # minus one kept


def test_torch_free_build_reproduces_the_torch_bundle_without_torch(packaged, tmp_path):
    root, _ = packaged
    _build_without_torch(root, tmp_path / "built")
    _same_bundle(root, tmp_path / "built")
    assert load_bundle(tmp_path / "built").record.vocabulary is None


def test_torch_free_build_of_a_pruned_default_reads_only_the_kept_rows(packaged_pruned, tmp_path):
    root, model = packaged_pruned
    _build_without_torch(root, tmp_path / "built")
    _same_bundle(root, tmp_path / "built")
    built = load_bundle(tmp_path / "built")
    kept = np.load(root / "default" / "vocab_kept.npy")
    assert built.record.vocabulary.kept == kept.size < model.lm.get_input_embeddings().weight.shape[0]
    assert np.array_equal(np.load(tmp_path / "built" / "vocab_kept.npy"), kept)
    assert np.load(tmp_path / "built" / "embed_tokens.npy").shape[0] == kept.size


def test_a_wrong_build_is_caught_by_the_reference(packaged):
    root, _ = packaged
    reference = json.loads((root / "default" / "build_inputs.json").read_text())["reference"]
    wrong = {**reference, "top_logits": [[v + 3.0 for v in row] for row in reference["top_logits"]]}
    with pytest.raises(ReferenceMismatch, match="the build is wrong"):
        check_reference(root / "bundle", wrong)
    with pytest.raises(ReferenceMismatch, match="the built ear hears"):
        check_reference(root / "bundle", {**reference, "transcript": reference["transcript"] + [1]})
    # a best token outside the packaged top 3 is caught even when the logits read at those ids agree
    demoted = [ids[3:] + ids[:3] for ids in reference["top_ids"]]
    logits = [vals[3:] + vals[:3] for vals in reference["top_logits"]]
    with pytest.raises(ReferenceMismatch, match="best token"):
        check_reference(root / "bundle", {**reference, "top_ids": demoted, "top_logits": logits})


def test_lora_merged_in_numpy_equals_peft(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    from simulsa.export.fused_decoder import StateDictSource

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                        num_attention_heads=2, vocab_size=40)).eval()  # fmt: skip
    source = StateDictSource({k: v.clone() for k, v in base.state_dict().items()}, lambda t: t.numpy())
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"]))
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)  # zero at init: the merge would be a no-op
    peft.save_pretrained(str(tmp_path / "adapter"))
    merged = {k: v.numpy() for k, v in peft.merge_and_unload().state_dict().items()}
    ours = MergedLora(source, tmp_path / "adapter")
    for name in ("layers.0.self_attn.q_proj.weight", "layers.0.mlp.down_proj.weight", "layers.0.self_attn.k_proj.weight"):
        assert np.allclose(ours.get(name), merged[f"model.{name}"], atol=1e-6), name
    assert not np.allclose(ours.get("layers.0.self_attn.q_proj.weight"), source.get("layers.0.self_attn.q_proj.weight"))
    # a block of rows (how the vocabulary-sized matrices are read) is the same rows of the merged weight
    for name in ("layers.0.self_attn.q_proj.weight", "embed_tokens.weight"):
        assert np.allclose(ours.rows(name, 3, 11), merged[f"model.{name}"][3:11], atol=1e-6), name
