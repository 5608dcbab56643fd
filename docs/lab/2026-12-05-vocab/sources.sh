#!/usr/bin/env bash
# The text the default's pruned vocabulary is chosen from (scratch, 2026-12-05, session 17): every inflected Spanish
# word form of hunspell-es (unmunch expands the affix rules: ~1M forms), the LibreOffice-help human pairs (both sides),
# the base LM's own translations of the training sentences, and the training sentences. Test sets are left out.
# Needs: apt-get install hunspell-es hunspell-tools; /tmp/human (simulsa corpus-human), /tmp/corpus (simulsa corpus).
# usage: sources.sh OUT_DIR   then   simulsa export CKPT --out B --prune-vocab OUT_DIR/es_forms.txt --prune-vocab OUT_DIR/texts.txt
set -euo pipefail
out=${1:-/tmp/vocab}
mkdir -p "$out"
unmunch /usr/share/hunspell/es_ES.dic /usr/share/hunspell/es_ES.aff 2>/dev/null | grep -v / | sort -u > "$out/es_forms.txt"
python3 - "$out/texts.txt" <<'PY'
import json, sys
lines = []
for row in map(json.loads, open("/tmp/human/train.jsonl")):
    lines += [row["source"], row["target"]]
lines += [json.loads(l)["distilled"] for l in open("docs/lab/2026-12-03-simulsa/distill_train.jsonl")]
lines += [json.loads(l)["source"] for l in open("/tmp/corpus/train.jsonl")]
open(sys.argv[1], "w").write("".join(l.replace("\n", " ") + "\n" for l in lines if l))
PY
wc -l "$out"/*.txt
