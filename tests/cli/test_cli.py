"""The README's quickstart through typer's runner, for both families, and the one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from simulsa.cli.app import app
from tests.conftest import FAMILY_NAMES

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_compose_augment_train(name, toy_manifest, tmp_path):
    model, aug, ckpt = tmp_path / "m", tmp_path / "aug", tmp_path / "ckpt"
    result = invoke("compose", "--tiny", name, "--out", model)
    assert result.exit_code == 0, result.output
    assert json.loads((model / "simulsa.json").read_text())["family"] == name
    result = invoke("augment", "--model", model, "--manifest", toy_manifest, "--out", aug, "--ratio", "0.5")
    assert result.exit_code == 0, result.output
    assert "augmented 6 of 12 rows" in result.output
    assert len((aug / "augmented.jsonl").read_text().splitlines()) == 6
    result = invoke("train", "--model", model, "--train", aug / "manifest.jsonl", "--out", ckpt, "--max-steps", "2",
                    "--batch-size", "4")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "trained 2 steps" in result.output
    config = json.loads((ckpt / "simulsa.json").read_text())
    assert config["base_model"] == str(model.resolve()) and config["adapter"] == "adapter"


def test_errors_are_one_line_with_exit_code_1(tmp_path, toy_manifest, tiny_model_dirs):
    (tmp_path / "taken").mkdir()
    cases = [
        (("compose", "--tiny", "composite", "--out", tmp_path / "taken"), "already exists; pass --force"),
        (("compose", "--tiny", "wavenet", "--out", tmp_path / "new"), "unknown model family 'wavenet'"),
        (("compose", "--out", tmp_path / "new2"), "give --encoder and --lm"),
        (("augment", "--model", tmp_path, "--manifest", toy_manifest, "--out", tmp_path / "a"), "is not a simulsa model"),
        (("augment", "--model", tiny_model_dirs["composite"], "--manifest", tmp_path / "none.jsonl", "--out",
          tmp_path / "a"), "manifest"),
        (("train", "--model", tiny_model_dirs["composite"], "--train", toy_manifest, "--out", tmp_path / "t",
          "--load-in-4bit", "--load-in-8bit"), "choose one of"),
    ]  # fmt: skip
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "new").exists() and not (tmp_path / "a").exists()


def test_bad_usage_is_exit_code_2():
    assert invoke("train", "--no-such-flag").exit_code == 2


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("compose", "augment", "train"):
        assert command in result.output


def test_compose_from_pretrained_parts(tmp_path):
    """--encoder/--lm take ordinary transformers folders (hub ids work the same way with a network)."""
    from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperForConditionalGeneration

    from simulsa.train.families import load_speech_lm
    from simulsa.train.tokenizer import build_byte_tokenizer

    tokenizer = build_byte_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" \
                              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"  # fmt: skip
    whisper = WhisperForConditionalGeneration(WhisperConfig(d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
        vocab_size=64, pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=0))  # fmt: skip
    whisper.save_pretrained(tmp_path / "whisper")
    lm = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=1, vocab_size=len(tokenizer)))  # fmt: skip
    lm.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    result = invoke("compose", "--encoder", tmp_path / "whisper", "--lm", tmp_path / "lm", "--out", tmp_path / "m",
                    "--block-s", "0.96")  # fmt: skip
    assert result.exit_code == 0, result.output
    model = load_speech_lm(tmp_path / "m")
    assert model.simulsa_config.audio.block_s == 0.96
    prefix, suffix = model.simulsa_config.prompt.render()
    assert prefix == "<|im_start|>user\n" and suffix.startswith("\nTranslate the English speech into Spanish.<|im_end|>")
    import torch

    assert torch.equal(model.encoder.conv1.weight, whisper.model.encoder.conv1.weight)
    result = invoke("compose", "--encoder", tmp_path / "lm", "--lm", tmp_path / "lm", "--out", tmp_path / "bad")
    assert result.exit_code == 1 and "is a 'llama' model; give a Whisper model" in result.output


def test_export_command(tiny_model_dirs, tmp_path):
    result = invoke("export", tiny_model_dirs["composite"], "--out", tmp_path / "b", "--quantize", "int8")
    assert result.exit_code == 0, result.output
    assert "verification (fp32)" in result.output and "verdict: PASS" in result.output
    assert (tmp_path / "b" / "bundle.json").is_file()
    result = invoke("export", tmp_path, "--out", tmp_path / "c")
    assert result.exit_code == 1 and "is not a simulsa model" in result.output
    result = invoke("export", tiny_model_dirs["composite"], "--out", tmp_path / "b")
    assert result.exit_code == 1 and "already exists" in result.output
