from simulsa.runtime.session import TranslationEvent
from simulsa.runtime.subtitles import cues_from_events, render_srt, render_vtt


def _event(text, start, end, final=True):
    return TranslationEvent(committed=text, tentative="", t_audio_ms=end, t_wall_ms=0.0, segment=0, final=final,
                            segment_start_ms=start, segment_text=text)  # fmt: skip


def test_srt_and_vtt_from_final_events():
    events = [_event("hola", 0, 500, final=False), _event("hola mundo", 0, 1250.4), _event("  ", 1300, 2000),
              _event("adiós", 3_600_000 + 61_000, 3_600_000 + 62_500)]  # fmt: skip
    cues = cues_from_events(events)
    assert [c.text for c in cues] == ["hola mundo", "adiós"]
    srt = render_srt(cues)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,250\nhola mundo\n")
    assert "2\n01:01:01,000 --> 01:01:02,500\nadiós\n" in srt
    vtt = render_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nhola mundo\n")
