"""Any size: a random Qwen2-Audio whose LM passes protobuf's 2 GB exports (weights in a side file), verifies and streams.

Slow (minutes, ~9 GB of memory): `python -m pytest -m slow tests/export/test_large_export.py -s` prints its figures.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _large_qwen2_audio():
    """~670 M LM parameters (2.7 GB in fp32) behind a tiny audio tower."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    from simulsa.train.families.qwen2_audio import N_MELS, Qwen2AudioSpeechLM, default_qwen2_audio_config
    from simulsa.train.tokenizer import build_byte_tokenizer

    tokenizer = build_byte_tokenizer()
    config = Qwen2AudioConfig(
        audio_config={"model_type": "qwen2_audio_encoder", "d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2,
                      "encoder_ffn_dim": 64, "num_mel_bins": N_MELS, "max_source_positions": 1500},
        text_config={"model_type": "qwen2", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 8,
                     "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 32000,
                     "max_position_embeddings": 4096, "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
                     "pad_token_id": tokenizer.pad_token_id},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )  # fmt: skip
    return Qwen2AudioSpeechLM(default_qwen2_audio_config(), tokenizer, Qwen2AudioForConditionalGeneration(config))


def test_a_model_past_2_gb_exports_verifies_and_streams(tmp_path, speech_like):
    import torch

    from simulsa.export.pipeline import ExportOptions, run_export
    from simulsa.export.quantize import QuantizeOptions
    from simulsa.runtime.session import StreamOptions, Translator
    from simulsa.train.families import save_model

    torch.manual_seed(0)
    model = _large_qwen2_audio()
    lm_bytes = sum(p.numel() for p in model.parameters()) * 4
    assert lm_bytes > 2**31
    save_model(model, tmp_path / "model")
    del model
    started = time.perf_counter()
    options = ExportOptions(checkpoint=str(tmp_path / "model"), out=tmp_path / "bundle", quantize=QuantizeOptions("int4"))
    result = run_export(options, on_step=lambda step: print(f"  {time.perf_counter() - started:6.0f} s  {step}"))
    export_s = time.perf_counter() - started
    fp32, int4 = result.reports
    assert fp32.passed and int4.precision == "int4"
    decoder_files = sorted(p.name for p in (tmp_path / "bundle").glob("decoder.onnx*"))
    assert decoder_files == ["decoder.onnx"]  # int4 of 670 M fits inline; the fp32 graph (checked above) did not
    translator = Translator.from_bundle(tmp_path / "bundle")
    session = translator.session(StreamOptions(chunk_ms=1000, max_new_tokens=4, loop_repeats=0, stop_at_line_break=False))
    session.accept_audio(speech_like[: 4 * 16000])
    events = session.step() + session.finish()
    assert events and events[-1].final
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\nfp32 weights {lm_bytes / 1e9:.2f} GB -> bundle {result.bundle_bytes / 1e9:.2f} GB (int4); "
          f"export + verify {export_s:.0f} s; "
          f"peak resident {peak_gb:.1f} GB; fp32 max|dlogit| {max(c.max_abs_diff for c in fp32.cases):.2e}; "
          f"int4 greedy agreement {np.mean([c.greedy_agreement for c in int4.cases]):.0%}")  # fmt: skip
