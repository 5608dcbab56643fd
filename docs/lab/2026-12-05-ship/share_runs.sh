#!/usr/bin/env bash
# The share of SimulSA rows (scratch, 2026-12-05, session 19): stage 2 from 2026-12-05b as run.sh 100 s3, with 137 and
# 280 of the 540 SimulSA rows (a seeded sample: 1.9 % and 3.9 % of the rows), and a second SFT twin with another
# batch order (SEED=1). Needs what docs/lab/2026-12-05-simulsa-lora/run.sh needs, after it ran (s1/, aug_lora/, *.npz).
# usage: share_runs.sh   then eval.sh share2pct $P/b3_share2pct (… share4pct, sft_seed1) and simulsa eval on real.jsonl
set -euo pipefail
source docs/lab/2026-12-03-simulsa/inputs.sh   # LAB, P, stamp
python - <<'PY'
import json, random
rows = open("/tmp/proto/aug_lora/augmented.jsonl").readlines()
for n, tag in ((137, "2pct"), (280, "4pct")):
    open(f"/tmp/proto/aug_lora/augmented_{tag}.jsonl", "w").writelines(random.Random(0).sample(rows, n))
PY
common="100 --batch 8 --lr 2.5e-4 --lora 8 --lora-lr 1e-4 --resume $P/s1/projector.pt --eval-every 1000
        --train-states train_tf.npz,human_tf.npz --text-rows /tmp/human/train_text.jsonl"
export SKIP0=1 NO_END_REPORT=1 DISTILL=distill_joint.jsonl THREADS=1
for t in 2pct 4pct; do
  python $LAB/train_ear.py $P/s3_share$t $common --aug $P/aug_lora/augmented_$t.jsonl --aug-states aug_lora.npz > $P/s3_share$t.log 2>&1 &
done
SEED=1 python $LAB/train_ear.py $P/s3_sft_seed1 $common > $P/s3_sft_seed1.log 2>&1 &
wait
for run in share2pct share4pct sft_seed1; do
  python $LAB/train_output.py $P/wt_base $P/s3_$run $P/out3_$run
  simulsa export $P/out3_$run --out $P/b3_$run --quantize int8 --ear-quantize all --prune-vocab runtime/default/vocab_kept.npy
done
stamp done
