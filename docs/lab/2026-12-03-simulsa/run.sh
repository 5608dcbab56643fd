#!/usr/bin/env bash
# The paper's table for the whisper-tokens default (scratch, 2026-12-03): SFT-only vs SFT+SimulSA, same stage 1
# (the shipped ear1 projector), same 200 steps, same seed; only the SimulSA rows differ.
# Needs: SIMULSA_CACHE=/tmp/simcache with models pulled, /tmp/corpus (simulsa corpus --max-sentences 3000),
# /tmp/evalsets (simulsa corpus-eval). Run from the repository root in the dev venv.
set -euo pipefail
source docs/lab/2026-12-03-simulsa/inputs.sh   # LAB, HERE, P, stamp; ear1, distill.jsonl, train_distilled.jsonl

stamp augment: 10 % of rows truncated, prefixes kept by the stage-1 model
[ -f $P/aug/augmented.jsonl ] || simulsa augment --model $P/out_ear1 --manifest /tmp/corpus/train_distilled.jsonl \
    --out $P/aug --ratio 0.10 --seed 0
# the 3 % arm: the first 81 of the 270 (a uniform draw: augment picks rows at random)
head -n 81 $P/aug/augmented.jsonl > $P/aug/augmented_3pct.jsonl

stamp states
[ -f $P/aug_greedy.npz ] || python $LAB/states.py $P/aug/augmented.jsonl $P/aug_greedy.npz greedy
[ -f $P/train_tf.npz ] || python $LAB/states.py /tmp/corpus/train.jsonl $P/train_tf.npz tf
[ -f $P/ev_greedy.npz ] || python $LAB/states.py /tmp/evalsets/everyday.jsonl $P/ev_greedy.npz greedy

stamp stage 2
common="200 --batch 8 --lr 5e-4 --resume $P/ear1/projector.pt --eval-every 200"
[ -f $P/s2_sft/projector.pt ] || python $LAB/train_ear.py $P/s2_sft $common
[ -f $P/s2_sa3/projector.pt ] || python $LAB/train_ear.py $P/s2_sa3 $common --aug $P/aug/augmented_3pct.jsonl
[ -f $P/s2_sa10/projector.pt ] || python $LAB/train_ear.py $P/s2_sa10 $common --aug $P/aug/augmented.jsonl

stamp bundles
for m in sft sa3 sa10; do
  [ -d $P/out_$m ] || python $LAB/train_output.py $P/wt_base $P/s2_$m $P/out_$m
  [ -d $P/b_$m ] || simulsa export $P/out_$m --out $P/b_$m --quantize int8
done
stamp done
