#!/usr/bin/env bash
# Text-guidance sweep of a base-mode model on a *validation* suite (seed 1, not the seed-0 suite the docs report),
# 2 images per prompt, 28 steps; pick the scale here, then report it once on the seed-0 suite.
#   bash scripts/sweep_guidance.sh [MODEL] [OUT] ["SCALES"] ["MAX_SIGMAS"]
#   (defaults: shapes-base, runs/sweep-guidance, "2 3.5 5 7 9", "1")
# MAX_SIGMAS are guidance intervals: each scale is also tried guiding only the steps at or below that noise level
# (`--guidance-max-sigma`); 1 guides every step and keeps the folder name OUT/gSCALE.
# PER_TAG (default 10) sets the prompts per GenEval tag of a new suite: more separates closer settings, at a
# proportional cost (10 gives 120 generated images per setting).
set -euo pipefail
MODEL=${1:-shapes-base}
OUT=${2:-runs/sweep-guidance}
SCALES=${3:-2 3.5 5 7 9}
MAX_SIGMAS=${4:-1}
PER_TAG=${PER_TAG:-10}
DL=${DREAMLITE:-dreamlite}
PY=${PYTHON:-python}
mkdir -p "$OUT"
[ -f "$OUT/suite/geneval.jsonl" ] || "$DL" bench suite --out "$OUT/suite" --seed 1 --size 64 --per-tag "$PER_TAG" --dense 10 --per-edit-type 2
rows=()
for g in $SCALES; do
  for s in $MAX_SIGMAS; do
    name="g$g"
    [ "$s" = 1 ] || name="g$g-s$s"
    [ -f "$OUT/$name/summary.json" ] || "$DL" evaluate --model "$MODEL" --suite "$OUT/suite" --out "$OUT/$name" \
      --guidance "$g" --guidance-max-sigma "$s" --steps 28 --images-per-prompt 2 --batch-size 16 --seed 1
    rows+=("$name=$OUT/$name")
  done
done
"$PY" benchmarks/eval_table.py "${rows[@]}" --json "$OUT/table.json"
