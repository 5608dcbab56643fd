#!/usr/bin/env bash
# The adapter trained with the ear in the loop (scratch, 2026-12-05, session 17): from the shipped ear1 projector,
# LoRA r8 on Gemma + the projector, on three kinds of rows mixed uniformly:
#   the 2,700 corpus utterances (WordNet sentences, training voices) -> the base LM's own 3-shot translation,
#   2,000 LibreOffice-help pairs spoken by the training voices       -> the human Spanish,
#   2,000 other LibreOffice-help pairs as text (the gold English)    -> the human Spanish (keeps from-text translation).
# Needs: SIMULSA_CACHE=/tmp/simcache with models pulled, /tmp/corpus, /tmp/evalsets (+ test80.jsonl), /tmp/human
# (simulsa corpus-human). Run from the repository root in the dev venv. usage: run.sh [STEPS]
set -euo pipefail
source docs/lab/2026-12-03-simulsa/inputs.sh   # LAB, HERE, P, stamp; ear1, distill.jsonl, train_distilled.jsonl
STEPS=${1:-300}

stamp speak 2,000 human pairs with the training voices
[ -f /tmp/human_speech/train.jsonl ] || simulsa corpus-speak --pairs /tmp/human/train.jsonl --out /tmp/human_speech \
    --max-pairs 2000 --seed 0
# the text rows: human train pairs that were not spoken
python - <<'EOF'
import json
spoken = {json.loads(l)["source"] for l in open("/tmp/human_speech/train.jsonl")}
with open("/tmp/human/train_text.jsonl", "w") as out:
    for line in open("/tmp/human/train.jsonl"):
        if json.loads(line)["source"] not in spoken:
            out.write(line)
# train_ear.py's targets by id: the self-distilled corpus rows and the spoken human rows
with open("/tmp/proto/distill_joint.jsonl", "w") as out:
    for line in open("/tmp/proto/distill.jsonl"):
        out.write(line)
    for line in open("/tmp/human_speech/train.jsonl"):
        row = json.loads(line)
        out.write(json.dumps({"id": row["id"], "source": row["source"], "distilled": row["target"]}, ensure_ascii=False) + "\n")
EOF

stamp states
[ -f $P/train_tf.npz ] || python $LAB/states.py /tmp/corpus/train.jsonl $P/train_tf.npz tf
[ -f $P/human_tf.npz ] || python $LAB/states.py /tmp/human_speech/train.jsonl $P/human_tf.npz tf
[ -f $P/ev_greedy.npz ] || python $LAB/states.py /tmp/evalsets/everyday.jsonl $P/ev_greedy.npz greedy

stamp joint training
# step 0 is ear1 with the base LM (choice rows 28.59 / 51.33, from text 34.20 / 57.48): SKIP0 leaves it out
[ -f $P/joint/lora.pt ] || SKIP0=1 DISTILL=distill_joint.jsonl python $LAB/train_ear.py $P/joint $STEPS --batch 8 --lr 5e-4 \
    --lora 8 --lora-lr 2e-4 --resume $P/ear1/projector.pt --eval-every 100 \
    --train-states train_tf.npz,human_tf.npz --text-rows /tmp/human/train_text.jsonl
[ -d $P/out_joint ] || python $LAB/train_output.py $P/wt_base $P/joint $P/out_joint
[ -d $P/b_joint ] || simulsa export $P/out_joint --out $P/b_joint --quantize int8
stamp done
