"""Both families: forward, block independence, LoRA attachment, save/load round trips, bad folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simulsa.runtime.errors import AudioError, ModelError
from simulsa.train.families import FAMILIES, build_tiny, load_speech_lm, save_model
from simulsa.train.lora import LoraOptions, attach_lora, save_trained
from tests.conftest import FAMILY_NAMES
from tests.train.helpers import batch_for, noise


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_tiny_models_are_tiny_and_run(name):
    model = build_tiny(name)
    n_params = sum(p.numel() for p in model.parameters())
    assert 100_000 < n_params < 1_000_000
    batch = batch_for(model, [noise(3.3), noise(0.7, 1)], ["hola mundo", "sí"])
    out = model(**batch)
    assert out["logits"].shape[0] == 2 and out["logits"].shape[-1] == len(model.tokenizer)
    assert torch.isfinite(out["loss"]) and out["loss"] > 0


def test_composite_runs_at_12_5_audio_tokens_per_second_in_stable_blocks():
    model = build_tiny("composite").eval()
    audio = noise(5.0)
    short, long = _audio_embeddings(model, audio[:48000]), _audio_embeddings(model, audio)
    # 2 s blocks hold 25 tokens; a 1 s tail holds 12.5, padded with silence to 13
    assert short.shape[0] == 25 + 13 and long.shape[0] == 25 + 25 + 13
    # the first finished block (2 s = 25 tokens) is identical whatever follows it
    assert torch.allclose(short[:25], long[:25], atol=1e-6)
    # the partial block (1 s of the 3 s input) differs from the same audio seen as part of a full block
    assert not torch.allclose(short[25:37], long[25:37])


def _audio_embeddings(model, audio: np.ndarray) -> torch.Tensor:
    batch = batch_for(model, [audio], ["a"])
    with torch.no_grad():
        return model.embed_audio(**{k[len("audio_") :]: v for k, v in batch.items() if k.startswith("audio_")})[0]


def test_qwen2_audio_rejects_audio_longer_than_its_window():
    model = build_tiny("qwen2-audio")
    with pytest.raises(AudioError, match="longer than the 30 s window"):
        model.audio_features(noise(31.0))


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_lora_trains_only_adapter_and_projector(name):
    model = attach_lora(build_tiny(name), LoraOptions(r=4, alpha=8))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("projector.") for n in trainable)
    assert any(n.startswith("projector.") for n in trainable) == (name != "qwen2-audio")  # qwen2-audio: LoRA only
    assert not any("encoder" in n or "audio_tower" in n for n in trainable)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_save_load_round_trip(name, tiny_model_dirs, tmp_path):
    model = load_speech_lm(tiny_model_dirs[name]).eval()
    batch = batch_for(model, [noise(2.5)], ["uno dos"])
    save_model(model, tmp_path / "copy")
    again = load_speech_lm(tmp_path / "copy").eval()
    with torch.no_grad():
        assert torch.equal(model(**batch)["logits"], again(**batch)["logits"])


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_train_output_round_trip(name, tiny_model_dirs, tmp_path):
    """A train output (adapter + projector over a base folder) reloads to the same function."""
    model = attach_lora(load_speech_lm(tiny_model_dirs[name]), LoraOptions(r=4, alpha=8, dropout=0.0)).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn_like(param))  # make the adapter and projector non-trivial
    batch = batch_for(model, [noise(2.5)], ["uno dos"])
    (tmp_path / "out").mkdir()
    save_trained(model, tmp_path / "out", str(tiny_model_dirs[name]))
    again = load_speech_lm(tmp_path / "out").eval()
    base = load_speech_lm(tiny_model_dirs[name]).eval()
    with torch.no_grad():
        trained_logits = model(**batch)["logits"]
        assert torch.allclose(trained_logits, again(**batch)["logits"], atol=1e-6)
        assert not torch.allclose(trained_logits, base(**batch)["logits"], atol=1e-3)


def test_bad_model_folders(tmp_path, tiny_model_dirs):
    with pytest.raises(ModelError, match="is not a simulsa model"):
        load_speech_lm(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    text = (tiny_model_dirs["composite"] / "simulsa.json").read_text().replace('"composite"', '"wavenet"')
    (broken / "simulsa.json").write_text(text)
    with pytest.raises(ModelError, match="unknown model family 'wavenet'; choose one of composite, qwen2-audio"):
        load_speech_lm(broken)
    assert set(FAMILIES) == set(FAMILY_NAMES)


def test_block_length_must_hold_whole_audio_tokens():
    from simulsa.train.families.config import AudioSettings

    with pytest.raises(ModelError, match="block_s must be a positive multiple of 0.08 s, got 1.01"):
        AudioSettings(n_mels=80, block_s=1.01)
    assert AudioSettings(n_mels=80, block_s=0.96).block_s == 0.96


def test_empty_audio_is_an_error():
    with pytest.raises(AudioError, match="audio is empty"):
        build_tiny("composite").audio_features(np.zeros(0, np.float32))


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_loss_on_target_positions_equals_the_loss_over_full_logits(name):
    model = build_tiny(name).eval()
    batch = batch_for(model, [noise(2.6), noise(0.9, 1)], ["hola mundo", "sí, claro que sí"])
    assembled = model.assemble(batch)
    full = model.language_logits(assembled.inputs_embeds, assembled.attention_mask)  # (B, T, V)
    expected = torch.nn.functional.cross_entropy(full[:, :-1].flatten(0, 1), assembled.labels[:, 1:].flatten(), ignore_index=-100)
    assert torch.allclose(model(**batch)["loss"], expected, atol=1e-6)


def test_composite_projector_starts_at_the_token_embedding_scale():
    model = build_tiny("composite").eval()
    audio = _audio_embeddings(model, noise(2.0))
    rms = model.input_embeddings().weight.pow(2).mean().sqrt()
    assert torch.allclose(audio.pow(2).mean().sqrt(), rms, rtol=0.1)


def test_licence_files_of_a_single_folder_model_travel_with_it(tiny_model_dirs, tmp_path):
    """A plain model folder (qwen2-audio) keeps its LICENSE/NOTICE as the export's notices; other files are not notices."""
    import shutil

    folder = tmp_path / "qwen"
    shutil.copytree(tiny_model_dirs["qwen2-audio"], folder)
    (folder / "LICENSE").write_text("Apache-2.0\n")
    (folder / "README.md").write_text("not a notice\n")
    assert load_speech_lm(folder).notices == {"": [folder / "LICENSE"]}


