"""`run_training`: the loss goes down, resume is exact, QLoRA refuses clearly without a GPU."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from simulsa.runtime.errors import ModelError, OutputExistsError, SimulsaError
from simulsa.train.families import build_tiny, load_speech_lm
from simulsa.train.families.base import IGNORE_INDEX
from simulsa.train.lora import LoraOptions
from simulsa.train.trainer import SimulsaTrainer, TrainOptions, run_training
from tests.conftest import FAMILY_NAMES
from tests.train.helpers import batch_for, noise

NO_DROPOUT = LoraOptions(r=8, alpha=16, dropout=0.0)


def _options(model_dir, manifest, out, **kwargs) -> TrainOptions:
    defaults = {"batch_size": 4, "lr": 1e-2, "warmup_ratio": 0.0, "lora": NO_DROPOUT, "logging_steps": 1, "save_steps": 1000}
    return TrainOptions(model=str(model_dir), train_manifest=manifest, out=out, **{**defaults, **kwargs})


def test_loss_covers_target_tokens_only():
    model = build_tiny("composite")
    batch = batch_for(model, [noise(1.0)], ["hola"])
    assembled = model.assemble(batch)
    start = int(assembled.target_start[0])
    target = model.tokenize_row("hola", None, None).target_ids
    assert (assembled.labels[0, :start] == IGNORE_INDEX).all()
    assert assembled.labels[0, start:].tolist() == target  # the end token included


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_few_steps_lower_the_loss_on_a_tiny_overfit_set(name, tiny_model_dirs, toy_manifest, tmp_path):
    from simulsa.runtime.toy import make_toy_manifest

    manifest = make_toy_manifest(tmp_path / "four", n=4, seed=1)
    out = tmp_path / "ckpt"
    result = run_training(_options(tiny_model_dirs[name], manifest, out, max_steps=40))
    history = json.loads((out / "train_summary.json").read_text())["loss_history"]
    assert result.steps == 40
    assert history[-1][1] < 0.9 * history[0][1], history
    assert (out / "loss.png").is_file()
    # the written output is the trained model: its loss on the set is low too
    trained = load_speech_lm(out).eval()
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    from simulsa.runtime.audio import load_audio

    batch = batch_for(trained, [load_audio(manifest.parent / r["audio"]) for r in rows], [r["target"] for r in rows])
    base = load_speech_lm(tiny_model_dirs[name]).eval()
    with torch.no_grad():
        assert trained(**batch)["loss"] < 0.9 * base(**batch)["loss"]


def test_resume_reproduces_the_uninterrupted_run(tiny_model_dirs, toy_manifest, tmp_path, monkeypatch):
    model_dir = tiny_model_dirs["composite"]
    straight = tmp_path / "straight"
    run_training(_options(model_dir, toy_manifest, straight, max_steps=6, save_steps=3,
                          lora=LoraOptions(r=4, alpha=8, dropout=0.1)))  # dropout: the RNG state must resume too

    interrupted = tmp_path / "interrupted"
    original_step = SimulsaTrainer.training_step

    def crash_after_checkpoint(self, *args, **kwargs):
        if self.state.global_step == 4:
            raise KeyboardInterrupt("simulated crash")
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(SimulsaTrainer, "training_step", crash_after_checkpoint)
    options = _options(model_dir, toy_manifest, interrupted, max_steps=6, save_steps=3,
                       lora=LoraOptions(r=4, alpha=8, dropout=0.1))  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run_training(options)
    assert not (interrupted / "simulsa.json").exists()  # an interrupted run does not look like a model
    monkeypatch.setattr(SimulsaTrainer, "training_step", original_step)
    import dataclasses

    run_training(dataclasses.replace(options, resume=True))
    for name in ("trained_modules.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(str(straight / name)), load_file(str(interrupted / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_output_rules(tiny_model_dirs, toy_manifest, tmp_path):
    out = tmp_path / "ckpt"
    out.mkdir()
    with pytest.raises(OutputExistsError, match="already exists; pass --force"):
        run_training(_options(tiny_model_dirs["composite"], toy_manifest, out, max_steps=1))
    with pytest.raises(SimulsaError, match="--resume: no checkpoint"):
        run_training(_options(tiny_model_dirs["composite"], toy_manifest, out, max_steps=1, resume=True))
    with pytest.raises(SimulsaError, match="--batch-size is out of range, got 0"):
        _options(tiny_model_dirs["composite"], toy_manifest, out, batch_size=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on machines without a GPU")
def test_qlora_refuses_without_a_gpu(tiny_model_dirs, toy_manifest, tmp_path):
    with pytest.raises(ModelError, match="--load-in-4bit needs a CUDA GPU"):
        run_training(_options(tiny_model_dirs["composite"], toy_manifest, tmp_path / "q", quantization="4bit"))
    assert not (tmp_path / "q").exists()


def test_length_grouped_batches_hold_rows_of_similar_length(tmp_path):
    """The sampler the trainer uses puts rows of similar length together (less padding per step)."""
    from transformers import TrainingArguments

    from simulsa.runtime.manifest import read_manifest
    from simulsa.runtime.toy import make_toy_manifest
    from simulsa.train.data import SpeechDataset

    manifest = make_toy_manifest(tmp_path / "toy", n=160, seed=3)  # transformers groups within 4+ mega-batches
    rows = read_manifest(manifest)
    durations = [0.5 + (i * 7 % 160) / 40 for i in range(len(rows))]  # 0.5 .. 4.5 s, shuffled
    dataset = SpeechDataset(manifest, rows, build_tiny("composite"), durations)
    batch_size = 4

    def mean_spread(group: bool) -> float:
        args = TrainingArguments(output_dir=str(tmp_path / "o"), per_device_train_batch_size=batch_size, report_to=[])
        trainer = SimulsaTrainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=dataset, group_by_length=group)
        torch.manual_seed(0)
        order = list(trainer._get_train_sampler())
        assert sorted(order) == list(range(len(rows)))  # every row once per epoch
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        return sum(max(dataset.lengths[j] for j in b) - min(dataset.lengths[j] for j in b) for b in batches) / len(batches)

    assert mean_spread(True) < 0.5 * mean_spread(False)


def test_dataset_lengths_need_durations(toy_manifest):
    from simulsa.runtime.manifest import read_manifest
    from simulsa.train.data import SpeechDataset

    with pytest.raises(ValueError, match="needs the durations"):
        _ = SpeechDataset(toy_manifest, read_manifest(toy_manifest), build_tiny("composite")).lengths


def _text_pairs(path, n=40):
    path.write_text("".join(json.dumps({"source": f"word {i}", "target": f"palabra {i}"}) + "\n" for i in range(n)))
    return path


def test_a_text_row_puts_its_source_tokens_in_the_audio_slot():
    from simulsa.train.data import SpeechCollator, TextPair, TextPairDataset

    model = build_tiny("composite")
    speech = {"features": model.audio_features(noise(1.0)), "tokens": model.tokenize_row("hola", None, None)}
    text = TextPairDataset([TextPair("hello there", "hola")], model)[0]
    assembled = model.assemble(SpeechCollator(model)([speech, text]))
    prefix = len(model.tokenize_row("hola", None, None).prefix_ids)
    source = model.encode_text(" hello there")
    expected = model.input_embeddings()(torch.tensor(source))  # (n, H)
    assert torch.equal(assembled.inputs_embeds[1, prefix : prefix + len(source)], expected)
    audio_tokens = int(assembled.target_start[0]) - int(assembled.target_start[1]) + len(source)
    assert audio_tokens == model.embed_audio(**model.collate_audio([speech["features"]]))[0].shape[0]


def test_training_mixes_text_rows_at_the_asked_fraction(tiny_model_dirs, tmp_path, capsys):
    from simulsa.runtime.toy import make_toy_manifest

    manifest = make_toy_manifest(tmp_path / "four", n=4, seed=1)
    pairs = _text_pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "ckpt"
    result = run_training(_options(tiny_model_dirs["composite"], manifest, out, max_steps=6, text_train=pairs, text_fraction=0.75))
    assert result.steps == 6 and (out / "simulsa.json").is_file()
    assert "4 speech + 12 text" in capsys.readouterr().out


def test_bad_text_pairs_and_fraction_fail_clearly(tiny_model_dirs, toy_manifest, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "a"}\n')
    with pytest.raises(SimulsaError, match=r"bad.jsonl:1: needs non-empty string fields 'source' and 'target'"):
        run_training(_options(tiny_model_dirs["composite"], toy_manifest, tmp_path / "o", max_steps=1, text_train=bad))
    with pytest.raises(SimulsaError, match=r"--text-fraction is out of range, got 1.0"):
        _options(tiny_model_dirs["composite"], toy_manifest, tmp_path / "o", text_fraction=1.0)
