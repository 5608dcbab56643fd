#!/usr/bin/env bash
# int4 with blocks of 16 (twice the scales of 32): does it win back what int4 lost on Gemma 3 270M?
OUT=/tmp/fusedlab
simulsa export /tmp/defckpt --out /tmp/b_int4b16 --quantize int4 --block-size 16 --no-verify --force
python docs/lab/2026-12-02-fused/decode_speed.py $SIMULSA_CACHE/bundles/default-2026-12-02a-schema4-int8 /tmp/b_int4 /tmp/b_int4b16 > $OUT/decode_speed_b16.txt
simulsa eval --bundle /tmp/b_int4b16 --manifest /tmp/evalsets/test80.jsonl --chunk-ms inf --hold 3 --policy hold --out $OUT/eval_INT4B16 --force
