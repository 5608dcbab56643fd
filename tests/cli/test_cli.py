"""The README's quickstart through typer's runner, for both families, and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert "augmented 6 of 12 rows" in result.output and "of the audio" in result.output and "whole and" in result.output
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
        (("corpus-text", "--out", tmp_path / "taken"), "already exists; pass --force"),
        (("corpus-text", "--out", tmp_path / "p.jsonl", "--exclude", tmp_path / "none.jsonl"), "--exclude"),
        (("train", "--model", tiny_model_dirs["composite"], "--train", toy_manifest, "--out", tmp_path / "t",
          "--text-train", tmp_path / "none.jsonl"), "make them with `simulsa corpus-text`"),
        (("corpus-speak", "--pairs", tmp_path / "none.jsonl", "--out", tmp_path / "s"),
         "make text pairs with `simulsa corpus-text`"),
        (("corpus-speak", "--pairs", toy_manifest, "--out", tmp_path / "s", "--voice", "flite:kal16", "--copies", "2"),
         "--copies 2 must be between 1 and the number of voices (1)"),
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
    for command in ("compose", "augment", "train", "corpus-text", "corpus-speak"):
        assert command in result.output


def _tiny_whisper_tokenizer():
    """Whisper's layout in 64 ids: words, then <|endoftext|> and the four prompt tokens last."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = [f"w{i}" for i in range(59)]
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words + specials)}, unk_token="w0"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def _tiny_parts(folder):
    """A tiny Whisper folder and a tiny chat LM folder, as `simulsa models pull` would leave them."""
    from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperForConditionalGeneration

    from simulsa.train.tokenizer import build_byte_tokenizer

    tokenizer = build_byte_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" \
                              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"  # fmt: skip
    whisper = WhisperForConditionalGeneration(WhisperConfig(d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
        vocab_size=64, pad_token_id=59, bos_token_id=59, eos_token_id=59, decoder_start_token_id=60))  # fmt: skip
    whisper.save_pretrained(folder / "whisper")
    _tiny_whisper_tokenizer().save(str(folder / "whisper" / "tokenizer.json"))
    lm = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=1, vocab_size=len(tokenizer)))  # fmt: skip
    lm.save_pretrained(folder / "lm")
    tokenizer.save_pretrained(folder / "lm")
    return {"whisper": folder / "whisper", "lm": folder / "lm"}


