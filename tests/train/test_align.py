"""`simulsa align`: CTC alignment of a composite projector onto the LM's token embeddings."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from simulsa.runtime.errors import ManifestError, ModelError
from simulsa.train.align import AlignOptions, _edit_distance, _greedy, run_alignment
from simulsa.train.families import load_speech_lm


def test_align_lowers_the_ctc_loss_and_writes_a_loadable_model(tiny_model_dirs, toy_manifest, tmp_path):
    out = tmp_path / "aligned"
    result = run_alignment(AlignOptions(model=str(tiny_model_dirs["composite"]), manifest=toy_manifest, out=out,
                                        dev_manifest=toy_manifest, epochs=60, batch_size=12, lr=1e-2))  # fmt: skip
    history = json.loads((out / "align_summary.json").read_text())["loss_history"]  # every 10th step, whole data each
    first, last = history[0][1], result.train_loss
    assert last < 0.95 * first, (first, last)
    assert result.dev_loss is not None and 0 <= result.dev_token_error_rate <= 1.5
    before = load_file(str(tiny_model_dirs["composite"] / "projector.safetensors"))
    after = load_file(str(out / "projector.safetensors"))
    assert before.keys() == after.keys()
    assert not torch.allclose(before["up.weight"], after["up.weight"])
    assert load_speech_lm(out).projector.up.weight.shape == after["up.weight"].shape


def test_align_needs_a_source_transcript(tiny_model_dirs, toy_manifest, tmp_path):
    rows = [json.loads(line) for line in toy_manifest.read_text().splitlines()]
    rows[3].pop("source")
    bad = toy_manifest.parent / "no_source.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ManifestError, match=r"no_source.jsonl:4 .*no 'source'"):
        run_alignment(AlignOptions(model=str(tiny_model_dirs["composite"]), manifest=bad, out=tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_align_refuses_a_model_without_a_projector(tiny_model_dirs, toy_manifest, tmp_path):
    with pytest.raises(ModelError, match="qwen2-audio.*composite projector"):
        run_alignment(AlignOptions(model=str(tiny_model_dirs["qwen2-audio"]), manifest=toy_manifest, out=tmp_path / "x"))


def test_greedy_ctc_path_merges_repeats_and_drops_blanks():
    best = [0, 3, 3, 0, 3, 5, 5, 0]
    log_probs = torch.nn.functional.one_hot(torch.tensor(best), 6).float().log()
    assert _greedy(log_probs) == [3, 3, 5]
    assert _edit_distance([3, 3, 5], [3, 5]) == 1 and _edit_distance([], [1, 2]) == 2 and _edit_distance([1, 2], [1, 2]) == 0


def test_state_masking_zeroes_spans_no_wider_than_asked():
    from simulsa.train.align import StateMasking, mask_states

    states = torch.ones(64, 50, 32)  # (n, F, D)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(mask_states(states, StateMasking(), generator), states)  # off by default
    masked = mask_states(states, StateMasking(time_masks=1, time_mask_frames=6), generator)
    zero_frames = (masked == 0).all(dim=2).sum(dim=1)  # (n,) frames zeroed in each utterance
    assert zero_frames.max() <= 6 and zero_frames.float().mean() > 1  # widths drawn in [0, 6]
    assert not (masked == 0).all(dim=1).any()  # no dimension zeroed across all frames
    masked = mask_states(states, StateMasking(feature_masks=2, feature_mask_dims=4), generator)
    zero_dims = (masked == 0).all(dim=1).sum(dim=1)  # (n,) dimensions zeroed
    assert zero_dims.max() <= 8 and zero_dims.float().mean() > 1
    assert torch.equal(states, torch.ones(64, 50, 32))  # the input is not modified


def test_state_masking_options_are_checked():
    from simulsa.runtime.errors import SimulsaError
    from simulsa.train.align import StateMasking

    with pytest.raises(SimulsaError, match="--time-masks must be >= 0, got -1"):
        StateMasking(time_masks=-1)


def test_encoding_in_duration_order_gives_each_row_its_own_states(tiny_model_dirs, toy_manifest):
    from simulsa.runtime.audio import audio_duration_s
    from simulsa.runtime.manifest import read_manifest
    from simulsa.train.align import _by_duration, _encode_all, _vocabulary

    model = load_speech_lm(tiny_model_dirs["composite"])
    rows = read_manifest(toy_manifest)
    ordered = _by_duration(toy_manifest, rows)
    seconds = [audio_duration_s(r.audio) for r in ordered]
    assert seconds == sorted(seconds) and sorted(r.id for r in ordered) == sorted(r.id for r in rows)
    vocabulary = _vocabulary(model, [r.source for r in rows])
    together = {tuple(u.tokens.tolist()): u.states for u in _encode_all(model, toy_manifest, rows, vocabulary, "all")}
    for row in rows[:4]:  # the same states as when the row is encoded on its own
        (alone,) = _encode_all(model, toy_manifest, [row], vocabulary, "one")
        torch.testing.assert_close(together[tuple(alone.tokens.tolist())], alone.states, atol=1e-5, rtol=1e-4)
