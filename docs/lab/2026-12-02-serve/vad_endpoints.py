"""Endpoint quality of the energy and Silero VADs on speech mixed with noise (scratch, 2026-12-02).

A stream of N utterances (every 4th of everyday's flite:slt rows, and the 7 real recordings) with 1.5 s pauses,
white background noise at SNR dB, and in every other pause a 250 ms noise burst at speech level. Segmentation as
the session does it (100 ms pieces; a segment opens at the first speech, ends at the endpoint, the VAD then restarts).
the session does it (100 ms pieces; a segment opens at the first speech, ends at the endpoint or at max_segment_s, the
VAD then restarts). Counts: cuts inside speech (the clean signal is speech, 20 ms frames above -40 dBFS, somewhere in
the stretch the VAD called the closing pause), segments that overlap no utterance (noise taken for speech), utterances
no segment overlaps.  usage: vad_endpoints.py [SNR...]
"""
import json, sys
import numpy as np
from simulsa.runtime.audio import SAMPLE_RATE, load_audio
from simulsa.runtime.session import StreamOptions
from simulsa.runtime.vad import VADS

rows = [json.loads(l) for l in open("/tmp/evalsets/everyday.jsonl")]
paths = [r["audio"] for r in rows if r["voice"] == "flite:slt"][::4] + [json.loads(l)["audio"] for l in open("/tmp/evalsets/real.jsonl")]
utterances = [load_audio("/tmp/evalsets/" + p if not p.startswith("/") else p) for p in paths]
PAUSE, BURST = int(1.5 * SAMPLE_RATE), int(0.25 * SAMPLE_RATE)


def build(snr_db, rng):
    """-> noisy stream, utterance spans, the clean stream (for where speech really is)."""
    pieces, spans, t = [], [], 0
    speech_rms = np.sqrt(np.mean(np.concatenate(utterances) ** 2))
    for k, u in enumerate(utterances):
        pause = np.zeros(PAUSE, np.float32)
        if k % 2:  # a noise burst at speech level in the middle of the pause
            pause[PAUSE // 2 - BURST // 2 : PAUSE // 2 + BURST // 2] = rng.standard_normal(BURST) * speech_rms
        pieces += [pause, u]; t += PAUSE; spans.append((t, t + u.size)); t += u.size
    clean = np.concatenate(pieces + [np.zeros(PAUSE, np.float32)])
    bursts = clean.copy()
    for s, e in spans:
        bursts[s:e] = 0
    speech_only = clean - bursts
    x = clean + rng.standard_normal(clean.size).astype(np.float32) * speech_rms * 10 ** (-snr_db / 20)
    return x.astype(np.float32), spans, speech_only


def segments(x, vad_name):
    options = StreamOptions(vad=vad_name)
    vad, out, begin, step = VADS[vad_name](options), [], None, SAMPLE_RATE // 10
    longest = int(options.max_segment_s * SAMPLE_RATE)
    for t in range(0, x.size, step):
        vad.accept(x[t : t + step])
        if begin is None and vad.speech_seen:
            begin = t
        if begin is not None and (vad.endpoint or t + step - begin >= longest):
            out.append((begin, t + step, vad.endpoint)); begin = None; vad = VADS[vad_name](options)
    if begin is not None:
        out.append((begin, x.size, True))
    return out


def active(speech_only):
    """Per 20 ms frame: is the clean signal speech?"""
    frame = SAMPLE_RATE // 50
    n = speech_only.size // frame
    rms = np.sqrt(np.mean(speech_only[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(rms + 1e-10) > -40


def score(segs, spans, speaking):
    frame, pause = SAMPLE_RATE // 50, int(StreamOptions().min_silence_ms * SAMPLE_RATE / 1000)
    def cut_inside(end, by_pause):  # the stretch the VAD took for the closing pause (or the forced cut's instant)
        start = end - pause if by_pause else end - frame
        return bool(speaking[start // frame : end // frame].any())
    inside = sum(cut_inside(end, by_pause) for _, end, by_pause in segs[:-1])
    noise_only = sum(not any(b < e and s < end for s, e in spans) for b, end, _ in segs)
    missed = sum(not any(b < e and s < end for b, end, _ in segs) for s, e in spans)
    return {"segments": len(segs), "cut_inside_speech": inside, "noise_taken_for_speech": noise_only, "missed_utterances": missed}


for snr in [float(a) for a in sys.argv[1:]] or [30.0, 10.0, 0.0]:
    x, spans, speech_only = build(snr, np.random.default_rng(0))
    for name in VADS:
        print(json.dumps({"snr_db": snr, "vad": name, "utterances": len(spans), "stream_s": round(x.size / SAMPLE_RATE, 1),
                          **score(segments(x, name), spans, active(speech_only))}), flush=True)
