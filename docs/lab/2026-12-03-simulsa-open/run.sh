#!/usr/bin/env bash
# The fair SimulSA test for the whisper-tokens default (scratch, 2026-12-03, session 16): the truncated rows heard
# with the same open tail the runtime uses (their transcript's trailing "." / "?" / "!" dropped, in `simulsa augment`'s
# judge and in their training states), a stricter tau (1000/V, against 100/V in docs/lab/2026-12-03-simulsa) and the
# 10 % arm. Same stage 1 (the shipped ear1 projector), same 200 steps, batch, lr and seed for both arms.
# Needs: SIMULSA_CACHE=/tmp/simcache with models pulled, /tmp/corpus, /tmp/evalsets (+ test80.jsonl). Dev venv, repo root.
set -euo pipefail
source docs/lab/2026-12-03-simulsa/inputs.sh   # LAB, HERE, P, stamp; ear1, distill.jsonl, train_distilled.jsonl

stamp "augment: 10 % of rows truncated, judged with the open tail, tau 1000/V"
[ -f $P/aug_open/augmented.jsonl ] || simulsa augment --model $P/out_ear1 --manifest /tmp/corpus/train_distilled.jsonl \
    --out $P/aug_open --ratio 0.10 --seed 0 --tau-scale 1000

stamp states
[ -f $P/aug_open.npz ] || python $LAB/states.py $P/aug_open/augmented.jsonl $P/aug_open.npz greedy-open
[ -f $P/train_tf.npz ] || python $LAB/states.py /tmp/corpus/train.jsonl $P/train_tf.npz tf
[ -f $P/ev_greedy.npz ] || python $LAB/states.py /tmp/evalsets/everyday.jsonl $P/ev_greedy.npz greedy

stamp stage 2
common="200 --batch 8 --lr 5e-4 --resume $P/ear1/projector.pt --eval-every 200"
[ -f $P/s2_sft/projector.pt ] || python $LAB/train_ear.py $P/s2_sft $common
[ -f $P/s2_open/projector.pt ] || python $LAB/train_ear.py $P/s2_open $common --aug $P/aug_open/augmented.jsonl --aug-states aug_open.npz

stamp bundles
for m in sft open; do
  [ -d $P/out_$m ] || python $LAB/train_output.py $P/wt_base $P/s2_$m $P/out_$m
  [ -d $P/b_$m ] || simulsa export $P/out_$m --out $P/b_$m --quantize int8
done
stamp done