def test_compose_ear_tokens_reads_whisper_prompt_ids_from_its_tokenizer(tmp_path):
    from simulsa.train.families import load_speech_lm

    _tiny_parts(tmp_path)
    result = invoke("compose", "--ear", "tokens", "--encoder", tmp_path / "whisper", "--lm", tmp_path / "lm", "--out",
                    tmp_path / "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    model = load_speech_lm(tmp_path / "m")
    audio = model.simulsa_config.audio
    assert model.family == "whisper-tokens" and audio.decoder_prompt == (60, 61, 62, 63) and audio.decoder_end == 59
    table = model.projector.table.float()
    assert table[:59].abs().sum(-1).gt(0).all() and table[59:].abs().sum() == 0  # words have LM rows; specials none
    bad = invoke("compose", "--ear", "frames", "--encoder", tmp_path / "whisper", "--lm", tmp_path / "lm", "--out",
                 tmp_path / "m2")  # fmt: skip
    assert bad.exit_code != 0 and "--ear 'frames'" in bad.output


def test_compose_from_pretrained_parts(tmp_path):
    """--encoder/--lm take ordinary transformers folders (hub ids work the same way with a network)."""
    from simulsa.train.families import load_speech_lm

    _tiny_parts(tmp_path)
    result = invoke("compose", "--encoder", tmp_path / "whisper", "--lm", tmp_path / "lm", "--out", tmp_path / "m",
                    "--block-s", "0.96", "--stack", "8")  # fmt: skip
    assert result.exit_code == 0, result.output
    model = load_speech_lm(tmp_path / "m")
    assert model.simulsa_config.audio.block_s == 0.96 and model.simulsa_config.audio.stack == 8
    assert model.projector.up.in_features == 8 * model.encoder.config.d_model  # 8 frames per audio token
    result = invoke("compose", "--encoder", tmp_path / "whisper", "--lm", tmp_path / "lm", "--out", tmp_path / "m2",
                    "--block-s", "1.0", "--stack", "8")  # fmt: skip
    assert result.exit_code == 1 and "block_s must be a positive multiple of 0.16 s, got 1.0" in result.output
    assert not (tmp_path / "m2").exists()
    prefix, suffix = model.simulsa_config.prompt.render()
    assert prefix == "<|im_start|>user\n" and suffix.startswith("\nTranslate the English speech into Spanish.<|im_end|>")
    import torch
    from transformers import WhisperForConditionalGeneration

    whisper = WhisperForConditionalGeneration.from_pretrained(tmp_path / "whisper")
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


def test_export_prune_vocab_option(tiny_model_dirs, tmp_path):
    import numpy as np

    ids = tmp_path / "ids.npy"
    np.save(ids, np.array([3, 5, 7]))
    result = invoke("export", tiny_model_dirs["composite"], "--out", tmp_path / "b", "--quantize", "none", "--prune-vocab", ids)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert record["vocabulary"]["kept"] == record["dims"]["vocab_size"] and "ids.npy" in record["vocabulary"]["chosen_by"]
    result = invoke("export", tiny_model_dirs["composite"], "--out", tmp_path / "c", "--prune-vocab", tmp_path / "none.txt")
    assert result.exit_code == 1 and "none.txt' is not a file" in result.output and not (tmp_path / "c").exists()


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_stream_writes_events_and_subtitles(tiny_bundles, name, tmp_path):
    import soundfile as sf

    from simulsa.runtime.toy import toy_utterance

    rng = __import__("numpy").random.default_rng(0)
    sf.write(tmp_path / "in.wav", toy_utterance(["one", "two", "red", "dog", "house"], rng), 16000)
    files = {kind: tmp_path / f"out.{kind}" for kind in ("jsonl", "srt", "vtt")}
    result = invoke("stream", tmp_path / "in.wav", "--bundle", tiny_bundles[name, "int8"], "--chunk-ms", "500",
                    "--jsonl", files["jsonl"], "--srt", files["srt"], "--vtt", files["vtt"])  # fmt: skip
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in files["jsonl"].read_text().splitlines()]
    assert set(events[0]) == {"t_audio_ms", "t_wall_ms", "committed", "tentative", "segment", "final"}
    assert [e["t_audio_ms"] for e in events[:2]] == [500.0, 1000.0] and events[-1]["final"]
    said = "".join(e["committed"] for e in events).strip()  # a random tiny model may say only whitespace
    assert files["srt"].read_text().startswith("1\n00:00:00,000 --> ") if said else files["srt"].read_text() == ""
    assert files["vtt"].read_text().startswith("WEBVTT")


