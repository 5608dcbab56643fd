#!/usr/bin/env bash
# The paper's table on everyday sentences 1-80 x 2 voices (hand references), the current runtime (open tail on):
# fixed chunks, hold-n, offline.  usage: eval.sh NAME BUNDLE   (writes /tmp/proto/ev_NAME)
# compare: python -m simulsa.runtime.eval_compare /tmp/proto/ev_sft /tmp/proto/ev_open --names SFT,SFT+SimulSA
set -euo pipefail
simulsa eval --manifest /tmp/evalsets/test80.jsonl --bundle "$2" --chunk-ms 500,1000,inf --hold 0,3 --policy hold \
             --out /tmp/proto/ev_$1 --force
