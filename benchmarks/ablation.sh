#!/usr/bin/env bash
# The paper's Table 2 at toy scale: three arms that share the VAE and T2I stage of a finished `tpj` run and
# then spend the same number of steps (same data seeds, same evaluation suite and sampling seeds):
#   spatial-edit-unified   DreamLite: in-context (width) conditioning, T2I -> Edit -> Unified
#   spatial-unified        in-context conditioning, T2I -> Unified (no editing-only stage)
#   channel-edit-unified   Pix2Pix-style channel conditioning (zero-initialised extra input channels), T2I -> Edit -> Unified
# Usage: bash benchmarks/ablation.sh [BASE_RUN] [OUT]   (env EDIT, JOINT: steps of the two later stages; IMAGES per
# prompt; GUIDANCE: text guidance for every arm, default each model folder's own)
set -euo pipefail
BASE=${1:-runs/shapes-base}
OUT=${2:-runs/ablation}
EDIT=${EDIT:-200}
JOINT=${JOINT:-400}
DL=${DL:-.venv/bin/dreamlite}
CFG=src/dreamlite/configs

stage() {  # stage CONFIG INIT OUT [overrides...]: skipped when OUT already holds a finished model
  local config=$1 init=$2 out=$3; shift 3
  [ -f "$out/model/model_index.json" ] || "$DL" train --config "$CFG/$config" --init "$init" --out "$out" "$@"
}

stage tiny-edit.yaml "$BASE/t2i/model" "$OUT/spatial-edit-unified/edit" "optim.steps=$EDIT"
stage tiny-joint.yaml "$OUT/spatial-edit-unified/edit/model" "$OUT/spatial-edit-unified/joint" "optim.steps=$JOINT"
stage tiny-edit.yaml "$BASE/t2i/model" "$OUT/channel-edit-unified/edit" "optim.steps=$EDIT" objective.conditioning=channel
stage tiny-joint.yaml "$OUT/channel-edit-unified/edit/model" "$OUT/channel-edit-unified/joint" "optim.steps=$JOINT" objective.conditioning=channel
stage tiny-joint.yaml "$BASE/t2i/model" "$OUT/spatial-unified/joint" "optim.steps=$((EDIT + JOINT))"

for arm in spatial-edit-unified channel-edit-unified spatial-unified; do
  [ -f "$OUT/$arm/eval/summary.json" ] || "$DL" evaluate --model "$OUT/$arm/joint/model" --out "$OUT/$arm/eval" \
    --suite "$OUT/suite" --images-per-prompt "${IMAGES:-4}" --batch-size 16 ${GUIDANCE:+--guidance "$GUIDANCE"}
done

"${PY:-.venv/bin/python}" - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
print("| Arm | ShapeEval | DenseEval | EditEval success | adherence | preservation (dB) |")
print("|---|---|---|---|---|---|")
for arm in ("spatial-edit-unified", "spatial-unified", "channel-edit-unified"):
    s = json.load(open(f"{out}/{arm}/eval/summary.json"))
    e = s["editeval"]
    print(f"| {arm} | {s['shapeeval']['overall']:.3f} | {s['denseeval']['overall']:.1f} | {e['success']:.3f} | "
          f"{e['adherence']:.3f} | {e['preservation_db']:.1f} |")
PY
