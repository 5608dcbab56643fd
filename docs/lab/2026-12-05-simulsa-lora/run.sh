#!/usr/bin/env bash
# The paper's table with a LoRA (scratch, 2026-12-05, session 18): stage 1 is the shipped 2026-12-05b (projector +
# LoRA r8 on Gemma, docs/lab/2026-12-05-joint); stage 2 continues it for STEPS steps on the same three kinds of rows
# (self-distilled corpus speech, spoken LibreOffice-help pairs, help pairs as text), once as is (SFT) and once with
# SimulSA rows mixed in (SFT+SimulSA): 20 % of the corpus utterances truncated at random, the prefix of their target
# judged by 2026-12-05b itself with the open tail and tau 1000/V (as docs/lab/2026-12-03-simulsa-open). Same seed,
# batch, lr and steps for both arms.  usage: run.sh STEPS TAG   (ran: run.sh 100 s3; run.sh 400 s4)
# Writes $P/TAG_{sft,simulsa} (train_ear.py runs), $P/out<N>_* (train outputs), $P/b<N>_* (int8 bundles), N = TAG without s.
# Needs: SIMULSA_CACHE=/tmp/simcache with models pulled, /tmp/corpus, /tmp/evalsets (+ test80.jsonl), /tmp/human.
set -euo pipefail
source docs/lab/2026-12-03-simulsa/inputs.sh   # LAB, HERE, P, stamp; stage 1 = the shipped default (make_ear1.py)
HERE2=docs/lab/2026-12-05-simulsa-lora
STEPS=${1:-100}; TAG=${2:-s3}; N=${TAG#s}

stamp "stage 1: the shipped 2026-12-05b as train_ear.py's files"
[ -f $P/s1/lora.pt ] || python $HERE2/adopt_lora.py
[ -d $P/out_s1 ] || python $LAB/train_output.py $P/wt_base $P/s1 $P/out_s1

stamp "augment: 20 % of the corpus rows truncated, judged by 2026-12-05b with the open tail, tau 1000/V"
[ -f $P/aug_lora/augmented.jsonl ] || simulsa augment --model $P/out_s1 --manifest /tmp/corpus/train_distilled.jsonl \
    --out $P/aug_lora --ratio 0.20 --seed 0 --tau-scale 1000

stamp "the joint run's inputs (spoken help pairs, text rows, states)"
sed -n '/^stamp speak/,/^stamp joint training/p' docs/lab/2026-12-05-joint/run.sh | sed '$d' > /tmp/joint_inputs.sh
source /tmp/joint_inputs.sh
[ -f $P/aug_lora.npz ] || python $LAB/states.py $P/aug_lora/augmented.jsonl $P/aug_lora.npz greedy-open

stamp "stage 2, both arms side by side (one thread each)"
common="$STEPS --batch 8 --lr 2.5e-4 --lora 8 --lora-lr 1e-4 --resume $P/s1/projector.pt --eval-every 1000
        --train-states train_tf.npz,human_tf.npz --text-rows /tmp/human/train_text.jsonl"
export SKIP0=1 NO_END_REPORT=1 DISTILL=distill_joint.jsonl THREADS=1
[ -f $P/${TAG}_sft/adapter/adapter_model.safetensors ] || python $LAB/train_ear.py $P/${TAG}_sft $common > $P/${TAG}_sft.log 2>&1 &
[ -f $P/${TAG}_simulsa/adapter/adapter_model.safetensors ] || python $LAB/train_ear.py $P/${TAG}_simulsa $common \
    --aug $P/aug_lora/augmented.jsonl --aug-states aug_lora.npz > $P/${TAG}_simulsa.log 2>&1 &
wait

stamp bundles
for m in sft simulsa; do
  [ -d $P/out${N}_$m ] || python $LAB/train_output.py $P/wt_base $P/${TAG}_$m $P/out${N}_$m
  [ -d $P/b${N}_$m ] || simulsa export $P/out${N}_$m --out $P/b${N}_$m --quantize int8 --prune-vocab runtime/default/vocab_kept.npy
done
stamp "done; score both: docs/lab/2026-12-03-simulsa-open/eval.sh ${TAG}_sft \$P/b${N}_sft (and simulsa), then plot.py"
stamp done
