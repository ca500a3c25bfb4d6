"""How clean the generated canvases are: foreground pixels that no detected object explains.

ShapeEval checks what the detector finds, and GenEval's rules let extra objects pass, so a canvas full of coloured
blobs can pass a two-object prompt by chance. Per image, this counts the pixels far from the detected background
colour (the detector's own foreground distance) outside every detected object's box (grown by 2 px for blurred
rims), the objects detected, and whether there are more than the prompt names. A sampler setting that raises
ShapeEval while raising these draws clutter, not the objects asked for.

    python benchmarks/stray_pixels.py runs/a/geneval runs/b/geneval [--json OUT.json]
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np

from dreamlite.eval.detector import FOREGROUND_DISTANCE, detect
from dreamlite.eval.layout import Problems, geneval_outputs, read_image_array
from dreamlite.eval.shapeeval import evaluate_record
from dreamlite.world.spec import load_spec

STRAY_IMAGE = 0.005  # an image with more than this share of stray pixels (20 px at 64 px) counts as speckled
RIM = 2  # px added around each detected box


def stray_share(image: np.ndarray, record: dict | None = None) -> tuple[float, int, bool]:
    """(share of the canvas that is foreground outside every detected object's box, objects detected, whether
    the image passes the record under GenEval's rules; False without a record)."""
    scene, detections = detect(image)
    background = np.array(load_spec().backgrounds[scene.background], dtype=np.float64)
    foreground = np.linalg.norm(image.astype(np.float64) - background, axis=2) > FOREGROUND_DISTANCE
    covered = np.zeros_like(foreground)
    h, w = foreground.shape
    for d in detections:
        x0, y0 = int(max(0, np.floor(d.cx - d.width / 2 - RIM))), int(max(0, np.floor(d.cy - d.height / 2 - RIM)))
        x1, y1 = int(min(w, np.ceil(d.cx + d.width / 2 + RIM))), int(min(h, np.ceil(d.cy + d.height / 2 + RIM)))
        covered[y0:y1, x0:x1] = True
    passed = bool(record) and evaluate_record(record, detections)[0]
    return float((foreground & ~covered).mean()), len(detections), passed


def summarise(out: str) -> dict:
    """Per tag and overall: mean stray share, share of speckled images, objects per image, empty canvases (no
    object detected), the share of images
    with more objects than the prompt names (its include clauses' counts; GenEval's rules let extras pass), and
    the share that pass with no more objects than named."""
    shares, objects, extra, exact = (collections.defaultdict(list) for _ in range(4))
    for _, record, samples in geneval_outputs(out, Problems()):
        named = sum(req.get("count", 1) for req in record.get("include", []))
        for path in samples:
            share, n, passed = stray_share(read_image_array(path), record)
            for key in ("all", record.get("tag", "?")):
                shares[key].append(share)
                objects[key].append(n)
                extra[key].append(n > named)
                exact[key].append(passed and n <= named)
    return {key: {"images": len(shares[key]), "mean stray share": round(float(np.mean(shares[key])), 5),
                  "speckled images": round(float(np.mean(np.array(shares[key]) > STRAY_IMAGE)), 4),
                  "objects per image": round(float(np.mean(objects[key])), 3),
                  "empty canvases": int(np.sum(np.array(objects[key]) == 0)),
                  "more objects than named": round(float(np.mean(extra[key])), 4),
                  "passes with nothing extra": round(float(np.mean(exact[key])), 4)}
            for key in ["all", *sorted(k for k in shares if k != "all")]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", help="scored GenEval-layout folders (<eval>/geneval)")
    p.add_argument("--json", default=None, help="also write the result here")
    args = p.parse_args()
    result = {folder: summarise(folder) for folder in args.folders}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
