#!/usr/bin/env bash
# Which part of the fair test mattered for the trained model: the same run as run.sh's SimulSA arm (open tail, 10 %),
# but with the paper's tau 100/V. Needs run.sh done first (ear1, train_tf.npz, ev_greedy.npz, wt_base).
# usage: arm_tau100.sh   then eval.sh open100 /tmp/proto/b_open100   (scratch, 2026-12-03, session 16)
set -euo pipefail
source docs/lab/2026-12-03-simulsa/inputs.sh   # LAB, HERE, P, stamp
stamp "augment: tau 100/V, open tail"
[ -f $P/aug_open100/augmented.jsonl ] || simulsa augment --model $P/out_ear1 --manifest /tmp/corpus/train_distilled.jsonl \
    --out $P/aug_open100 --ratio 0.10 --seed 0 --tau-scale 100
[ -f $P/aug_open100.npz ] || python $LAB/states.py $P/aug_open100/augmented.jsonl $P/aug_open100.npz greedy-open
stamp stage 2
[ -f $P/s2_open100/projector.pt ] || python $LAB/train_ear.py $P/s2_open100 200 --batch 8 --lr 5e-4 \
    --resume $P/ear1/projector.pt --eval-every 200 --aug $P/aug_open100/augmented.jsonl --aug-states aug_open100.npz
[ -d $P/out_open100 ] || python $LAB/train_output.py $P/wt_base $P/s2_open100 $P/out_open100
[ -d $P/b_open100 ] || simulsa export $P/out_open100 --out $P/b_open100 --quantize int8
stamp done
