#!/usr/bin/env bash
# Text-guidance sweep of a base-mode model on a *validation* suite (seed 1, not the seed-0 suite the docs report),
# 2 images per prompt, 28 steps; pick the scale here, then report it once on the seed-0 suite.
#   bash scripts/sweep_guidance.sh [MODEL] [OUT] ["SCALES"]   (defaults: shapes-base, runs/sweep-guidance, "2 3.5 5 7 9")
set -euo pipefail
MODEL=${1:-shapes-base}
OUT=${2:-runs/sweep-guidance}
SCALES=${3:-2 3.5 5 7 9}
DL=${DREAMLITE:-dreamlite}
PY=${PYTHON:-python}
mkdir -p "$OUT"
[ -f "$OUT/suite/geneval.jsonl" ] || "$DL" bench suite --out "$OUT/suite" --seed 1 --size 64 --dense 10 --per-edit-type 2
rows=()
for g in $SCALES; do
  [ -f "$OUT/g$g/summary.json" ] || "$DL" evaluate --model "$MODEL" --suite "$OUT/suite" --out "$OUT/g$g" \
    --guidance "$g" --steps 28 --images-per-prompt 2 --batch-size 16 --seed 1
  rows+=("guidance-$g=$OUT/g$g")
done
"$PY" benchmarks/eval_table.py "${rows[@]}" --json "$OUT/table.json"
