"""Streaming invariants on tiny bundles of both families (ARCHITECTURE.md, "Sequence layout and KV reuse")."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simulsa.runtime.errors import AudioError, SimulsaError
from simulsa.runtime.policies import PolicyState, hold_policy, local_agreement_policy
from simulsa.runtime.session import StreamOptions, Translator
from tests.conftest import FAMILY_NAMES


def _stream(translator, audio, **options):
    # a random tiny model repeats itself and writes line breaks; these tests are about the cache and
    # the policies, so the loop guard and the line-break stop (tested on their own below) are off
    # unless a test asks for them
    session = translator.session(StreamOptions(**{"loop_repeats": 0, "stop_at_line_break": False, **options}))
    session.accept_audio(audio)
    return session.step() + session.finish()


def _committed(events):
    return [(e.segment, e.committed, e.final) for e in events]


@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("policy", ["hold", "local-agreement"])
def test_cache_reuse_gives_the_tokens_of_a_full_recompute(tiny_bundles, speech_like, name, policy):
    translator = Translator.from_bundle(tiny_bundles[name, "none"])
    reused = _stream(translator, speech_like, chunk_ms=500, policy=policy)
    recomputed = _stream(translator, speech_like, chunk_ms=500, policy=policy, cache_reuse=False)
    assert len(reused) == 17  # 16 chunks of 500 ms + the final event
    assert _committed(reused) == _committed(recomputed)
    assert any(e.committed for e in reused[:-1]) or policy == "local-agreement"


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_one_chunk_as_long_as_the_audio_equals_translate(tiny_bundles, speech_like, name):
    translator = Translator.from_bundle(tiny_bundles[name, "none"])
    offline = translator.translate(speech_like, options=StreamOptions(stop_at_line_break=False))
    events = _stream(translator, speech_like, chunk_ms=1000 * speech_like.size / 16000, loop_repeats=4)
    assert offline and "".join(e.committed for e in events) == offline


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_hold_never_revises_committed_text(tiny_bundles, speech_like, name):
    events = _stream(Translator.from_bundle(tiny_bundles[name, "int8"]), speech_like, chunk_ms=500, hold=3)
    text = ""
    for event in events:
        assert event.segment_text == text + event.committed  # append-only
        text = event.segment_text
    assert events[-1].final and not events[-1].tentative


def test_local_agreement_commits_only_agreed_prefixes(tiny_bundles, speech_like):
    events = _stream(Translator.from_bundle(tiny_bundles["composite", "none"]), speech_like, chunk_ms=500,
                     policy="local-agreement", max_new_tokens=6)  # fmt: skip
    for before, after in itertools.pairwise(events):
        if not after.final:  # the final step commits everything by definition
            assert before.tentative.startswith(after.committed), (before.tentative, after.committed)
    assert not events[0].committed  # nothing to agree with on the first step
    assert any(e.committed for e in events[1:-1])  # but agreement does commit while the audio goes on


def test_policies_as_pure_functions():
    hyp = (5, 6, 7, 8, 9)
    assert hold_policy(PolicyState(hyp, None, False, hold=3)) == 2
    assert hold_policy(PolicyState(hyp[:2], None, False, hold=3)) == 0
    assert hold_policy(PolicyState(hyp, None, True, hold=3)) == 5
    assert hold_policy(PolicyState(hyp, None, False, hold=0)) == 5
    assert local_agreement_policy(PolicyState(hyp, None, False)) == 0
    assert local_agreement_policy(PolicyState(hyp, (5, 6, 1), False)) == 2
    assert local_agreement_policy(PolicyState(hyp, (5, 6, 1), True)) == 5


def test_segments_at_pauses_and_resampled_int16_input(tiny_bundles):
    from simulsa.runtime.toy import toy_utterance

    rng = np.random.default_rng(3)
    pause = np.zeros(16000, dtype=np.float32)  # 1 s of silence: an endpoint
    audio = np.concatenate([toy_utterance(["one", "two"], rng), pause, toy_utterance(["red", "dog"], rng), pause])
    at_8k = (np.interp(np.arange(0, audio.size, 2), np.arange(audio.size), audio) * 32767).astype(np.int16)
    translator = Translator.from_bundle(tiny_bundles["composite", "int8"])
    session = translator.session(StreamOptions(chunk_ms=250, stop_at_line_break=False))
    events = []
    for start in range(0, at_8k.size, 1000):
        session.accept_audio(np.stack([at_8k[start : start + 1000]] * 2, axis=1), sample_rate=8000)  # stereo
        events += session.step()
    events += session.finish()
    finals = [e for e in events if e.final and e.segment_text]
    assert [e.segment for e in finals] == [0, 1]
    assert finals[1].segment_start_ms >= 1000 * (audio.size - pause.size * 2) / 16000 / 2
    assert abs(events[-1].t_audio_ms - 1000 * audio.size / 16000) < 50


def test_a_pause_inside_a_chunk_ends_the_segment_where_it_is(tiny_bundles):
    from simulsa.runtime.toy import toy_utterance

    rng = np.random.default_rng(4)
    first, second = toy_utterance(["one", "two"], rng), toy_utterance(["red", "dog"], rng)
    pause = np.zeros(12000, dtype=np.float32)  # 0.75 s: longer than min_silence_ms, shorter than a chunk
    audio = np.concatenate([first, pause, second])
    chunk_ms = 1000 * (first.size + pause.size + 4800) / 16000  # one chunk: speech, the pause, 0.3 s of speech
    translator = Translator.from_bundle(tiny_bundles["composite", "int8"])
    session = translator.session(StreamOptions(chunk_ms=chunk_ms, stop_at_line_break=False))
    session.accept_audio(audio)
    stepped = session.step()
    assert [e.final for e in stepped] == [True, False]  # fed whole, the speech after the pause reset the silence
    assert all(e.t_audio_ms == pytest.approx(chunk_ms) for e in stepped)  # emitted when the chunk was heard, not before
    finals = [e for e in stepped + session.finish() if e.final]
    assert [e.segment for e in finals] == [0, 1]
    assert 1000 * first.size / 16000 < finals[1].segment_start_ms < 1000 * (first.size + pause.size) / 16000


@pytest.mark.parametrize("open_tail", [True, False])
def test_the_lm_reads_an_open_tail_until_the_segment_ends(tiny_bundles, speech_like, open_tail):
    translator = Translator.from_bundle(tiny_bundles["whisper-tokens", "none"])
    session = translator.session(StreamOptions(chunk_ms=1000, open_tail=open_tail, max_segment_s=30))
    asked = []
    real_unstable = session.audio.unstable

    def unstable(open_end=False):
        asked.append(open_end)
        return real_unstable(open_end)

    session.audio.unstable = unstable
    session.accept_audio(speech_like[:48000])  # 3 s: one segment, three steps, then the end
    session.step()
    session.finish()
    assert asked[-1] is False  # the final hearing keeps the sentence end
    assert asked[:-1] == [open_tail] * (len(asked) - 1) and len(asked) >= 3


def test_bad_input(tiny_bundles):
    translator = Translator.from_bundle(tiny_bundles["composite", "int8"])
    session = translator.session()
    with pytest.raises(AudioError, match="NaN or Inf"):
        session.accept_audio(np.array([0.0, np.nan], dtype=np.float32))
    session.accept_audio(np.zeros(0, dtype=np.float32))  # a zero-length chunk is fine
    assert session.step() == []
    assert [e.segment_text for e in session.finish()] == [""]  # no audio: an empty final segment
    with pytest.raises(SimulsaError, match="unknown policy 'greedy'; choose one of hold, local-agreement"):
        StreamOptions(policy="greedy")
    with pytest.raises(SimulsaError, match="exceeds the qwen2-audio window of 30 s"):
        Translator.from_bundle(tiny_bundles["qwen2-audio", "int8"]).session(StreamOptions(max_segment_s=40))


def test_context_from_earlier_segments_is_bounded(tiny_bundles, speech_like):
    translator = Translator.from_bundle(tiny_bundles["composite", "int8"])
    session = translator.session(StreamOptions(chunk_ms=500, context_tokens=4, max_segment_s=2.0, stop_at_line_break=False))
    session.accept_audio(speech_like)
    events = session.step() + session.finish()
    assert sum(e.final for e in events) >= 4  # 8 s cut every 2 s
    prefix = len(translator.model.bundle.prompt.prefix_ids)
    assert len(session.context) == 4 and session.cache.length == prefix + 4


def test_loop_guard_keeps_one_copy_of_a_repeated_phrase():
    from simulsa.runtime.session import looping_tail

    assert looping_tail([5, 7, 7, 7, 7], repeats=4) == 3  # "muy muy muy muy" -> "muy"
    assert looping_tail([1, 2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 3, 4], repeats=4) == 9  # "un poco de" x4 -> once
    assert looping_tail([1, 2, 3, 2, 3, 2, 3], repeats=4) == 0  # only three times
    assert looping_tail([1, 2, 3, 4, 5, 6], repeats=4) == 0
    assert looping_tail([7, 7, 7, 7, 7], repeats=0) == 0  # off
    clause = list(range(20))  # longer than LOOP_MAX_PERIOD: twice in a row word for word is already a loop
    assert looping_tail([99, *clause, *clause], repeats=4) == 20
    assert looping_tail(clause * 3, repeats=4) == 40  # every copy but one
    assert looping_tail([*clause, *clause[:-1], 77], repeats=4) == 0  # one token differs: not a loop
    assert looping_tail(list(range(65)) * 2, repeats=4) == 0  # longer than LONG_LOOP_MAX_PERIOD
    assert looping_tail(clause * 2, repeats=0) == 0  # off
    with pytest.raises(SimulsaError, match="loop_repeats is out of range, got 1"):
        StreamOptions(loop_repeats=1)


def test_a_looping_model_stops_at_the_guard(tiny_bundles, speech_like):
    translator = Translator.from_bundle(tiny_bundles["composite", "none"])
    word = translator.tokenizer.encode("hola", add_special_tokens=False).ids[0]
    real_decode = translator.model.decode

    def stuck_on_one_token(embeds, past):  # a model in a loop: the same token forever
        logits, present = real_decode(embeds, past)
        looping = np.full_like(logits, -1e9)
        looping[:, word] = 0
        return looping, present

    translator.model.decode = stuck_on_one_token
    guarded = translator.translate(speech_like)
    unguarded = translator.translate(speech_like, options=StreamOptions(loop_repeats=0))
    once = translator.tokenizer.decode([word]).strip()
    assert guarded == once  # the repeated token is kept once, and decoding stops
    assert unguarded.replace(" ", "") == once * 200  # without the guard: to the segment's 200-token limit


def test_a_line_break_ends_the_proposal(tiny_bundles, speech_like):
    translator = Translator.from_bundle(tiny_bundles["composite", "none"])
    tokenize = translator.tokenizer.encode
    script = tokenize("hola", add_special_tokens=False).ids + tokenize("\nTranslate", add_special_tokens=False).ids
    assert any(i in translator.line_breaks for i in script), "the tiny tokenizer should have a line-break token"
    _say(translator, script)  # "hola", a line break and the instruction, then its last token again and again
    assert translator.translate(speech_like) == "hola"
    multiline = translator.translate(speech_like, options=StreamOptions(stop_at_line_break=False, loop_repeats=0))
    assert multiline.startswith("hola\nTranslate")


def test_offline_translation_is_cut_at_pauses_like_a_stream(tiny_bundles, speech_like):
    """finish() ends a segment at a pause: two utterances with 2 s of silence between them are two segments."""
    translator = Translator.from_bundle(tiny_bundles["composite", "none"])
    audio = np.concatenate([speech_like, np.zeros(32000, np.float32), speech_like])
    session = translator.session(StreamOptions(chunk_ms=float("inf"), loop_repeats=0, stop_at_line_break=False))
    session.accept_audio(audio)
    finals = [e for e in session.finish() if e.final]
    starts = [e.segment_start_ms for e in finals if e.segment_text]
    assert len(starts) == 2, [(e.segment_start_ms, e.segment_text) for e in finals]
    assert starts[1] >= (speech_like.size + 32000 - 0.3 * 16000) * 1000 / 16000 - 1  # the second starts after the pause
    one = translator.session(StreamOptions(chunk_ms=float("inf"), loop_repeats=0, stop_at_line_break=False))
    one.accept_audio(speech_like)
    assert [e.segment_text for e in one.finish() if e.final and e.segment_text] == [finals[0].segment_text]


def test_offline_segments_join_with_one_space(tiny_bundles, speech_like):
    """The LM writes a space after "Spanish:", so every segment's text starts with one; translate() must not double it."""
    translator = Translator.from_bundle(tiny_bundles["composite", "none"])
    tokenize = translator.tokenizer.encode
    _say(translator, tokenize(" hola", add_special_tokens=False).ids + tokenize("\n", add_special_tokens=False).ids)
    two_utterances = np.concatenate([speech_like, np.zeros(32000, np.float32), speech_like])
    assert translator.translate(two_utterances) == "hola hola"


def test_offline_translation_reports_progress_after_each_segment(tiny_bundles, speech_like):
    translator = Translator.from_bundle(tiny_bundles["composite", "none"])
    two_utterances = np.concatenate([speech_like, np.zeros(32000, np.float32), speech_like])
    seen: list[float] = []
    translator.translate(two_utterances, options=StreamOptions(loop_repeats=0), progress=seen.append)
    assert len(seen) >= 2 and seen == sorted(seen), seen  # one call per segment, never backwards
    assert seen[0] < seen[-1] == pytest.approx(two_utterances.size / 16000)

def _say(translator, script, runner_up=None):
    """Make the translator's LM say `script` token by token from every prefill (then its last token again and
    again), with `runner_up` as every step's second choice."""
    real_decode = translator.model.decode
    position = [0]

    def scripted(embeds, past):
        logits, present = real_decode(embeds, past)
        position[0] = 0 if embeds.shape[-2] > 1 else position[0] + 1  # a prefill starts the script over
        said = np.full_like(logits, -1e9)
        if runner_up is not None:
            said[:, runner_up] = -1
        said[:, script[min(position[0], len(script) - 1)]] = 0
        return said, present

    translator.model.decode = scripted
