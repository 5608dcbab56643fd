cd /work/main; . .venv/bin/activate; export SIMULSA_CACHE=/tmp/simcache; OUT=/tmp/fusedlab
simulsa export /tmp/defckpt --out /tmp/b_int4h8 --quantize int4 --head-quantize int8 --no-verify --force
python docs/lab/2026-12-02-fused/decode_speed.py $SIMULSA_CACHE/bundles/default-2026-12-02a-schema4-int8 /tmp/b_int4 /tmp/b_int4h8 /tmp/b_fp32 > $OUT/decode_speed.txt
simulsa eval --bundle /tmp/b_int4h8 --manifest /tmp/evalsets/test80.jsonl --chunk-ms 1000,inf --hold 3 --policy hold --out $OUT/eval_INT4H8 --force
simulsa eval --bundle /tmp/b_int4h8 --manifest /tmp/evalsets/real_abs.jsonl --chunk-ms inf --hold 3 --policy hold --out $OUT/real_INT4H8 --force
echo H8_DONE
