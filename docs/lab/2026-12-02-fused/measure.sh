#!/usr/bin/env bash
# The fused decoder against the TorchScript one on the same weights (the shipped default), one machine, one run.
#   NEW: `simulsa models build-default` (fused, int8); OLD: make_checkpoint.py + `simulsa export --decoder torchscript`;
#   INT4: `simulsa export /tmp/defckpt --out /tmp/b_int4 --quantize int4`
set -x
NEW=$SIMULSA_CACHE/bundles/default-2026-12-02a-schema4-int8; OLD=/tmp/b_old_int8; INT4=/tmp/b_int4; OUT=/tmp/fusedlab
mkdir -p $OUT
simulsa bench --bundle $NEW --baseline-bundle $OLD --out $OUT/bench --force
for b in NEW OLD; do
  /usr/bin/time -v simulsa stream --example --bundle ${!b} > $OUT/stream_$b.txt 2> $OUT/stream_$b.time
done
for b in NEW INT4 OLD; do
  simulsa eval --bundle ${!b} --manifest /tmp/evalsets/test80.jsonl --chunk-ms 1000,inf --hold 3 --policy hold --out $OUT/eval_$b --force
  simulsa eval --bundle ${!b} --manifest /tmp/evalsets/real_abs.jsonl --chunk-ms inf --hold 3 --policy hold --out $OUT/real_$b --force
done
# fp32 (the same fused graph, no quantization) for the int4 / int8 / fp32 quality table
simulsa export /tmp/defckpt --out /tmp/b_fp32 --quantize none --no-verify --force
simulsa eval --bundle /tmp/b_fp32 --manifest /tmp/evalsets/test80.jsonl --chunk-ms 1000,inf --hold 3 --policy hold --out $OUT/eval_FP32 --force
simulsa eval --bundle /tmp/b_fp32 --manifest /tmp/evalsets/real_abs.jsonl --chunk-ms inf --hold 3 --policy hold --out $OUT/real_FP32 --force
