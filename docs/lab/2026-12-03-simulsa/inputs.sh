# Shared by run.sh here and docs/lab/2026-12-03-simulsa-open/run.sh (sourced from the repository root).
LAB=docs/lab/2026-12-02-tokens
HERE=docs/lab/2026-12-03-simulsa
P=/tmp/proto
mkdir -p $P
stamp() { echo "== $(date +%H:%M:%S) $*"; }

stamp stage-1 inputs
[ -f $P/ear1/projector.pt ] || python $HERE/make_ear1.py
cp $HERE/distill_train.jsonl $P/distill.jsonl
# the train manifest with the base LM's own translation as the target (what augment scores the prefixes of)  (beside train.jsonl: audio paths are relative)
python - <<'EOF'
import json
d = {json.loads(l)["id"]: json.loads(l)["distilled"] for l in open("/tmp/proto/distill.jsonl")}
with open("/tmp/corpus/train_distilled.jsonl", "w") as out:
    for line in open("/tmp/corpus/train.jsonl"):
        row = json.loads(line)
        if d.get(row["id"]):
            out.write(json.dumps({**row, "target": d[row["id"]]}, ensure_ascii=False) + "\n")
EOF

