#!/usr/bin/env bash
# Post-training of shapes-base into shapes-mobile (issue 5): rewards, SFT, ReFL, DMD2, each stage timed.
#   bash scripts/posttrain_shapes.sh [BASE_MODEL] [OUT]      (defaults: shapes-base, runs/post)
# Resumable: a finished stage or reward is skipped; an interrupted stage continues with --resume latest.
set -euo pipefail
BASE=${1:-src/dreamlite/shipped/shapes-base}
OUT=${2:-runs/post}
DL=${DREAMLITE:-dreamlite}
mkdir -p "$OUT"
for task in generate edit; do
  steps=$([ "$task" = generate ] && echo 800 || echo 600)
  [ -f "$OUT/reward-$task/reward_metrics.json" ] || "$DL" train-reward --task "$task" --out "$OUT/reward-$task" --steps "$steps"
done
"$DL" train --recipe sft --init "$BASE" --out "$OUT" --resume latest
"$DL" train --recipe refl --init "$OUT/sft/model" --out "$OUT" --resume latest \
  feedback.generate_reward="$OUT/reward-generate" feedback.edit_reward="$OUT/reward-edit"
"$DL" train --recipe dmd2 --init "$OUT/refl/model" --out "$OUT" --resume latest
