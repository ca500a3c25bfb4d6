"""How much does ShapeEval move between nearby checkpoints of one run, and does the EMA beat the raw weights?

Comparisons between training arms score one set of weights per arm. If two checkpoints of the same run, 100
steps apart, score differently by more than the effect being measured, a single-run comparison cannot resolve
it, whatever the sign test over images says (that test holds the weights fixed). This scores the raw weights
and the EMA of several checkpoints of one stage on the GenEval prompts of a suite, at the same sampling seed,
and reports the spread. `dreamlite compare raw=OUT/model-3000 ema=OUT/ema-3000` compares two of them image by
image (ShapeEval only).

    python benchmarks/checkpoint_iterates.py STAGE_DIR OUT --steps 2500 2600 ... [--weights model ema]
        [--suite runs/width/val-w64/suite] [--checkpoints DIR] [--guidance 1] [--json FILE]

STAGE_DIR is a training stage's output (`<out>/<stage>` of `dreamlite train`): its `model/` folder gives the
VAE, scheduler and U-Net config, `checkpoints/step-*` (or --checkpoints) the weights. Keep every checkpoint
while training with `log.keep=0`. A missing suite is built with the validation settings of results.md's width
section (seed 1, 20 prompts per tag, at the model's resolution), as `dreamlite evaluate` builds its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

from dreamlite.errors import DreamLiteError
from dreamlite.eval.bench import bench_prompts
from dreamlite.eval.report import write_report
from dreamlite.eval.shapeeval import score_geneval
from dreamlite.eval.suite import build_suite
from dreamlite.machine import measurement_stamp
from dreamlite.pipeline import DreamLitePipeline
from dreamlite.training.checkpoint import checkpoint_weights


def main():
    try:
        run()
    except DreamLiteError as e:  # a missing checkpoint or stage folder: one line, not a traceback
        raise SystemExit(f"error: {e}") from None


def run():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", help="a training stage folder (with model/ and checkpoints/)")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, nargs="+", required=True)
    ap.add_argument("--weights", nargs="+", default=["model", "ema"], choices=("model", "ema"),
                    help="model: the raw weights at that step; ema: their moving average")
    ap.add_argument("--checkpoints", default=None, help="checkpoint folder (default: STAGE/checkpoints)")
    ap.add_argument("--suite", default="runs/width/val-w64/suite", help="a suite folder with geneval.jsonl")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--images-per-prompt", type=int, default=2)
    ap.add_argument("--steps-per-image", type=int, default=28)
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    pipe = DreamLitePipeline.from_pretrained(os.path.join(args.stage, "model"))
    pipe.set_progress_bar_config(disable=True)
    if not os.path.isfile(os.path.join(args.suite, "geneval.jsonl")):
        build_suite(args.suite, seed=1, size=pipe.default_resolution, per_tag=20, dense=10, per_edit_type=2)
    checkpoints = args.checkpoints or os.path.join(args.stage, "checkpoints")
    scores = {w: {} for w in args.weights}
    print("| step | " + " | ".join(f"ShapeEval ({w})" for w in args.weights) + " |")
    print("|---|" + "---|" * len(args.weights))
    for step in args.steps:
        for weights in args.weights:
            pipe.unet.load_state_dict(checkpoint_weights(os.path.join(checkpoints, f"step-{step:08d}"), weights))
            out = os.path.join(args.out, f"{weights}-{step}", "geneval")  # `dreamlite compare` reads this layout
            bench_prompts(pipe, os.path.join(args.suite, "geneval.jsonl"), out, args.images_per_prompt, args.seed,
                          batch_size=16, progress=False, num_inference_steps=args.steps_per_image,
                          guidance_scale=args.guidance)
            result = score_geneval(out)
            write_report(result, out, "ShapeEval (GenEval rules)")
            scores[weights][step] = result["summary"]["overall"]
        print(f"| {step} | " + " | ".join(f"{scores[w][step]:.3f}" for w in args.weights) + " |", flush=True)
    spread = {w: {"mean": round(statistics.mean(s.values()), 4),
                  "sd": round(statistics.stdev(s.values()), 4) if len(s) > 1 else None,
                  "min": min(s.values()), "max": max(s.values())} for w, s in scores.items()}
    for w, s in spread.items():
        print(f"{w}: mean {s['mean']:.3f}, sd {s['sd'] if s['sd'] is None else round(s['sd'], 3)}, "
              f"range {s['min']:.3f}-{s['max']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**measurement_stamp(), "stage": args.stage, "checkpoints": checkpoints, "suite": args.suite,
                       "seed": args.seed, "images_per_prompt": args.images_per_prompt, "guidance": args.guidance,
                       "scores": scores, "spread": spread}, f, indent=2)


if __name__ == "__main__":
    main()
