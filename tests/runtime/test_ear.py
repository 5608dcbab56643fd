"""whisper-tokens: the exported ear decoder equals HF's Whisper decoder; frozen tokens follow two agreeing hearings."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from simulsa.runtime.ear import Heard, open_tail_end, sentence_end_ids, start_over, token_cap
from simulsa.runtime.segment_audio import TokenAudio


@pytest.fixture(scope="module")
def tiny():
    from simulsa.train.families import build_tiny

    torch.manual_seed(0)
    return build_tiny("whisper-tokens").eval()


def test_ear_decoder_step_by_step_equals_hf_decoder(tiny):
    from simulsa.export.ear_wrappers import EarDecoderWrapper, EarEncoderWrapper

    mel = torch.randn(1, 80, 500)
    enc = tiny.encode(mel)
    ids = [*tiny.simulsa_config.audio.decoder_prompt, 5, 17, 3, 40]
    with torch.no_grad():
        reference = tiny.whisper.model.decoder(input_ids=torch.tensor([ids]), encoder_hidden_states=enc).last_hidden_state[0]
        cross = EarEncoderWrapper(tiny)(mel)
        decoder = EarDecoderWrapper(tiny)
        heads, head_dim = decoder.heads, tiny.whisper.config.d_model // decoder.heads
        past = [torch.zeros(1, heads, 0, head_dim) for _ in range(2 * decoder.num_layers)]
        _, top_ids, first, *past = decoder(torch.tensor([ids[:5]]), *past, *cross)  # prompt + one token at once
        rows = [first[0]]
        for token in ids[5:]:  # then one token a call through the self-attention cache
            _, _, hidden, *past = decoder(torch.tensor([[token]]), *past, *cross)
            rows.append(hidden[0])
    ours = torch.cat(rows)
    assert ours.shape == reference.shape
    assert torch.allclose(ours, reference, atol=1e-5), float((ours - reference).abs().max())
    full_logits = tiny.whisper.proj_out(reference[:5])
    assert torch.equal(top_ids[0], full_logits.topk(top_ids.shape[-1]).indices)


def test_start_over_cuts_a_transcript_that_says_its_beginning_again():
    assert start_over([1, 2, 3, 4, 1, 2, 3, 4, 1, 2]) == 4
    assert start_over([1, 2, 3, 1, 2, 3]) == 3
    assert start_over([7, 7, 7, 7, 7, 7]) == 3  # a period shorter than 3 is not a start-over: 3 is the shortest kept
    assert start_over([1, 2, 3, 4, 5]) == 5
    assert token_cap(80_000) == 44  # 8 a second of padded audio, plus 4


class ScriptedEar:
    """Hears a scripted token list per call; records which prefix it was forced to continue."""

    lm_hidden = 2
    sentence_ends = frozenset({13, 30})

    def __init__(self, script: list[list[int]]) -> None:
        self.script, self.forced = list(script), []

    def hear(self, samples, forced):
        self.forced.append(list(forced))
        tokens = self.script.pop(0)
        assert tokens[: len(forced)] == forced  # a real ear continues after what it was forced to say
        n = len(tokens)
        states = np.arange(n, dtype=np.float32)[:, None].repeat(4, 1)
        return Heard(tokens, states, states + 100, np.zeros((n, 2), np.float32), np.zeros((n, 2), np.int64))

    def project(self, heard, start, end):
        return np.array([[t, len(self.forced)] for t in heard.tokens[start:end]], np.float32).reshape(-1, 2)


class FakeModel:
    def __init__(self, ear):
        self.ear = ear
        self.bundle = types.SimpleNamespace(dims=types.SimpleNamespace(hidden_size=2))


def test_a_token_is_frozen_once_two_successive_hearings_agree_and_never_changes():
    ear = ScriptedEar([[10, 11, 12], [10, 11, 13, 14], [10, 11, 13, 14, 15], [10, 11, 13, 14, 15, 16]])
    audio = TokenAudio(FakeModel(ear))
    sizes = iter(range(1, 10))

    def step():
        audio.append(np.zeros(next(sizes), np.float32))
        return audio.take_new_stable(), audio.unstable()

    stable, unstable = step()  # first hearing: nothing to agree with
    assert stable.shape == (0, 2) and unstable[:, 0].tolist() == [10, 11, 12]
    stable, unstable = step()  # 10 11 agreed; 13 14 new
    assert stable[:, 0].tolist() == [10, 11] and unstable[:, 0].tolist() == [13, 14]
    assert ear.forced[-1] == []
    stable, unstable = step()  # 13 14 agreed, forced prefix now 10 11
    assert ear.forced[-1] == [10, 11] and stable[:, 0].tolist() == [13, 14] and unstable[:, 0].tolist() == [15]
    frozen_before = audio.frozen_embeds.copy()
    stable, unstable = step()
    assert stable[:, 0].tolist() == [15] and unstable[:, 0].tolist() == [16]
    assert np.array_equal(audio.frozen_embeds[: len(frozen_before)], frozen_before)  # frozen rows never change
    assert audio.all_embeddings()[:, 0].tolist() == [10, 11, 13, 14, 15, 16]


def test_the_no_reuse_path_sees_the_same_embeddings_as_the_reuse_path():
    script = [[1, 2, 3], [1, 2, 4], [1, 2, 4, 5]]
    reuse, recompute = TokenAudio(FakeModel(ScriptedEar(script))), TokenAudio(FakeModel(ScriptedEar(script)))
    cached = np.zeros((0, 2), np.float32)  # what the reuse path has put into the LM's cache so far
    for n in (1, 2, 3):
        reuse.append(np.zeros(n, np.float32))
        recompute.append(np.zeros(n, np.float32))
        cached = np.concatenate([cached, reuse.take_new_stable()])
        assert np.array_equal(np.concatenate([cached, reuse.unstable()]), recompute.all_embeddings())
    assert cached[:, 0].tolist() == [1, 2, 4]


def test_sentence_end_ids_are_the_tokens_that_close_a_sentence():
    texts = ["!", "a", " the", ".", " ?", '."', "...", "Mr.", " 4.5", "", " …"]
    assert sentence_end_ids(texts) == (0, 3, 4, 5, 6, 10)  # not "Mr.", not "4.5", not a special token's ""


def test_the_open_tail_drops_trailing_sentence_ends_but_never_frozen_tokens():
    ends = frozenset({13, 30})
    assert open_tail_end([5, 6, 7, 13], 0, ends) == 3  # "good day." heard from 0.6 s: the LM reads "good day"
    assert open_tail_end([5, 13, 7, 13, 30], 0, ends) == 3  # every trailing end, not one inside
    assert open_tail_end([5, 6, 13], 3, ends) == 3  # frozen tokens (before start) stay: they are in the LM's cache
    assert open_tail_end([5, 6, 13], 2, ends) == 2
    assert open_tail_end([5, 6, 7], 0, ends) == 3


def test_an_open_segment_hides_the_sentence_end_and_its_final_hearing_keeps_it():
    ear = ScriptedEar([[10, 11, 13], [10, 11, 13]])
    audio = TokenAudio(FakeModel(ear))
    audio.append(np.zeros(1, np.float32))
    assert audio.unstable(open_end=True)[:, 0].tolist() == [10, 11]
    assert audio.unstable(open_end=False)[:, 0].tolist() == [10, 11, 13]  # the same hearing, not heard again
    assert audio.all_embeddings(open_end=True)[:, 0].tolist() == [10, 11]
    audio.append(np.zeros(1, np.float32))
    assert audio.take_new_stable()[:, 0].tolist() == [10, 11, 13]  # two hearings agree on the full stop: frozen
    assert audio.unstable(open_end=True).shape == (0, 2)
