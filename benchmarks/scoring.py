"""Scorer ceiling and speed: ground-truth renders of the ready suite must score ~1.0, wrong outputs low, and
1,000 images must score in under 60 s. Also the floor of EditEval's preservation: blank canvases in each target's
background, which draw nothing yet match every background pixel of the source (a model near it is not copying).

    python benchmarks/scoring.py [--images 1000] [--seed 0]
"""

import argparse
import json
import os
import shutil
import tempfile
import time

import numpy as np
from PIL import Image

from dreamlite.eval.denseeval import score_dense
from dreamlite.eval.editeval import score_imgedit
from dreamlite.eval.layout import read_edits
from dreamlite.eval.shapeeval import score_geneval
from dreamlite.eval.suite import build_suite
from dreamlite.machine import measurement_stamp
from dreamlite.world.edits import EditCase
from dreamlite.world.render import render
from dreamlite.world.scene import Scene


def shuffled(src, dst, seed):
    shutil.copytree(src, dst)
    folders = sorted(d for d in os.listdir(dst) if d.isdigit())
    records = [open(os.path.join(dst, d, "metadata.jsonl")).read() for d in folders]
    for d, i in zip(folders, np.random.default_rng(seed).permutation(len(records))):
        open(os.path.join(dst, d, "metadata.jsonl"), "w").write(records[i])


def blank_canvases(truth_file: str, out: str):
    """`<out>/<key>.png`: each edit's target background with no object at all (grey for the style edit)."""
    os.makedirs(out, exist_ok=True)
    for key, case in read_edits(truth_file).items():
        target = EditCase.from_dict(case).target
        blank = Scene(target.size, target.background, grayscale=target.grayscale)
        Image.fromarray(render(blank)).save(os.path.join(out, f"{key}.png"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    suite = os.path.join(tmp, "suite")
    build_suite(suite, seed=args.seed, truth=True)
    edits = [os.path.join(suite, "edits", f) for f in ("basic_edit.json", "images", "truth.json")]
    result = measurement_stamp()
    result["truth"] = {"shapeeval": score_geneval(os.path.join(suite, "truth", "geneval"))["summary"]["overall"],
                       "denseeval": score_dense(os.path.join(suite, "truth", "dense"))["summary"]["overall"],
                       "editeval": {t: v["success"] for t, v in
                                    score_imgedit(os.path.join(suite, "truth", "edits"), *edits)["summary"]["types"].items()}}
    shuffled(os.path.join(suite, "truth", "geneval"), os.path.join(tmp, "sg"), args.seed)
    shuffled(os.path.join(suite, "truth", "dense"), os.path.join(tmp, "sd"), args.seed)
    result["wrong"] = {"shapeeval_shuffled": score_geneval(os.path.join(tmp, "sg"))["summary"]["overall"],
                       "denseeval_shuffled": score_dense(os.path.join(tmp, "sd"))["summary"]["overall"],
                       "editeval_unedited": score_imgedit(os.path.join(suite, "edits", "images"), *edits)["summary"]["success"]}
    blank_canvases(edits[2], os.path.join(tmp, "blank"))
    blank = score_imgedit(os.path.join(tmp, "blank"), *edits)["summary"]
    result["blank canvases"] = {"editeval_success": blank["success"], "preservation_db": blank["preservation_db"]}
    many = os.path.join(tmp, "many")
    src = os.path.join(suite, "truth", "geneval")
    folders = sorted(d for d in os.listdir(src) if d.isdigit())
    for i in range(args.images):
        shutil.copytree(os.path.join(src, folders[i % len(folders)]), os.path.join(many, f"{i:05d}"))
    start = time.time()
    s = score_geneval(many)["summary"]
    result["speed"] = {"images": s["images"] + s["held_out"]["images"], "seconds": round(time.time() - start, 1)}
    print(json.dumps(result, indent=2))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
