#!/usr/bin/env bash
# The shipped weights (ear1) exported twice by the torch path, int8: the whole 262k vocabulary and the pruned one
# (sources.sh's text), scored on everyday 1-80 x 2 voices (hand references), offline and 1000 ms hold 3, then
# `simulsa bench` side by side (scratch, 2026-12-05, session 17). Needs /tmp/proto/out_ear1 (make_ear1.py).
# usage: compare.sh
set -euo pipefail
P=/tmp/proto
[ -d $P/b_ear1_full ] || simulsa export $P/out_ear1 --out $P/b_ear1_full --quantize int8
[ -d $P/b_ear1_pruned ] || simulsa export $P/out_ear1 --out $P/b_ear1_pruned --quantize int8 \
    --prune-vocab /tmp/vocab/es_forms.txt --prune-vocab /tmp/vocab/texts.txt
for b in full pruned; do
  [ -f $P/ev_vocab_$b/report.json ] || simulsa eval --manifest /tmp/evalsets/test80.jsonl --bundle $P/b_ear1_$b \
      --chunk-ms inf,1000 --hold 3 --policy hold --out $P/ev_vocab_$b --force
done
simulsa bench --bundle $P/b_ear1_pruned --baseline-bundle $P/b_ear1_full --out $P/bench_vocab --force
for b in full pruned; do
  /usr/bin/time -v simulsa stream --example --bundle $P/b_ear1_$b 2> $P/stream_$b.time | tail -3
  grep "Maximum resident" $P/stream_$b.time
done
