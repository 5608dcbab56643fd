"""The long-form test streams of issue 20 from `simulsa corpus-eval`'s sets (scratch, 2026-12-03).

everyday_long.jsonl: the 160 hand-referenced everyday sentences, voice by voice (flite:slt, then espeak), as one
stream of consecutive utterances: 320 rows, 726 s of speech, 950 s with `--pause-ms 700` (>= 10 minutes);
real.jsonl (the 7 human recordings, 83 s joined) is used as it is.
usage: make_streams.py [EVALSETS=/tmp/evalsets]
  then: simulsa eval --longform --manifest EVALSETS/everyday_long.jsonl --chunk-ms 500,1000,2000 --hold 3,5 --out ev_long
"""
import json
import sys
from pathlib import Path

sets = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/evalsets")
rows = [json.loads(line) for line in (sets / "everyday.jsonl").read_text().splitlines()]
by_voice = sorted(rows, key=lambda r: (r["id"].split("-", 1)[1], r["id"]))  # ev001-flite-slt -> voice, then sentence
(sets / "everyday_long.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in by_voice))
print(f"wrote {sets / 'everyday_long.jsonl'}: {len(by_voice)} rows")