def test_stream_example_with_playback(tiny_bundles, tmp_path, monkeypatch):
    import sys
    import types

    import soundfile as sf

    from simulsa.runtime.examples import example_path

    played = []
    fake = types.ModuleType("sounddevice")
    fake.play = lambda samples, rate: played.append((samples.size, rate))
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    result = invoke("stream", "--example", "--play", "--chunk-ms", "2000", "--jsonl", tmp_path / "ev.jsonl",
                    "--bundle", tiny_bundles["composite", "int8"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert played == [(sf.info(example_path()).frames, 16000)]  # the whole example, at its own 16 kHz
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    # --play paces the file in real time: each 2 s chunk is decoded no earlier than it is heard
    assert all(e["t_wall_ms"] >= e["t_audio_ms"] - 50 for e in events if not e["final"])
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    result = invoke("stream", "--example", "--play", "--bundle", tiny_bundles["composite", "int8"])
    assert result.exit_code == 1 and "--play needs sounddevice" in result.output


def test_translate_and_its_errors(tiny_bundles, tmp_path):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32), 16000)
    # a random tiny model may write a line break first, which ends the output by default
    result = invoke("translate", tmp_path / "a.wav", "--bundle", tiny_bundles["composite", "int8"], "--json", "--keep-line-breaks")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["audio_s"] == 1.5 and isinstance(record["text"], str) and record["text"]
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    result = invoke("translate", tmp_path / "empty.wav", "--bundle", tiny_bundles["composite", "int8"])
    assert result.exit_code == 0 and "holds no audio" in result.output
    (tmp_path / "junk.wav").write_bytes(b"junk")
    for args, message in [
        (("translate", tmp_path / "junk.wav", "--bundle", tiny_bundles["composite", "int8"]), "cannot read audio"),
        (("translate", tmp_path / "a.wav", "--bundle", tmp_path), "is not a bundle"),
        (("stream", "--bundle", tiny_bundles["composite", "int8"]), "give one of: an audio file, --mic, --example"),
        (("stream", tmp_path / "a.wav", "--example", "--bundle", tiny_bundles["composite", "int8"]), "give one of"),
        (("stream", "--mic", "--play", "--bundle", tiny_bundles["composite", "int8"]), "--play plays a file"),
        (("stream", tmp_path / "a.wav", "--bundle", tiny_bundles["composite", "int8"], "--policy", "x"), "unknown policy 'x'"),
        (("translate", tmp_path / "a.wav", "--bundle", tiny_bundles["composite", "int8"], "--loop-repeats", "1"),
         "loop_repeats is out of range, got 1"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)


def test_eval_command(tiny_bundles, toy_manifest, tmp_path):
    result = invoke("eval", "--manifest", toy_manifest, "--bundle", tiny_bundles["composite", "int8"], "--out", tmp_path / "ev",
                    "--chunk-ms", "1000,inf", "--hold", "3", "--policy", "hold", "--limit", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| hold-b3-1000ms |" in result.output and "| offline |" in result.output
    result = invoke("eval", "--manifest", toy_manifest, "--bundle", tiny_bundles["composite", "int8"], "--out", tmp_path / "x",
                    "--chunk-ms", "fast")  # fmt: skip
    assert result.exit_code == 1 and "--chunk-ms 'fast' is not a comma-separated list" in result.output


def test_bench_command(tiny_bundles, tiny_model_dirs, tmp_path):
    result = invoke("bench", "--bundle", tiny_bundles["composite", "int8"], "--fp32-bundle", tiny_bundles["composite", "none"],
                    "--out", tmp_path / "b", "--lengths", "2,4", "--repeats", "1",
                    "--torch-checkpoint", tiny_model_dirs["composite"],
                    "--baseline-bundle", tiny_bundles["composite", "none"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [g["audio_s"] for g in report["step_growth"]] == [2, 4]
    for g in report["step_growth"]:  # the speedup is computed before the times are rounded for the report
        assert g["reuse_ms"] > 0 and g["speedup"] == pytest.approx(g["recompute_ms"] / g["reuse_ms"], rel=0.02, abs=0.01)
    assert report["int8_vs_fp32"]["size_ratio"] > 1 and report["streaming"]["rtf"] > 0
    assert report["decode_vs_bound"] > 0 and "int8 vs fp32" in result.output
    assert report["ours_vs_pytorch_eager"]["decode_speedup"] > 0 and "vs PyTorch eager" in result.output
    shares = report["decode_time_by_op"]  # the int8 decoder's matrix products are MatMulNBits nodes
    assert "MatMulNBits" in shares and abs(sum(shares.values()) - 1) < 0.01 and "decode time by op: " in result.output
    assert report["decoder_kind"] == "fused" and report["step_400_vs_50"] > 0 and "400 positions cached" in result.output
    assert list(report["batched_steps"]) == ["1", "2", "4", "8"] and report["batched_steps"]["1"]["vs_one_by_one"] == 1.0
    assert report["vs_baseline"]["decode_speedup"] > 0 and "vs baseline" in result.output  # int8 against its fp32


def test_align_command(tiny_model_dirs, toy_manifest, tmp_path):
    result = invoke("align", "--model", tiny_model_dirs["composite"], "--manifest", toy_manifest, "--dev", toy_manifest,
                    "--out", tmp_path / "a", "--epochs", "2", "--batch-size", "4")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "aligned in 6 steps" in result.output and "token error rate" in result.output
    assert (tmp_path / "a" / "projector.safetensors").is_file() and (tmp_path / "a" / "align_summary.json").is_file()
    result = invoke("align", "--model", tiny_model_dirs["composite"], "--manifest", toy_manifest, "--out", tmp_path / "a")
    assert result.exit_code == 1 and "already exists" in result.output


def test_output_paths_are_checked_before_any_work(tiny_bundles, toy_manifest, tmp_path):
    """A folder, a missing parent or a file in the way: one line naming the path, nothing read, nothing left behind."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "plain.txt").write_text("x")
    missing_audio = tmp_path / "never-read.wav"  # if audio were read first, the error would be about this file
    bundle = tiny_bundles["composite", "int8"]
    cases = [
        (("stream", missing_audio, "--bundle", bundle, "--srt", tmp_path / "folder"), "--srt", "is a folder"),
        (("stream", missing_audio, "--bundle", bundle, "--vtt", tmp_path / "folder"), "--vtt", "is a folder"),
        (("stream", missing_audio, "--bundle", bundle, "--jsonl", tmp_path / "no" / "such" / "ev.jsonl"), "--jsonl",
         "does not exist; create it first"),
        (("stream", missing_audio, "--bundle", bundle, "--srt", tmp_path / "plain.txt" / "x.srt"), "--srt", "is not a folder"),
        (("eval", "--manifest", toy_manifest, "--bundle", bundle, "--out", tmp_path / "plain.txt" / "ev"), "--out",
         "is not a folder"),
        (("bench", "--bundle", bundle, "--out", tmp_path / "plain.txt" / "b"), "--out", "is not a folder"),
        (("corpus-text", "--out", tmp_path / "folder", "--force"), "--out", "is a folder"),
        (("translate", tmp_path / "folder", "--bundle", bundle), "audio", "is a folder; give one audio file"),
    ]  # fmt: skip
    if Path("/sys").is_dir():  # a place even root cannot create files in
        cases.append((("stream", missing_audio, "--bundle", bundle, "--srt", "/sys/out.srt"), "--srt", "cannot write in '/sys'"))
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, flag, message in cases:
        result = invoke(*args)
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert result.exit_code == 1 and len(errors) == 1, (args, result.output)
        assert errors[0].startswith(f"error: {flag} ") and message in errors[0], (args, errors)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left anywhere
    assert list((tmp_path / "folder").iterdir()) == []


def test_write_text_atomic_leaves_nothing_behind_on_failure(tmp_path):
    from simulsa.runtime.files import write_text_atomic

    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError):
        write_text_atomic(tmp_path / "taken", "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    write_text_atomic(tmp_path / "ok.txt", "text")
    assert (tmp_path / "ok.txt").read_text() == "text" and len(list(tmp_path.iterdir())) == 2


def test_help_groups_the_commands_by_what_a_user_does():
    result = invoke("--help")
    assert result.exit_code == 0
    order = ["Translate", "translate", "stream", "Measure", "eval", "bench", "Build models", "compose", "align", "augment",
             "train", "export", "probe", "Data", "corpus ", "corpus-text", "corpus-speak", "Models", "models"]  # fmt: skip
    positions = [result.output.index(f"─ {name} ─" if name[0].isupper() else f"│ {name}") for name in order]
    assert positions == sorted(positions), result.output


def test_the_live_view_line_drops_the_lm_s_leading_space():
    from simulsa.cli.translate_commands import CLEAR_LINE, DIM, RESET, LiveView
    from simulsa.runtime.session import TranslationEvent

    def event(committed_text, tentative, final=False):
        return TranslationEvent(committed="", tentative=tentative, t_audio_ms=0, t_wall_ms=0, segment=0, final=final,
                                segment_start_ms=0, segment_text=committed_text)  # fmt: skip

    assert LiveView.line(event("", " Hola")) == f"{CLEAR_LINE}{DIM}Hola{RESET}"
    assert LiveView.line(event(" Hola", " mundo")) == f"{CLEAR_LINE}Hola{DIM} mundo{RESET}"
    assert LiveView.line(event(" Hola mundo.", "", final=True)) == f"{CLEAR_LINE}Hola mundo.{DIM}{RESET}\n"
