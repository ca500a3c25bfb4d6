"""Does starting an edit from the noised source (SDEdit / img2img `strength`) make a redrawing model copy?

The shipped base model redraws the scene when it edits (docs/results.md). Starting the sampler from the source
latent noised to `strength`, instead of from pure noise, hands it the layout, so unchanged objects should stay
put. This scores EditEval (adherence, preservation, success per type) at several strengths on one edit suite.

    python benchmarks/edit_strength.py MODEL OUT [--strengths 1 0.85 0.7 0.55 0.4] [--guidance G --image-guidance I]
        [--json FILE]

The suite (OUT/suite, edits only: 5 per type, validation seed 1) is built on first use.
"""

from __future__ import annotations

import argparse
import json
import os

from dreamlite.eval.bench import bench_edits
from dreamlite.eval.editeval import score_imgedit
from dreamlite.eval.suite import edit_suite
from dreamlite.machine import measurement_stamp
from dreamlite.pipeline import DreamLitePipeline, first_step_at_or_below


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--strengths", type=float, nargs="+", default=[1.0, 0.85, 0.7, 0.55, 0.4])
    ap.add_argument("--seed", type=int, default=1, help="suite and sampling seed (1: validation, not the report suite)")
    ap.add_argument("--guidance", type=float, default=None, help="text guidance (default: the model's)")
    ap.add_argument("--image-guidance", type=float, default=None, help="image guidance (default: the model's)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    pipe = DreamLitePipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    files = edit_suite(os.path.join(args.out, "suite"), args.seed, pipe.default_resolution, 5)
    rows = {}
    print("| strength | success | adherence | preservation dB | U-Net steps |")
    print("|---|---|---|---|---|")
    for strength in args.strengths:
        out = os.path.join(args.out, f"strength-{strength}")
        bench_edits(pipe, files[0], files[1], out, seed=args.seed, batch_size=16, progress=False, strength=strength,
                    guidance_scale=args.guidance, image_guidance_scale=args.image_guidance)
        summary = score_imgedit(out, *files)["summary"]
        sigmas = pipe.step_sigmas()
        steps = len(sigmas) - first_step_at_or_below(sigmas, strength)  # the steps the pipeline runs
        rows[strength] = {"success": summary["success"], "adherence": summary["adherence"],
                          "preservation_db": summary["preservation_db"], "steps": steps,
                          "types": {t: {k: v[k] for k in ("adherence", "preservation_db", "success")}
                                    for t, v in summary["types"].items()}}
        print(f"| {strength} | {summary['success']:.3f} | {summary['adherence']:.3f} | "
              f"{summary['preservation_db']:.1f} | {steps} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**measurement_stamp(), "model": args.model, "seed": args.seed, "guidance": pipe.resolve_guidance(args.guidance, args.image_guidance),
                       "strengths": rows}, f, indent=2)


if __name__ == "__main__":
    main()