def test_whisper_tokens_hears_truncated_rows_with_an_open_tail(monkeypatch):
    """A SimulSA row's audio stops mid-sentence: its transcript's closing tokens are dropped, as the runtime does."""
    model = build_tiny("whisper-tokens").eval()
    stop = sorted(model.sentence_ends)[0]
    monkeypatch.setattr(model, "transcribe", lambda enc, max_tokens: [[40, 41, stop, stop]] * enc.shape[0])
    closed, opened = model.audio_features(noise(1.0)), model.open_tail_features(model.audio_features(noise(1.0)))
    batch = model.collate_audio([closed, opened])
    heard = model.hear(batch["mel"], batch["frames"], batch["open_tail"])
    assert [tokens for tokens, _, _ in heard] == [[40, 41, stop, stop], [40, 41]]
    assert [e.shape[0] for e in model.embed_audio(**batch)] == [4, 2]
    assert model.collate_audio([closed])["open_tail"].tolist() == [False]  # only marked rows are opened


def test_augmented_rows_reach_the_model_marked_open(tmp_path):
    import soundfile as sf

    from simulsa.runtime.manifest import ManifestRow
    from simulsa.train.data import SpeechDataset

    sf.write(tmp_path / "a.wav", noise(1.0), 16000)
    wav = tmp_path / "a.wav"
    rows = [ManifestRow(id="full", audio=wav, target="hola"),
            ManifestRow(id="cut", audio=wav, target="ho", simulsa={"orig_id": "full", "truncate_s": 0.5})]
    dataset = SpeechDataset(tmp_path / "m.jsonl", rows, build_tiny("whisper-tokens"))
    assert ["open_tail" in dataset[i]["features"] for i in range(2)] == [False, True]
