#!/usr/bin/env bash
# Quality cost of compression (issue 6, point 5): one model scored as it runs in PyTorch fp32, quantised W8A8
# (torchao), compiled by Inductor (bf16; PT2E x86 int8, the fastest path of `dreamlite speed`)
# and exported (onnxruntime fp32 / int8; ExecuTorch with EXECUTORCH=1: its XNNPACK lowering is slow).
#   bash scripts/eval_compression.sh [MODEL] [OUT]      (defaults: shapes-mobile, runs/eval-compression)
#   SEEDS="0 1" RUNTIMES="pytorch inductor-int8" bash scripts/eval_compression.sh   (more sampling seeds, fewer rows)
# Seed 0 writes OUT/RUNTIME, seed S writes OUT/RUNTIME-sS; every seed reuses the export in OUT/RUNTIME/RUNTIME.
set -euo pipefail
MODEL=${1:-shapes-mobile}
OUT=${2:-runs/eval-compression}
DL=${DREAMLITE:-dreamlite}
PY=${PYTHON:-python}
SEEDS=${SEEDS:-0}
if [ -z "${RUNTIMES:-}" ]; then
  RUNTIMES="pytorch w8a8 inductor-bf16 inductor-int8 onnx onnx-int8"
  [ -n "${EXECUTORCH:-}" ] && RUNTIMES="$RUNTIMES executorch executorch-int8"
fi
mkdir -p "$OUT"
[ -f "$OUT/suite/geneval.jsonl" ] || "$DL" bench suite --out "$OUT/suite" --seed 0 --size 64
rows=()
for runtime in $RUNTIMES; do
  folders=""
  for seed in $SEEDS; do
    dir="$OUT/$runtime"
    [ "$seed" = 0 ] || dir="$OUT/$runtime-s$seed"
    [ -f "$dir/summary.json" ] || "$DL" evaluate --model "$MODEL" --suite "$OUT/suite" --out "$dir" \
      --runtime "$runtime" --export-dir "$OUT/$runtime/$runtime" --images-per-prompt 4 --batch-size 16 --seed "$seed"
    folders="$folders,$dir"
  done
  rows+=("$runtime=${folders#,}")
done
"$PY" benchmarks/eval_table.py "${rows[@]}" --json "$OUT/table.json"
