#!/usr/bin/env bash
# Table-2-style post-training rows (issue 5): evaluate base, +SFT, +RL, +DMD on one suite, sampling seeds 0 and 1
# (base: seed 0 only), then print the table.   bash scripts/eval_posttrain.sh [BASE_MODEL] [POST_RUN] [OUT]
set -euo pipefail
BASE=${1:-src/dreamlite/shipped/shapes-base}
POST=${2:-runs/post}
OUT=${3:-runs/eval-post}
DL=${DREAMLITE:-dreamlite}
PY=${PYTHON:-python}
evaluate() {  # label model seed
  [ -f "$OUT/$1-s$3/summary.json" ] || "$DL" evaluate --model "$2" --suite "$OUT/suite" --out "$OUT/$1-s$3" \
    --images-per-prompt 4 --batch-size 16 --seed "$3"
}
mkdir -p "$OUT"
[ -f "$OUT/suite/geneval.jsonl" ] || "$DL" bench suite --out "$OUT/suite" --seed 0 --size 64
evaluate base "$BASE" 0
for seed in 0 1; do
  evaluate sft "$POST/sft/model" "$seed"
  evaluate rl "$POST/refl/model" "$seed"
  evaluate dmd "$POST/dmd2/model" "$seed"
done
"$PY" benchmarks/eval_table.py base="$OUT/base-s0" sft="$OUT/sft-s0,$OUT/sft-s1" rl="$OUT/rl-s0,$OUT/rl-s1" \
  dmd="$OUT/dmd-s0,$OUT/dmd-s1" --json "$OUT/table.json"
