#!/usr/bin/env bash
# Quality cost of compression (issue 6, point 5): one model scored as it runs in PyTorch fp32, quantised W8A8
# (torchao) and exported (onnxruntime fp32 / int8; ExecuTorch with EXECUTORCH=1: its XNNPACK lowering is slow).
#   bash scripts/eval_compression.sh [MODEL] [OUT]      (defaults: shapes-mobile, runs/eval-compression)
set -euo pipefail
MODEL=${1:-shapes-mobile}
OUT=${2:-runs/eval-compression}
DL=${DREAMLITE:-dreamlite}
PY=${PYTHON:-python}
RUNTIMES="pytorch w8a8 onnx onnx-int8"
[ -n "${EXECUTORCH:-}" ] && RUNTIMES="$RUNTIMES executorch executorch-int8"
mkdir -p "$OUT"
[ -f "$OUT/suite/geneval.jsonl" ] || "$DL" bench suite --out "$OUT/suite" --seed 0 --size 64
rows=()
for runtime in $RUNTIMES; do
  [ -f "$OUT/$runtime/summary.json" ] || "$DL" evaluate --model "$MODEL" --suite "$OUT/suite" --out "$OUT/$runtime" \
    --runtime "$runtime" --images-per-prompt 4 --batch-size 16 --seed 0
  rows+=("$runtime=$OUT/$runtime")
done
"$PY" benchmarks/eval_table.py "${rows[@]}" --json "$OUT/table.json"
